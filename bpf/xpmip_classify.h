/* Classification shared by the XDP and tc programs: what to do with a packet that arrived on an
 * interface of the gateway, as a `plan`. The XDP and tc programs then carry the plan out with
 * their own helpers (bpf_xdp_adjust_head / bpf_skb_adjust_room, XDP_TX / bpf_redirect_neigh). */
#ifndef XPMIP_CLASSIFY_H
#define XPMIP_CLASSIFY_H

#include "xpmip_parse.h"
#include "xpmip_steer.h"

enum plan_kind {
    PLAN_PASS = 0,   /* not ours: to the stack */
    PLAN_DROP,       /* drop, counting plan.stat */
    PLAN_ENCAP,      /* push outer headers, send toward the peer */
    PLAN_DECAP,      /* pop outer headers, send toward the MN / correspondent */
    PLAN_ICMP,       /* answer the sender with an ICMP error (plan.icmp), counting plan.stat */
};

enum icmp_kind {
    ICMP_TOO_BIG = 1,
    ICMP_TIME_EXCEEDED = 2,
};

struct plan {
    __u8 kind;           /* enum plan_kind */
    __u8 l2;             /* the inner is an Ethernet frame (GRE protocol 0x6558) */
    __u8 outer_v4;       /* ENCAP: outer IPv4 */
    __u8 encap;          /* ENCAP/DECAP: enum xpmip_encap */
    __u8 keyed;          /* ENCAP: GRE key present */
    __u8 icmp;           /* ICMP: enum icmp_kind */
    __u8 neigh;          /* next hop unresolved: XDP passes, tc uses bpf_redirect_neigh */
    __u8 ecn;            /* DECAP: new ECN field of the inner (RFC 6040 §4.2), 0: unchanged */
    __u8 inner_v4;       /* the inner (L3) is IPv4 */
    __u8 tos;            /* ENCAP: outer TOS / Traffic Class */
    __u8 df;             /* ENCAP: outer IPv4 DF */
    __u8 to_mn;          /* direction: toward the mobile node (downlink) */
    __u8 nh_v4;          /* family of plan.nh */
    __u8 mn_is_source;   /* classify_mn_traffic input: the MN sends (MAG tc egress) */
    __u8 local;          /* DECAP: the inner is for this host: hand it to the stack */
    __u8 no_icmp;        /* ENCAP input: the packet may not be answered with an ICMP error */
    __u8 gso;            /* input (tc): a GSO skb, whose segments, not its IP length, meet the MTU */
    __u32 in_ifindex;    /* input: the interface the packet arrived on (or leaves, tc egress) */
    __u32 realm;         /* classify_mn_traffic input: realm of the MN addresses */
    __u16 ethertype;     /* ethertype of the inner (0x0800, 0x86DD, 0x6558 for L2) */
    __u16 hdr_len;       /* outer headers between the Ethernet header and the inner */
    __u16 inner_len;     /* octets of the inner packet (L3) or frame (L2) */
    __u16 mtu;           /* ICMP too big: the MTU to report */
    __u16 udp_dport;
    __u16 outer_len;     /* DECAP: octets of the outer IP packet (for path counters) */
    __u32 flowlabel;
    __u32 stat;          /* DROP/ICMP: enum xpmip_stat */
    __u32 session_id;
    __u32 path;
    __u32 gre_key;
    __u32 ifindex;       /* egress */
    __u8 smac[6];
    __u8 dmac[6];
    __u8 outer_src[16];
    __u8 outer_dst[16];
    __u8 nh[16];         /* next hop, for bpf_redirect_neigh */
};

/* The plan lives in a per-CPU scratch map: too big for the 512-octet BPF stack together with
 * the parse state of the classifiers. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct plan);
} plan_scratch SEC(".maps");

static __always_inline struct plan *plan_get(void) {
    __u32 zero = 0;
    struct plan *pl = bpf_map_lookup_elem(&plan_scratch, &zero);
    if (pl) {
        __builtin_memset(pl, 0, sizeof(*pl));
    }
    return pl;
}

static __always_inline void plan_drop(struct plan *pl, __u32 stat) {
    pl->kind = PLAN_DROP;
    pl->stat = stat;
}

static __always_inline const struct xpmip_config *instance_config(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&config, &zero);
}

/* Does `addr` (16 octets, IPv4-mapped for family 4) belong to the MN of session `s`? */
static __always_inline int session_owns(const struct xpmip_session *s, const __u8 *addr, __u8 family) {
    if (family == 4) {
        __u8 hoa16[16];
        addr_from_v4(hoa16, *(const __be32 *)s->hoa);
        return (s->flags & XPMIP_SESSION_HOA) && prefix_match(addr, hoa16, 96 + s->hoa_len);
    }
    return (s->flags & XPMIP_SESSION_HNP) && prefix_match(addr, s->hnp, s->hnp_len);
}

