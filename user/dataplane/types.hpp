// The typed view of the data plane's state: what callers (LMA, MAG, tools) write. Conversion to
// the map ABI of include/xpmip/dataplane.h lives in types.cpp; nobody else pokes map bytes.
#pragma once

#include "common/address.hpp"

#include <xpmip/dataplane.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace xpmip::dataplane {

class DataplaneError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class Role { Lma = XPMIP_ROLE_LMA, Mag = XPMIP_ROLE_MAG };
enum class InterfaceKind { Core = XPMIP_IF_CORE, CoreL2 = XPMIP_IF_CORE_L2, Tunnel = XPMIP_IF_TUNNEL, Access = XPMIP_IF_ACCESS };
enum class Encapsulation {
    IpInIp = XPMIP_ENCAP_IPIP,         // RFC 2473 / RFC 2003
    Udp = XPMIP_ENCAP_UDP,             // RFC 5844 IPv4-UDP
    Gre = XPMIP_ENCAP_GRE,             // RFC 5845 Figure 7
    UdpTlvGre = XPMIP_ENCAP_UDP_TLV_GRE,  // RFC 5845 Figure 5
};

std::string to_string(Role r);
std::string to_string(InterfaceKind k);
std::string to_string(Encapsulation e);
// "all", "none", or CPU ids and ranges: "0-3,6". `possible`: the host's CPU count. Throws
// DataplaneError naming the bad element (an unknown CPU, a repeated one, a reversed range).
std::vector<unsigned> parse_cpu_list(const std::string& s, int possible);
Role parse_role(const std::string& s);                // throws DataplaneError naming the value
InterfaceKind parse_interface_kind(const std::string& s);
Encapsulation parse_encapsulation(const std::string& s);

// One binding of a session (RFC 8278: one per MAG proxy CoA).
struct PathConfig {
    IpAddress local;                  // this gateway's tunnel endpoint
    IpAddress remote;                 // the peer's
    std::uint32_t ifindex = 0;        // egress interface, 0: as the FIB (or the resolved next hop) decides
    std::uint32_t key_downlink = 0;   // LMA->MAG GRE key (assigned by the MAG)
    std::uint32_t key_uplink = 0;     // MAG->LMA GRE key (assigned by the LMA)
    std::uint16_t remote_port = XPMIP_UDP_PORT_DATA;
    std::uint8_t label = 0;           // RFC 8278 If-Label
    std::uint8_t bid = 1;             // RFC 8278 Binding-Id
    std::uint8_t weight = 1;
    bool up = true;
    std::uint16_t mtu = 0;            // 0: the FIB's
    std::uint32_t scope = 0;          // key scope: the realm of the tunnel interface it arrives on
    bool operator==(const PathConfig&) const = default;
};

struct SessionConfig {
    std::uint32_t id = 0;
    Encapsulation encap = Encapsulation::IpInIp;
    bool gre_keys = false;            // GRE with keys; false with GRE: "GRE mode only"
    bool l2 = false;                  // Ethernet frames (GRE 0x6558)
    std::uint32_t realm = 0;
    std::optional<Ipv6Prefix> hnp;    // IPv6 home network prefix
    std::optional<Ipv4Prefix> hoa;    // IPv4 home address (/32 usually)
    std::optional<MacAddress> mn_mac;
    std::uint32_t mn_ifindex = 0;     // MAG: access interface; LMA: realm core interface
    std::uint8_t policy = 0;
    std::vector<PathConfig> paths;
    bool operator==(const SessionConfig&) const = default;
};

// Check a session for what the data plane cannot carry; throws DataplaneError naming the
// field, e.g. "session 7: paths[1].local 192.0.2.1 and remote 2001:db8::1 differ in family".
void validate(const SessionConfig& s);

// Steering rules (RFC 8278 §3), written from the mobile node's point of view.
struct RuleConfig {
    std::uint8_t proto = 0;                       // 0: any
    std::optional<std::uint8_t> dscp;             // any when empty
    std::optional<std::string> remote_prefix;     // "198.51.100.0/24" or "2001:db8::/32"
    std::uint16_t remote_port_lo = 0, remote_port_hi = 65535;
    std::uint16_t local_port_lo = 0, local_port_hi = 65535;
    bool per_packet = false;
    bool strict = false;
    std::vector<std::uint8_t> labels;             // preference order, at most 4
    bool operator==(const RuleConfig&) const = default;
};

struct PolicyConfig {
    std::vector<RuleConfig> rules;                // at most 16, first match wins
    bool operator==(const PolicyConfig&) const = default;
};

xpmip_policy to_map_value(const PolicyConfig& p);    // throws DataplaneError naming the rule/field
PolicyConfig from_map_value(const xpmip_policy& v);

// Map sizes, set at load time (bpf_map__set_max_entries). `sessions` is the number of session ids
// (1..sessions: the sessions array, whose index is also our GRE key of the session's first path).
struct Limits {
    std::uint32_t sessions = 65536;
    std::uint32_t interfaces = 64;
    std::uint32_t policies = 64;
    std::uint32_t nexthops = 1024;
    // Derived from sessions when 0 (all hashes without preallocation: no memory until used).
    std::uint32_t tunnel_keys = 0;          // keys that are not a session's index (multipath paths)
    std::uint32_t keyless = 0;
    std::uint32_t routes = 0;               // each of mn_routes4 and mn_routes6
    std::uint32_t prefixes = 0;             // each of mn_prefixes4 and mn_prefixes6
    std::uint32_t stations = 0;
    std::uint32_t multipath_sessions = 0;   // session_paths
    std::uint32_t route_cache = 65536;      // correspondents whose route the LMA uplink remembers
    Limits resolved() const;
};

} // namespace xpmip::dataplane
