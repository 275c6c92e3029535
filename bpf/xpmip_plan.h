/* The plan: what to do with a packet that arrived on an interface of the gateway, decided by the
 * classifiers (xpmip_classify.h) and carried out by the XDP and tc programs with their own helpers
 * (bpf_xdp_adjust_head / bpf_skb_adjust_room, XDP_TX / bpf_redirect_neigh): the one place the
 * two differ. Also here: the next hop of an encapsulated packet, from the path's resolved next hop
 * (the agent keeps the `nexthops` entries from the kernel's routes and neighbours) or, when there
 * is none, from bpf_fib_lookup. */
#ifndef XPMIP_PLAN_H
#define XPMIP_PLAN_H

#include "xpmip_parse.h"
#include "xpmip_steer.h"

enum plan_kind {
    PLAN_PASS = 0,   /* not ours: to the stack */
    PLAN_DROP,       /* drop, counting plan.stat */
    PLAN_ENCAP,      /* push outer headers, send toward the peer */
    PLAN_DECAP,      /* pop outer headers, send toward the MN / correspondent */
    PLAN_ICMP,       /* answer the sender with an ICMP error (plan.icmp), counting plan.stat */
    PLAN_SPREAD,     /* XDP: hand the packet to CPU plan.cpu (xpmip_spread.h) */
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
    __u8 spread;         /* input: running on the CPU a cpumap handed the packet to (no second hand-off) */
    __u32 in_ifindex;    /* input: the interface the packet arrived on (or leaves, tc egress) */
    __u32 realm;         /* classify_mn_traffic input: realm of the MN addresses */
    __u16 ethertype;     /* ethertype of the inner (0x0800, 0x86DD, 0x6558 for L2) */
    __u16 hdr_len;       /* outer headers between the Ethernet header and the inner */
    __u16 inner_len;     /* octets of the inner packet (L3) or frame (L2) */
    __u16 mtu;           /* ICMP too big: the MTU to report */
    __u16 udp_dport;
    __u32 flowlabel;
    __u32 stat;          /* DROP/ICMP: enum xpmip_stat */
    __u32 session_id;
    __u32 path;
    __u32 gre_key;
    __u32 ifindex;       /* egress */
    __u32 cpu;           /* SPREAD: the CPU to hand the packet to */
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

/* Parse state of the classifiers, beside the plan in a per-CPU scratch map: the BPF stack (512
 * octets for a whole call chain) cannot hold it together with bpf_fib_lookup's parameters. Not
 * cleared per packet: every field is written before it is read. */
struct scratch {
    struct l3info out;    /* the outer packet (tunnel side) */
    struct l3info in;     /* the MN's packet */
    struct steer_flow flow;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline struct scratch *scratch_get(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&scratch_map, &zero);
}

/* What a step of the classification says (Cilium's drop reasons, as values): go on, leave the
 * packet to the stack (not ours), or drop it counting the reason. */
#define VERDICT_OK 0u
#define VERDICT_NOT_OURS 1u
#define DROP(stat) ((__u32)(stat) + 2u)
#define IS_DROP(v) ((v) >= 2u)
#define DROP_STAT(v) ((v) - 2u)

/* Carry a verdict into the plan; true when the classification stops here. */
static __always_inline int plan_verdict(struct plan *pl, __u32 v) {
    if (IS_DROP(v)) {
        plan_drop(pl, DROP_STAT(v));
    }
    return v != VERDICT_OK;
}

static __always_inline const struct xpmip_config *instance_config(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&config, &zero);
}

/* A plan XDP hands to the stack (the next hop is unresolved) is carried out, and counted, by tc. */
#ifdef XPMIP_PROG_XDP
#define COUNTED_LATER(pl) ((pl)->neigh)
#else
#define COUNTED_LATER(pl) 0
#endif

/* Atomic adds: every CPU counts into the one entry (no per-CPU copies). */
static __always_inline void count_packet(struct xpmip_counter *c, __u32 bytes) {
    if (c) {
        __sync_fetch_and_add(&c->packets, 1);
        __sync_fetch_and_add(&c->bytes, bytes);
    }
}

#define FIB_LOCAL (-2)

/* FIB lookup toward dst. Returns 0 (resolved, or pl->neigh set when the neighbour is not),
 * > 0 the MTU when tot_len does not fit (BPF_FIB_LKUP_RET_FRAG_NEEDED), FIB_LOCAL when dst is
 * this host's own address (BPF_FIB_LKUP_RET_NOT_FWDED), -1 no route.
 * With `oif` the lookup is an output lookup restricted to that interface (realm egress,
 * pinned path interface); without, an input lookup from the ingress interface. */