#define FIB_LOCAL (-2)

/* FIB lookup toward dst. Returns 0 (resolved, or pl->neigh set when the neighbour is not),
 * > 0 the MTU when tot_len does not fit (BPF_FIB_LKUP_RET_FRAG_NEEDED), FIB_LOCAL when dst is
 * this host's own address (BPF_FIB_LKUP_RET_NOT_FWDED), -1 no route.
 * With `oif` the lookup is an output lookup restricted to that interface (realm egress,
 * pinned path interface); without, an input lookup from the ingress interface. */
static __always_inline int fib_toward(void *ctx, struct plan *pl, int v4, const __u8 *src, const __u8 *dst,
                                      __u16 tot_len, __u32 oif, __u32 in_ifindex) {
    struct bpf_fib_lookup p = {};
    p.family = v4 ? AF_INET : AF_INET6;
    p.ifindex = oif ? oif : in_ifindex;
    p.tot_len = tot_len;
    if (v4) {
        p.ipv4_src = addr_to_v4(src);
        p.ipv4_dst = addr_to_v4(dst);
    } else {
        addr_copy((__u8 *)p.ipv6_src, src);
        addr_copy((__u8 *)p.ipv6_dst, dst);
    }
    long rc = bpf_fib_lookup(ctx, &p, sizeof(p), oif ? BPF_FIB_LOOKUP_OUTPUT : 0);
    if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
        return p.mtu_result ? p.mtu_result : 1;
    }
    if (rc == BPF_FIB_LKUP_RET_NOT_FWDED) {
        return FIB_LOCAL;
    }
    if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
        return -1;
    }
    /* An output lookup must leave by the interface asked for (a realm's core interface): the
     * IPv6 one only prefers it among the best routes, so check rather than leak into another
     * realm. */
    if (oif && p.ifindex != oif) {
        return -1;
    }
    pl->ifindex = p.ifindex;
    pl->neigh = rc == BPF_FIB_LKUP_RET_NO_NEIGH;
    mac_copy(pl->smac, p.smac);
    mac_copy(pl->dmac, p.dmac);
    pl->nh_v4 = v4;
    if (v4) {
        addr_from_v4(pl->nh, p.ipv4_dst);
    } else {
        addr_copy(pl->nh, (const __u8 *)p.ipv6_dst);
    }
    return 0;
}

/* Outer header octets (after Ethernet) of an encapsulation. */
static __always_inline __u16 encap_overhead(__u8 encap, int outer_v4, int keyed) {
    __u16 len = outer_v4 ? IPV4_HLEN : IPV6_HLEN;
    switch (encap) {
    case XPMIP_ENCAP_UDP:
        len += UDP_HLEN;
        break;
    case XPMIP_ENCAP_GRE:
        len += GRE_HLEN + (keyed ? 4 : 0);
        break;
    case XPMIP_ENCAP_UDP_TLV_GRE:
        len += UDP_HLEN + XPMIP_TLV_HEADER_LEN + GRE_HLEN + (keyed ? 4 : 0);
        break;
    }
    return len;
}

/* Plan sending `inner_len` octets of the MN's traffic (an IP packet `in`, or an L2 frame when
 * the session is L2) on path `pidx` of session `s`. */
