/* Classification shared by the XDP and tc programs: what to do with a packet that arrived on an
 * interface of the gateway, as a `plan` (xpmip_plan.h). One classifier per kind of interface:
 * a realm's core side (LMA downlink), the L2 core side, the MAG's access side (uplink) and the
 * tunnel side (decapsulation, both roles). Each reads as its steps; a step's verdict says go on,
 * the stack's, or drop with a reason. */
#ifndef XPMIP_CLASSIFY_H
#define XPMIP_CLASSIFY_H

#include "xpmip_lookup.h"
#include "xpmip_tunnel.h"
#include "xpmip_spread.h"
#include "xpmip_route_cache.h"

/* An IP header a router can take (RFC 1812 §5.2.2): NOT_OURS when it is no IP packet at all. */
static __always_inline __u32 parse_ip_verdict(void *ip, void *data_end, __u16 et, struct l3info *l3) {
    const int rc = parse_ip(ip, data_end, et, l3);
    if (rc == PARSE_BAD_CHECKSUM) {
        return DROP(XPMIP_STAT_DROP_IP_CHECKSUM);
    }
    return rc == PARSE_OK ? VERDICT_OK : VERDICT_NOT_OURS;
}

/* An Ethernet frame of an L2 session: its flow for steering (from its IP header, if it has one),
 * and no inner IP (sc->in.family 0). */
static __always_inline void frame_flow(struct scratch *sc, struct ethhdr *eth, void *data_end, int mn_is_source) {
    __builtin_memset(&sc->flow, 0, sizeof(sc->flow));
    __builtin_memset(&sc->in, 0, sizeof(sc->in));
    if (!parse_ip(eth + 1, data_end, bpf_ntohs(eth->h_proto), &sc->in)) {
        flow_from(&sc->flow, &sc->in, mn_is_source);
    }
    sc->in.family = 0;
}

/* Plan the encapsulation of an MN's IP packet `in` found by `src`: the flow's path, then the
 * outer headers and next hop. */
static __always_inline int encap_ip(void *ctx, struct plan *pl, struct encap_source *src, const struct l3info *in,
                                    struct steer_flow *f, int mn_is_source, int to_mn, const struct ethhdr *eth) {
    flow_from(f, in, mn_is_source);
    if (plan_verdict(pl, steer(src, f))) {
        return 0;
    }
    pl->no_icmp = !icmp_allowed(in, eth);
    pl->inner_len = in->total_len;
    pl->to_mn = to_mn;
    return plan_encap(ctx, pl, src, in);
}

/* ------------------------------------------------------------------------------------------ */
/* LMA core side: packets from correspondents to mobile nodes (downlink). `mn_is_source`
 * serves the stack-emitted direction of a MAG's tc egress (uplink). */

/* Inputs in the plan: in_ifindex, realm, mn_is_source. */
static __noinline int classify_mn_traffic(void *ctx, void *data, void *data_end, const struct xpmip_iface *ifc,
                                          struct plan *pl) {
    const int mn_is_source = pl->mn_is_source;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    /* A router forwards only what was sent to it (RFC 1812 §5.3.4): on ingress, frames to our
     * MAC. (On tc egress, ifc is NULL: the stack addressed the frame to its next hop.) */
    if (ifc && !mac_eq(eth->h_dest, ifc->mac)) {
        return 0;
    }
    const __u16 et = bpf_ntohs(eth->h_proto);
    struct scratch *sc = scratch_get();
    if (!sc) {
        return 0;
    }
    struct l3info *in = &sc->in;
    if ((et != ETH_P_IP && et != ETH_P_IPV6) || plan_verdict(pl, parse_ip_verdict(eth + 1, data_end, et, in))) {
        return 0;
    }
    struct encap_source src = {};
    const int found = route_by_address(&src, pl->realm, mn_is_source ? in->src : in->dst, in->family);
    if (found <= 0) {
        if (found < 0) {
            plan_drop(pl, XPMIP_STAT_DROP_SESSION_GONE);
        }
        return 0;   /* not a mobile node's: the stack's */
    }
    if (src.flags & XPMIP_SESSION_L2) {
        return 0;
    }
    /* RFC 1812 §5.3.7: nothing from a source no host sends from reaches an MN. */
    if (!mn_is_source && not_a_host_source(in)) {
        plan_drop(pl, XPMIP_STAT_DROP_NOT_FORWARDABLE);
        return 0;
    }
    if (in->ttl <= 1) {
        plan_icmp(pl, ICMP_TIME_EXCEEDED, XPMIP_STAT_DROP_TTL, in, eth);
        return 0;
    }
    return encap_ip(ctx, pl, &src, in, &sc->flow, mn_is_source, !mn_is_source, eth);
}

