/* Bounds-checked parsing of IPv4/IPv6 headers (outer or inner), one parser per header: the IPv4
 * header (with its checksum, RFC 1812 §5.2.2), the IPv6 header and its extension headers (a
 * bounded walk, RFC 8200 §4), and the transport ports. Each returns a PARSE_* result; what a
 * failure means (drop and count, or leave the packet to the stack) is the caller's to say. */
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

enum parse_result {
    PARSE_OK = 0,
    PARSE_MALFORMED,      /* truncated or inconsistent */
    PARSE_BAD_CHECKSUM,   /* IPv4 header checksum wrong (RFC 1812 §5.2.2: discard) */
};

/* At most this many IPv6 extension headers are skipped, and they end within this many octets of
 * the IPv6 header: enough for what tunnels carry (RFC 2473 §5.1 Tunnel Encapsulation Limit, a
 * Fragment header, Hop-by-Hop options); a packet with more is malformed to us. */
#define IPV6_MAX_EXT_HEADERS 4
#define IP_MAX_HEADER_LEN 200

#define IPV6_EXT_HOP_BY_HOP 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_DEST_OPTS 60

struct l3info {
    __u8 family;          /* 4 or 6 */
    __u8 proto;           /* IPv4 protocol / the IPv6 upper-layer header after extension headers */
    __u8 tos;             /* IPv4 TOS / IPv6 Traffic Class (DSCP << 2 | ECN) */
    __u8 ttl;
    __u8 fragment;        /* IPv4: MF set or offset non-zero; IPv6: a Fragment header */
    __u8 df;              /* IPv4 DF */
    __u8 later_fragment;  /* a fragment other than the first */
    __u8 icmp_error;      /* an ICMP/ICMPv6 error message (never answered with another, RFC 1122 §3.2.2) */
    __u16 hdr_len;        /* IP header length, IPv6 extension headers included */
    __u16 total_len;      /* IP packet length from the header */
    __u16 sport, dport;   /* host order, 0 when absent */
    __u32 flowlabel;      /* IPv6, host order */
    __u8 src[16];
    __u8 dst[16];
};

/* RFC 791 / RFC 1812 §5.2.2: a router verifies the header checksum of what it forwards. The
 * common 20-octet header unrolled; options (rare) in a bounded loop. */
static __always_inline int ipv4_header_checksum_ok(const struct iphdr *iph, void *data_end) {
    __u64 sum = ipv4_header_sum(iph);
    if (iph->ihl > 5) {
        const __u16 *w = (const __u16 *)(iph + 1);
        const __u32 words = (iph->ihl - 5) * 2;
        for (__u32 i = 0; i < 20; i++) {   /* 40 octets of options at most */
            if (i >= words || (void *)(w + i + 1) > data_end) {
                break;
            }
            sum += w[i];
        }
    }
    return csum_fold(sum) == 0;
}

static __always_inline int parse_ipv4(struct iphdr *iph, void *data_end, struct l3info *l3) {
    if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5) {
        return PARSE_MALFORMED;
    }
    l3->family = 4;
    l3->proto = iph->protocol;
    l3->tos = iph->tos;
    l3->ttl = iph->ttl;
    l3->hdr_len = iph->ihl * 4;
    l3->total_len = bpf_ntohs(iph->tot_len);
    const __u16 frag = bpf_ntohs(iph->frag_off);
    l3->fragment = (frag & (IP_MF | IP_OFFMASK)) != 0;
    l3->later_fragment = (frag & IP_OFFMASK) != 0;
    l3->df = (frag & IP_DF) != 0;
    l3->flowlabel = 0;
    addr_from_v4(l3->src, iph->saddr);
    addr_from_v4(l3->dst, iph->daddr);
    if (l3->total_len < l3->hdr_len || (WHOLE_PACKET_IN_VIEW && (void *)iph + bound16(l3->total_len) > data_end)) {
        return PARSE_MALFORMED;
    }
    return ipv4_header_checksum_ok(iph, data_end) ? PARSE_OK : PARSE_BAD_CHECKSUM;
}

/* RFC 8200 §4: skip the extension headers after the fixed header, by their length. A Fragment
 * header marks the packet a fragment (a later one by its offset); a Routing header with segments
 * left would have us forward it onward, which a tunnel endpoint does not: malformed to us. */