/* Inputs in the plan: path (chosen index), inner_len, to_mn, in_ifindex. */
static __noinline int plan_encap(void *ctx, struct plan *pl, const struct xpmip_session *s, const struct l3info *in) {
    const __u32 pidx = pl->path;
    const __u16 inner_len = pl->inner_len;
    const __u32 in_ifindex = pl->in_ifindex;
    const int to_mn = pl->to_mn;
    if (pidx >= XPMIP_MAX_PATHS) {
        plan_drop(pl, XPMIP_STAT_DROP_NO_PATH);
        return 0;
    }
    const struct xpmip_path *p = &s->paths[pidx];
    pl->session_id = s->id;
    pl->encap = s->encap;
    pl->l2 = (s->flags & XPMIP_SESSION_L2) != 0;
    pl->outer_v4 = (p->flags & XPMIP_PATH_IPV4) != 0;
    pl->keyed = (s->flags & XPMIP_SESSION_GRE_KEY) &&
                (s->encap == XPMIP_ENCAP_GRE || s->encap == XPMIP_ENCAP_UDP_TLV_GRE);
    pl->gre_key = to_mn ? p->key_downlink : p->key_uplink;
    pl->hdr_len = encap_overhead(s->encap, pl->outer_v4, pl->keyed);
    pl->udp_dport = p->remote_port ? p->remote_port : XPMIP_UDP_PORT_DATA;
    pl->inner_v4 = in->family == 4;
    pl->ethertype = pl->l2 ? XPMIP_GRE_PROTO_TEB : (in->family == 4 ? ETH_P_IP : ETH_P_IPV6);
    /* RFC 6040 normal mode: the outer copies DSCP and ECN; RFC 2003 §3.1: DF from an IPv4
     * inner, set for IPv6 inners and frames (we never fragment). */
    pl->tos = pl->l2 ? 0 : in->tos;
    pl->df = (pl->l2 || in->family != 4) ? 1 : in->df;
    pl->flowlabel = mix32(in->flowlabel ^ *(const __u32 *)&in->src[12] ^ *(const __u32 *)&in->dst[12] ^
                          ((__u32)in->sport << 16 | in->dport)) & 0xfffff;
    addr_copy(pl->outer_src, p->local);
    addr_copy(pl->outer_dst, p->remote);

    __u32 outer_total = (__u32)pl->hdr_len + inner_len;
    __u32 mtu = 0;
    if (p->mtu && outer_total > p->mtu && !pl->gso) {
        mtu = p->mtu;
    } else {
        /* A GSO skb's IP length is the whole burst: bpf_skb_adjust_room shrinks gso_size by the
         * overhead (GRE, IP-in-IP) or the MN route's MTU leaves room for it (UDP, FIXED_GSO). */
        const __u16 fib_len = pl->gso ? 0 : (outer_total > 0xffff ? 0xffff : outer_total);
        int rc = fib_toward(ctx, pl, pl->outer_v4, p->local, p->remote, fib_len, p->ifindex, in_ifindex);
        if (rc < 0) {
            plan_drop(pl, XPMIP_STAT_DROP_FIB);
            return 0;
        }
        mtu = rc;
    }
    if (mtu) {
        /* Too big after encapsulation: tell the sender the MTU it can use (RFC 2473 §7.1,
         * RFC 2003 §4), unless it is an IPv4 packet that may be fragmented or a frame. */
        if (pl->l2) {
            plan_drop(pl, XPMIP_STAT_DROP_TOO_BIG);
            return 0;
        }
        if (in->family == 4 && !in->df) {
            plan_drop(pl, XPMIP_STAT_DROP_TOO_BIG_NO_DF);
            return 0;
        }
        pl->stat = XPMIP_STAT_DROP_TOO_BIG;
        pl->kind = pl->no_icmp ? PLAN_DROP : PLAN_ICMP;
        pl->icmp = ICMP_TOO_BIG;
        pl->mtu = mtu > pl->hdr_len ? mtu - pl->hdr_len : 0;
        return 0;
    }
    pl->kind = PLAN_ENCAP;
    return 0;
}

/* May this packet be answered with an ICMP error? Not an ICMP error itself, not a later
 * fragment (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7, RFC 4443 §2.4 e), not sent to a link-layer or IP
 * broadcast/multicast, not from an address that names no single host. */
static __always_inline int icmp_allowed(const struct l3info *in, const struct ethhdr *eth) {
    if (in->icmp_error || in->later_fragment || mac_is_group(eth->h_dest)) {
        return 0;
    }
    if (in->family == 4) {
        __u32 src = bpf_ntohl(addr_to_v4(in->src)), dst = bpf_ntohl(addr_to_v4(in->dst));
        return src != 0 && (src >> 28) != 0xe && src != 0xffffffff && (dst >> 28) != 0xe && dst != 0xffffffff;
    }
    __u8 zero[16] = {};
    return in->src[0] != 0xff && in->dst[0] != 0xff && !addr_eq(in->src, zero);
}

/* Choose the path for the flow and plan the encapsulation of `inner_len` octets. */
static __always_inline int encap_flow(void *ctx, struct plan *pl, const struct xpmip_session *s,
                                      const struct l3info *in, const struct steer_flow *f, __u16 inner_len, int to_mn) {
    int pidx = choose_path(s, f);
    if (pidx < 0) {
        plan_drop(pl, XPMIP_STAT_DROP_NO_PATH);
        return 0;
    }
    pl->path = pidx;
    pl->inner_len = inner_len;
    pl->to_mn = to_mn;
    return plan_encap(ctx, pl, s, in);
}