/* ------------------------------------------------------------------------------------------ */
/* LMA L2 core side: frames to an L2 session's station (downlink Ethernet-in-GRE). */

static __noinline int classify_core_l2(void *ctx, void *data, void *data_end, struct plan *pl) {
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    if (mac_is_group(eth->h_dest)) {
        return 0;  /* broadcast/multicast are not flooded into L2 sessions (README) */
    }
    struct xpmip_station_key k = {.ifindex = pl->in_ifindex};
    mac_copy(k.mac, eth->h_dest);
    struct xpmip_station *st = bpf_map_lookup_elem(&stations, &k);
    if (!st || !(st->route.flags & XPMIP_SESSION_L2)) {
        return 0;
    }
    struct encap_source src = {.session = st->route.session, .encap = st->route.encap, .flags = st->route.flags,
                               .npaths = st->route.npaths, .policy = st->route.policy, .path = &st->route.path,
                               .tx = &st->route.tx};
    struct scratch *sc = scratch_get();
    if (!sc) {
        return 0;
    }
    frame_flow(sc, eth, data_end, 0);
    if (plan_verdict(pl, steer(&src, &sc->flow))) {
        return 0;
    }
    pl->inner_len = (__u16)(data_end - data);
    pl->to_mn = 1;
    return plan_encap(ctx, pl, &src, &sc->in);
}

/* ------------------------------------------------------------------------------------------ */
/* MAG access side: frames from mobile nodes (uplink). */

static __always_inline void report_station(__u32 ifindex, const __u8 *mac, __u16 ethertype) {
    if (mac_is_group(mac)) {
        return;
    }
    struct xpmip_station_key k = {.ifindex = ifindex};
    mac_copy(k.mac, mac);
    __u64 now = bpf_ktime_get_ns();
    __u64 *last = bpf_map_lookup_elem(&station_reports, &k);
    if (last && now - *last < 1000000000ULL) {
        return;  /* at most one report per station per second */
    }
    bpf_map_update_elem(&station_reports, &k, &now, BPF_ANY);
    struct xpmip_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        return;
    }
    e->type = XPMIP_EVENT_UNKNOWN_STATION;
    e->ifindex = ifindex;
    mac_copy(e->mac, mac);
    e->ethertype = ethertype;
    e->timestamp_ns = now;
    bpf_ringbuf_submit(e, 0);
    count_stat(&counters, XPMIP_STAT_UNKNOWN_STATION);
}

/* Link-scope or control traffic an MN sends to its MAG: left to the stack / the agent. */
static __always_inline int is_local_control(const struct l3info *in, const struct xpmip_iface *ifc, void *l4,
                                            void *data_end) {
    if (in->family == 6) {
        if (in->dst[0] == 0xff || (in->dst[0] == 0xfe && (in->dst[1] & 0xc0) == 0x80) ||
            (in->src[0] == 0xfe && (in->src[1] & 0xc0) == 0x80)) {
            return 1;  /* multicast or link-local */
        }
        if (addr_eq(in->dst, ifc->addr6)) {
            return 1;
        }
        if (in->proto == IPPROTO_ICMPV6) {
            __u8 *type = l4;
            if ((void *)(type + 1) <= data_end && *type >= 133 && *type <= 137) {
                return 1;  /* RS, RA, NS, NA, Redirect */
            }
        }
        return 0;
    }
    __be32 dst = addr_to_v4(in->dst);
    return addr_to_v4(in->src) == 0 || dst == *(const __be32 *)ifc->addr4 || dst == 0xffffffff ||
           (bpf_ntohl(dst) >> 28) == 0xe || (in->proto == IPPROTO_UDP && in->dport == 67);
}