static __always_inline void fib_params(struct bpf_fib_lookup *p, int v4, const __u8 *src, const __u8 *dst,
                                       __u16 tot_len, __u32 ifindex) {
    p->family = v4 ? AF_INET : AF_INET6;
    p->ifindex = ifindex;
    p->tot_len = tot_len;
    if (v4) {
        p->ipv4_src = addr_to_v4(src);
        p->ipv4_dst = addr_to_v4(dst);
    } else {
        addr_copy((__u8 *)p->ipv6_src, src);
        addr_copy((__u8 *)p->ipv6_dst, dst);
    }
}

static __always_inline int fib_toward(void *ctx, struct plan *pl, int v4, const __u8 *src, const __u8 *dst,
                                      __u16 tot_len, __u32 oif, __u32 in_ifindex) {
    struct bpf_fib_lookup p = {};
    fib_params(&p, v4, src, dst, tot_len, oif ? oif : in_ifindex);
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

/* What encapsulation starts from: the session's first path (or the one steering chose), found by
 * a route, a station or the session itself, and the counters the packet adds to. */
struct encap_source {
    __u32 session;
    __u8 encap;
    __u8 flags;           /* the session's */
    __u8 npaths;
    __u8 policy;
    const struct xpmip_path *path;
    struct xpmip_counter *tx;        /* the direction's */
    struct xpmip_counter *path_tx;   /* the path's (multipath sessions), or NULL */
};

/* The outer packet's next hop: the path's resolved next hop (no FIB lookup, README "Next hops"),
 * else bpf_fib_lookup, held to the path's egress interface and MTU if it has them. Returns 0, the
 * MTU when `outer_total` does not fit (> 0), or -1 without a route. */
static __always_inline int plan_next_hop(void *ctx, struct plan *pl, const struct xpmip_path *p, __u32 outer_total) {
    __u32 nh_id = p->nexthop;
    const struct xpmip_nexthop *nh = nh_id ? bpf_map_lookup_elem(&nexthops, &nh_id) : 0;
    const __u32 oif = nh ? nh->ifindex : 0;
    if (nh && nh->mtu && outer_total > nh->mtu && !pl->gso) {
        return nh->mtu;
    }
    if (nh && (nh->flags & XPMIP_NEXTHOP_RESOLVED) && oif) {
        pl->ifindex = oif;
        mac_copy(pl->smac, nh->smac);
        mac_copy(pl->dmac, nh->dmac);
        return 0;
    }
    /* A GSO skb's IP length is the whole burst: bpf_skb_adjust_room shrinks gso_size by the
     * overhead (GRE, IP-in-IP) or the MN route's MTU leaves room for it (UDP, FIXED_GSO). */
    const __u16 fib_len = pl->gso ? 0 : (outer_total > 0xffff ? 0xffff : outer_total);
    return fib_toward(ctx, pl, pl->outer_v4, p->local, p->remote, fib_len, oif, pl->in_ifindex);
}

/* Plan sending `pl->inner_len` octets of the MN's traffic (an IP packet `in`, or an L2 frame)
 * on the path of `src`. Inputs in the plan: inner_len, to_mn, in_ifindex, no_icmp, gso. */
static __noinline int plan_encap(void *ctx, struct plan *pl, const struct encap_source *src, const struct l3info *in) {
    if (!src || !src->path || !in) {
        plan_drop(pl, XPMIP_STAT_DROP_NO_PATH);
        return 0;
    }
    const struct xpmip_path *p = src->path;
    const int to_mn = pl->to_mn;
    pl->session_id = src->session;
    pl->encap = src->encap;
    pl->l2 = (src->flags & XPMIP_SESSION_L2) != 0;
    pl->outer_v4 = (p->flags & XPMIP_PATH_IPV4) != 0;
    pl->keyed = (src->flags & XPMIP_SESSION_GRE_KEY) &&
                (src->encap == XPMIP_ENCAP_GRE || src->encap == XPMIP_ENCAP_UDP_TLV_GRE);
    pl->gre_key = to_mn ? p->key_downlink : p->key_uplink;
    pl->hdr_len = encap_overhead(src->encap, pl->outer_v4, pl->keyed);
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
    const int rc = plan_next_hop(ctx, pl, p, (__u32)pl->hdr_len + pl->inner_len);
    if (rc < 0) {
        plan_drop(pl, XPMIP_STAT_DROP_FIB);
        return 0;
    }
    if (rc > 0) {
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
        pl->mtu = (__u32)rc > pl->hdr_len ? rc - pl->hdr_len : 0;
        return 0;
    }
    if (!COUNTED_LATER(pl)) {
        count_packet(src->tx, pl->inner_len);
        count_packet(src->path_tx, pl->inner_len);
    }
    pl->kind = PLAN_ENCAP;
    return 0;
}

#endif
