/* Bounds-checked parsing of IPv4/IPv6 headers (outer or inner). */
#ifndef XPMIP_PARSE_H
#define XPMIP_PARSE_H

#include "xpmip_common.h"

/* XDP sees a whole frame, so an IP packet must end before data_end. tc sees the linear head of
 * an skb (a GSO burst is far longer than its head), so there the length is not checked against
 * data_end: every read is still bounds-checked, and tc ingress only gets what XDP checked. */
#ifdef XPMIP_PROG_XDP
#define WHOLE_PACKET_IN_VIEW 1
#else
#define WHOLE_PACKET_IN_VIEW 0
#endif

struct l3info {
    __u8 family;          /* 4 or 6 */
    __u8 proto;           /* IPv4 protocol / IPv6 Next Header (extension headers not walked) */
    __u8 tos;             /* IPv4 TOS / IPv6 Traffic Class (DSCP << 2 | ECN) */
    __u8 ttl;
    __u8 fragment;        /* IPv4: MF set or offset non-zero */
    __u8 df;              /* IPv4 DF */
    __u8 later_fragment;  /* a fragment other than the first (IPv4 offset, IPv6 Fragment header) */
    __u8 icmp_error;      /* an ICMP/ICMPv6 error message (never answered with another, RFC 1122 §3.2.2) */
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
        l3->later_fragment = (frag & IP_OFFMASK) != 0;
        l3->df = (frag & IP_DF) != 0;
        l3->flowlabel = 0;
        addr_from_v4(l3->src, iph->saddr);
        addr_from_v4(l3->dst, iph->daddr);
        if (l3->total_len < l3->hdr_len || (WHOLE_PACKET_IN_VIEW && ip + bound16(l3->total_len) > data_end)) {
            return -1;
        }
        l4 = ip + (l3->hdr_len & 0x3c);
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
        l3->later_fragment = 0;
        l3->df = 1;
        l3->flowlabel = ((__u32)(ip6->flow_lbl[0] & 0x0f) << 16) | ((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2];
        addr_copy(l3->src, (const __u8 *)&ip6->saddr);
        addr_copy(l3->dst, (const __u8 *)&ip6->daddr);
        if (WHOLE_PACKET_IN_VIEW && ip + bound16(l3->total_len) > data_end) {
            return -1;
        }
        l4 = ip + IPV6_HLEN;
    } else {
        return -1;
    }
    l3->sport = 0;
    l3->dport = 0;
    l3->icmp_error = 0;
    if (l3->family == 6 && l3->proto == 44) {
        /* IPv6 Fragment header (RFC 8200 §4.5): offset in the upper 13 bits of octets 2-3. */
        __u8 *fh = l4;
        if ((void *)(fh + 8) <= data_end && (((fh[2] << 8) | fh[3]) & 0xfff8)) {
            l3->later_fragment = 1;
        }
    }
    if (!l3->later_fragment) {
        __u8 *type = l4;
        if ((void *)(type + 1) <= data_end) {
            /* ICMPv4 errors: 3 unreachable, 4 source quench, 5 redirect, 11 time exceeded,
             * 12 parameter problem; ICMPv6: types below 128 (RFC 4443 §2.1). */
            if (l3->proto == IPPROTO_ICMP) {
                l3->icmp_error = *type == 3 || *type == 4 || *type == 5 || *type == 11 || *type == 12;
            } else if (l3->proto == IPPROTO_ICMPV6) {
                l3->icmp_error = *type < 128;
            }
        }
    }
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
