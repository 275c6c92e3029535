// Small value types for IP and MAC addresses and prefixes, shared by the codec, the control
// plane and the data plane API. Stored in network byte order, exactly as on the wire.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace xpmip {

struct Ipv4Address {
    std::array<std::uint8_t, 4> bytes{};

    static Ipv4Address parse(std::string_view text);             // throws std::invalid_argument
    static std::optional<Ipv4Address> try_parse(std::string_view text);
    static Ipv4Address from_host_order(std::uint32_t v);
    std::uint32_t to_host_order() const;
    bool is_unspecified() const { return to_host_order() == 0; }
    std::string to_string() const;
    auto operator<=>(const Ipv4Address&) const = default;
};

struct Ipv6Address {
    std::array<std::uint8_t, 16> bytes{};

    static Ipv6Address parse(std::string_view text);             // throws std::invalid_argument
    static std::optional<Ipv6Address> try_parse(std::string_view text);
    bool is_unspecified() const;
    bool is_link_local() const { return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }
    bool is_v4_mapped() const;
    std::string to_string() const;
    auto operator<=>(const Ipv6Address&) const = default;
};

struct Ipv4Prefix {
    Ipv4Address address;
    std::uint8_t length = 0;

    static Ipv4Prefix parse(std::string_view text);              // "10.0.0.0/16"
    Ipv4Prefix canonical() const;                                // host bits cleared
    bool contains(const Ipv4Address& a) const;
    bool overlaps(const Ipv4Prefix& other) const;
    std::string to_string() const;
    auto operator<=>(const Ipv4Prefix&) const = default;
};

struct Ipv6Prefix {
    Ipv6Address address;
    std::uint8_t length = 0;

    static Ipv6Prefix parse(std::string_view text);              // "2001:db8:1::/64"
    Ipv6Prefix canonical() const;
    bool contains(const Ipv6Address& a) const;
    bool overlaps(const Ipv6Prefix& other) const;
    std::string to_string() const;
    auto operator<=>(const Ipv6Prefix&) const = default;
};

struct MacAddress {
    std::array<std::uint8_t, 6> bytes{};

    static MacAddress parse(std::string_view text);              // "02:00:00:00:00:01"
    std::string to_string() const;
    auto operator<=>(const MacAddress&) const = default;
};

// An IPv4 or IPv6 address (tunnel endpoints may be either).
using IpAddress = std::variant<Ipv4Address, Ipv6Address>;
IpAddress parse_ip_address(std::string_view text);  // throws std::invalid_argument
std::string to_string(const IpAddress& a);
inline bool is_ipv4(const IpAddress& a) { return std::holds_alternative<Ipv4Address>(a); }
// Neither unspecified, multicast nor (IPv4) limited broadcast: an address one may answer.
bool is_unicast(const IpAddress& a);
// The 16-octet form used in BPF maps: IPv6 as is, IPv4 as ::ffff:a.b.c.d.
std::array<std::uint8_t, 16> to_mapped(const IpAddress& a);
IpAddress from_mapped(const std::uint8_t* bytes16);

} // namespace xpmip
