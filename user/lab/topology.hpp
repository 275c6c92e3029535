// The lab's scenario, RFC 5845 Figure 1 on one host: mobile nodes of two operators behind one
// MAG, their IPv4 home addresses taken from the same private range (10.0.0.0/16), one LMA that
// keeps the operators apart as realms, each with its own core interface and correspondent
// network. GRE keys (RFC 5845 §3, §5.1) are what tells the overlapping addresses apart in the
// tunnel. Every name and address here is fixed, so `down` can clean up whatever `up` left.
//
//   operator A  xl-mn1 eth0 --- acc1 \                                  / coreA --- eth0 xl-cna
//   operator A  xl-mn2 eth0 --- acc2 -\          xl-wan (tshark)       /           198.51.100.10
//                                      xl-mag  wan0 -m0-[br0]-l0- tun0  xl-lma
//   operator B  xl-mn3 eth0 --- acc3 -/        wan1 -m1-[br1]-l1- tun1         \
//   operator B  xl-mn4 eth0 --- acc4 /                                  \ coreB --- eth0 xl-cnb
//                                                                                  198.51.100.10
//
// mn1 and mn3 hold the same static home address 10.0.0.10 in their realms, mn2 and mn4 get one
// from their realm's pool; IPv6 prefixes come from per-realm pools. Both correspondents are
// 198.51.100.10 too: each realm reaches only its own.
//
// The two WAN links are the MAG's two access networks (RFC 8278): wan0 labelled RED, wan1 BLUE.
// The MAG registers a binding over each (its MAG Multipath-Binding option); both agents steer by
// the same rules: TCP to port 80 on RED, UDP to port 5001 spread 3:1 over RED and BLUE packet
// by packet, everything else on BLUE; a path without carrier hands its flows to the other.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::lab {

inline const std::filesystem::path kStateDir = "/run/xpmip/lab";
inline const std::filesystem::path kPinRoot = "/sys/fs/bpf/xpmip";
inline constexpr const char* kPrefix = "xl-";
inline constexpr const char* kLmaNs = "xl-lma";
inline constexpr const char* kMagNs = "xl-mag";
inline constexpr const char* kWanNs = "xl-wan";

struct Operator {
    std::string name;            // operator-a
    std::uint32_t realm = 0;
    std::string core_if;         // the LMA's core interface of this realm
    std::string cn_ns;           // the correspondent network's namespace
    std::string ipv4_pool;       // home addresses
    int ipv4_pool_length = 0;
    std::string ipv4_router;     // the MNs' default router (RFC 5844 §3.3)
    bool router_configured = false;  // set in the realm (else: the pool's first host)
    std::string ipv6_pool;
    std::string core4, core6;    // the LMA on the core link (the CN's default router)
    std::string cn4, cn6;        // the correspondent
};

struct MobileNode {
    int index = 0;               // 1..4
    std::string name;            // mn1
    std::string ns;              // xl-mn1
    std::string id;              // MN-ID (NAI)
    std::string mac;
    std::string access_if;       // the MAG's interface toward it
    const Operator* op = nullptr;
    std::optional<std::string> static_hoa;
};

struct WanLink {
    std::string mag_if, lma_if;  // wan0 / tun0
    std::string bridge;          // in xl-wan
    std::string mag_port, lma_port;   // the bridge's ports
    std::string mag4, lma4, mag6, lma6;
    std::string label;           // RFC 8278 If-Label name (red, blue)
    unsigned label_id = 0;
    unsigned weight = 1;         // share of per-packet distribution
};

const std::vector<Operator>& operators();
const std::vector<MobileNode>& mobile_nodes();
const std::vector<WanLink>& wan_links();
// Every namespace of the lab, in creation order.
std::vector<std::string> lab_namespaces();

// The `labels` and `steering` block both agents share (RFC 8278 §3.2).
std::string steering_yaml();
// The agents' configuration files (validated by `xpmip check-config` before use).
std::string lma_config_yaml();
std::string mag_config_yaml();

} // namespace xpmip::lab