static __always_inline int encap_ip_flow(void *ctx, struct plan *pl, const struct xpmip_session *s,
                                         const struct l3info *in, const struct steer_flow *f, int to_mn,
                                         const struct ethhdr *eth) {
    pl->no_icmp = !icmp_allowed(in, eth);
    return encap_flow(ctx, pl, s, in, f, in->total_len, to_mn);
}

/* Plan an ICMP error back to the sender, or a plain drop when one may not be sent. */
static __always_inline void plan_icmp(struct plan *pl, __u8 kind, __u32 stat, const struct l3info *in,
                                      const struct ethhdr *eth) {
    pl->stat = stat;
    if (!icmp_allowed(in, eth)) {
        pl->kind = PLAN_DROP;
        return;
    }
    pl->kind = PLAN_ICMP;
    pl->icmp = kind;
}

static __always_inline void flow_from(struct steer_flow *f, const struct l3info *in, int mn_is_source) {
    if (mn_is_source) {
        addr_copy(f->local, in->src);
        addr_copy(f->remote, in->dst);
        f->local_port = in->sport;
        f->remote_port = in->dport;
    } else {
        addr_copy(f->local, in->dst);
        addr_copy(f->remote, in->src);
        f->local_port = in->dport;
        f->remote_port = in->sport;
    }
    f->proto = in->proto;
    f->dscp = in->tos >> 2;
    f->family = in->family;
    f->pad = 0;
}

static __always_inline __u32 *mn_route_lookup(__u32 realm, const struct l3info *in, const __u8 *addr) {
    if (in->family == 4) {
        struct xpmip_route4_key k = {.prefixlen = 32 + 32, .realm = realm};
        *(__u32 *)k.addr = addr_to_v4(addr);
        return bpf_map_lookup_elem(&mn_routes_v4, &k);
    }
    struct xpmip_route6_key k = {.prefixlen = 32 + 128, .realm = realm};
    addr_copy(k.addr, addr);
    return bpf_map_lookup_elem(&mn_routes_v6, &k);
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
    __u16 et = bpf_ntohs(eth->h_proto);
    if (et != ETH_P_IP && et != ETH_P_IPV6) {
        return 0;
    }
    struct l3info in;
    if (parse_ip(eth + 1, data_end, et, &in)) {
        return 0;
    }
    __u32 *sid = mn_route_lookup(pl->realm, &in, mn_is_source ? in.src : in.dst);
    if (!sid) {
        return 0;  /* not a mobile node's: the stack's */
    }
    const struct xpmip_session *s = bpf_map_lookup_elem(&sessions, sid);
    if (!s) {
        plan_drop(pl, XPMIP_STAT_DROP_SESSION_GONE);
        return 0;
    }
    if (s->flags & XPMIP_SESSION_L2) {
        return 0;
    }
    if (in.ttl <= 1) {
        plan_icmp(pl, ICMP_TIME_EXCEEDED, XPMIP_STAT_DROP_TTL, &in, eth);
        return 0;
    }
    struct steer_flow f;
    flow_from(&f, &in, mn_is_source);
    return encap_ip_flow(ctx, pl, s, &in, &f, !mn_is_source, eth);
}

/* ------------------------------------------------------------------------------------------ */
/* LMA L2 core side: frames to an L2 session's station (downlink Ethernet-in-GRE). */

