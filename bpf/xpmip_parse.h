/* Bounds-checked parsing of IPv4/IPv6 headers (outer or inner). */
#ifndef XPMIP_PARSE_H
#define XPMIP_PARSE_H

#include "xpmip_common.h"

struct l3info {
    __u8 family;          /* 4 or 6 */
    __u8 proto;           /* IPv4 protocol / IPv6 Next Header (extension headers not walked) */
    __u8 tos;             /* IPv4 TOS / IPv6 Traffic Class (DSCP << 2 | ECN) */
    __u8 ttl;
    __u8 fragment;        /* IPv4: MF set or offset non-zero */
    __u8 df;              /* IPv4 DF */
    __u16 hdr_len;        /* IP header length */
    __u16 total_len;      /* IP packet length from the header */
    __u16 sport, dport;   /* host order, 0 when absent */
    __u32 flowlabel;      /* IPv6, host order */
    __u8 src[16];
    __u8 dst[16];
};

/* Parse the IP header at `ip`. Returns 0, or -1 when truncated or inconsistent. Ports are
 * read for TCP/UDP unless the packet is a non-initial... any IPv4 fragment (so all fragments of
 * a datagram hash alike). */
static __always_inline int parse_ip(void *ip, void *data_end, __u16 ethertype, struct l3info *l3) {
    void *l4;
    if (ethertype == ETH_P_IP) {
        struct iphdr *iph = ip;
        if ((void *)(iph + 1) > data_end) {
            return -1;
        }
        if (iph->version != 4 || iph->ihl < 5) {
            return -1;
        }
        l3->family = 4;
        l3->proto = iph->protocol;
        l3->tos = iph->tos;
        l3->ttl = iph->ttl;
        l3->hdr_len = iph->ihl * 4;
        l3->total_len = bpf_ntohs(iph->tot_len);
        __u16 frag = bpf_ntohs(iph->frag_off);
        l3->fragment = (frag & (IP_MF | IP_OFFMASK)) != 0;
        l3->df = (frag & IP_DF) != 0;
        l3->flowlabel = 0;
        addr_from_v4(l3->src, iph->saddr);
        addr_from_v4(l3->dst, iph->daddr);
        if (l3->total_len < l3->hdr_len || ip + l3->total_len > data_end) {
            return -1;
        }
        l4 = ip + l3->hdr_len;
    } else if (ethertype == ETH_P_IPV6) {
        struct ipv6hdr *ip6 = ip;
        if ((void *)(ip6 + 1) > data_end) {
            return -1;
        }
        if (ip6->version != 6) {
            return -1;
        }
        l3->family = 6;
        l3->proto = ip6->nexthdr;
        l3->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
        l3->ttl = ip6->hop_limit;
        l3->hdr_len = IPV6_HLEN;
        l3->total_len = IPV6_HLEN + bpf_ntohs(ip6->payload_len);
        l3->fragment = 0;
        l3->df = 1;
        l3->flowlabel = ((__u32)(ip6->flow_lbl[0] & 0x0f) << 16) | ((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2];
        addr_copy(l3->src, (const __u8 *)&ip6->saddr);
        addr_copy(l3->dst, (const __u8 *)&ip6->daddr);
        if (ip + l3->total_len > data_end) {
            return -1;
        }
        l4 = ip + IPV6_HLEN;
    } else {
        return -1;
    }
    l3->sport = 0;
    l3->dport = 0;
    if (!l3->fragment && (l3->proto == IPPROTO_TCP || l3->proto == IPPROTO_UDP)) {
        __be16 *ports = l4;
        if ((void *)(ports + 2) <= data_end) {
            l3->sport = bpf_ntohs(ports[0]);
            l3->dport = bpf_ntohs(ports[1]);
        }
    }
    return 0;
}

/* The ethertype for an inner IP version nibble, 0 if neither. */
static __always_inline __u16 ethertype_of_version(__u8 first_octet) {
    switch (first_octet >> 4) {
    case 4: return ETH_P_IP;
    case 6: return ETH_P_IPV6;
    }
    return 0;
}

#endif