/* Inputs in the plan: in_ifindex. */
static __noinline int classify_access(void *ctx, void *data, void *data_end, const struct xpmip_iface *ifc,
                                      struct plan *pl) {
    const __u32 ifindex = pl->in_ifindex;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    const __u16 et = bpf_ntohs(eth->h_proto);
    struct xpmip_station_key k = {.ifindex = ifindex};
    mac_copy(k.mac, eth->h_source);
    struct xpmip_station *st = bpf_map_lookup_elem(&stations, &k);
    if (!st) {
        report_station(ifindex, eth->h_source, et);
        return 0;
    }
    struct encap_source src = {.session = st->route.session, .encap = st->route.encap, .flags = st->route.flags,
                               .npaths = st->route.npaths, .policy = st->route.policy, .path = &st->route.path,
                               .tx = &st->route.tx};
    struct scratch *sc = scratch_get();
    if (!sc) {
        return 0;
    }
    struct l3info *in = &sc->in;
    if (src.flags & XPMIP_SESSION_L2) {
        /* The whole frame goes to the LMA (Ethernet in GRE). */
        frame_flow(sc, eth, data_end, 1);
        if (plan_verdict(pl, steer(&src, &sc->flow))) {
            return 0;
        }
        pl->inner_len = (__u16)(data_end - data);
        return plan_encap(ctx, pl, &src, in);
    }
    if (!mac_eq(eth->h_dest, ifc->mac) || (et != ETH_P_IP && et != ETH_P_IPV6)) {
        return 0;  /* ARP, broadcast, multicast: the stack's */
    }
    if (plan_verdict(pl, parse_ip_verdict(eth + 1, data_end, et, in))) {
        return 0;
    }
    if (is_local_control(in, ifc, (void *)(eth + 1) + (in->hdr_len & 0xff), data_end)) {
        return 0;
    }
    /* Source address validation: an MN sends only from its own HoA / HNP (RFC 5213 §6.10.3). */
    if (!owns_address(st->route.flags, st->hnp, st->hnp_len, st->hoa, st->hoa_len, in->src, in->family)) {
        plan_drop(pl, XPMIP_STAT_DROP_INNER_SPOOF);
        return 0;
    }
    /* RFC 1812 §5.3.7: loopback, "this network", multicast and other martian destinations are
     * not forwarded (what the stack would not route either). */
    if (not_forwardable(in)) {
        plan_drop(pl, XPMIP_STAT_DROP_NOT_FORWARDABLE);
        return 0;
    }
    if (in->ttl <= 1) {
        plan_icmp(pl, ICMP_TIME_EXCEEDED, XPMIP_STAT_DROP_TTL, in, eth);
        return 0;
    }
    return encap_ip(ctx, pl, &src, in, &sc->flow, 1, 0, eth);
}

/* ------------------------------------------------------------------------------------------ */
/* Tunnel side (LMA and MAG): decapsulation. */

/* The inner packet or frame at `inner` must be whole and end where the outer packet does. */
static __always_inline __u32 parse_inner(void *inner, void *end, void *data_end, __u16 et, int l2, struct l3info *in) {
    if (l2) {
        return (inner + ETH_HLEN > data_end || inner + ETH_HLEN > end) ? DROP(XPMIP_STAT_DROP_MALFORMED) : VERDICT_OK;
    }
    const int rc = parse_ip(inner, data_end, et, in);
    if (rc == PARSE_BAD_CHECKSUM) {
        return DROP(XPMIP_STAT_DROP_IP_CHECKSUM);
    }
    return (rc != PARSE_OK || inner + bound16(in->total_len) != end) ? DROP(XPMIP_STAT_DROP_MALFORMED) : VERDICT_OK;
}