static __noinline int classify_core_l2(void *ctx, void *data, void *data_end, struct plan *pl) {
    const __u32 ifindex = pl->in_ifindex;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    if (mac_is_group(eth->h_dest)) {
        return 0;  /* broadcast/multicast are not flooded into L2 sessions (README) */
    }
    struct xpmip_station_key k = {.ifindex = ifindex};
    mac_copy(k.mac, eth->h_dest);
    __u32 *sid = bpf_map_lookup_elem(&station_macs, &k);
    if (!sid) {
        return 0;
    }
    const struct xpmip_session *s = bpf_map_lookup_elem(&sessions, sid);
    if (!s) {
        plan_drop(pl, XPMIP_STAT_DROP_SESSION_GONE);
        return 0;
    }
    if (!(s->flags & XPMIP_SESSION_L2)) {
        return 0;
    }
    struct l3info in = {};
    struct steer_flow f = {};
    __u16 et = bpf_ntohs(eth->h_proto);
    if (!parse_ip(eth + 1, data_end, et, &in)) {
        flow_from(&f, &in, 0);
    }
    in.family = 0;
    return encap_flow(ctx, pl, s, &in, &f, (__u16)(data_end - data), 1);
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

static __noinline int classify_access(void *ctx, void *data, void *data_end, const struct xpmip_iface *ifc,
                                       struct plan *pl) {
    const __u32 ifindex = pl->in_ifindex;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    __u16 et = bpf_ntohs(eth->h_proto);
    struct xpmip_station_key k = {.ifindex = ifindex};
    mac_copy(k.mac, eth->h_source);
    __u32 *sid = bpf_map_lookup_elem(&station_macs, &k);
    if (!sid) {
        report_station(ifindex, eth->h_source, et);
        return 0;
    }
    const struct xpmip_session *s = bpf_map_lookup_elem(&sessions, sid);
    if (!s) {
        plan_drop(pl, XPMIP_STAT_DROP_SESSION_GONE);
        return 0;
    }
    struct l3info in = {};
    struct steer_flow f = {};
    if (s->flags & XPMIP_SESSION_L2) {
        /* The whole frame goes to the LMA (Ethernet in GRE). */
        if (!parse_ip(eth + 1, data_end, et, &in)) {
            flow_from(&f, &in, 1);
        }
        in.family = 0;
        return encap_flow(ctx, pl, s, &in, &f, (__u16)(data_end - data), 0);
    }
    if (!mac_eq(eth->h_dest, ifc->mac) || (et != ETH_P_IP && et != ETH_P_IPV6)) {
        return 0;  /* ARP, broadcast, multicast: the stack's */
    }
    if (parse_ip(eth + 1, data_end, et, &in)) {
        return 0;
    }
    if (is_local_control(&in, ifc, (void *)(eth + 1) + (in.hdr_len & 0x3c), data_end)) {
        return 0;
    }
    /* Source address validation: an MN sends only from its own HoA / HNP (RFC 5213 §6.10.3). */
    if (!session_owns(s, in.src, in.family)) {
        plan_drop(pl, XPMIP_STAT_DROP_INNER_SPOOF);
        return 0;
    }
    if (in.ttl <= 1) {
        plan_icmp(pl, ICMP_TIME_EXCEEDED, XPMIP_STAT_DROP_TTL, &in, eth);
        return 0;
    }
    flow_from(&f, &in, 1);
    return encap_ip_flow(ctx, pl, s, &in, &f, 0, eth);
}

/* ------------------------------------------------------------------------------------------ */
/* Tunnel side (LMA and MAG): decapsulation. */

/* UDP checksums (RFC 768) are verified by the XDP program, in a global function: the verifier
 * checks it once, on its own, whatever the state of its caller. The tc programs only see
 * tunnel packets XDP already accepted and handed on (next hop unresolved), so they skip it. */
#ifdef XPMIP_PROG_XDP
#define UDP_CSUM_MAX_CHUNKS 18  /* 18 x 512 octets: jumbo frames */

/* Ones' complement sum of `n` octets at p (bpf_csum_diff takes at most 512, a multiple of 4). */
#define CSUM_CHUNK(p, n, rest, sum, data_end)                                                    \
    if ((rest) >= (n)) {                                                                       \
        if ((void *)(p) + (n) > (data_end)) {                                                  \
            return 0;                                                                          \
        }                                                                                      \
        (sum) += (__u32)bpf_csum_diff(0, 0, (void *)(p), (n), 0);                              \
        (p) += (n);                                                                            \
        (rest) -= (n);                                                                         \
    }

/* Is the checksum of the `len`-octet UDP datagram at offset `off` right, given the sum of its
 * pseudo-header? */
__noinline int xdp_udp_checksum_ok(struct xdp_md *ctx, __u32 off, __u32 len, __u32 pseudo) {
    if (!ctx) {
        return 0;
    }
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (off > 256) {
        return 0;
    }
    __u8 *p = data + off;
    __u64 sum = pseudo;
    __u32 rest = len;
    for (int i = 0; i < UDP_CSUM_MAX_CHUNKS && rest >= 512; i++) {
        CSUM_CHUNK(p, 512, rest, sum, data_end);
    }
    if (rest >= 512) {
        return 0;  /* longer than we verify */
    }
    for (int i = 0; i < 128 && rest >= 4; i++) {
        CSUM_CHUNK(p, 4, rest, sum, data_end);
    }
    /* The last 1-3 octets, zero-padded, in their byte lanes of a native 32-bit word. */
#pragma unroll
    for (int k = 0; k < 3; k++) {
        if ((__u32)k < rest) {
            if ((void *)(p + k + 1) > data_end) {
                return 0;
            }
            sum += (__u32)p[k] << (8 * k);
        }
    }
    return csum_fold(sum) == 0;
}

static __always_inline int udp_checksum_ok(void *ctx, const struct l3info *out) {
    const __u32 len = out->total_len - out->hdr_len;
    __u64 sum = 0;
    if (out->family == 4) {
        sum += *(const __u32 *)&out->src[12];
        sum += *(const __u32 *)&out->dst[12];
        sum += bpf_htons(IPPROTO_UDP);
        sum += bpf_htons(len);
    } else {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            sum += ((const __u32 *)out->src)[k];
            sum += ((const __u32 *)out->dst)[k];
        }
        sum += bpf_htonl(len);
        sum += bpf_htonl(IPPROTO_UDP);
    }
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffffffff) + (sum >> 32);
    return xdp_udp_checksum_ok(ctx, ETH_HLEN + out->hdr_len, len, (__u32)sum);
}
#else
static __always_inline int udp_checksum_ok(void *ctx, const struct l3info *out) { return 1; }
#endif

