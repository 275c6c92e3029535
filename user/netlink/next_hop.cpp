#include "netlink/next_hop.hpp"

#include <fmt/format.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace xpmip::netlink {

namespace {

// Neighbour states whose link-layer address may be used (the kernel's NUD_VALID, which the uapi
// header does not export).
constexpr unsigned kNudValid = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

nl_sock* connected_socket(const char* who) {
    nl_sock* s = nl_socket_alloc();
    if (!s) {
        throw std::runtime_error(fmt::format("{}: cannot allocate a netlink socket", who));
    }
    if (int err = nl_connect(s, NETLINK_ROUTE); err < 0) {
        nl_socket_free(s);
        throw std::runtime_error(fmt::format("{}: netlink connect: {}", who, nl_geterror(err)));
    }
    return s;
}

struct MsgPtr {
    nl_msg* m;
    explicit MsgPtr(int type) : m(nlmsg_alloc_simple(type, NLM_F_REQUEST)) {
        if (!m) {
            throw std::runtime_error("next hop: cannot allocate a netlink message");
        }
    }
    ~MsgPtr() { nlmsg_free(m); }
    MsgPtr(const MsgPtr&) = delete;
    MsgPtr& operator=(const MsgPtr&) = delete;
};

std::vector<std::uint8_t> address_bytes(const IpAddress& a) {
    if (const auto* v4 = std::get_if<Ipv4Address>(&a)) {
        return {v4->bytes.begin(), v4->bytes.end()};
    }
    const auto& v6 = std::get<Ipv6Address>(a);
    return {v6.bytes.begin(), v6.bytes.end()};
}

// Send `msg` and hand every valid answer to `parse` (an object of the answer's kind). Returns the
// netlink error of the request (0: answered).
template <class Object>
int ask(nl_sock* s, nl_msg* msg, int (*parse)(nlmsghdr*, Object**), Object** out) {
    if (int err = nl_send_auto(s, msg); err < 0) {
        return err;
    }
    struct Ctx {
        int (*parse)(nlmsghdr*, Object**);
        Object** out;
    } ctx{parse, out};
    nl_cb* cb = nl_cb_alloc(NL_CB_DEFAULT);
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, [](nl_msg* m, void* arg) -> int {
        auto* c = static_cast<Ctx*>(arg);
        if (!*c->out) {
            c->parse(nlmsg_hdr(m), c->out);
        }
        return NL_OK;
    }, &ctx);
    const int err = nl_recvmsgs(s, cb);
    nl_cb_put(cb);
    return err;
}

// RTM_GETROUTE for `dst` (out of `oif` if given): the egress and the gateway (nullopt: on link).
struct RouteAnswer {
    int ifindex = 0;
    std::optional<IpAddress> gateway;
    unsigned mtu = 0;
};

