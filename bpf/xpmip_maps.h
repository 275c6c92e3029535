/* Maps of one data plane instance. Every object (XDP, tc ingress, tc egress) declares the same
 * maps; LIBBPF_PIN_BY_NAME under the instance's pin root makes them one set. Sizes marked
 * "set at load" are placeholders: the loader sizes them from configuration. */
#ifndef XPMIP_MAPS_H
#define XPMIP_MAPS_H

#include "xpmip_common.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct xpmip_config);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);                 /* set at load */
    __type(key, __u32);                      /* ifindex */
    __type(value, struct xpmip_iface);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} ifaces SEC(".maps");

/* The lookup maps (README "Data plane at scale"): one of them answers each packet. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1024);               /* set at load: limits.sessions + 1 */
    __type(key, __u32);                      /* session id = our GRE key of its first path */
    __type(value, struct xpmip_session);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} sessions SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);    /* memory only for multipath sessions */
    __type(key, __u32);                      /* session id */
    __type(value, struct xpmip_paths);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} session_paths SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_route4_key);
    __type(value, struct xpmip_route);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_routes4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_route6_key);
    __type(value, struct xpmip_route);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_routes6 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_prefix4_key);
    __type(value, __u32);                    /* session id */
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_prefixes4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_prefix6_key);
    __type(value, __u32);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_prefixes6 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_station_key);
    __type(value, struct xpmip_station);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} stations SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_tunnel_key);
    __type(value, struct xpmip_path_ref);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_keys SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);               /* set at load */
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct xpmip_keyless_key);
    __type(value, struct xpmip_path_ref);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} tunnel_keyless SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 256);                /* set at load */
    __type(key, __u32);
    __type(value, struct xpmip_nexthop);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} nexthops SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 1024);               /* set at load: limits.route_cache */
    __type(key, struct xpmip_route_cache_key);
    __type(value, struct xpmip_route_cache_entry);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} route_cache SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 16);                 /* set at load */
    __type(key, __u32);                      /* policy id */
    __type(value, struct xpmip_policy);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} policies SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, XPMIP_STAT_MAX);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

/* Unknown stations already reported, so the ring buffer is not flooded: one report per MAC
 * per XPMIP_STATION_REPORT_INTERVAL_NS (RFC-free rate limit; the agent rate-limits too). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct xpmip_station_key);
    __type(value, __u64);                    /* last report, ns */
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} station_reports SEC(".maps");

#endif
