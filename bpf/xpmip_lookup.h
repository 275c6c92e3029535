/* Finding the session of a packet, with one dependent map lookup on the fast path (README "Data
 * plane at scale"): a received tunnel packet by its GRE key, the session's index into `sessions`
 * (a key that is not one, by tunnel_keys; no key, by the key-less trie); a packet toward the tunnel
 * by the MN's /32 IPv4 home address or /64 prefix (mn_routes4/6, whose values carry the path), a
 * prefix of another length by the mn_prefixes tries; an MN's frame at the MAG by its station
 * entry. Multipath sessions look their other paths up in session_paths. */
#ifndef XPMIP_LOOKUP_H
#define XPMIP_LOOKUP_H

#include "xpmip_plan.h"

/* A received tunnel packet's session and path. */
struct tunnel_match {
    struct xpmip_session *s;
    const struct xpmip_path *path;
    struct xpmip_paths *paths;      /* multipath sessions: all paths and their counters */
    __u32 pidx;
};

/* Does `addr` (16 octets, IPv4-mapped for family 4) belong to the MN whose prefix and home
 * address these are? */
static __always_inline int owns_address(__u8 flags, const __u8 *hnp, __u8 hnp_len, const __u8 *hoa, __u8 hoa_len,
                                        const __u8 *addr, __u8 family) {
    if (family == 4) {
        __u8 hoa16[16];
        addr_from_v4(hoa16, *(const __be32 *)hoa);
        return (flags & XPMIP_SESSION_HOA) && prefix_match(addr, hoa16, 96 + hoa_len);
    }
    return (flags & XPMIP_SESSION_HNP) && prefix_match(addr, hnp, hnp_len);
}

static __always_inline int session_owns(const struct xpmip_session *s, const __u8 *addr, __u8 family) {
    return owns_address(s->flags, s->hnp, s->hnp_len, s->hoa, s->hoa_len, addr, family);
}

/* An index into a session's paths, bounded where the verifier sees it: the compiler drops a plain
 * `& (XPMIP_MAX_PATHS - 1)` after a range check, and older verifiers (Linux 6.1) do not carry
 * that check's bound over to the register the access uses. */
static __always_inline __u32 path_slot(__u32 pidx) {
    asm volatile("%[i] &= %[m]" : [i] "+r"(pidx) : [m] "i"(XPMIP_MAX_PATHS - 1));
    return pidx;
}

/* Path `pidx` of a session (its first path is in the session itself). */
static __always_inline int match_path(struct tunnel_match *m, __u32 pidx) {
    m->pidx = pidx;
    if (m->s->npaths > 1) {
        __u32 sid = m->s->id;
        m->paths = bpf_map_lookup_elem(&session_paths, &sid);
        if (!m->paths) {
            return -1;
        }
    }
    if (pidx == 0) {
        m->path = &m->s->path;
        return 0;
    }
    if (!m->paths || pidx >= XPMIP_MAX_PATHS || pidx >= m->paths->npaths) {
        return -1;
    }
    m->path = &m->paths->paths[path_slot(pidx)];
    return 0;
}

static __always_inline int match_ref(struct tunnel_match *m, const struct xpmip_path_ref *ref) {
    __u32 sid = ref->session;
    m->s = bpf_map_lookup_elem(&sessions, &sid);
    if (!m->s || m->s->id != sid) {
        return -1;
    }
    return match_path(m, ref->path);
}

/* By our own GRE key (RFC 5845 §3.3: the LMA assigns uplink keys, the MAG downlink keys): an
 * index into `sessions` when it is one, else tunnel_keys. A verdict. */
static __always_inline __u32 session_by_key(struct tunnel_match *m, __u32 scope, __u32 key, int lma,
                                            const struct xpmip_config *cfg) {
    if (scope == 0 && key != 0 && key < cfg->sessions) {
        m->s = bpf_map_lookup_elem(&sessions, &key);
        if (m->s && m->s->id == key && (lma ? m->s->path.key_uplink : m->s->path.key_downlink) == key &&
            (m->s->flags & XPMIP_SESSION_GRE_KEY)) {
            return match_path(m, 0) ? DROP(XPMIP_STAT_DROP_SESSION_GONE) : VERDICT_OK;
        }
    }
    struct xpmip_tunnel_key tk = {.scope = scope, .key = key};
    const struct xpmip_path_ref *ref = bpf_map_lookup_elem(&tunnel_keys, &tk);
    if (!ref) {
        return DROP(XPMIP_STAT_DROP_UNKNOWN_KEY);
    }
    return match_ref(m, ref) ? DROP(XPMIP_STAT_DROP_SESSION_GONE) : VERDICT_OK;
}

