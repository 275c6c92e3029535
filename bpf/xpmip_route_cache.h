/* The route of the LMA uplink toward a correspondent, cached (README "Route cache"). A realm's
 * uplink costs one bpf_fib_lookup per packet (about 250 ns for IPv4 and 550 ns for IPv6 on the
 * development VM: the largest item of the hot path), while the route to a correspondent changes
 * rarely and most traffic goes to few of them. So a resolved route (next hop with its neighbour)
 * is remembered per (core interface, destination) in the LRU hash `route_cache` and serves while
 * it is of the current config.route_generation, which the agent moves on every route, neighbour
 * and link event it reads, and younger than config.route_ttl_ms (a second by default: a bound on staleness when
 * no agent watches, or an event is lost). What is not a plain resolved route (this host's own
 * address, no route, no neighbour yet) is never cached: the FIB answers it every time. */
#ifndef XPMIP_ROUTE_CACHE_H
#define XPMIP_ROUTE_CACHE_H

#include "xpmip_plan.h"

#define ROUTE_NOT_CACHED (-1)

static __always_inline const struct xpmip_config *route_cache_config(__u32 oif) {
    const struct xpmip_config *cfg = instance_config();
    return cfg && (cfg->flags & XPMIP_CONFIG_ROUTE_CACHE) && oif ? cfg : 0;
}

/* As fib_toward, from the cache: 0 the plan has the route, > 0 the route's MTU when tot_len does
 * not fit, ROUTE_NOT_CACHED when the FIB must be asked. */
static __always_inline int route_cached(struct plan *pl, __u32 oif, const __u8 *dst, __u16 tot_len) {
    const struct xpmip_config *cfg = route_cache_config(oif);
    if (!cfg) {
        return ROUTE_NOT_CACHED;
    }
    struct xpmip_route_cache_key k = {.oif = oif};
    addr_copy(k.dst, dst);
    const struct xpmip_route_cache_entry *e = bpf_map_lookup_elem(&route_cache, &k);
    const __u64 ttl_ns = (__u64)(cfg->route_ttl_ms ? cfg->route_ttl_ms : XPMIP_ROUTE_CACHE_TTL_MS) * 1000000;
    if (!e || e->generation != cfg->route_generation || bpf_ktime_get_coarse_ns() - e->filled_ns >= ttl_ns) {
        return ROUTE_NOT_CACHED;
    }
    if (tot_len > e->mtu) {
        return e->mtu;
    }
    pl->ifindex = e->ifindex;
    pl->neigh = 0;
    mac_copy(pl->smac, e->smac);
    mac_copy(pl->dmac, e->dmac);
    return 0;
}

/* Remember the route fib_toward just resolved into `pl` (the family: pl->inner_v4), with the
 * route's MTU: a second lookup with a length no route carries answers "fragmentation needed"
 * with it. */
static __noinline int route_cache_fill(void *ctx, const struct plan *pl, const __u8 *src, const __u8 *dst, __u32 oif) {
    const struct xpmip_config *cfg = route_cache_config(oif);
    if (!cfg || !pl) {
        return 0;
    }
    struct bpf_fib_lookup p = {};
    fib_params(&p, pl->inner_v4, src, dst, 0xffff, oif);
    const long rc = bpf_fib_lookup(ctx, &p, sizeof(p), BPF_FIB_LOOKUP_OUTPUT);
    __u16 mtu = 0;
    if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && p.mtu_result) {
        mtu = p.mtu_result;
    } else if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
        mtu = 0xffff;
    }
    if (!mtu) {
        return 0;
    }
    struct xpmip_route_cache_key k = {.oif = oif};
    addr_copy(k.dst, dst);
    struct xpmip_route_cache_entry e = {};
    e.filled_ns = bpf_ktime_get_coarse_ns();
    e.generation = cfg->route_generation;
    e.ifindex = pl->ifindex;
    e.mtu = mtu;
    mac_copy(e.smac, pl->smac);
    mac_copy(e.dmac, pl->dmac);
    bpf_map_update_elem(&route_cache, &k, &e, BPF_ANY);
    return 0;
}

#endif
