// Carrier of network interfaces, kept current from rtnetlink link events (libnl-route,
// RTNLGRP_LINK): what RFC 8278 failover acts on. The agent polls fd() and calls dispatch().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

struct nl_sock;
struct nl_msg;

namespace xpmip::netlink {

class LinkMonitor {
public:
    // Subscribes first, then reads the current state of every interface (no event is lost
    // between the two). Throws std::runtime_error naming the netlink step that failed.
    LinkMonitor();
    ~LinkMonitor();
    LinkMonitor(const LinkMonitor&) = delete;
    LinkMonitor& operator=(const LinkMonitor&) = delete;

    int fd() const;
    // Read the pending events (non-blocking). Returns the interfaces whose carrier changed.
    std::vector<std::uint32_t> dispatch();
    // Carrier (IFF_LOWER_UP and administratively up); unknown interfaces count as up.
    bool carrier(std::uint32_t ifindex) const;

private:
    struct SockDeleter {
        void operator()(nl_sock* s) const;
    };
    void load_state();
    void record(std::uint32_t ifindex, bool up);

    std::unique_ptr<nl_sock, SockDeleter> sock_;
    std::map<std::uint32_t, bool> carrier_;
    std::vector<std::uint32_t> changed_;
    friend int link_monitor_on_message(::nl_msg*, void*);
};

} // namespace xpmip::netlink
