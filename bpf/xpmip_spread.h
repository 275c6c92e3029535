/* Every core for one tunnel (README "Every core for one tunnel"). GRE, IP-in-IP or UDP between
 * one MAG and one LMA is a single flow to a NIC's RSS hash: one receive queue, one core, carries
 * everything a MAG sends. So the XDP program on the CPU that received a tunnel packet hashes the
 * packet's inner flow and, when the hash names another CPU of `spread_cpus`, hands the packet to
 * it through the CPUMAP `cpu_map`; on that CPU the cpumap program (xpmip_xdp_cpumap) runs the
 * gateway again, without spreading. The receiving CPUs need not be in the list: `spread_cpus: 1-3`
 * leaves CPU 0 to receive and hand on. A flow always hashes to the same CPU and a CPUMAP queue is
 * FIFO, so the packets of one flow keep their order (those of different flows need not). */
#ifndef XPMIP_SPREAD_H
#define XPMIP_SPREAD_H

#include "xpmip_plan.h"

#ifdef XPMIP_PROG_XDP

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, XPMIP_MAX_SPREAD_CPUS);
    __type(key, __u32);                      /* CPU id */
    __type(value, struct bpf_cpumap_val);    /* queue size and xpmip_xdp_cpumap */
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} cpu_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, XPMIP_MAX_SPREAD_CPUS);
    __type(key, __u32);                      /* slot, below config.spread_count */
    __type(value, __u32);                    /* CPU id */
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} spread_cpus SEC(".maps");

static __always_inline __u32 hash_mix(__u32 h, __u32 v) {
    h ^= v;
    h *= 0x9e3779b1;   /* Fibonacci hashing: 2^32 / golden ratio */
    return h ^ (h >> 15);
}

/* The inner flow: addresses, protocol and (unless a fragment, whose later pieces have none)
 * ports; for an L2 session the inner MACs. The GRE key keeps MNs with equal inner flows apart. */
static __always_inline __u32 inner_flow_hash(const struct tunnel_info *t, const struct l3info *in, void *inner,
                                             void *data_end, int l2) {
    __u32 h = hash_mix(0, t->key);
    if (l2) {
        const __u32 *m = inner;
        if ((void *)(m + 3) > data_end) {
            return h;
        }
        return hash_mix(hash_mix(hash_mix(h, m[0]), m[1]), m[2]);
    }
    const __u32 *s = (const __u32 *)in->src, *d = (const __u32 *)in->dst;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        h = hash_mix(h, s[i] ^ (d[i] * 0x85ebca6b));
    }
    const __u32 ports = in->fragment ? 0 : ((__u32)in->sport << 16 | in->dport);
    return hash_mix(h, ports ^ ((__u32)in->proto << 24));
}

/* Hand the packet on when its flow belongs to another CPU (pl->kind = PLAN_SPREAD); 1 if so. */
static __always_inline int plan_spread(struct plan *pl, const struct xpmip_config *cfg, const struct tunnel_info *t,
                                       const struct l3info *in, void *inner, void *data_end, int l2) {
    if (pl->spread || !cfg->spread_count) {
        return 0;
    }
    const __u32 count = cfg->spread_count > XPMIP_MAX_SPREAD_CPUS ? XPMIP_MAX_SPREAD_CPUS : cfg->spread_count;
    /* Lemire's multiply-shift: the hash scaled onto [0, count) without a division. */
    __u32 slot = (__u32)(((__u64)inner_flow_hash(t, in, inner, data_end, l2) * count) >> 32);
    const __u32 *cpu = bpf_map_lookup_elem(&spread_cpus, &slot);
    if (!cpu || *cpu == bpf_get_smp_processor_id()) {
        return 0;
    }
    pl->kind = PLAN_SPREAD;
    pl->cpu = *cpu;
    return 1;
}

#else
#define plan_spread(pl, cfg, t, in, inner, data_end, l2) 0
#endif

#endif