std::optional<RouteAnswer> route_to(nl_sock* s, const IpAddress& dst, const IpAddress& src, int oif) {
    const bool v4 = is_ipv4(dst);
    MsgPtr msg(RTM_GETROUTE);
    rtmsg rtm{};
    rtm.rtm_family = static_cast<unsigned char>(v4 ? AF_INET : AF_INET6);
    rtm.rtm_dst_len = static_cast<unsigned char>(v4 ? 32 : 128);
    const auto bytes = address_bytes(dst);
    const auto src_bytes = address_bytes(src);
    const bool any_src = std::all_of(src_bytes.begin(), src_bytes.end(), [](auto b) { return b == 0; });
    if (nlmsg_append(msg.m, &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 ||
        nla_put(msg.m, RTA_DST, static_cast<int>(bytes.size()), bytes.data()) < 0 ||
        (!any_src && is_ipv4(src) == v4 &&
         nla_put(msg.m, RTA_SRC, static_cast<int>(src_bytes.size()), src_bytes.data()) < 0) ||
        (oif && nla_put_u32(msg.m, RTA_OIF, static_cast<std::uint32_t>(oif)) < 0)) {
        throw std::runtime_error("next hop: building RTM_GETROUTE failed");
    }
    rtnl_route* route = nullptr;
    if (ask<rtnl_route>(s, msg.m, rtnl_route_parse, &route) < 0 || !route) {
        if (route) {
            rtnl_route_put(route);
        }
        return std::nullopt;   // no route (ENETUNREACH and the like)
    }
    std::optional<RouteAnswer> out;
    if (rtnl_route_get_type(route) == RTN_UNICAST && rtnl_route_get_nnexthops(route) > 0) {
        rtnl_nexthop* nh = rtnl_route_nexthop_n(route, 0);
        RouteAnswer a;
        a.ifindex = rtnl_route_nh_get_ifindex(nh);
        if (nl_addr* gw = rtnl_route_nh_get_gateway(nh); gw && nl_addr_get_len(gw) == (v4 ? 4u : 16u)) {
            if (v4) {
                Ipv4Address g;
                std::memcpy(g.bytes.data(), nl_addr_get_binary_addr(gw), 4);
                a.gateway = g;
            } else {
                Ipv6Address g;
                std::memcpy(g.bytes.data(), nl_addr_get_binary_addr(gw), 16);
                a.gateway = g;
            }
        }
        uint32_t mtu = 0;
        if (rtnl_route_get_metric(route, RTAX_MTU, &mtu) == 0) {
            a.mtu = mtu;
        }
        out = a;
    }
    rtnl_route_put(route);
    return out;
}

// RTM_GETNEIGH for (ifindex, address): its MAC when the entry is usable (NUD_VALID).
std::optional<MacAddress> neighbour_of(nl_sock* s, int ifindex, const IpAddress& addr) {
    MsgPtr msg(RTM_GETNEIGH);
    ndmsg ndm{};
    ndm.ndm_family = static_cast<unsigned char>(is_ipv4(addr) ? AF_INET : AF_INET6);
    ndm.ndm_ifindex = ifindex;
    const auto bytes = address_bytes(addr);
    if (nlmsg_append(msg.m, &ndm, sizeof ndm, NLMSG_ALIGNTO) < 0 ||
        nla_put(msg.m, NDA_DST, static_cast<int>(bytes.size()), bytes.data()) < 0) {
        throw std::runtime_error("next hop: building RTM_GETNEIGH failed");
    }
    rtnl_neigh* neigh = nullptr;
    if (ask<rtnl_neigh>(s, msg.m, rtnl_neigh_parse, &neigh) < 0 || !neigh) {
        if (neigh) {
            rtnl_neigh_put(neigh);
        }
        return std::nullopt;
    }
    std::optional<MacAddress> out;
    nl_addr* ll = rtnl_neigh_get_lladdr(neigh);
    if ((rtnl_neigh_get_state(neigh) & static_cast<int>(kNudValid)) && ll && nl_addr_get_len(ll) == 6) {
        MacAddress m;
        std::memcpy(m.bytes.data(), nl_addr_get_binary_addr(ll), 6);
        out = m;
    }
    rtnl_neigh_put(neigh);
    return out;
}

} // namespace

void NextHopResolver::SockDeleter::operator()(nl_sock* s) const {
    nl_socket_free(s);
}

NextHopResolver::NextHopResolver() : sock_(connected_socket("next hop")) {
    // One answer per request: with libnl's automatic ACK the kernel's ACK would stay queued after
    // the answer and be taken as the next request's reply (errors still come as NLMSG_ERROR).
    nl_socket_disable_auto_ack(sock_.get());
}
NextHopResolver::~NextHopResolver() = default;