/* Without a key: by (scope, outer source, the inner MN-side address), longest match. A verdict. */
static __always_inline __u32 session_by_addresses(struct tunnel_match *m, __u32 scope, const __u8 *peer,
                                                  const __u8 *inner) {
    struct xpmip_keyless_key kk = {.prefixlen = 32 + 128 + 128, .scope = scope};
    addr_copy(kk.peer, peer);
    addr_copy(kk.inner, inner);
    const struct xpmip_path_ref *ref = bpf_map_lookup_elem(&tunnel_keyless, &kk);
    if (!ref) {
        return DROP(XPMIP_STAT_DROP_NO_SESSION);
    }
    return match_ref(m, ref) ? DROP(XPMIP_STAT_DROP_SESSION_GONE) : VERDICT_OK;
}

/* Toward the tunnel: the MN's address `addr` in `realm`. Fills `src` and returns 1 when found
 * (0: not an MN's, the stack's; -1: a session that raced away). A multipath session's path is
 * chosen later, from session_paths (encap_source.path is its first path here). */
static __always_inline int route_by_address(struct encap_source *src, __u32 realm, const __u8 *addr, __u8 family) {
    struct xpmip_route *r;
    if (family == 4) {
        struct xpmip_route4_key k = {.realm = realm};
        *(__u32 *)k.addr = addr_to_v4(addr);
        r = bpf_map_lookup_elem(&mn_routes4, &k);
    } else {
        struct xpmip_route6_key k = {.realm = realm};
        __builtin_memcpy(k.prefix, addr, 8);
        r = bpf_map_lookup_elem(&mn_routes6, &k);
    }
    if (r) {
        src->session = r->session;
        src->encap = r->encap;
        src->flags = r->flags;
        src->npaths = r->npaths;
        src->policy = r->policy;
        src->path = &r->path;
        src->tx = &r->tx;
        return 1;
    }
    /* Prefixes of other lengths (a home network prefix that is not a /64, an IPv4 prefix). */
    __u32 *sid;
    if (family == 4) {
        struct xpmip_prefix4_key k = {.prefixlen = 32 + 32, .realm = realm};
        *(__u32 *)k.addr = addr_to_v4(addr);
        sid = bpf_map_lookup_elem(&mn_prefixes4, &k);
    } else {
        struct xpmip_prefix6_key k = {.prefixlen = 32 + 128, .realm = realm};
        addr_copy(k.addr, addr);
        sid = bpf_map_lookup_elem(&mn_prefixes6, &k);
    }
    if (!sid) {
        return 0;
    }
    __u32 id = *sid;
    struct xpmip_session *s = bpf_map_lookup_elem(&sessions, &id);
    if (!s || s->id != id) {
        return -1;
    }
    src->session = id;
    src->encap = s->encap;
    src->flags = s->flags;
    src->npaths = s->npaths;
    src->policy = s->policy;
    src->path = &s->path;
    src->tx = &s->tx;
    return 1;
}

/* A multipath session's path for the flow (RFC 8278 §3 routing rules); a single-path session's
 * one path when it is up. A verdict. */
static __always_inline __u32 steer(struct encap_source *src, const struct steer_flow *f) {
    if (src->npaths <= 1) {
        return (src->path->flags & XPMIP_PATH_UP) ? VERDICT_OK : DROP(XPMIP_STAT_DROP_NO_PATH);
    }
    __u32 sid = src->session;
    struct xpmip_paths *mp = bpf_map_lookup_elem(&session_paths, &sid);
    if (!mp) {
        return DROP(XPMIP_STAT_DROP_SESSION_GONE);
    }
    int pidx = choose_path(mp, src->policy, f);
    if (pidx < 0 || pidx >= XPMIP_MAX_PATHS) {
        return DROP(XPMIP_STAT_DROP_NO_PATH);
    }
    const __u32 slot = path_slot((__u32)pidx);
    src->path = &mp->paths[slot];
    src->path_tx = &mp->tx[slot];
    return VERDICT_OK;
}

#endif
