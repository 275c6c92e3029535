/* Writing headers into a packet whose room has been made (by bpf_xdp_adjust_head in XDP or
 * bpf_skb_adjust_room + bpf_skb_pull_data in tc): the same code for both programs. */
#ifndef XPMIP_HEADERS_H
#define XPMIP_HEADERS_H

#include "xpmip_classify.h"

/* Write Ethernet + outer IP [+ UDP [+ TLV]] [+ GRE [+ key]] from `data`, as planned.
 * Returns 0, or -1 if the packet is shorter than the headers (never, after a successful grow). */
static __always_inline int write_outer(void *data, void *data_end, const struct plan *pl) {
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) {
        return -1;
    }
    mac_copy(eth->h_dest, pl->dmac);
    mac_copy(eth->h_source, pl->smac);
    eth->h_proto = bpf_htons(pl->outer_v4 ? ETH_P_IP : ETH_P_IPV6);

    const __u16 ip_hlen = pl->outer_v4 ? IPV4_HLEN : IPV6_HLEN;
    const __u16 after_ip = pl->hdr_len - ip_hlen + pl->inner_len;   /* octets after the outer IP header */
    __u8 ip_proto;
    switch (pl->encap) {
    case XPMIP_ENCAP_UDP:
    case XPMIP_ENCAP_UDP_TLV_GRE:
        ip_proto = IPPROTO_UDP;
        break;
    case XPMIP_ENCAP_GRE:
        ip_proto = IPPROTO_GRE;
        break;
    default:
        ip_proto = pl->inner_v4 ? IPPROTO_IPIP : IPPROTO_IPV6;
    }

    void *next;
    if (pl->outer_v4) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > data_end) {
            return -1;
        }
        ip->version = 4;
        ip->ihl = 5;
        ip->tos = pl->tos;
        ip->tot_len = bpf_htons(IPV4_HLEN + after_ip);
        /* RFC 6864 §4.1: the ID only matters for fragmentable datagrams. */
        ip->id = pl->df ? 0 : bpf_htons((__u16)bpf_get_prandom_u32());
        ip->frag_off = pl->df ? bpf_htons(IP_DF) : 0;
        ip->ttl = OUTER_TTL;
        ip->protocol = ip_proto;
        ip->saddr = addr_to_v4(pl->outer_src);
        ip->daddr = addr_to_v4(pl->outer_dst);
        ipv4_set_checksum(ip);
        next = ip + 1;
    } else {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > data_end) {
            return -1;
        }
        ip6->version = 6;
        ip6->priority = pl->tos >> 4;
        ip6->flow_lbl[0] = ((pl->tos & 0x0f) << 4) | ((pl->flowlabel >> 16) & 0x0f);
        ip6->flow_lbl[1] = pl->flowlabel >> 8;
        ip6->flow_lbl[2] = pl->flowlabel;
        ip6->payload_len = bpf_htons(after_ip);
        ip6->nexthdr = ip_proto;
        ip6->hop_limit = OUTER_TTL;
        addr_copy((__u8 *)&ip6->saddr, pl->outer_src);
        addr_copy((__u8 *)&ip6->daddr, pl->outer_dst);
        next = ip6 + 1;
    }

    if (pl->encap == XPMIP_ENCAP_UDP || pl->encap == XPMIP_ENCAP_UDP_TLV_GRE) {
        struct udphdr *udp = next;
        if ((void *)(udp + 1) > data_end) {
            return -1;
        }
        udp->source = bpf_htons(XPMIP_UDP_PORT_DATA);
        udp->dest = bpf_htons(pl->udp_dport);
        udp->len = bpf_htons(after_ip);
        udp->check = 0;  /* allowed over IPv4 (RFC 768); UDP encapsulation is IPv4-only (RFC 5844) */
        next = udp + 1;
        if (pl->encap == XPMIP_ENCAP_UDP_TLV_GRE) {
            struct tlv_header *tlv = next;
            if ((void *)(tlv + 1) > data_end) {
                return -1;
            }
            tlv->type_res = 0;
            tlv->next_header = IPPROTO_GRE;
            tlv->length = bpf_htons(after_ip - UDP_HLEN - XPMIP_TLV_HEADER_LEN);
            next = tlv + 1;
        }
    }
    if (pl->encap == XPMIP_ENCAP_GRE || pl->encap == XPMIP_ENCAP_UDP_TLV_GRE) {
        struct gre_base *g = next;
        if ((void *)(g + 1) > data_end) {
            return -1;
        }
        g->flags = bpf_htons(pl->keyed ? XPMIP_GRE_FLAG_K : 0);
        g->proto = bpf_htons(pl->ethertype);
        if (pl->keyed) {
            __be32 *key = (void *)(g + 1);
            if ((void *)(key + 1) > data_end) {
                return -1;
            }
            *key = bpf_htonl(pl->gre_key);
        }
    }
    return 0;
}

/* Forwarding the inner packet: TTL / hop limit minus one (its checksum updated, RFC 1624), and
 * on decapsulation the ECN field set to `ecn` when non-zero (RFC 6040 §4.2). */
static __always_inline int edit_inner(void *ip, void *data_end, int v4, __u8 ecn) {
    if (v4) {
        struct iphdr *iph = ip;
        if ((void *)(iph + 1) > data_end) {
            return -1;
        }
        __u16 old = *(__u16 *)&iph->ttl;        /* TTL and protocol share one 16-bit word */
        iph->ttl -= 1;
        iph->check = csum_replace16(iph->check, old, *(__u16 *)&iph->ttl);
        if (ecn) {
            __u16 old_tos = *(__u16 *)iph;      /* version/IHL and TOS */
            iph->tos = (iph->tos & ~ECN_MASK) | ecn;
            iph->check = csum_replace16(iph->check, old_tos, *(__u16 *)iph);
        }
        return 0;
    }
    struct ipv6hdr *ip6 = ip;
    if ((void *)(ip6 + 1) > data_end) {
        return -1;
    }
    ip6->hop_limit -= 1;
    if (ecn) {
        /* The ECN bits are the low two of the Traffic Class: bits 4-5 of flow_lbl[0]. */
        ip6->flow_lbl[0] = (ip6->flow_lbl[0] & ~(ECN_MASK << 4)) | (ecn << 4);
    }
    return 0;
}

#endif
