/* The tunnel formats a received packet may carry (RFC 2473/2003 IP-in-IP, RFC 5844 IPv4-UDP,
 * RFC 5845 GRE and UDP/TLV/GRE), one parser each on the outer packet: what follows the outer IP
 * header, where the inner packet starts and, with GRE, the key. */
#ifndef XPMIP_TUNNEL_H
#define XPMIP_TUNNEL_H

#include "xpmip_plan.h"

struct tunnel_info {
    __u8 format;          /* enum xpmip_encap */
    __u8 has_key;
    __u16 inner_et;       /* ethertype of the inner (0x6558: an Ethernet frame) */
    __u32 inner_off;      /* from the outer IP header */
    __u32 key;            /* host order */
};

/* UDP (RFC 768) and GRE (RFC 2784 §2.5) checksums are verified by the XDP program, in a global
 * function: the verifier checks it once, on its own, whatever the state of its caller. The tc
 * programs only see tunnel packets XDP already accepted and handed on (next hop unresolved), so
 * they skip it. */
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

/* Is the ones' complement checksum of the `len` octets at offset `off` right, given the sum of
 * what else it covers (the UDP pseudo-header; 0 for GRE)? */
__noinline int xdp_checksum_ok(struct xdp_md *ctx, __u32 off, __u32 len, __u32 pseudo) {
    if (!ctx) {
        return 0;
    }
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (off > 512) {
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
    return xdp_checksum_ok(ctx, ETH_HLEN + out->hdr_len, len, (__u32)sum);
}

/* RFC 2784 §2.5: the checksum covers the GRE header and the payload, to the outer packet's end. */
static __always_inline int gre_checksum_ok(void *ctx, const struct l3info *out, __u32 gre_off) {
    return xdp_checksum_ok(ctx, ETH_HLEN + gre_off, out->total_len - gre_off, 0);
}
#else
static __always_inline int udp_checksum_ok(void *ctx, const struct l3info *out) { return 1; }
static __always_inline int gre_checksum_ok(void *ctx, const struct l3info *out, __u32 gre_off) { return 1; }
#endif


/* RFC 2784 / RFC 2890 at `gre_off` (from the outer IP header): version 0, no routing (R is
 * deprecated), the checksum verified when present, the key read, the protocol one we carry. */
static __always_inline __u32 parse_gre(void *ctx, void *ip, void *data_end, const struct l3info *out, __u32 gre_off,
                                       struct tunnel_info *t) {
    struct gre_base *g = ip + (gre_off & 0x1ff);
    if ((void *)(g + 1) > data_end) {
        return DROP(XPMIP_STAT_DROP_MALFORMED);
    }
    const __u16 flags = bpf_ntohs(g->flags);
    if (flags & (XPMIP_GRE_VERSION_MASK | XPMIP_GRE_FLAG_R)) {
        return DROP(XPMIP_STAT_DROP_GRE_HEADER);
    }
    __u32 off = gre_off + GRE_HLEN;
    if (flags & XPMIP_GRE_FLAG_C) {
        if (!gre_checksum_ok(ctx, out, gre_off)) {
            return DROP(XPMIP_STAT_DROP_GRE_CHECKSUM);
        }
        off += 4;   /* checksum + reserved1 */
    }
    if (flags & XPMIP_GRE_FLAG_K) {
        __be32 *k = ip + (off & 0x1ff);
        if ((void *)(k + 1) > data_end) {
            return DROP(XPMIP_STAT_DROP_MALFORMED);
        }
        t->key = bpf_ntohl(*k);
        t->has_key = 1;
        off += 4;
    }
    if (flags & XPMIP_GRE_FLAG_S) {
        off += 4;
    }
    t->inner_off = off;
    t->inner_et = bpf_ntohs(g->proto);
    if (t->inner_et != ETH_P_IP && t->inner_et != ETH_P_IPV6 && t->inner_et != XPMIP_GRE_PROTO_TEB) {
        return DROP(XPMIP_STAT_DROP_GRE_PROTOCOL);
    }
    return VERDICT_OK;
}

/* UDP to 5437 (RFC 5844 §3): the IP packet right after the UDP header, or (RFC 5845 §7.1) the
 * TLV header (Type 0 where an IP version would be) and GRE. Other UDP is not tunnelled data
 * (signaling on 5436 goes to the agent). */
static __always_inline __u32 parse_udp_tunnel(void *ctx, void *ip, void *data_end, const struct l3info *out,
                                              struct tunnel_info *t) {
    struct udphdr *udp = ip + (out->hdr_len & 0xff);
    if (out->fragment || (void *)(udp + 1) > data_end || bpf_ntohs(udp->dest) != XPMIP_UDP_PORT_DATA) {
        return VERDICT_NOT_OURS;
    }
    if (bpf_ntohs(udp->len) != out->total_len - out->hdr_len) {
        return DROP(XPMIP_STAT_DROP_MALFORMED);
    }
    /* Zero means "no checksum" over IPv4 (RFC 768); any other value is verified and a wrong one
     * discarded (RFC 1122 §4.1.3.4). */
    if (udp->check && !udp_checksum_ok(ctx, out)) {
        return DROP(XPMIP_STAT_DROP_CHECKSUM);
    }
    __u8 *first = (void *)(udp + 1);
    if ((void *)(first + 1) > data_end) {
        return DROP(XPMIP_STAT_DROP_MALFORMED);
    }
    if ((*first >> 4) != 0) {
        t->inner_et = ethertype_of_version(*first);
        if (!t->inner_et) {
            return DROP(XPMIP_STAT_DROP_TLV_HEADER);
        }
        t->format = XPMIP_ENCAP_UDP;
        t->inner_off = out->hdr_len + UDP_HLEN;
        return VERDICT_OK;
    }
    /* RFC 5845 §7.1: the Res. bits "MUST be ignored by the receiver"; Next Header must be GRE
     * here, and a receiver MUST discard a packet whose UDP and TLV lengths disagree. */
    struct tlv_header *tlv = (void *)first;
    if ((void *)(tlv + 1) > data_end) {
        return DROP(XPMIP_STAT_DROP_MALFORMED);
    }
    if (tlv->next_header != IPPROTO_GRE) {
        return DROP(XPMIP_STAT_DROP_TLV_HEADER);
    }
    if (bpf_ntohs(tlv->length) != bpf_ntohs(udp->len) - UDP_HLEN - XPMIP_TLV_HEADER_LEN) {
        return DROP(XPMIP_STAT_DROP_TLV_LENGTH);
    }
    t->format = XPMIP_ENCAP_UDP_TLV_GRE;
    return parse_gre(ctx, ip, data_end, out, out->hdr_len + UDP_HLEN + XPMIP_TLV_HEADER_LEN, t);
}

/* What the outer packet `out` (at `ip`) carries. A verdict: NOT_OURS for what is not tunnelled
 * to us (the stack's: signaling, our own traffic). */
static __always_inline __u32 parse_tunnel(void *ctx, void *ip, void *data_end, const struct l3info *out,
                                          struct tunnel_info *t) {
    __u32 v;
    switch (out->proto) {
    case IPPROTO_IPIP:
    case IPPROTO_IPV6:
        t->format = XPMIP_ENCAP_IPIP;
        t->inner_off = out->hdr_len;
        t->inner_et = out->proto == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6;
        v = VERDICT_OK;
        break;
    case IPPROTO_GRE:
        t->format = XPMIP_ENCAP_GRE;
        v = out->fragment ? VERDICT_OK : parse_gre(ctx, ip, data_end, out, out->hdr_len, t);
        break;
    case IPPROTO_UDP:
        v = parse_udp_tunnel(ctx, ip, data_end, out, t);
        break;
    default:
        return VERDICT_NOT_OURS;
    }
    if (v == VERDICT_OK && out->fragment) {
        return DROP(XPMIP_STAT_DROP_FRAGMENT);   /* outer fragments are not reassembled */
    }
    return v;
}

#endif