/* The session must have negotiated this format (RFC 5845 §7.4: the LMA "ensures the same
 * TLV-header UDP-based tunneling format ... when it decapsulates"), and the packet must come
 * from the path's peer to the path's local address. */
static __always_inline __u32 check_tunnel_match(const struct tunnel_match *m, const struct tunnel_info *t,
                                                const struct l3info *out, int l2) {
    const struct xpmip_session *s = m->s;
    const int keyed = (s->flags & XPMIP_SESSION_GRE_KEY) != 0;
    const int gre = t->format == XPMIP_ENCAP_GRE || t->format == XPMIP_ENCAP_UDP_TLV_GRE;
    if (s->encap != t->format || (gre && keyed != t->has_key) || ((s->flags & XPMIP_SESSION_L2) != 0) != l2) {
        return DROP(XPMIP_STAT_DROP_ENCAP_MISMATCH);
    }
    if (!addr_eq(m->path->remote, out->src) || !addr_eq(m->path->local, out->dst)) {
        return DROP(XPMIP_STAT_DROP_OUTER_SPOOF);
    }
    return VERDICT_OK;
}

/* RFC 6040 §4.2 Figure 4: a CE outer makes an ECN-capable inner CE and drops a Not-ECT one; an
 * ECT(1) outer makes an ECT(0) inner ECT(1); otherwise the inner is unchanged. */
static __always_inline __u32 plan_ecn(struct plan *pl, const struct l3info *out, const struct l3info *in) {
    const __u8 outer_ecn = out->tos & ECN_MASK, inner_ecn = in->tos & ECN_MASK;
    if (outer_ecn == ECN_CE) {
        if (inner_ecn == ECN_NOT_ECT) {
            return DROP(XPMIP_STAT_DROP_ECN);
        }
        pl->ecn = inner_ecn != ECN_CE ? ECN_CE : 0;
    } else if (outer_ecn == ECN_ECT1 && inner_ecn == ECN_ECT0) {
        pl->ecn = ECN_ECT1;
    }
    return VERDICT_OK;
}

/* LMA: frames from the MN's station only; MAG: frames for it (or group frames). */
static __always_inline int plan_decap_l2(struct plan *pl, const struct xpmip_session *s, void *inner, void *data_end,
                                         int lma) {
    struct ethhdr *ieth = inner;
    if ((void *)(ieth + 1) > data_end) {
        plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
        return 0;
    }
    if (lma ? !mac_eq(ieth->h_source, s->mn_mac) : !(mac_eq(ieth->h_dest, s->mn_mac) || mac_is_group(ieth->h_dest))) {
        plan_drop(pl, XPMIP_STAT_DROP_INNER_SPOOF);
        return 0;
    }
    pl->ifindex = s->mn_ifindex;
    pl->kind = s->mn_ifindex ? PLAN_DECAP : PLAN_DROP;
    pl->stat = XPMIP_STAT_DROP_FIB;
    return 0;
}

/* LMA: the inner packet goes on toward its destination in the MN's realm (the cached route or
 * the FIB, out of the realm's core interface), or up this host's stack when it is addressed to it. */
static __always_inline int plan_decap_to_core(void *ctx, struct plan *pl, const struct xpmip_session *s,
                                              const struct l3info *in, const struct ethhdr *eth) {
    int rc = route_cached(pl, s->mn_ifindex, in->dst, in->total_len);
    if (rc == ROUTE_NOT_CACHED) {
        rc = fib_toward(ctx, pl, in->family == 4, in->src, in->dst, in->total_len, s->mn_ifindex, pl->in_ifindex);
        if (rc == 0 && !pl->neigh) {
            route_cache_fill(ctx, pl, in->src, in->dst, s->mn_ifindex);
        }
    }
    if (rc == FIB_LOCAL) {
        pl->local = 1;
        pl->ifindex = pl->in_ifindex;
        mac_copy(pl->smac, eth->h_source);
        mac_copy(pl->dmac, eth->h_dest);
        pl->kind = PLAN_DECAP;
        return 0;
    }
    if (rc) {
        plan_drop(pl, rc > 0 ? XPMIP_STAT_DROP_TOO_BIG : XPMIP_STAT_DROP_FIB);
        return 0;
    }
    pl->kind = PLAN_DECAP;
    return 0;
}

