/* Carrying a plan out on an skb (tc programs): bpf_skb_adjust_room with the ENCAP flags so GSO
 * packets stay segmentable, and bpf_redirect_neigh when the next hop is not yet resolved. */
#ifndef XPMIP_TC_H
#define XPMIP_TC_H

#include "xpmip_headers.h"

#define TC_PULL 192  /* headers we parse: Ethernet + outer + UDP/TLV/GRE + inner IP + ports */

static __always_inline void tc_pull(struct __sk_buff *skb, __u32 want) {
    bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);
}

static __always_inline int tc_drop(__u32 stat) {
    count_stat(&counters, stat);
    return TC_ACT_SHOT;
}

static __always_inline int tc_forward(struct __sk_buff *skb, const struct plan *pl, int on_egress) {
    if (pl->local) {
        return TC_ACT_OK;  /* decapsulated for this host: up the stack */
    }
    /* On egress, a packet already leaving by the right interface just goes on. */
    if (on_egress && !pl->neigh && pl->ifindex == skb->ifindex) {
        return TC_ACT_OK;
    }
    if (pl->neigh) {
        struct bpf_redir_neigh nh = {};
        nh.nh_family = pl->nh_v4 ? AF_INET : AF_INET6;
        if (pl->nh_v4) {
            nh.ipv4_nh = addr_to_v4(pl->nh);
        } else {
            addr_copy((__u8 *)nh.ipv6_nh, pl->nh);
        }
        return bpf_redirect_neigh(pl->ifindex, &nh, sizeof(nh), 0);
    }
    return bpf_redirect(pl->ifindex, 0);
}

static __always_inline int tc_encap(struct __sk_buff *skb, const struct plan *pl, int forwarded) {
    __u64 flags = pl->outer_v4 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
    switch (pl->encap) {
    case XPMIP_ENCAP_GRE:
        flags |= BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
        break;
    case XPMIP_ENCAP_UDP:
        flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_FIXED_GSO;
        break;
    case XPMIP_ENCAP_UDP_TLV_GRE:
        /* Segmenting a GSO packet would leave every segment with the TLV Length of the whole. */
        if (skb->gso_segs > 1) {
            return tc_drop(XPMIP_STAT_DROP_MALFORMED);
        }
        flags |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_FIXED_GSO;
        break;
    }
    const __u32 hdr = pl->hdr_len & 0xff;
    const __u32 room = hdr + (pl->l2 ? ETH_HLEN : 0);
    const int ip_skb = skb->protocol == bpf_htons(ETH_P_IP) || skb->protocol == bpf_htons(ETH_P_IPV6);
    __u8 inner_eth[ETH_HLEN];
    if (pl->l2 && !ip_skb) {
        /* bpf_skb_adjust_room takes only IP packets: a non-IP frame (ARP...) of an L2 session
         * gets its new headers in front of it with bpf_skb_change_head (never GSO). */
        if (bpf_skb_change_head(skb, room, 0)) {
            return tc_drop(XPMIP_STAT_DROP_HEADROOM);
        }
    } else {
        if (pl->l2) {
            flags |= BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN) | BPF_F_ADJ_ROOM_ENCAP_L2_ETH;
            if (bpf_skb_load_bytes(skb, 0, inner_eth, ETH_HLEN)) {
                return tc_drop(XPMIP_STAT_DROP_MALFORMED);
            }
        }
        if (bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, flags)) {
            return tc_drop(XPMIP_STAT_DROP_HEADROOM);
        }
    }
    tc_pull(skb, ETH_HLEN + room + IPV6_HLEN);
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    if (write_outer(data, data_end, pl)) {
        return tc_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    if (pl->l2 && ip_skb) {
        if (bpf_skb_store_bytes(skb, ETH_HLEN + hdr, inner_eth, ETH_HLEN, 0)) {
            return tc_drop(XPMIP_STAT_DROP_MALFORMED);
        }
    } else if (!pl->l2 && forwarded && edit_inner(data + ETH_HLEN + hdr, data_end, pl->inner_v4, 0)) {
        return tc_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    count_stat(&counters, XPMIP_STAT_TC_ENCAP);
    return tc_forward(skb, pl, !forwarded);
}

static __always_inline int tc_decap(struct __sk_buff *skb, const struct plan *pl) {
    __u32 strip = pl->hdr_len & 0xff;
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    if (pl->l2) {
        /* Move the inner Ethernet header to the front, then remove what followed it. */
        __u8 inner_eth[ETH_HLEN];
        if (bpf_skb_load_bytes(skb, ETH_HLEN + strip, inner_eth, ETH_HLEN) ||
            bpf_skb_store_bytes(skb, 0, inner_eth, ETH_HLEN, 0) ||
            bpf_skb_adjust_room(skb, -(__s32)(strip + ETH_HLEN), BPF_ADJ_ROOM_MAC, 0)) {
            return tc_drop(XPMIP_STAT_DROP_HEADROOM);
        }
        count_stat(&counters, XPMIP_STAT_TC_DECAP);
        return tc_forward(skb, pl, 0);
    }
    if (edit_inner(data + ETH_HLEN + strip, data_end, pl->inner_v4, pl->ecn)) {
        return tc_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    /* When the families differ, bpf_skb_change_proto sets skb->protocol to the inner's (which
     * bpf_redirect_neigh dispatches on) and resizes the L3 room by 20 octets. */
    const int outer_v4 = skb->protocol == bpf_htons(ETH_P_IP);
    if (outer_v4 != pl->inner_v4) {
        if (bpf_skb_change_proto(skb, bpf_htons(pl->ethertype), 0)) {
            return tc_drop(XPMIP_STAT_DROP_HEADROOM);
        }
        strip = outer_v4 ? strip + (IPV6_HLEN - IPV4_HLEN) : strip - (IPV6_HLEN - IPV4_HLEN);
    }
    if (bpf_skb_adjust_room(skb, -(__s32)strip, BPF_ADJ_ROOM_MAC, 0)) {
        return tc_drop(XPMIP_STAT_DROP_HEADROOM);
    }
    tc_pull(skb, ETH_HLEN);
    data = (void *)(long)skb->data;
    data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return tc_drop(XPMIP_STAT_DROP_MALFORMED);
    }
    mac_copy(eth->h_dest, pl->dmac);
    mac_copy(eth->h_source, pl->smac);
    eth->h_proto = bpf_htons(pl->ethertype);
    count_stat(&counters, XPMIP_STAT_TC_DECAP);
    return tc_forward(skb, pl, 0);
}

/* Carry out a plan. ICMP errors are XDP's job; here they count as the drop they stand for. */
static __always_inline int tc_apply(struct __sk_buff *skb, const struct plan *pl, int forwarded) {
    switch (pl->kind) {
    case PLAN_DROP:
    case PLAN_ICMP:
        return tc_drop(pl->stat);
    case PLAN_ENCAP:
        return tc_encap(skb, pl, forwarded);
    case PLAN_DECAP:
        return tc_decap(skb, pl);
    }
    return TC_ACT_OK;
}

#endif
