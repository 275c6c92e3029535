// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The forwarding benchmark's reference (bench/, not part of the gateway): a bare XDP_REDIRECT
 * forwarder. Every frame gets the MACs of `forward_to` and leaves by its interface, nothing
 * looked at: the least an XDP router does per packet, measured in the same topology as xpmip.
 * Loaded and configured by `xpmip-bench forward IFACE --to OUT --dmac MAC`. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct forward_to {
    __u32 ifindex;
    __u8 smac[6];
    __u8 dmac[6];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct forward_to);
} forward SEC(".maps");

SEC("xdp")
int xpmip_bench_forward(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    struct forward_to *f = bpf_map_lookup_elem(&forward, &zero);
    if (!f || data + 14 > end)
        return XDP_DROP;
    __builtin_memcpy(data, f->dmac, 6);
    __builtin_memcpy(data + 6, f->smac, 6);
    return bpf_redirect(f->ifindex, 0);
}