/* MAG: the inner packet goes out of the MN's access interface to its MAC, no larger than that
 * link's MTU (RFC 1812 §5.2.2: dropped and counted; the sender is beyond the tunnel). */
static __always_inline int plan_decap_to_access(struct plan *pl, const struct xpmip_session *s) {
    __u32 oif = s->mn_ifindex;
    const struct xpmip_iface *access = bpf_map_lookup_elem(&ifaces, &oif);
    if (!access) {
        plan_drop(pl, XPMIP_STAT_DROP_FIB);
        return 0;
    }
    if (access->mtu && pl->inner_len > access->mtu && !pl->gso) {
        plan_drop(pl, XPMIP_STAT_DROP_TOO_BIG);
        return 0;
    }
    pl->ifindex = oif;
    mac_copy(pl->smac, access->mac);
    mac_copy(pl->dmac, s->mn_mac);
    pl->kind = PLAN_DECAP;
    return 0;
}

/* The inner IP packet of a matched session: anti-spoofing (the uplink's source and the
 * downlink's destination are the MN's), what a router does not forward, ECN, TTL; then where it
 * goes. */
static __always_inline int plan_decap_ip(void *ctx, struct plan *pl, const struct xpmip_session *s,
                                         const struct l3info *out, const struct l3info *in, const struct ethhdr *eth,
                                         int lma) {
    if (!session_owns(s, lma ? in->src : in->dst, in->family)) {
        plan_drop(pl, XPMIP_STAT_DROP_INNER_SPOOF);
        return 0;
    }
    /* The LMA hands nothing tunnelled to broadcast, multicast, link-local or loopback
     * destinations: an MN's link-scope traffic ends at its MAG (README "Router hygiene"). */
    if (lma && not_forwardable(in)) {
        plan_drop(pl, XPMIP_STAT_DROP_NOT_FORWARDABLE);
        return 0;
    }
    if (plan_verdict(pl, plan_ecn(pl, out, in))) {
        return 0;
    }
    if (in->ttl <= 1) {
        plan_drop(pl, XPMIP_STAT_DROP_TTL);
        return 0;
    }
    pl->inner_v4 = in->family == 4;
    return lma ? plan_decap_to_core(ctx, pl, s, in, eth) : plan_decap_to_access(pl, s);
}

/* Its session: by our GRE key (RFC 5845 §4.3, §5.3: the key identifies the mobility session),
 * else by (outer source, the inner MN-side address). */
static __always_inline __u32 find_tunnel_session(struct tunnel_match *m, const struct tunnel_info *t,
                                                 const struct xpmip_iface *ifc, const struct l3info *out,
                                                 const struct l3info *in, int l2, int lma,
                                                 const struct xpmip_config *cfg) {
    if (t->has_key) {
        return session_by_key(m, ifc->realm, t->key, lma, cfg);
    }
    if (l2) {
        return DROP(XPMIP_STAT_DROP_NO_SESSION);   /* L2 sessions are always keyed */
    }
    return session_by_addresses(m, ifc->realm, out->src, lma ? in->src : in->dst);
}