static __always_inline int skip_ipv6_extensions(void *ip6, void *data_end, struct l3info *l3) {
    __u32 off = IPV6_HLEN;
#pragma unroll
    for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
        const __u8 nh = l3->proto;
        if (nh != IPV6_EXT_HOP_BY_HOP && nh != IPV6_EXT_ROUTING && nh != IPV6_EXT_FRAGMENT && nh != IPV6_EXT_DEST_OPTS) {
            l3->hdr_len = off;
            return PARSE_OK;
        }
        __u8 *h = ip6 + (off & 0xff);
        if ((void *)(h + 8) > data_end) {
            return PARSE_MALFORMED;
        }
        __u32 len = ((__u32)h[1] + 1) * 8;
        if (nh == IPV6_EXT_FRAGMENT) {
            len = 8;
            l3->fragment = 1;
            l3->later_fragment = (((h[2] << 8) | h[3]) & 0xfff8) != 0;
        } else if (nh == IPV6_EXT_ROUTING && h[3] != 0) {
            return PARSE_MALFORMED;   /* Segments Left */
        }
        l3->proto = h[0];
        off += len;
        if (off > IP_MAX_HEADER_LEN) {
            return PARSE_MALFORMED;
        }
    }
    return PARSE_MALFORMED;   /* more extension headers than we walk */
}

static __always_inline int parse_ipv6(struct ipv6hdr *ip6, void *data_end, struct l3info *l3) {
    if ((void *)(ip6 + 1) > data_end || ip6->version != 6) {
        return PARSE_MALFORMED;
    }
    l3->family = 6;
    l3->proto = ip6->nexthdr;
    l3->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
    l3->ttl = ip6->hop_limit;
    l3->total_len = IPV6_HLEN + bpf_ntohs(ip6->payload_len);
    l3->fragment = 0;
    l3->later_fragment = 0;
    l3->df = 1;
    l3->flowlabel = ((__u32)(ip6->flow_lbl[0] & 0x0f) << 16) | ((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2];
    addr_copy(l3->src, (const __u8 *)&ip6->saddr);
    addr_copy(l3->dst, (const __u8 *)&ip6->daddr);
    if (WHOLE_PACKET_IN_VIEW && (void *)ip6 + bound16(l3->total_len) > data_end) {
        return PARSE_MALFORMED;
    }
    int rc = skip_ipv6_extensions(ip6, data_end, l3);
    if (rc == PARSE_OK && l3->hdr_len > l3->total_len) {
        return PARSE_MALFORMED;
    }
    return rc;
}

/* The transport ports (TCP/UDP, not of a fragment: all fragments of a datagram hash alike) and
 * whether it is an ICMP error. */
static __always_inline void parse_l4(void *l4, void *data_end, struct l3info *l3) {
    l3->sport = 0;
    l3->dport = 0;
    l3->icmp_error = 0;
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
}

/* Parse the IP header at `ip` (ethertype says which): a PARSE_* result. */
static __always_inline int parse_ip(void *ip, void *data_end, __u16 ethertype, struct l3info *l3) {
    int rc;
    if (ethertype == ETH_P_IP) {
        rc = parse_ipv4(ip, data_end, l3);
    } else if (ethertype == ETH_P_IPV6) {
        rc = parse_ipv6(ip, data_end, l3);
    } else {
        return PARSE_MALFORMED;
    }
    if (rc == PARSE_OK) {
        parse_l4(ip + (l3->hdr_len & 0xff), data_end, l3);
    }
    return rc;
}

/* The ethertype for an inner IP version nibble, 0 if neither. */
static __always_inline __u16 ethertype_of_version(__u8 first_octet) {
    switch (first_octet >> 4) {
    case 4: return ETH_P_IP;
    case 6: return ETH_P_IPV6;
    }
    return 0;
}

/* Destinations a router does not forward (RFC 1812 §5.3.7 martians, RFC 4291 §2.5.6 link-local,
 * RFC 4291 §2.7 multicast, which PMIPv6 leaves to RFC 6224's MLD proxy, and the limited
 * broadcast): 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/3 (multicast and class E, 255.255.255.255
 * among them); ::, ::1, fe80::/10, ff00::/8. */
static __always_inline int not_forwardable(const struct l3info *l3) {
    if (l3->family == 4) {
        const __u32 d = bpf_ntohl(addr_to_v4(l3->dst));
        const __u8 top = d >> 24;
        return top == 0 || top == 127 || top >= 224;
    }
    const __u8 *d = l3->dst;
    if (d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80)) {
        return 1;
    }
    const __u32 *w = (const __u32 *)d;
    return w[0] == 0 && w[1] == 0 && w[2] == 0 && (w[3] == 0 || w[3] == bpf_htonl(1));
}

/* Sources no host sends from (RFC 1812 §5.3.7): 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/3; ::1 and
 * multicast (RFC 4291 §2.7). The unspecified IPv6 source is left to the caller. */
static __always_inline int not_a_host_source(const struct l3info *l3) {
    if (l3->family == 4) {
        const __u8 top = bpf_ntohl(addr_to_v4(l3->src)) >> 24;
        return top == 0 || top == 127 || top >= 224;
    }
    const __u32 *w = (const __u32 *)l3->src;
    return l3->src[0] == 0xff || (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == bpf_htonl(1));
}

#endif
