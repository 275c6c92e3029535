// The data plane's next-hop cache (the `nexthops` map, README "Next hops"): for every tunnel peer
// the paths lead to, the egress interface, its MAC, the neighbour's MAC and the MTU, as the kernel
// would route to it, so that encapsulation needs no bpf_fib_lookup per packet. SessionTable takes
// the entries; this keeps them resolved from the kernel's routes and neighbours:
//  - a neighbour event re-resolves the entries that go through that neighbour, at once;
//  - a route or link event (or lost events) re-resolves all of them, at most once a second, so a
//    routing daemon's churn costs a bounded amount of work;
//  - entries not resolved yet (a new peer, a neighbour the kernel has not resolved) are tried
//    again once a second.
// An entry without a resolution sends its packets the FIB's way: XDP passes them to the stack
// while the neighbour is unresolved, and the kernel resolves it.
#pragma once

#include "dataplane/maps.hpp"
#include "netlink/next_hop.hpp"

#include <chrono>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace xpmip::dataplane {

// One taken entry as an operator reads it (`xpmip show nexthops`, `xpmip-dp nexthops`).
struct NextHopView {
    std::uint32_t id = 0;
    IpAddress remote;
    IpAddress local;
    std::uint32_t ifindex = 0;   // egress (resolved) or the paths' pinned one
    std::uint16_t mtu = 0;
    bool resolved = false;
    MacAddress smac;
    MacAddress dmac;
    std::uint32_t scope = 0;
    std::uint32_t pinned_ifindex = 0;   // what the paths ask for (0: any)
    std::uint16_t pinned_mtu = 0;
};
std::vector<NextHopView> list_next_hops(const MapSet& maps);

class NextHopCache {
public:
    using Clock = std::chrono::steady_clock;
    explicit NextHopCache(const MapSet& maps) : maps_(maps) {}

    // Every taken entry resolved anew; returns how many are resolved.
    unsigned refresh_all();
    // What the events say changed.
    void on_changes(const netlink::RouteChanges& changes);
    // The periodic work: a pending full pass (after route events), else the unresolved entries.
    void tick(Clock::time_point now);

private:
    unsigned refresh(bool only_unresolved);
    bool refresh_entry(std::uint32_t id, const xpmip_nexthop& nh);   // true when resolved
    void remember_neighbour(std::uint32_t id, int ifindex, const IpAddress& neighbour);

    const MapSet& maps_;
    netlink::NextHopResolver resolver_;
    // Which entries go through which neighbour (ifindex, address), as last resolved.
    std::map<std::pair<int, std::string>, std::set<std::uint32_t>> by_neighbour_;
    std::map<std::uint32_t, std::pair<int, std::string>> neighbour_of_;
    bool routes_changed_ = false;
    Clock::time_point last_full_pass_{};
    Clock::time_point last_unresolved_pass_{};
};

} // namespace xpmip::dataplane
