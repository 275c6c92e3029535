/* Path selection (RFC 8278 §3 routing rules): a steering policy picks a label preference list
 * (or per-packet weighted distribution) for the flow; per-flow, the flow's path among the up
 * paths carrying the label is the one with the highest rendezvous hash of (5-tuple, Binding-Id),
 * so a flow moves only when its own path goes down, and comes back when it returns. */
#ifndef XPMIP_STEER_H
#define XPMIP_STEER_H

#include "xpmip_maps.h"

/* A flow in the mobile node's terms: the same at the MAG (uplink) and the LMA (downlink). */
struct steer_flow {
    __u8 local[16];       /* the MN's address */
    __u8 remote[16];      /* the correspondent's */
    __u16 local_port;
    __u16 remote_port;
    __u8 proto;
    __u8 dscp;
    __u8 family;          /* 4, 6; 0 for non-IP (L2) frames */
    __u8 pad;
};

static __always_inline __u32 mix32(__u32 h) {
    /* murmur3 finaliser */
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

static __always_inline __u32 flow_hash(const struct steer_flow *f) {
    const __u32 *w = (const __u32 *)f;
    __u32 h = 0x9747b28c;
#pragma unroll
    for (int i = 0; i < (int)(sizeof(*f) / 4); i++) {
        h = mix32(h ^ w[i]) * 5 + 0xe6546b64;
    }
    return mix32(h);
}

static __always_inline int port_in(__u16 port, __u16 lo, __u16 hi) {
    return port >= lo && port <= hi;
}

/* The steering functions are global BPF functions: the verifier checks each once, on its own,
 * instead of once per state of every caller (nested loops over rules, labels and paths would
 * otherwise exceed its complexity limit). Pointer arguments may be NULL to it. */

__noinline int steer_rule_matches(const struct xpmip_rule *r, const struct steer_flow *f) {
    if (!r || !f) {
        return 0;
    }
    if (r->proto && r->proto != f->proto) {
        return 0;
    }
    if (r->dscp != 0xff && r->dscp != f->dscp) {
        return 0;
    }
    if (r->remote_len) {
        if (r->family != f->family || !prefix_match(r->remote, f->remote, r->family == 4 ? 96 + r->remote_len : r->remote_len)) {
            return 0;
        }
    }
    if (!port_in(f->remote_port, r->remote_port_lo, r->remote_port_hi) ||
        !port_in(f->local_port, r->local_port_lo, r->local_port_hi)) {
        return 0;
    }
    return 1;
}

#define STEER_NO_PATH (-1)

/* Among up paths with `label` (any label when label < 0), the one with the highest rendezvous
 * score; STEER_NO_PATH if there is none. */
__noinline int steer_rendezvous(const struct xpmip_paths *s, __u32 hash, int label) {
    if (!s) {
        return STEER_NO_PATH;
    }
    int best = STEER_NO_PATH;
    __u32 best_score = 0;
    for (int i = 0; i < XPMIP_MAX_PATHS; i++) {
        if ((__u32)i >= s->npaths) {
            break;
        }
        const struct xpmip_path *p = &s->paths[i];
        if (!(p->flags & XPMIP_PATH_UP) || (label >= 0 && p->label != label)) {
            continue;
        }
        __u32 score = mix32(hash ^ ((__u32)p->bid * 0x9e3779b9U));
        if (best < 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

/* Per packet: a random up path carrying one of the rule's labels (all up paths if it names
 * none), in proportion to path weights. */
__noinline int steer_weighted(const struct xpmip_paths *s, const struct xpmip_rule *r) {
    if (!s || !r) {
        return STEER_NO_PATH;
    }
    __u32 total = 0;
    __u32 eligible = 0;
    for (int i = 0; i < XPMIP_MAX_PATHS; i++) {
        if ((__u32)i >= s->npaths) {
            break;
        }
        const struct xpmip_path *p = &s->paths[i];
        if (!(p->flags & XPMIP_PATH_UP) || !p->weight) {
            continue;
        }
        int ok = r->nlabels == 0;
        for (int l = 0; l < XPMIP_MAX_LABEL_PREFS; l++) {
            if (l < r->nlabels && r->labels[l] == p->label) {
                ok = 1;
            }
        }
        if (ok) {
            total += p->weight;
            eligible |= 1U << i;
        }
    }
    if (!total) {
        return STEER_NO_PATH;
    }
    __u32 pick = bpf_get_prandom_u32() % total;
    for (int i = 0; i < XPMIP_MAX_PATHS; i++) {
        if (!(eligible & (1U << i))) {
            continue;
        }
        __u8 w = s->paths[i].weight;
        if (pick < w) {
            return i;
        }
        pick -= w;
    }
    return STEER_NO_PATH;
}

/* Choose the path for a flow of a multipath session (its paths `s`, steering policy `policy`);
 * STEER_NO_PATH when none may carry it. */
__noinline int choose_path(const struct xpmip_paths *s, __u8 policy, const struct steer_flow *f) {
    if (!s || !f) {
        return STEER_NO_PATH;
    }
    __u32 hash = flow_hash(f);
    __u32 policy_id = policy;
    const struct xpmip_policy *pol = policy_id ? bpf_map_lookup_elem(&policies, &policy_id) : 0;
    if (pol) {
        for (int i = 0; i < XPMIP_MAX_RULES; i++) {
            if ((__u32)i >= pol->nrules) {
                break;
            }
            const struct xpmip_rule *r = &pol->rules[i];
            if (!steer_rule_matches(r, f)) {
                continue;
            }
            if (r->mode == XPMIP_STEER_PER_PACKET) {
                int p = steer_weighted(s, r);
                if (p >= 0 || (r->flags & XPMIP_RULE_STRICT)) {
                    return p;
                }
                break;  /* fall back to any up path */
            }
            for (int l = 0; l < XPMIP_MAX_LABEL_PREFS; l++) {
                if (l >= r->nlabels) {
                    break;
                }
                int p = steer_rendezvous(s, hash, r->labels[l]);
                if (p >= 0) {
                    return p;
                }
            }
            if (r->flags & XPMIP_RULE_STRICT) {
                return STEER_NO_PATH;
            }
            count_stat(&counters, XPMIP_STAT_STEER_FALLBACK);
            break;
        }
    }
    return steer_rendezvous(s, hash, -1);
}

#endif
