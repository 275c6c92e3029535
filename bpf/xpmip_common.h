/* Common definitions of the xpmip BPF programs. UAPI headers only (no vmlinux.h): the objects
 * load on kernels from 5.15 on without the build host's BTF. */
#ifndef XPMIP_COMMON_H
#define XPMIP_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/icmpv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xpmip/dataplane.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* ICMPv4 (RFC 792); <linux/icmp.h> is not used because it pulls in libc headers. */
struct icmp4_header {
    __u8 type;
    __u8 code;
    __u16 checksum;
    __be16 unused;
    __be16 mtu;           /* RFC 1191: next-hop MTU of "fragmentation needed" */
};
#define ICMP4_DEST_UNREACH 3
#define ICMP4_FRAG_NEEDED 4
#define ICMP4_TIME_EXCEEDED 11
#define ICMP4_EXC_TTL 0
#define IPV4_HLEN 20
#define IPV6_HLEN 40
#define UDP_HLEN 8
#define GRE_HLEN 4
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define ECN_MASK 0x3
#define ECN_NOT_ECT 0x0
#define ECN_ECT1 0x1
#define ECN_ECT0 0x2
#define ECN_CE 0x3
#define OUTER_TTL 64

struct gre_base {
    __be16 flags;
    __be16 proto;
};

/* RFC 5845 §7.1 Figure 6 (see XPMIP_TLV_HEADER_LEN). */
struct tlv_header {
    __u8 type_res;        /* Type in the high nibble (0), Res. in the low nibble */
    __u8 next_header;
    __be16 length;        /* octets after the TLV header */
};

/* A length the verifier can see is below 64 KiB before it is added to a packet pointer. Older
 * verifiers (6.1) lose the bounds of a 16-bit field that the compiler moves through a 64-bit
 * register; the barrier keeps clang from dropping the mask as redundant. */
static __always_inline __u32 bound16(__u32 v) {
    asm volatile("" : "+r"(v));
    return v & 0xffff;
}

/* ------------------------------------------------------------------------------------------ */
/* Counters */

static __always_inline void count_stat(void *map, __u32 stat) {
    __u64 *c = bpf_map_lookup_elem(map, &stat);
    if (c) {
        *c += 1;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Checksums (RFC 1071) */

static __always_inline __u16 csum_fold(__u64 sum) {
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

/* Sum of the 16-bit words of a 20-octet IPv4 header (checksum field included as found). */
static __always_inline __u64 ipv4_header_sum(const struct iphdr *iph) {
    const __u16 *w = (const __u16 *)iph;
    __u64 sum = 0;
#pragma unroll
    for (int i = 0; i < IPV4_HLEN / 2; i++) {
        sum += w[i];
    }
    return sum;
}

static __always_inline void ipv4_set_checksum(struct iphdr *iph) {
    iph->check = 0;
    iph->check = csum_fold(ipv4_header_sum(iph));
}

/* RFC 1624 incremental update of a 16-bit checksum when one 16-bit word changes. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new_) {
    __u32 sum = (__u16)~check + (__u16)~old + new_;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses: 16-octet fields, IPv4 as ::ffff:a.b.c.d */

static __always_inline void addr_from_v4(__u8 *dst16, __be32 v4) {
    __u32 *w = (__u32 *)dst16;
    w[0] = 0;
    w[1] = 0;
    w[2] = bpf_htonl(0x0000ffff);
    w[3] = v4;
}

static __always_inline __be32 addr_to_v4(const __u8 *a16) {
    return ((const __u32 *)a16)[3];
}

static __always_inline void addr_copy(__u8 *dst, const __u8 *src) {
    __u32 *d = (__u32 *)dst;
    const __u32 *s = (const __u32 *)src;
    d[0] = s[0];
    d[1] = s[1];
    d[2] = s[2];
    d[3] = s[3];
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b) {
    const __u32 *x = (const __u32 *)a;
    const __u32 *y = (const __u32 *)b;
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

/* Do the first `len` bits of a and b (16 octets each) match? */
static __always_inline int prefix_match(const __u8 *a, const __u8 *b, __u32 len) {
    if (len > 128) {
        return 0;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __u32 bits = len > 32 ? 32 : len;
        if (bits) {
            __u32 mask = bits == 32 ? 0xffffffff : ~(0xffffffffU >> bits);
            __u32 x = bpf_ntohl(((const __u32 *)a)[i]);
            __u32 y = bpf_ntohl(((const __u32 *)b)[i]);
            if ((x ^ y) & mask) {
                return 0;
            }
        }
        len -= bits;
    }
    return 1;
}

/* MACs are copied and compared as three 16-bit words: every MAC field we touch (packet,
 * map values, bpf_fib_lookup's smac/dmac on the stack) is 2-aligned, not always 4-aligned, and
 * the verifier rejects misaligned stack access. */
static __always_inline void mac_copy(__u8 *dst, const __u8 *src) {
    ((__u16 *)dst)[0] = ((const __u16 *)src)[0];
    ((__u16 *)dst)[1] = ((const __u16 *)src)[1];
    ((__u16 *)dst)[2] = ((const __u16 *)src)[2];
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b) {
    const __u16 *x = (const __u16 *)a;
    const __u16 *y = (const __u16 *)b;
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2])) == 0;
}

static __always_inline int mac_is_group(const __u8 *m) { return m[0] & 1; }

#endif
