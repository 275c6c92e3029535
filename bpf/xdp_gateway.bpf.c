// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP program on the ingress of every gateway interface: the fast path. Classifies the packet
 * (xpmip_classify.h), then encapsulates toward the peer or decapsulates toward the mobile node /
 * correspondent, forwarding with bpf_redirect or XDP_TX. When the next hop's neighbour entry
 * is unresolved it passes the packet unmodified to the stack, where the tc ingress program
 * repeats the work with bpf_redirect_neigh (and the kernel resolves the neighbour).
 *
 * xpmip_xdp_cpumap is the same gateway on the CPU a tunnel packet was handed to (xpmip_spread.h).
 * A cpumap program may not return XDP_TX: it sends out of the receiving interface with
 * bpf_redirect instead. */
#define XPMIP_PROG_XDP 1
#include "xpmip_headers.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ICMP errors quote at most this much of the offending packet (a multiple of 4). */
#define ICMP_QUOTE_MAX 512

/* Back out of the interface the packet came in on. */
static __always_inline int xdp_tx(struct xdp_md *ctx, const struct plan *pl) {
    return pl->spread ? bpf_redirect(ctx->ingress_ifindex, 0) : XDP_TX;
}

static __always_inline int xdp_forward(struct xdp_md *ctx, const struct plan *pl) {
    if (pl->ifindex == ctx->ingress_ifindex) {
        return xdp_tx(ctx, pl);
    }
    return bpf_redirect(pl->ifindex, 0);
}

static __always_inline int xdp_drop(__u32 stat) {
    count_stat(&counters, stat);
    return XDP_DROP;
}

