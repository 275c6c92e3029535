// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmark helpers for BPF_PROG_TEST_RUN (bench/, not part of the gateway).
 *
 * xpmip_bench_xdp_tx: the baseline, a bare XDP_TX.
 *
 * xpmip_bench_wrap: makes BPF_PROG_TEST_RUN's `repeat` meaningful for a program that rewrites the
 * packet. The kernel runs the program `repeat` times on one xdp_buff without restoring it, so
 * from the second run on an encapsulating program would see its own output (and a decapsulating
 * one the inner packet). Before every run the wrapper puts the frame back: it moves the data
 * pointer by the length change of the previous run (the gateway only moves the head on these
 * paths), rewrites the first `copy` octets from the `frames` map (frame i of `count`, round
 * robin, so one run can visit many sessions), then tail-calls the program under test
 * (`target`[0]). Its own cost is measured by tail-calling xpmip_bench_xdp_tx the same way.
 *
 * `state` counts runs and the runs whose length change was not the expected one (a run that took
 * another path than the first): user space checks it is 0.
 *
 * xpmip_bench_gen: the traffic generator's program (BPF_PROG_TEST_RUN in live-frame mode, see
 * xpmip-bench send --generator xdp). The kernel resets a recycled frame's pointers but not its
 * octets, and the gateway and the stack rewrite headers in place: so it writes the frame of its
 * CPU (frames[cpu % count], first `copy` octets) before every XDP_TX, and (`vary`) one field
 * varied as below: many flows from one thread.
 *
 * Spread traffic over N sessions without N frames: `vary` names up to two 32-bit big-endian
 * fields of the frame (a GRE key, an address) that the wrapper sets to their value in the frame
 * plus an index drawn anew every run (a multiplicative hash of the run count, mod vary_count),
 * fixing the IPv4 header checksum a field sits under (RFC 1624 incremental update). So every
 * packet is for another of all N sessions in an order the CPU's prefetchers cannot follow.
 *
 * The references the gateway is compared with (issue 15), each as little as the job takes:
 *   xpmip_bench_ref_encap: outer IPv4 + GRE with key in front of the frame (28 octets), the IPv4
 *     header checksum, XDP_TX;
 *   xpmip_bench_ref_decap: the GRE key of an IPv4 GRE packet looked up in `ref_keys` (a hash of
 *     N entries, the bench fills it), 28 octets stripped, the MACs from the value, XDP_TX. */
#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define BENCH_COPY_MAX 256

struct bench_vary {
    __u32 off;       /* the field's offset in the frame (0: none) */
    __u32 csum_off;  /* the IPv4 header checksum over it (0: none) */
};

struct bench_config {
    __u32 len;      /* frame length */
    __u32 count;    /* frames in `frames` */
    __u32 copy;     /* octets restored before each run (<= len, <= BENCH_COPY_MAX) */
    __s32 delta;    /* expected length change of one run */
    __u32 vary_count;              /* 0: no varying */
    __u32 pad;
    struct bench_vary vary[2];
};

struct ref_value {
    __u8 smac[6];
    __u8 dmac[6];
    __u32 ifindex;
};

struct bench_state {
    __u64 runs;
    __u64 mismatches;
};

struct bench_frame {
    __u8 data[BENCH_COPY_MAX];
};

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} target SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bench_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bench_state);
} state SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);                  /* set at load */
    __type(key, __u32);
    __type(value, struct bench_frame);
} frames SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1);                  /* set at load */
    __type(key, __u32);
    __type(value, struct ref_value);
} ref_keys SEC(".maps");

static __always_inline __u16 csum_fold(__u32 s)
{
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return (__u16)s;
}

/* Field i of `vary` += idx, and the checksum over it (RFC 1624: HC' = ~(~HC + ~m + m')). */
static __always_inline int vary_field(struct xdp_md *ctx, const struct bench_vary *v, __u32 idx)
{
    __u32 old_be, new_be;
    if (!v->off)
        return 0;
    if (bpf_xdp_load_bytes(ctx, v->off, &old_be, 4))
        return -1;
    new_be = bpf_htonl(bpf_ntohl(old_be) + idx);
    if (bpf_xdp_store_bytes(ctx, v->off, &new_be, 4))
        return -1;
    if (!v->csum_off)
        return 0;
    __u16 hc;
    if (bpf_xdp_load_bytes(ctx, v->csum_off, &hc, 2))
        return -1;
    __u32 sum = (__u16)~hc;
    sum += (__u16)~(old_be & 0xffff) + (__u16)~(old_be >> 16);
    sum += (new_be & 0xffff) + (new_be >> 16);
    hc = (__u16)~csum_fold(sum);
    return bpf_xdp_store_bytes(ctx, v->csum_off, &hc, 2) ? -1 : 0;
}

