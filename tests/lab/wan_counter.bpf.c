// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test instrument, not part of the gateway: a tc ingress program on the lab's transit bridge ports
 * (xl-wan: m0/l0 are RED, m1/l1 BLUE) that records every GRE packet crossing them: when (ktime,
 * CLOCK_MONOTONIC), on which port, the GRE key and the inner 5-tuple, TCP sequence number and
 * payload length. tests/lab/wan_counter.py reads the records through an mmap of the map.
 *
 * Unlike a packet capture it misses nothing (a record is written in the packet's own softirq) and
 * its order is the order packets crossed the bridges: the counter is taken with an atomic add. A
 * full buffer drops records, never packets, and says so in `overflow`. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define WAN_RECORDS (1u << 17)   /* entry 0 is the header */

struct wan_record {
    __u64 ns;
    __u32 ifindex;
    __u32 tcp_seq;
    __u16 sport;
    __u16 dport;
    __u16 payload;   /* inner L4 payload octets */
    __u8 proto;      /* inner IP protocol */
    __u8 family;     /* inner: 4 or 6 */
    __u32 gre_key;
    __u8 src[16];    /* inner addresses (IPv4 in the first 4 octets) */
    __u8 dst[16];
    __u32 pad;
};
_Static_assert(sizeof(struct wan_record) == 64, "wan_record is 64 octets (tests/lab/wan_counter.py)");

struct wan_header {
    __u64 next;      /* records written so far (the next index is next + 1) */
    __u64 overflow;  /* records dropped for want of room */
    __u8 pad[48];
};
_Static_assert(sizeof(struct wan_header) == sizeof(struct wan_record), "header fills entry 0");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, WAN_RECORDS);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct wan_record);
} wan_records SEC(".maps");

#define GRE_C 0x8000
#define GRE_K 0x2000
#define GRE_S 0x1000

static __always_inline int inner_l4(struct __sk_buff *skb, __u32 off, __u8 proto, __u32 l4_len,
                                    struct wan_record *r) {
    r->proto = proto;
    if (proto == IPPROTO_TCP) {
        __u8 tcp[13];
        if (bpf_skb_load_bytes(skb, off, tcp, sizeof tcp)) {
            return -1;
        }
        r->sport = (__u16)((tcp[0] << 8) | tcp[1]);
        r->dport = (__u16)((tcp[2] << 8) | tcp[3]);
        r->tcp_seq = ((__u32)tcp[4] << 24) | ((__u32)tcp[5] << 16) | ((__u32)tcp[6] << 8) | tcp[7];
        __u32 doff = (__u32)(tcp[12] >> 4) * 4;
        r->payload = l4_len > doff ? (__u16)(l4_len - doff) : 0;
    } else if (proto == IPPROTO_UDP) {
        __u8 udp[4];
        if (bpf_skb_load_bytes(skb, off, udp, sizeof udp)) {
            return -1;
        }
        r->sport = (__u16)((udp[0] << 8) | udp[1]);
        r->dport = (__u16)((udp[2] << 8) | udp[3]);
        r->payload = l4_len > 8 ? (__u16)(l4_len - 8) : 0;
    }
    return 0;
}

/* The inner packet at `off` (GRE protocol `ptype`) into r. */
static __always_inline int inner_ip(struct __sk_buff *skb, __u32 off, __u16 ptype, struct wan_record *r) {
    if (ptype == ETH_P_IP) {
        __u8 ip[20];
        if (bpf_skb_load_bytes(skb, off, ip, sizeof ip)) {
            return -1;
        }
        __u32 ihl = (__u32)(ip[0] & 0xf) * 4;
        __u32 total = ((__u32)ip[2] << 8) | ip[3];
        r->family = 4;
        __builtin_memcpy(r->src, &ip[12], 4);
        __builtin_memcpy(r->dst, &ip[16], 4);
        return inner_l4(skb, off + ihl, ip[9], total > ihl ? total - ihl : 0, r);
    }
    if (ptype == ETH_P_IPV6) {
        __u8 ip[40];
        if (bpf_skb_load_bytes(skb, off, ip, sizeof ip)) {
            return -1;
        }
        r->family = 6;
        __builtin_memcpy(r->src, &ip[8], 16);
        __builtin_memcpy(r->dst, &ip[24], 16);
        return inner_l4(skb, off + 40, ip[6], ((__u32)ip[4] << 8) | ip[5], r);
    }
    return -1;
}

SEC("tc")
int wan_count(struct __sk_buff *skb) {
    struct wan_record r = {};
    __u32 off = ETH_HLEN;
    __u8 l4 = 0;
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        __u8 ip[20];
        if (bpf_skb_load_bytes(skb, off, ip, sizeof ip)) {
            return TC_ACT_OK;
        }
        l4 = ip[9];
        off += (__u32)(ip[0] & 0xf) * 4;
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        __u8 ip[40];
        if (bpf_skb_load_bytes(skb, off, ip, sizeof ip)) {
            return TC_ACT_OK;
        }
        l4 = ip[6];
        off += 40;
    }
    if (l4 != IPPROTO_GRE) {
        return TC_ACT_OK;
    }
    __u8 gre[4];
    if (bpf_skb_load_bytes(skb, off, gre, sizeof gre)) {
        return TC_ACT_OK;
    }
    __u16 flags = (__u16)((gre[0] << 8) | gre[1]);
    __u16 ptype = (__u16)((gre[2] << 8) | gre[3]);
    off += 4;
    if (flags & GRE_C) {
        off += 4;
    }
    if (flags & GRE_K) {
        __u8 key[4];
        if (bpf_skb_load_bytes(skb, off, key, sizeof key)) {
            return TC_ACT_OK;
        }
        r.gre_key = ((__u32)key[0] << 24) | ((__u32)key[1] << 16) | ((__u32)key[2] << 8) | key[3];
        off += 4;
    }
    if (flags & GRE_S) {
        off += 4;
    }
    if (inner_ip(skb, off, ptype, &r)) {
        return TC_ACT_OK;
    }
    r.ns = bpf_ktime_get_ns();
    r.ifindex = skb->ifindex;

    __u32 zero = 0;
    struct wan_header *h = bpf_map_lookup_elem(&wan_records, &zero);
    if (!h) {
        return TC_ACT_OK;
    }
    __u32 i = (__u32)__sync_fetch_and_add(&h->next, 1) + 1;
    struct wan_record *slot = i < WAN_RECORDS ? bpf_map_lookup_elem(&wan_records, &i) : 0;
    if (!slot) {
        __sync_fetch_and_add(&h->overflow, 1);
        return TC_ACT_OK;
    }
    *slot = r;
    return TC_ACT_OK;
}