static __noinline int classify_tunnel(void *ctx, void *data, void *data_end, const struct xpmip_iface *ifc,
                                       struct plan *pl) {
    const __u32 ifindex = pl->in_ifindex;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return 0;
    }
    __u16 et = bpf_ntohs(eth->h_proto);
    if ((et != ETH_P_IP && et != ETH_P_IPV6) || !mac_eq(eth->h_dest, ifc->mac)) {
        return 0;
    }
    void *ip = eth + 1;
    struct l3info out;
    if (parse_ip(ip, data_end, et, &out)) {
        return 0;
    }
    void *l4 = ip + (out.hdr_len & 0x3f);
    void *end = ip + bound16(out.total_len);   /* the outer packet ends here (Ethernet padding after) */
    void *inner = 0;
    __u32 inner_off = 0;   /* offset of the inner from the outer IP header (no pointer arithmetic:
                            * older verifiers lose track of pointers clang subtracts in 32 bits) */
    __u16 inner_et = 0;
    __u8 format = 0;
    int has_key = 0;
    __u32 key = 0;
    void *gre = 0;

    switch (out.proto) {
    case IPPROTO_IPIP:
        format = XPMIP_ENCAP_IPIP;
        inner = l4;
        inner_off = out.hdr_len;
        inner_et = ETH_P_IP;
        break;
    case IPPROTO_IPV6:
        format = XPMIP_ENCAP_IPIP;
        inner = l4;
        inner_off = out.hdr_len;
        inner_et = ETH_P_IPV6;
        break;
    case IPPROTO_GRE:
        format = XPMIP_ENCAP_GRE;
        gre = l4;
        inner_off = out.hdr_len;
        break;
    case IPPROTO_UDP: {
        struct udphdr *udp = l4;
        if (out.fragment || (void *)(udp + 1) > data_end || bpf_ntohs(udp->dest) != XPMIP_UDP_PORT_DATA) {
            return 0;  /* not tunnelled data (signaling on 5436 goes to the agent) */
        }
        if (bpf_ntohs(udp->len) != out.total_len - out.hdr_len) {
            plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
            return 0;
        }
        /* Zero means "no checksum" over IPv4 (RFC 768); any other value is verified and a
         * wrong one discarded (RFC 1122 §4.1.3.4). */
        if (udp->check && !udp_checksum_ok(ctx, &out)) {
            plan_drop(pl, XPMIP_STAT_DROP_CHECKSUM);
            return 0;
        }
        __u8 *first = (void *)(udp + 1);
        if ((void *)(first + 1) > data_end) {
            plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
            return 0;
        }
        /* RFC 5845 §7.1: TLV Type 0 where an IP packet would have its version nibble. */
        if ((*first >> 4) == 0) {
            struct tlv_header *tlv = (void *)first;
            if ((void *)(tlv + 1) > data_end) {
                plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
                return 0;
            }
            if (tlv->next_header != IPPROTO_GRE) {
                plan_drop(pl, XPMIP_STAT_DROP_TLV_HEADER);
                return 0;
            }
            /* The receiver MUST discard a packet whose UDP and TLV lengths disagree. */
            if (bpf_ntohs(tlv->length) != bpf_ntohs(udp->len) - UDP_HLEN - XPMIP_TLV_HEADER_LEN) {
                plan_drop(pl, XPMIP_STAT_DROP_TLV_LENGTH);
                return 0;
            }
            format = XPMIP_ENCAP_UDP_TLV_GRE;
            gre = tlv + 1;
            inner_off = out.hdr_len + UDP_HLEN + XPMIP_TLV_HEADER_LEN;
        } else {
            inner_et = ethertype_of_version(*first);
            if (!inner_et) {
                plan_drop(pl, XPMIP_STAT_DROP_TLV_HEADER);
                return 0;
            }
            format = XPMIP_ENCAP_UDP;
            inner = first;
            inner_off = out.hdr_len + UDP_HLEN;
        }
        break;
    }
    default:
        return 0;
    }
    if (out.fragment) {
        plan_drop(pl, XPMIP_STAT_DROP_FRAGMENT);
        return 0;
    }
    if (gre) {
        struct gre_base *g = gre;
        if ((void *)(g + 1) > data_end) {
            plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
            return 0;
        }
        __u16 flags = bpf_ntohs(g->flags);
        /* RFC 2784 §2.3.1 / RFC 2890: version 0; routing (R) is deprecated. */
        if (flags & (XPMIP_GRE_VERSION_MASK | XPMIP_GRE_FLAG_R)) {
            plan_drop(pl, XPMIP_STAT_DROP_GRE_HEADER);
            return 0;
        }
        void *opt = g + 1;
        inner_off += GRE_HLEN;
        if (flags & XPMIP_GRE_FLAG_C) {
            opt += 4;  /* checksum + reserved1: not verified (RFC 2784 §2.5 leaves it to the receiver) */
            inner_off += 4;
        }
        if (flags & XPMIP_GRE_FLAG_K) {
            __be32 *k = opt;
            if ((void *)(k + 1) > data_end) {
                plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
                return 0;
            }
            key = bpf_ntohl(*k);
            has_key = 1;
            opt += 4;
            inner_off += 4;
        }
        if (flags & XPMIP_GRE_FLAG_S) {
            opt += 4;
            inner_off += 4;
        }
        inner = opt;
        inner_et = bpf_ntohs(g->proto);
        if (inner_et != ETH_P_IP && inner_et != ETH_P_IPV6 && inner_et != XPMIP_GRE_PROTO_TEB) {
            plan_drop(pl, XPMIP_STAT_DROP_GRE_PROTOCOL);
            return 0;
        }
    }
    const struct xpmip_config *cfg = instance_config();
    if (!cfg) {
        return 0;
    }
    const int lma = cfg->role == XPMIP_ROLE_LMA;
    const int l2 = inner_et == XPMIP_GRE_PROTO_TEB;

    struct l3info in = {};
    if (l2) {
        if (inner + ETH_HLEN > data_end || inner + ETH_HLEN > end) {
            plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
            return 0;
        }
    } else if (parse_ip(inner, data_end, inner_et, &in) || inner + bound16(in.total_len) != end) {
        plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
        return 0;
    }

    /* Find the session: by GRE key (RFC 5845 §4.3, §5.3: the key identifies the mobility
     * session), else by (outer source, the inner MN-side address). */
    const struct xpmip_path_ref *ref;
    if (has_key) {
        struct xpmip_tunnel_key tk = {.scope = ifc->realm, .key = key};
        ref = bpf_map_lookup_elem(&tunnel_keys, &tk);
        if (!ref) {
            plan_drop(pl, XPMIP_STAT_DROP_UNKNOWN_KEY);
            return 0;
        }
    } else {
        if (l2) {
            plan_drop(pl, XPMIP_STAT_DROP_NO_SESSION);  /* L2 sessions are always keyed */
            return 0;
        }
        struct xpmip_keyless_key kk = {.prefixlen = 32 + 128 + 128, .scope = ifc->realm};
        addr_copy(kk.peer, out.src);
        addr_copy(kk.inner, lma ? in.src : in.dst);
        ref = bpf_map_lookup_elem(&tunnel_keyless, &kk);
        if (!ref) {
            plan_drop(pl, XPMIP_STAT_DROP_NO_SESSION);
            return 0;
        }
    }
    __u32 sid = ref->session;
    __u32 pidx = ref->path;
    const struct xpmip_session *s = bpf_map_lookup_elem(&sessions, &sid);
    if (!s || pidx >= XPMIP_MAX_PATHS || pidx >= s->npaths) {
        plan_drop(pl, XPMIP_STAT_DROP_SESSION_GONE);
        return 0;
    }
    /* The format must be the one negotiated for the session (RFC 5845 §7.4: the LMA "ensures
     * the same TLV-header UDP-based tunneling format ... when it decapsulates"). */
    const int session_keyed = (s->flags & XPMIP_SESSION_GRE_KEY) != 0;
    if (s->encap != format || (gre && session_keyed != has_key) || ((s->flags & XPMIP_SESSION_L2) != 0) != l2) {
        plan_drop(pl, XPMIP_STAT_DROP_ENCAP_MISMATCH);
        return 0;
    }
    const struct xpmip_path *p = &s->paths[pidx];
    if (!addr_eq(p->remote, out.src) || !addr_eq(p->local, out.dst)) {
        plan_drop(pl, XPMIP_STAT_DROP_OUTER_SPOOF);
        return 0;
    }

    pl->session_id = sid;
    pl->path = pidx;
    pl->encap = format;
    pl->l2 = l2;
    pl->to_mn = !lma;
    pl->ethertype = inner_et;
    pl->hdr_len = inner_off;
    pl->inner_len = out.total_len - inner_off;
    pl->outer_len = out.total_len;

    if (l2) {
        /* LMA: frames from the MN's station only; MAG: frames for it (or group frames). The
         * pointer is checked again here: older verifiers do not connect this branch to the one
         * above. */
        struct ethhdr *ieth = inner;
        if ((void *)(ieth + 1) > data_end) {
            plan_drop(pl, XPMIP_STAT_DROP_MALFORMED);
            return 0;
        }
        if (lma ? !mac_eq(ieth->h_source, s->mn_mac)
                : !(mac_eq(ieth->h_dest, s->mn_mac) || mac_is_group(ieth->h_dest))) {
            plan_drop(pl, XPMIP_STAT_DROP_INNER_SPOOF);
            return 0;
        }
        pl->ifindex = s->mn_ifindex;
        pl->kind = s->mn_ifindex ? PLAN_DECAP : PLAN_DROP;
        pl->stat = XPMIP_STAT_DROP_FIB;
        return 0;
    }
    /* Anti-spoofing: uplink inner source is the MN's; downlink inner destination is. */
    if (!session_owns(s, lma ? in.src : in.dst, in.family)) {
        plan_drop(pl, XPMIP_STAT_DROP_INNER_SPOOF);
        return 0;
    }
    /* RFC 6040 §4.2 Figure 4: a CE outer makes an ECN-capable inner CE and drops a Not-ECT
     * one; an ECT(1) outer makes an ECT(0) inner ECT(1); otherwise the inner is unchanged. */
    const __u8 outer_ecn = out.tos & ECN_MASK, inner_ecn = in.tos & ECN_MASK;
    if (outer_ecn == ECN_CE) {
        if (inner_ecn == ECN_NOT_ECT) {
            plan_drop(pl, XPMIP_STAT_DROP_ECN);
            return 0;
        }
        pl->ecn = inner_ecn != ECN_CE ? ECN_CE : 0;
    } else if (outer_ecn == ECN_ECT1 && inner_ecn == ECN_ECT0) {
        pl->ecn = ECN_ECT1;
    }
    if (in.ttl <= 1) {
        plan_drop(pl, XPMIP_STAT_DROP_TTL);
        return 0;
    }
    pl->inner_v4 = in.family == 4;
    if (lma) {
        int rc = fib_toward(ctx, pl, in.family == 4, in.src, in.dst, in.total_len, s->mn_ifindex, ifindex);
        if (rc == FIB_LOCAL) {
            /* The MN talks to this host: decapsulate and let the stack have the inner packet
             * as if it had arrived on the tunnel interface. */
            pl->local = 1;
            pl->ifindex = ifindex;
            mac_copy(pl->smac, eth->h_source);
            mac_copy(pl->dmac, eth->h_dest);
            pl->kind = PLAN_DECAP;
            return 0;
        }
        if (rc) {
            plan_drop(pl, rc > 0 ? XPMIP_STAT_DROP_TOO_BIG : XPMIP_STAT_DROP_FIB);
            return 0;
        }
    } else {
        __u32 oif = s->mn_ifindex;
        const struct xpmip_iface *access = bpf_map_lookup_elem(&ifaces, &oif);
        if (!access) {
            plan_drop(pl, XPMIP_STAT_DROP_FIB);
            return 0;
        }
        pl->ifindex = oif;
        mac_copy(pl->smac, access->mac);
        mac_copy(pl->dmac, s->mn_mac);
    }
    pl->kind = PLAN_DECAP;
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
}

/* Per-session and per-path counters, once the plan has been carried out. */
static __always_inline void account(const struct plan *pl) {
    __u32 sid = pl->session_id;
    struct xpmip_session_stats *st = bpf_map_lookup_elem(&session_stats, &sid);
    if (!st) {
        return;
    }
    __u32 pidx = pl->path & (XPMIP_MAX_PATHS - 1);
    struct xpmip_counter *mn = pl->to_mn ? &st->downlink : &st->uplink;
    mn->packets += 1;
    mn->bytes += pl->inner_len;
    if (pl->kind == PLAN_ENCAP) {
        st->path_tx[pidx].packets += 1;
        st->path_tx[pidx].bytes += pl->hdr_len + pl->inner_len;
    } else {
        st->path_rx[pidx].packets += 1;
        st->path_rx[pidx].bytes += pl->outer_len;
    }
}

#endif
