// Building the lab's namespaces and links (topology.hpp), and removing them.
#pragma once

#include <string>
#include <vector>

namespace xpmip::lab {

// Namespaces, veth pairs, the transit bridges, addresses, routes and the settings veth links
// need around an XDP gateway (README "Testing on veth"): an XDP_PASS program on the far end of
// every link the gateways' XDP sends into, TX checksum offload off on end hosts, GRO off on the
// bridge ports. Prints one line per step. Throws LabError naming the command that failed.
void build_network();

// Remove the lab's namespaces that exist (their links go with them); returns those removed.
// Throws naming a namespace that could not be removed.
std::vector<std::string> remove_namespaces();

// The MAG's link-local address on an access interface (what its Router Advertisements come
// from, so what an MN configured by RA would use as its default router).
std::string mag_link_local(const std::string& access_if);

} // namespace xpmip::lab
