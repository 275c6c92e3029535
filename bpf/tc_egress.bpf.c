// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc (clsact) egress on tunnel-side interfaces: packets the stack itself emits toward a mobile
 * node (LMA) or from one (MAG), e.g. locally generated TCP with GSO, routed there by the MN
 * routes the agent installs. They are encapsulated like XDP would, with the GSO-safe
 * bpf_skb_adjust_room flags. Stack-emitted traffic belongs to the realm of the interface. */
#include "xpmip_tc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int xpmip_tc_egress(struct __sk_buff *skb) {
    __u32 ifindex = skb->ifindex;
    const struct xpmip_iface *ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
    if (!ifc || ifc->kind != XPMIP_IF_TUNNEL) {
        return TC_ACT_OK;
    }
    const struct xpmip_config *cfg = instance_config();
    if (!cfg) {
        return TC_ACT_OK;
    }
    tc_pull(skb, TC_PULL);
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct plan *pl = plan_get();
    if (!pl) {
        return TC_ACT_OK;
    }
    pl->gso = skb->gso_size != 0;
    pl->in_ifindex = ifindex;
    pl->realm = ifc->realm;
    pl->mn_is_source = cfg->role == XPMIP_ROLE_MAG;
    classify_mn_traffic(skb, data, data_end, 0, pl);
    /* The stack already decremented the TTL of what it forwards; its own packets keep theirs. */
    return tc_apply(skb, pl, 0);
}
