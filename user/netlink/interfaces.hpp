// What the kernel knows about a network interface (rtnetlink through libnl-route).
#pragma once

#include "common/address.hpp"

#include <optional>
#include <string>
#include <vector>

namespace xpmip::netlink {

struct InterfaceInfo {
    std::string name;
    int ifindex = 0;
    MacAddress mac;
    unsigned mtu = 0;
    bool carrier = false;   // IFF_LOWER_UP
    std::vector<Ipv4Address> ipv4;
    std::vector<Ipv6Address> ipv6;   // global ones first, then link-local
};

// Throws std::runtime_error naming the interface when it does not exist.
InterfaceInfo query_interface(const std::string& name);
std::optional<InterfaceInfo> find_interface(const std::string& name);
std::string interface_name(int ifindex);  // "" when unknown

// Add (idempotent) or remove an address on an interface; throws naming address and interface.
void add_address(int ifindex, const IpAddress& address, unsigned prefix_length);
void remove_address(int ifindex, const IpAddress& address, unsigned prefix_length);

} // namespace xpmip::netlink
