#include "common/address.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

namespace xpmip {

namespace {

template <std::size_t N>
void mask_bits(std::array<std::uint8_t, N>& bytes, unsigned length) {
    for (std::size_t i = 0; i < N; ++i) {
        const unsigned bit = static_cast<unsigned>(i) * 8;
        if (bit >= length) {
            bytes[i] = 0;
        } else if (length - bit < 8) {
            bytes[i] = static_cast<std::uint8_t>(bytes[i] & (0xff << (8 - (length - bit))));
        }
    }
}

template <std::size_t N>
bool same_prefix(const std::array<std::uint8_t, N>& a, const std::array<std::uint8_t, N>& b,
                 unsigned length) {
    auto x = a;
    auto y = b;
    mask_bits(x, length);
    mask_bits(y, length);
    return x == y;
}

std::pair<std::string_view, unsigned> split_prefix(std::string_view text, unsigned max_len) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        throw std::invalid_argument(fmt::format("'{}' is not a prefix (expected address/length)", text));
    }
    const auto len_text = text.substr(slash + 1);
    unsigned len = 0;
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len > max_len) {
        throw std::invalid_argument(
            fmt::format("'{}': prefix length must be a number from 0 to {}", text, max_len));
    }
    return {text.substr(0, slash), len};
}

} // namespace

std::optional<Ipv4Address> Ipv4Address::try_parse(std::string_view text) {
    Ipv4Address a;
    const std::string s(text);
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) {
        return std::nullopt;
    }
    return a;
}

Ipv4Address Ipv4Address::parse(std::string_view text) {
    if (auto a = try_parse(text)) {
        return *a;
    }
    throw std::invalid_argument(fmt::format("'{}' is not an IPv4 address", text));
}

Ipv4Address Ipv4Address::from_host_order(std::uint32_t v) {
    return Ipv4Address{{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                        static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}};
}

std::uint32_t Ipv4Address::to_host_order() const {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
           (std::uint32_t{bytes[2]} << 8) | bytes[3];
}

std::string Ipv4Address::to_string() const {
    return fmt::format("{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]);
}

std::optional<Ipv6Address> Ipv6Address::try_parse(std::string_view text) {
    Ipv6Address a;
    const std::string s(text);
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) {
        return std::nullopt;
    }
    return a;
}

Ipv6Address Ipv6Address::parse(std::string_view text) {
    if (auto a = try_parse(text)) {
        return *a;
    }
    throw std::invalid_argument(fmt::format("'{}' is not an IPv6 address", text));
}

bool Ipv6Address::is_unspecified() const { return *this == Ipv6Address{}; }

bool Ipv6Address::is_v4_mapped() const {
    for (int i = 0; i < 10; ++i) {
        if (bytes[i] != 0) {
            return false;
        }
    }
    return bytes[10] == 0xff && bytes[11] == 0xff;
}

std::string Ipv6Address::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

Ipv4Prefix Ipv4Prefix::parse(std::string_view text) {
    auto [addr, len] = split_prefix(text, 32);
    return Ipv4Prefix{Ipv4Address::parse(addr), static_cast<std::uint8_t>(len)};
}

Ipv4Prefix Ipv4Prefix::canonical() const {
    auto p = *this;
    mask_bits(p.address.bytes, length);
    return p;
}

bool Ipv4Prefix::contains(const Ipv4Address& a) const { return same_prefix(address.bytes, a.bytes, length); }

bool Ipv4Prefix::overlaps(const Ipv4Prefix& other) const {
    return same_prefix(address.bytes, other.address.bytes, std::min(length, other.length));
}

std::string Ipv4Prefix::to_string() const { return fmt::format("{}/{}", address.to_string(), length); }

Ipv6Prefix Ipv6Prefix::parse(std::string_view text) {
    auto [addr, len] = split_prefix(text, 128);
    return Ipv6Prefix{Ipv6Address::parse(addr), static_cast<std::uint8_t>(len)};
}

Ipv6Prefix Ipv6Prefix::canonical() const {
    auto p = *this;
    mask_bits(p.address.bytes, length);
    return p;
}

bool Ipv6Prefix::contains(const Ipv6Address& a) const { return same_prefix(address.bytes, a.bytes, length); }

bool Ipv6Prefix::overlaps(const Ipv6Prefix& other) const {
    return same_prefix(address.bytes, other.address.bytes, std::min(length, other.length));
}

std::string Ipv6Prefix::to_string() const { return fmt::format("{}/{}", address.to_string(), length); }

MacAddress MacAddress::parse(std::string_view text) {
    MacAddress m;
    unsigned v[6];
    char tail;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &tail) != 6) {
        throw std::invalid_argument(fmt::format("'{}' is not a MAC address (expected xx:xx:xx:xx:xx:xx)", text));
    }
    for (int i = 0; i < 6; ++i) {
        m.bytes[i] = static_cast<std::uint8_t>(v[i]);
    }
    return m;
}

std::string MacAddress::to_string() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2], bytes[3],
                       bytes[4], bytes[5]);
}

IpAddress parse_ip_address(std::string_view text) {
    if (auto v4 = Ipv4Address::try_parse(text)) {
        return *v4;
    }
    if (auto v6 = Ipv6Address::try_parse(text)) {
        return *v6;
    }
    throw std::invalid_argument(fmt::format("'{}' is not an IPv4 or IPv6 address", text));
}

std::string to_string(const IpAddress& a) {
    return std::visit([](const auto& x) { return x.to_string(); }, a);
}

std::array<std::uint8_t, 16> to_mapped(const IpAddress& a) {
    if (const auto* v4 = std::get_if<Ipv4Address>(&a)) {
        std::array<std::uint8_t, 16> out{};
        out[10] = out[11] = 0xff;
        std::copy(v4->bytes.begin(), v4->bytes.end(), out.begin() + 12);
        return out;
    }
    return std::get<Ipv6Address>(a).bytes;
}

IpAddress from_mapped(const std::uint8_t* bytes16) {
    Ipv6Address v6;
    std::copy(bytes16, bytes16 + 16, v6.bytes.begin());
    if (v6.is_v4_mapped()) {
        return Ipv4Address{{bytes16[12], bytes16[13], bytes16[14], bytes16[15]}};
    }
    return v6;
}

bool is_unicast(const IpAddress& a) {
    if (const auto* v4 = std::get_if<Ipv4Address>(&a)) {
        return !v4->is_unspecified() && v4->bytes[0] < 224;   // 224/4 multicast, 240/4 and broadcast
    }
    const auto& v6 = std::get<Ipv6Address>(a);
    return !v6.is_unspecified() && v6.bytes[0] != 0xff;
}

} // namespace xpmip
