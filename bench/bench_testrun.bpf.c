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
 * CPU (frames[cpu % count], first `copy` octets) before every XDP_TX. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define BENCH_COPY_MAX 256

struct bench_config {
    __u32 len;      /* frame length */
    __u32 count;    /* frames in `frames` */
    __u32 copy;     /* octets restored before each run (<= len, <= BENCH_COPY_MAX) */
    __s32 delta;    /* expected length change of one run */
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
    struct bench_frame *f = bpf_map_lookup_elem(&frames, &idx);
    if (!f)
        return XDP_ABORTED;
    __u32 copy = c->copy;
    if (copy > BENCH_COPY_MAX)
        copy = BENCH_COPY_MAX;
    if (copy < 14)
        return XDP_ABORTED;
    if (bpf_xdp_store_bytes(ctx, 0, f->data, copy))
        return XDP_ABORTED;
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
    struct bench_frame *f = bpf_map_lookup_elem(&frames, &idx);
    if (!f)
        return XDP_ABORTED;
    __u32 copy = c->copy;
    if (copy > BENCH_COPY_MAX)
        copy = BENCH_COPY_MAX;
    if (copy < 14)
        return XDP_ABORTED;
    if (bpf_xdp_store_bytes(ctx, 0, f->data, copy))
        return XDP_ABORTED;
    return XDP_TX;
}
