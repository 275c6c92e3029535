#include "netlink/link_monitor.hpp"

#include <fmt/format.h>
#include <net/if.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <stdexcept>

namespace xpmip::netlink {

namespace {
constexpr unsigned kIffLowerUp = 1u << 16;   // <linux/if.h>, which clashes with <net/if.h>

struct CacheDeleter {
    void operator()(nl_cache* c) const { nl_cache_free(c); }
};

bool has_carrier(rtnl_link* l) {
    const unsigned flags = rtnl_link_get_flags(l);
    return (flags & IFF_UP) && (flags & kIffLowerUp);
}
} // namespace

void LinkMonitor::SockDeleter::operator()(nl_sock* s) const {
    nl_socket_free(s);
}

int link_monitor_on_message(::nl_msg* msg, void* arg) {
    auto* self = static_cast<LinkMonitor*>(arg);
    const nlmsghdr* h = nlmsg_hdr(msg);
    if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) {
        return NL_OK;
    }
    nl_msg_parse(msg, [](nl_object* obj, void* a) {
        auto* me = static_cast<LinkMonitor*>(a);
        auto* link = reinterpret_cast<rtnl_link*>(obj);
        const auto ifindex = static_cast<std::uint32_t>(rtnl_link_get_ifindex(link));
        me->record(ifindex, nl_object_get_msgtype(obj) != RTM_DELLINK && has_carrier(link));
    }, self);
    return NL_OK;
}

LinkMonitor::LinkMonitor() : sock_(nl_socket_alloc()) {
    if (!sock_) {
        throw std::runtime_error("link monitor: cannot allocate a netlink socket");
    }
    nl_socket_disable_seq_check(sock_.get());
    nl_socket_modify_cb(sock_.get(), NL_CB_VALID, NL_CB_CUSTOM, link_monitor_on_message, this);
    if (int err = nl_connect(sock_.get(), NETLINK_ROUTE); err < 0) {
        throw std::runtime_error(fmt::format("link monitor: netlink connect: {}", nl_geterror(err)));
    }
    if (int err = nl_socket_add_membership(sock_.get(), RTNLGRP_LINK); err < 0) {
        throw std::runtime_error(fmt::format("link monitor: join RTNLGRP_LINK: {}", nl_geterror(err)));
    }
    if (int err = nl_socket_set_nonblocking(sock_.get()); err < 0) {
        throw std::runtime_error(fmt::format("link monitor: non-blocking: {}", nl_geterror(err)));
    }
    load_state();
}

void LinkMonitor::load_state() {
    // The state now, from a separate socket (the subscribed one only carries events).
    std::unique_ptr<nl_sock, SockDeleter> query(nl_socket_alloc());
    if (!query) {
        throw std::runtime_error("link monitor: cannot allocate a netlink socket");
    }
    if (int err = nl_connect(query.get(), NETLINK_ROUTE); err < 0) {
        throw std::runtime_error(fmt::format("link monitor: netlink connect: {}", nl_geterror(err)));
    }
    nl_cache* raw = nullptr;
    if (int err = rtnl_link_alloc_cache(query.get(), AF_UNSPEC, &raw); err < 0) {
        throw std::runtime_error(fmt::format("link monitor: reading links: {}", nl_geterror(err)));
    }
    std::unique_ptr<nl_cache, CacheDeleter> cache(raw);
    for (nl_object* o = nl_cache_get_first(raw); o; o = nl_cache_get_next(o)) {
        auto* link = reinterpret_cast<rtnl_link*>(o);
        record(static_cast<std::uint32_t>(rtnl_link_get_ifindex(link)), has_carrier(link));
    }
}

void LinkMonitor::record(std::uint32_t ifindex, bool up) {
    auto it = carrier_.find(ifindex);
    if (it == carrier_.end() || it->second != up) {
        carrier_[ifindex] = up;
        changed_.push_back(ifindex);
    }
}

LinkMonitor::~LinkMonitor() = default;

int LinkMonitor::fd() const {
    return nl_socket_get_fd(sock_.get());
}

std::vector<std::uint32_t> LinkMonitor::dispatch() {
    // (What the constructor read into changed_ is the starting state, not a change.)
    changed_.clear();
    for (;;) {
        int err = nl_recvmsgs_default(sock_.get());
        if (err == -NLE_AGAIN || err == 0) {
            break;
        }
        if (err == -NLE_NOMEM) {
            // The socket overran (ENOBUFS): events were lost, so read the whole state anew.
            load_state();
            break;
        }
        if (err < 0) {
            throw std::runtime_error(fmt::format("link monitor: receive: {}", nl_geterror(err)));
        }
    }
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    return changed_;
}

bool LinkMonitor::carrier(std::uint32_t ifindex) const {
    auto it = carrier_.find(ifindex);
    return it == carrier_.end() || it->second;
}

} // namespace xpmip::netlink
