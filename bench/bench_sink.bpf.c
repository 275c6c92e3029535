// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The sink of the forwarding benchmark (bench/, not part of the gateway): counts and drops
 * every frame; `sink_counts`[1] counts only the benchmark's own packets, plain IPv4 or IPv6
 * UDP to port 9 (discard), i.e. delivered decapsulated; [0] counts everything. Attached with
 * `ip link set dev X xdpdrv obj bench_sink.bpf.o sec xdp`, read with `xpmip-bench count X`. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SINK_PORT 9

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} sink_counts SEC(".maps");

static __always_inline void count(__u32 i)
{
    __u64 *v = bpf_map_lookup_elem(&sink_counts, &i);
    if (v)
        *v += 1;
}

SEC("xdp")
int xpmip_bench_sink(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct udphdr *udp = 0;
    count(0);
    if ((void *)(eth + 1) > end)
        return XDP_DROP;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
            return XDP_DROP;
        udp = (void *)(ip + 1);
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
            return XDP_DROP;
        udp = (void *)(ip6 + 1);
    }
    if (udp && (void *)(udp + 1) <= end && udp->dest == bpf_htons(SINK_PORT))
        count(1);
    return XDP_DROP;
}
