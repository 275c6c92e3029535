// The next hop of a destination as the kernel would send to it (rtnetlink through libnl-route:
// RTM_GETROUTE, then RTM_GETNEIGH for the gateway or the destination itself), and the events that
// may change it (neighbours, routes, links). The data plane's next-hop cache is kept from these
// (user/dataplane/next_hops.hpp), so encapsulation needs no FIB lookup per packet.
#pragma once

#include "common/address.hpp"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

struct nl_sock;
struct nl_msg;

namespace xpmip::netlink {

struct NextHop {
    int ifindex = 0;                 // egress
    MacAddress smac;                 // the egress interface's
    IpAddress neighbour;             // the gateway, or the destination itself when on link
    std::optional<MacAddress> dmac;  // the neighbour's, when the kernel has resolved it
    unsigned mtu = 0;                // the route's MTU metric, else the interface's
};

// Asks the kernel over one netlink socket (kept open).
class NextHopResolver {
public:
    NextHopResolver();   // throws std::runtime_error naming the netlink step that failed
    ~NextHopResolver();
    NextHopResolver(const NextHopResolver&) = delete;
    NextHopResolver& operator=(const NextHopResolver&) = delete;
    // nullopt when there is no route (or not a unicast one out of an interface). `src` is the
    // packets' source (source routing), `oif` (0: any) asks for a route out of that interface.
    // Throws std::runtime_error only when netlink itself fails.
    std::optional<NextHop> resolve(const IpAddress& dst, const IpAddress& src, int oif = 0);

private:
    struct SockDeleter {
        void operator()(nl_sock* s) const;
    };
    std::unique_ptr<nl_sock, SockDeleter> sock_;
};

// What a batch of events may have changed.
struct RouteChanges {
    bool routes = false;   // a route or link changed (or events were lost): every next hop may have
    std::vector<std::pair<int, IpAddress>> neighbours;   // (ifindex, address) of changed neighbours
    bool any() const { return routes || !neighbours.empty(); }
};

// Neighbour, route and link events: after any of them a next hop may have changed.
class RouteEvents {
public:
    RouteEvents();   // throws std::runtime_error naming the netlink step that failed
    ~RouteEvents();
    RouteEvents(const RouteEvents&) = delete;
    RouteEvents& operator=(const RouteEvents&) = delete;
    int fd() const;
    // Reads what is pending (non-blocking).
    RouteChanges dispatch();

private:
    struct SockDeleter {
        void operator()(nl_sock* s) const;
    };
    std::unique_ptr<nl_sock, SockDeleter> sock_;
    RouteChanges pending_;
    static int on_message(nl_msg* msg, void* self);
};

} // namespace xpmip::netlink
