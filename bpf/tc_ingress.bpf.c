// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc (clsact) ingress on every gateway interface: the slow path for what XDP handed to the
 * stack (next hop unresolved: bpf_redirect_neigh lets the kernel resolve it) and for packets
 * XDP cannot carry (GRO'd / GSO skbs, generic-mode gaps). Same classification as XDP. */
#include "xpmip_tc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int xpmip_tc_ingress(struct __sk_buff *skb) {
    tc_pull(skb, TC_PULL);
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct plan *pl = plan_get();
    if (!pl) {
        return TC_ACT_OK;
    }
    pl->gso = skb->gso_size != 0;
    classify(skb, data, data_end, skb->ifindex, pl);
    return tc_apply(skb, pl, 1);
}
