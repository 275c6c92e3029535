// Frames of the access-link services, built and parsed byte by byte: Ethernet / IPv6 / ICMPv6
// Router Solicitation and Advertisement (RFC 4861 §4.1, §4.2, §4.6), Ethernet / IPv4 / UDP /
// DHCPv4 (RFC 2131 §2, RFC 2132). No sockets here, so the unit tests can feed them bytes.
#pragma once

#include "common/address.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace xpmip::access {

// A frame that fails a validity check; what() names the field and the value.
class MalformedFrame : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr std::size_t kEthernetHeader = 14;

// RFC 1071 one's-complement sum of data, folded, starting from `sum`; not inverted.
std::uint32_t checksum_add(std::span<const std::uint8_t> data, std::uint32_t sum = 0);
// The 16-bit Internet checksum (inverted fold) of data after a partial sum.
std::uint16_t checksum_finish(std::uint32_t sum);

// ---- IPv6 neighbor discovery -----------------------------------------------------------------

inline constexpr std::uint8_t kIcmpv6RouterSolicitation = 133;
inline constexpr std::uint8_t kIcmpv6RouterAdvertisement = 134;

struct RouterSolicitation {
    MacAddress src_mac;                 // Ethernet source
    Ipv6Address src;                    // may be unspecified (RFC 4861 §4.1)
    std::optional<MacAddress> slla;     // Source Link-Layer Address option
};

// Ethernet + IPv6 + ICMPv6 RS with no extension headers; RFC 4861 §6.1.1 validity checks
// (hop limit 255, ICMP checksum unless verify_checksum is false, code 0, length >= 8, option
// lengths nonzero and inside the message, no SLLA with an unspecified source).
RouterSolicitation parse_router_solicitation(std::span<const std::uint8_t> frame, bool verify_checksum = true);

struct PrefixInformation {
    Ipv6Prefix prefix;
    std::uint32_t valid_lifetime = 0;
    std::uint32_t preferred_lifetime = 0;
    bool on_link = true;      // L
    bool autonomous = true;   // A
};

struct RouterAdvertisement {
    MacAddress dst_mac;
    MacAddress src_mac;       // also in the Source Link-Layer Address option
    Ipv6Address src;          // the router's link-local address
    Ipv6Address dst;          // ff02::1 unless set
    std::uint8_t cur_hop_limit = 64;
    std::uint16_t router_lifetime = 0;
    std::optional<std::uint32_t> mtu;
    std::vector<PrefixInformation> prefixes;
};

Ipv6Address all_nodes();   // ff02::1

// Ethernet + IPv6 (hop limit 255, RFC 4861 §4.2) + ICMPv6 RA with SLLA, MTU and PIOs.
std::vector<std::uint8_t> build_router_advertisement(const RouterAdvertisement& ra);

// ---- DHCPv4 ----------------------------------------------------------------------------------

inline constexpr std::uint16_t kDhcpServerPort = 67;
inline constexpr std::uint16_t kDhcpClientPort = 68;

enum class DhcpType : std::uint8_t {   // option 53 (RFC 2132 §9.6)
    Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8,
};
std::string to_string(DhcpType t);

namespace dhcp_option {
inline constexpr std::uint8_t kPad = 0, kSubnetMask = 1, kRouter = 3, kDns = 6, kRequestedAddress = 50,
                              kLeaseTime = 51, kOverload = 52, kMessageType = 53, kServerId = 54,
                              kMessage = 56, kRenewalTime = 58, kRebindingTime = 59, kClientId = 61,
                              kClasslessStaticRoute = 121, kEnd = 255;
}

inline constexpr std::uint16_t kDhcpBroadcastFlag = 0x8000;

struct DhcpMessage {
    std::uint8_t op = 1;   // 1 BOOTREQUEST, 2 BOOTREPLY
    std::uint8_t hops = 0;
    std::uint32_t xid = 0;
    std::uint16_t secs = 0;
    std::uint16_t flags = 0;
    Ipv4Address ciaddr, yiaddr, siaddr, giaddr;
    MacAddress chaddr;
    // In wire order when building; parsing merges repeated codes (RFC 3396 §7).
    std::vector<std::pair<std::uint8_t, std::vector<std::uint8_t>>> options;

    const std::vector<std::uint8_t>* option(std::uint8_t code) const;
    std::optional<DhcpType> type() const;                    // option 53
    std::optional<Ipv4Address> address_option(std::uint8_t code) const;   // exactly 4 octets
};

struct DhcpFrame {
    MacAddress src_mac;
    MacAddress dst_mac;
    Ipv4Address ip_src, ip_dst;
    std::uint16_t src_port = 0, dst_port = 0;
    DhcpMessage message;
};

// Ethernet + IPv4 + UDP + BOOTP/DHCP: header checksum, lengths, no fragments, UDP checksum
// when nonzero (unless verify_checksum is false), htype 1 / hlen 6, magic cookie, options
// inside their field (also in sname/file under option 52).
DhcpFrame parse_dhcp_frame(std::span<const std::uint8_t> frame, bool verify_checksum = true);

// Ethernet + IPv4 (TTL 64) + UDP (checksum computed) + BOOTP padded to 300 octets (RFC 1542
// §3.4's minimum), options in the given order followed by End.
std::vector<std::uint8_t> build_dhcp_frame(const MacAddress& dst_mac, const MacAddress& src_mac,
                                           const Ipv4Address& ip_src, const Ipv4Address& ip_dst,
                                           std::uint16_t src_port, std::uint16_t dst_port,
                                           std::uint16_t ip_id, const DhcpMessage& msg);

Ipv4Address netmask(std::uint8_t prefix_length);

// ---- ARP (RFC 826) ---------------------------------------------------------------------------

inline constexpr std::uint16_t kEtherTypeArp = 0x0806;

struct ArpRequest {
    MacAddress src_mac;          // Ethernet source
    MacAddress sender_mac;       // sha
    Ipv4Address sender_ip;       // spa (0.0.0.0 in an RFC 5227 probe)
    Ipv4Address target_ip;       // tpa
};

// An Ethernet/IPv4 ARP request (htype 1, ptype 0x0800, hlen 6, plen 4, oper 1).
ArpRequest parse_arp_request(std::span<const std::uint8_t> frame);
// The reply "ip is at mac" to the requester, padded to the 60-octet Ethernet minimum.
std::vector<std::uint8_t> build_arp_reply(const MacAddress& mac, const Ipv4Address& ip, const ArpRequest& to);

} // namespace xpmip::access