static __always_inline int xdp_encap(struct xdp_md *ctx, const struct plan *pl) {
    const int room = (pl->hdr_len & 0xff) + (pl->l2 ? ETH_HLEN : 0);
    /* L3: the new Ethernet + outer headers take the place of the old Ethernet header plus
     * `room` octets of headroom. L2: the whole frame, Ethernet included, is the payload. */
    if (bpf_xdp_adjust_head(ctx, -room)) {
        return xdp_drop(XPMIP_STAT_DROP_HEADROOM);
    }
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (write_outer(data, data_end, pl)) {
        return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    if (!pl->l2 && edit_inner(data + ETH_HLEN + (pl->hdr_len & 0xff), data_end, pl->inner_v4, 0)) {
        return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    return xdp_forward(ctx, pl);
}

static __always_inline int xdp_decap(struct xdp_md *ctx, const struct plan *pl) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    const int strip = pl->hdr_len & 0xff;
    if (pl->l2) {
        if (bpf_xdp_adjust_head(ctx, ETH_HLEN + strip)) {
            return xdp_drop(XPMIP_STAT_DROP_HEADROOM);
        }
        return xdp_forward(ctx, pl);
    }
    if (edit_inner(data + ETH_HLEN + strip, data_end, pl->inner_v4, pl->ecn)) {
        return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    if (bpf_xdp_adjust_head(ctx, strip)) {
        return xdp_drop(XPMIP_STAT_DROP_HEADROOM);
    }
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    mac_copy(eth->h_dest, pl->dmac);
    mac_copy(eth->h_source, pl->smac);
    eth->h_proto = bpf_htons(pl->ethertype);
    if (pl->local) {
        return XDP_PASS;
    }
    return xdp_forward(ctx, pl);
}

/* Ones' complement sum of `len` octets (a multiple of 4, <= ICMP_QUOTE_MAX + 8) from p. */
static __always_inline __u64 sum_words(void *p, void *data_end, __u32 len) {
    __u64 sum = 0;
    for (int i = 0; i < (ICMP_QUOTE_MAX + 8) / 4; i++) {
        if ((__u32)i * 4 >= len) {
            break;
        }
        __u32 *w = p + i * 4;
        if ((void *)(w + 1) > data_end) {
            break;
        }
        sum += *w;
    }
    return sum;
}

/* Answer the sender of the packet at hand with an ICMP error, in place, out of the interface
 * it came in on: "fragmentation needed" (RFC 792, RFC 1191) / "packet too big" (RFC 4443
 * §3.2) with the MTU it can use, or "time exceeded" (RFC 792 / RFC 4443 §3.3). The error
 * quotes the start of the offending packet. */
static __always_inline int xdp_icmp(struct xdp_md *ctx, const struct plan *pl) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return xdp_drop(pl->stat);
    }
    __u32 ifindex = ctx->ingress_ifindex;
    const struct xpmip_iface *ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
    if (!ifc) {
        return xdp_drop(pl->stat);
    }
    __u8 peer_mac[6], our_mac[6];
    mac_copy(peer_mac, eth->h_source);
    mac_copy(our_mac, eth->h_dest);
    const int v4 = eth->h_proto == bpf_htons(ETH_P_IP);
    __u8 sender[16];
    __u32 orig_len;
    if (v4) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > data_end || *(const __u32 *)ifc->addr4 == 0) {
            return xdp_drop(pl->stat);
        }
        addr_from_v4(sender, ip->saddr);
        orig_len = bpf_ntohs(ip->tot_len);
    } else {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        __u8 zero[16] = {};
        if ((void *)(ip6 + 1) > data_end || addr_eq(ifc->addr6, zero)) {
            return xdp_drop(pl->stat);
        }
        addr_copy(sender, (const __u8 *)&ip6->saddr);
        orig_len = IPV6_HLEN + bpf_ntohs(ip6->payload_len);
    }
    __u32 have = (__u32)((long)data_end - (long)(eth + 1));
    if (orig_len > have) {
        orig_len = have;
    }
    const __u32 quote = (orig_len > ICMP_QUOTE_MAX ? ICMP_QUOTE_MAX : orig_len) & ~3U;
    const int ip_hlen = v4 ? IPV4_HLEN : IPV6_HLEN;
    const int push = ip_hlen + 8;  /* new IP + ICMP headers; the quote follows at once */

    if (bpf_xdp_adjust_head(ctx, -push)) {
        return xdp_drop(XPMIP_STAT_DROP_HEADROOM);
    }
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    /* 64-bit arithmetic: the verifier forbids 32-bit operations on packet pointers. */
    const __s64 want = ETH_HLEN + push + quote;
    __s64 have_now = (__s64)((long)data_end - (long)data);
    asm volatile("" : "+r"(have_now));  /* keep clang from folding this into 32-bit pointer math */
    if (bpf_xdp_adjust_tail(ctx, (int)(want - have_now))) {
        return xdp_drop(XPMIP_STAT_DROP_HEADROOM);
    }
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    eth = data;
    if ((void *)(eth + 1) > data_end) {
        return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    mac_copy(eth->h_dest, peer_mac);
    mac_copy(eth->h_source, our_mac);
    const int too_big = pl->icmp == ICMP_TOO_BIG;

    if (v4) {
        eth->h_proto = bpf_htons(ETH_P_IP);
        struct iphdr *ip = (void *)(eth + 1);
        struct icmp4_header *icmp = (void *)(ip + 1);
        if ((void *)(icmp + 1) > data_end) {
            return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
        }
        ip->version = 4;
        ip->ihl = 5;
        ip->tos = 0xc0;  /* Internetwork Control, as Linux sends ICMP errors */
        ip->tot_len = bpf_htons(IPV4_HLEN + 8 + quote);
        ip->id = 0;
        ip->frag_off = 0;
        ip->ttl = OUTER_TTL;
        ip->protocol = IPPROTO_ICMP;
        ip->saddr = *(const __be32 *)ifc->addr4;
        ip->daddr = addr_to_v4(sender);
        ipv4_set_checksum(ip);
        icmp->type = too_big ? ICMP4_DEST_UNREACH : ICMP4_TIME_EXCEEDED;
        icmp->code = too_big ? ICMP4_FRAG_NEEDED : ICMP4_EXC_TTL;
        icmp->checksum = 0;
        icmp->unused = 0;
        icmp->mtu = too_big ? bpf_htons(pl->mtu) : 0;
        icmp->checksum = csum_fold(sum_words(icmp, data_end, 8 + quote));
    } else {
        eth->h_proto = bpf_htons(ETH_P_IPV6);
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        struct icmp6hdr *icmp6 = (void *)(ip6 + 1);
        if ((void *)(icmp6 + 1) > data_end) {
            return xdp_drop(XPMIP_STAT_DROP_MALFORMED);
        }
        ip6->version = 6;
        ip6->priority = 0;
        ip6->flow_lbl[0] = ip6->flow_lbl[1] = ip6->flow_lbl[2] = 0;
        ip6->payload_len = bpf_htons(8 + quote);
        ip6->nexthdr = IPPROTO_ICMPV6;
        ip6->hop_limit = OUTER_TTL;
        addr_copy((__u8 *)&ip6->saddr, ifc->addr6);
        addr_copy((__u8 *)&ip6->daddr, sender);
        icmp6->icmp6_type = too_big ? ICMPV6_PKT_TOOBIG : ICMPV6_TIME_EXCEED;
        icmp6->icmp6_code = 0;
        icmp6->icmp6_cksum = 0;
        icmp6->icmp6_dataun.un_data32[0] = too_big ? bpf_htonl(pl->mtu) : 0;
        /* RFC 4443 §2.3: the checksum covers the IPv6 pseudo-header. */
        __u64 sum = sum_words(&ip6->saddr, data_end, 32);
        sum += bpf_htonl(8 + quote);
        sum += bpf_htonl(IPPROTO_ICMPV6);
        sum += sum_words(icmp6, data_end, 8 + quote);
        icmp6->icmp6_cksum = csum_fold(sum);
    }
    count_stat(&counters, pl->stat);
    count_stat(&counters, XPMIP_STAT_ICMP_SENT);
    return xdp_tx(ctx, pl);
}

/* on_cpumap: running in the cpumap program, on the CPU the packet was handed to. */
static __always_inline int gateway(struct xdp_md *ctx, int on_cpumap) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct plan *pl = plan_get();
    if (!pl) {
        return XDP_PASS;
    }
    pl->spread = on_cpumap;
    classify(ctx, data, data_end, ctx->ingress_ifindex, pl);
    switch (pl->kind) {
    case PLAN_DROP:
        return xdp_drop(pl->stat);
    case PLAN_ICMP:
        return xdp_icmp(ctx, pl);
    case PLAN_SPREAD:
        count_stat(&counters, XPMIP_STAT_CPU_SPREAD);
        return bpf_redirect_map(&cpu_map, pl->cpu, XDP_PASS);
    case PLAN_ENCAP:
    case PLAN_DECAP:
        if (pl->neigh) {
            count_stat(&counters, XPMIP_STAT_PASS_NO_NEIGH);
            return XDP_PASS;
        }
        return pl->kind == PLAN_ENCAP ? xdp_encap(ctx, pl) : xdp_decap(ctx, pl);
    }
    return XDP_PASS;
}

SEC("xdp")
int xpmip_xdp(struct xdp_md *ctx) {
    return gateway(ctx, 0);
}

SEC("xdp/cpumap")
int xpmip_xdp_cpumap(struct xdp_md *ctx) {
    count_stat(&counters, XPMIP_STAT_SPREAD_RECEIVED);
    return gateway(ctx, 1);
}