std::optional<NextHop> NextHopResolver::resolve(const IpAddress& dst, const IpAddress& src, int oif) {
    nl_sock* s = sock_.get();
    const auto route = route_to(s, dst, src, oif);
    if (!route || route->ifindex <= 0) {
        return std::nullopt;
    }
    rtnl_link* link = nullptr;
    if (rtnl_link_get_kernel(s, route->ifindex, nullptr, &link) < 0 || !link) {
        return std::nullopt;
    }
    NextHop nh;
    nh.ifindex = route->ifindex;
    nh.mtu = route->mtu ? route->mtu : rtnl_link_get_mtu(link);
    if (nl_addr* a = rtnl_link_get_addr(link); a && nl_addr_get_len(a) == 6) {
        std::memcpy(nh.smac.bytes.data(), nl_addr_get_binary_addr(a), 6);
    }
    rtnl_link_put(link);
    nh.neighbour = route->gateway.value_or(dst);
    nh.dmac = neighbour_of(s, route->ifindex, nh.neighbour);
    return nh;
}

void RouteEvents::SockDeleter::operator()(nl_sock* s) const {
    nl_socket_free(s);
}

RouteEvents::RouteEvents() : sock_(nl_socket_alloc()) {
    if (!sock_) {
        throw std::runtime_error("route events: cannot allocate a netlink socket");
    }
    nl_socket_disable_seq_check(sock_.get());
    nl_socket_modify_cb(sock_.get(), NL_CB_VALID, NL_CB_CUSTOM, &RouteEvents::on_message, this);
    if (int err = nl_connect(sock_.get(), NETLINK_ROUTE); err < 0) {
        throw std::runtime_error(fmt::format("route events: netlink connect: {}", nl_geterror(err)));
    }
    for (int group : {RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK}) {
        if (int err = nl_socket_add_membership(sock_.get(), group); err < 0) {
            throw std::runtime_error(fmt::format("route events: join group {}: {}", group, nl_geterror(err)));
        }
    }
    if (int err = nl_socket_set_nonblocking(sock_.get()); err < 0) {
        throw std::runtime_error(fmt::format("route events: non-blocking: {}", nl_geterror(err)));
    }
}

RouteEvents::~RouteEvents() = default;

int RouteEvents::fd() const {
    return nl_socket_get_fd(sock_.get());
}

// A neighbour event names the one neighbour that changed; anything else may change any route.
int RouteEvents::on_message(nl_msg* msg, void* self) {
    auto* events = static_cast<RouteEvents*>(self);
    nlmsghdr* h = nlmsg_hdr(msg);
    if (h->nlmsg_type != RTM_NEWNEIGH && h->nlmsg_type != RTM_DELNEIGH) {
        events->pending_.routes = true;
        return NL_OK;
    }
    rtnl_neigh* neigh = nullptr;
    if (rtnl_neigh_parse(h, &neigh) < 0 || !neigh) {
        events->pending_.routes = true;
        return NL_OK;
    }
    nl_addr* dst = rtnl_neigh_get_dst(neigh);
    const unsigned len = dst ? nl_addr_get_len(dst) : 0;
    if (len == 4) {
        Ipv4Address a;
        std::memcpy(a.bytes.data(), nl_addr_get_binary_addr(dst), 4);
        events->pending_.neighbours.emplace_back(rtnl_neigh_get_ifindex(neigh), a);
    } else if (len == 16) {
        Ipv6Address a;
        std::memcpy(a.bytes.data(), nl_addr_get_binary_addr(dst), 16);
        events->pending_.neighbours.emplace_back(rtnl_neigh_get_ifindex(neigh), a);
    }
    rtnl_neigh_put(neigh);
    return NL_OK;
}

RouteChanges RouteEvents::dispatch() {
    // Drain everything queued. Lost events (ENOBUFS) may have been anything.
    for (;;) {
        const int err = nl_recvmsgs_default(sock_.get());
        if (err == -NLE_AGAIN) {
            break;
        }
        if (err < 0) {
            pending_.routes = true;
            if (err != -NLE_NOMEM) {
                break;
            }
        }
    }
    return std::exchange(pending_, RouteChanges{});
}

} // namespace xpmip::netlink
