// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP_PASS, for the far end of veth links in labs and tests. A veth delivers frames another
 * XDP program sends into it (XDP_REDIRECT) or back out of it (XDP_TX) promptly only when its
 * peer runs an XDP program: with GRO alone, XDP_TX frames wait in the ring until other
 * traffic schedules the peer's NAPI. Physical NICs need nothing of the kind. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xpmip_xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