/* The first `copy` octets of frame `idx` written over the packet (both users rewrite in place). */
static __always_inline int restore_frame(struct xdp_md *ctx, const struct bench_config *c, __u32 idx)
{
    struct bench_frame *f = bpf_map_lookup_elem(&frames, &idx);
    if (!f)
        return -1;
    __u32 copy = c->copy;
    if (copy > BENCH_COPY_MAX)
        copy = BENCH_COPY_MAX;
    if (copy < 14)
        return -1;
    return bpf_xdp_store_bytes(ctx, 0, f->data, copy) ? -1 : 0;
}

SEC("xdp")
int xpmip_bench_ref_encap(struct xdp_md *ctx)
{
    if (bpf_xdp_adjust_head(ctx, -28))
        return XDP_ABORTED;
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 14 + 28 + 14 > end)
        return XDP_ABORTED;
    __builtin_memmove(data, data + 28, 12);      /* the MACs stay where Ethernet now starts */
    __u8 *p = data;
    p[12] = 0x08;
    p[13] = 0x00;
    struct iphdr *ip = data + 14;
    ip->version = 4;
    ip->ihl = 5;
    ip->tos = 0;
    ip->tot_len = bpf_htons((__u16)(end - data - 14));
    ip->id = 0;
    ip->frag_off = bpf_htons(0x4000);
    ip->ttl = 64;
    ip->protocol = 47;
    ip->check = 0;
    ip->saddr = bpf_htonl(0xCB007101);           /* 203.0.113.1 -> .2 */
    ip->daddr = bpf_htonl(0xCB007102);
    __u32 sum = 0;
    __u16 *w = (__u16 *)ip;
#pragma unroll
    for (int i = 0; i < 10; i++)
        sum += w[i];
    ip->check = (__u16)~csum_fold(sum);
    __u32 *gre = (__u32 *)(ip + 1);
    gre[0] = bpf_htonl(0x20000800);               /* K set, version 0, IPv4 */
    gre[1] = bpf_htonl(0x20000001);
    return XDP_TX;
}

SEC("xdp")
int xpmip_bench_ref_decap(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 14 + 28 > end)
        return XDP_DROP;
    struct iphdr *ip = data + 14;
    if (ip->ihl != 5 || ip->protocol != 47)
        return XDP_DROP;
    __u32 *gre = (__u32 *)(ip + 1);
    if (gre[0] != bpf_htonl(0x20000800))
        return XDP_DROP;
    __u32 key = bpf_ntohl(gre[1]);
    struct ref_value *v = bpf_map_lookup_elem(&ref_keys, &key);
    if (!v)
        return XDP_DROP;
    if (bpf_xdp_adjust_head(ctx, 28))
        return XDP_ABORTED;
    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    if (data + 14 > end)
        return XDP_ABORTED;
    __builtin_memcpy(data, v->dmac, 6);
    __builtin_memcpy(data + 6, v->smac, 6);
    ((__u8 *)data)[12] = 0x08;
    ((__u8 *)data)[13] = 0x00;
    return XDP_TX;
}

SEC("xdp")
int xpmip_bench_xdp_tx(struct xdp_md *ctx)
{
    return XDP_TX;
}

SEC("xdp")
int xpmip_bench_wrap(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct bench_config *c = bpf_map_lookup_elem(&config, &zero);
    struct bench_state *s = bpf_map_lookup_elem(&state, &zero);
    if (!c || !s || !c->count)
        return XDP_ABORTED;
    long len = (long)ctx->data_end - (long)ctx->data;
    if (s->runs) {
        long d = len - (long)c->len;
        if (d != c->delta)
            s->mismatches++;
        if (d && bpf_xdp_adjust_head(ctx, (int)d))
            return XDP_ABORTED;
    }
    __u32 idx = (__u32)(s->runs % c->count);
    s->runs++;
    if (restore_frame(ctx, c, idx))
        return XDP_ABORTED;
    if (c->vary_count) {
        __u32 vidx = (__u32)((s->runs * 0x9E3779B97F4A7C15ULL) >> 32) % c->vary_count;
        if (vary_field(ctx, &c->vary[0], vidx) || vary_field(ctx, &c->vary[1], vidx))
            return XDP_ABORTED;
    }
    bpf_tail_call(ctx, &target, 0);
    return XDP_ABORTED;
}

SEC("xdp")
int xpmip_bench_gen(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct bench_config *c = bpf_map_lookup_elem(&config, &zero);
    if (!c || !c->count)
        return XDP_ABORTED;
    __u32 idx = bpf_get_smp_processor_id() % c->count;
    if (restore_frame(ctx, c, idx))
        return XDP_ABORTED;
    if (c->vary_count) {
        struct bench_state *s = bpf_map_lookup_elem(&state, &zero);
        if (!s)
            return XDP_ABORTED;
        __u32 vidx = (__u32)((++s->runs * 0x9E3779B97F4A7C15ULL) >> 32) % c->vary_count;
        if (vary_field(ctx, &c->vary[0], vidx))
            return XDP_ABORTED;
    }
    return XDP_TX;
}