static __noinline int classify_tunnel(void *ctx, void *data, void *data_end, const struct xpmip_iface *ifc,
                                      struct plan *pl) {
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    const __u16 et = bpf_ntohs(eth->h_proto);
    if ((et != ETH_P_IP && et != ETH_P_IPV6) || !mac_eq(eth->h_dest, ifc->mac)) {
        return 0;
    }
    void *ip = eth + 1;
    struct scratch *sc = scratch_get();
    if (!sc) {
        return 0;
    }
    struct l3info *out = &sc->out;
    struct l3info *in = &sc->in;
    struct tunnel_info t = {};
    if (plan_verdict(pl, parse_ip_verdict(ip, data_end, et, out)) ||
        plan_verdict(pl, parse_tunnel(ctx, ip, data_end, out, &t))) {
        return 0;
    }
    const struct xpmip_config *cfg = instance_config();
    if (!cfg) {
        return 0;
    }
    const int lma = cfg->role == XPMIP_ROLE_LMA;
    const int l2 = t.inner_et == XPMIP_GRE_PROTO_TEB;
    void *inner = ip + (t.inner_off & 0x1ff);
    struct tunnel_match m = {};
    __builtin_memset(in, 0, sizeof(*in));
    if (plan_verdict(pl, parse_inner(inner, ip + bound16(out->total_len), data_end, t.inner_et, l2, in)) ||
        plan_spread(pl, cfg, &t, in, inner, data_end, l2) ||
        plan_verdict(pl, find_tunnel_session(&m, &t, ifc, out, in, l2, lma, cfg)) ||
        plan_verdict(pl, check_tunnel_match(&m, &t, out, l2))) {
        return 0;
    }
    pl->session_id = m.s->id;
    pl->path = m.pidx;
    pl->encap = t.format;
    pl->l2 = l2;
    pl->to_mn = !lma;
    pl->ethertype = t.inner_et;
    pl->hdr_len = t.inner_off;
    pl->inner_len = out->total_len - t.inner_off;
    if (l2) {
        plan_decap_l2(pl, m.s, inner, data_end, lma);
    } else {
        plan_decap_ip(ctx, pl, m.s, out, in, eth, lma);
    }
    if (pl->kind == PLAN_DECAP && !COUNTED_LATER(pl)) {
        count_packet(&m.s->rx, pl->inner_len);
        if (m.paths) {
            count_packet(&m.paths->rx[path_slot(m.pidx)], pl->inner_len);
        }
    }
    return 0;
}

/* Issue 17, trust boundaries: on an interface no MAG or LMA is behind, PMIPv6 signaling (the
 * Mobility Header, RFC 6275 §6.1; RFC 5844's UDP 5436) is dropped before the stack sees it. Only
 * what would go up the stack is looked at: tunnelled traffic has been planned already. */
#define PMIP_MH_PROTO 135
#define PMIP_UDP_PORT_SIGNALING 5436
static __noinline int refuse_signaling(void *data, void *data_end, struct plan *pl) {
    struct ethhdr *eth = data;
    if (!pl || (void *)(eth + 1) > data_end) {
        return 0;
    }
    struct scratch *sc = scratch_get();
    if (!sc) {
        return 0;
    }
    __builtin_memset(&sc->out, 0, sizeof(sc->out));
    if (parse_ip(eth + 1, data_end, bpf_ntohs(eth->h_proto), &sc->out) != PARSE_OK) {
        return 0;
    }
    if (sc->out.proto == PMIP_MH_PROTO ||
        (sc->out.proto == IPPROTO_UDP && !sc->out.later_fragment && sc->out.dport == PMIP_UDP_PORT_SIGNALING)) {
        plan_drop(pl, XPMIP_STAT_DROP_SIGNALING);
    }
    return 0;
}

/* Dispatch by what the ingress interface is. */
static __always_inline void classify(void *ctx, void *data, void *data_end, __u32 ifindex, struct plan *pl) {
    const struct xpmip_iface *ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
    if (!ifc) {
        return;
    }
    pl->in_ifindex = ifindex;
    switch (ifc->kind) {
    case XPMIP_IF_CORE:
        pl->realm = ifc->realm;
        pl->mn_is_source = 0;
        classify_mn_traffic(ctx, data, data_end, ifc, pl);
        break;
    case XPMIP_IF_CORE_L2:
        classify_core_l2(ctx, data, data_end, pl);
        break;
    case XPMIP_IF_ACCESS:
        classify_access(ctx, data, data_end, ifc, pl);
        break;
    case XPMIP_IF_TUNNEL:
        classify_tunnel(ctx, data, data_end, ifc, pl);
        break;
    }
    if (pl->kind == PLAN_PASS && (ifc->flags & XPMIP_IFACE_NO_SIGNALING)) {
        refuse_signaling(data, data_end, pl);
    }
}

#endif
