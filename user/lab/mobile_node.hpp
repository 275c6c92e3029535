// How a lab mobile node gets its addresses.
//
// In PMIPv6 the MAG emulates the MN's home link (RFC 5213 §6.7): Router Advertisements carry
// the home network prefix, DHCPv4 hands out the IPv4 home address and default router (RFC 5844
// §3.3). Until the MAG's access-link services are wired in, the lab does by hand what the MN
// would learn from them: it takes the addresses the LMA assigned from the MAG's Binding Update
// List (`xpmip show bindings` on the MAG, fields hoa and hnp) and configures the MN namespace.
// Switching to the access link is a change to configure_mobile_node() alone: accept_ra=1 (SLAAC
// forms the same EUI-64 address and the same default router) and a DHCP client on eth0.
#pragma once

#include "lab/topology.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace xpmip::lab {

struct MnAddresses {
    std::optional<std::string> ipv4;          // "10.0.0.10/16"
    std::optional<std::string> ipv4_router;   // its default router
    std::optional<std::string> ipv6;          // "2001:db8:a:0:0:ff:fe00:a01/64"
    std::optional<std::string> ipv6_router;   // the MAG's link-local on the access link
    unsigned mtu = 1500;                      // the link MTU less the tunnel's overhead
};

// The MTU an MN behind the MAG can use without its packets growing beyond the WAN link's 1500
// octets once encapsulated: what the access link would advertise (RFC 4861 §4.6.4 MTU option,
// DHCP option 26), so that TCP does not depend on path MTU discovery through the gateway.
unsigned tunnel_mtu(const nlohmann::json& mag_binding, bool ipv4_transport);

// From the MAG's binding of the MN (throws naming the MN when a field is missing or malformed).
MnAddresses addresses_from_binding(const MobileNode& mn, const nlohmann::json& mag_binding,
                                   const std::string& mag_link_local);

// Configure the MN's namespace (eth0, default routes).
void configure_mobile_node(const MobileNode& mn, const MnAddresses& a);

// The address SLAAC would form in `prefix` from `mac` (modified EUI-64, RFC 4291 Appendix A;
// RFC 4862 §5.5.3): "2001:db8:a::/64" + 02:00:00:00:0a:01 -> "2001:db8:a::ff:fe00:a01".
std::string eui64_address(const std::string& prefix, const std::string& mac);

} // namespace xpmip::lab
