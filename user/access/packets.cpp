#include "access/packets.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace xpmip::access {

namespace {

constexpr std::size_t kIpv6Header = 40;
constexpr std::size_t kUdpHeader = 8;
constexpr std::size_t kBootpFixed = 236;               // op .. file (RFC 2131 Figure 1)
constexpr std::size_t kBootpMinimum = 300;             // RFC 1542 §3.4
constexpr std::uint8_t kMagicCookie[4] = {99, 130, 83, 99};   // RFC 2131 §3
constexpr std::uint8_t kIpProtoUdp = 17;
constexpr std::uint8_t kIpProtoIcmpv6 = 58;
constexpr std::uint8_t kNdOptSourceLinkLayer = 1;
constexpr std::uint8_t kNdOptPrefixInformation = 3;
constexpr std::uint8_t kNdOptMtu = 5;

std::uint16_t get16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t get32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
}
void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<std::uint8_t>(v >> shift));
    }
}
void set16(std::vector<std::uint8_t>& out, std::size_t at, std::uint16_t v) {
    out[at] = static_cast<std::uint8_t>(v >> 8);
    out[at + 1] = static_cast<std::uint8_t>(v);
}
template <std::size_t N>
void put(std::vector<std::uint8_t>& out, const std::array<std::uint8_t, N>& bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}
MacAddress mac_at(const std::uint8_t* p) {
    MacAddress m;
    std::memcpy(m.bytes.data(), p, 6);
    return m;
}
Ipv4Address ipv4_at(const std::uint8_t* p) {
    Ipv4Address a;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
}
Ipv6Address ipv6_at(const std::uint8_t* p) {
    Ipv6Address a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
}

void put_ethernet(std::vector<std::uint8_t>& out, const MacAddress& dst, const MacAddress& src, std::uint16_t type) {
    put(out, dst.bytes);
    put(out, src.bytes);
    put16(out, type);
}

// The IPv6 pseudo-header of RFC 8200 §8.1 for an upper-layer packet of `length` octets.
std::uint32_t ipv6_pseudo_header(const Ipv6Address& src, const Ipv6Address& dst, std::uint32_t length,
                                 std::uint8_t next_header) {
    std::uint32_t sum = checksum_add(src.bytes);
    sum = checksum_add(dst.bytes, sum);
    std::uint8_t tail[8] = {static_cast<std::uint8_t>(length >> 24), static_cast<std::uint8_t>(length >> 16),
                            static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length),
                            0, 0, 0, next_header};
    return checksum_add(tail, sum);
}

[[noreturn]] void malformed(const std::string& what) {
    throw MalformedFrame(what);
}

// Walk one DHCP options field (RFC 2132 §2): Pad, End, code-length-value; merge repeated codes.
// Returns whether End was found.
bool parse_options(const std::uint8_t* p, std::size_t len, const char* field, DhcpMessage& msg) {
    std::size_t i = 0;
    while (i < len) {
        std::uint8_t code = p[i];
        if (code == dhcp_option::kPad) {
            ++i;
            continue;
        }
        if (code == dhcp_option::kEnd) {
            return true;
        }
        if (i + 1 >= len) {
            malformed(fmt::format("DHCP option {} in {}: no length octet", code, field));
        }
        std::size_t olen = p[i + 1];
        if (i + 2 + olen > len) {
            malformed(fmt::format("DHCP option {} in {}: length {} runs past the field ({} octets left)", code,
                                  field, olen, len - i - 2));
        }
        std::vector<std::uint8_t> value(p + i + 2, p + i + 2 + olen);
        auto it = std::find_if(msg.options.begin(), msg.options.end(), [&](const auto& o) { return o.first == code; });
        if (it != msg.options.end()) {
            // RFC 3396 §7: an option split into several instances is their concatenation.
            it->second.insert(it->second.end(), value.begin(), value.end());
        } else {
            msg.options.emplace_back(code, std::move(value));
        }
        i += 2 + olen;
    }
    return false;
}

} // namespace

std::uint32_t checksum_add(std::span<const std::uint8_t> data, std::uint32_t sum) {
    std::size_t i = 0;
    for (; i + 1 < data.size(); i += 2) {
        sum += static_cast<std::uint32_t>((data[i] << 8) | data[i + 1]);
    }
    if (i < data.size()) {
        sum += static_cast<std::uint32_t>(data[i] << 8);
    }
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

std::uint16_t checksum_finish(std::uint32_t sum) {
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

Ipv6Address all_nodes() {
    Ipv6Address a;
    a.bytes[0] = 0xff;
    a.bytes[1] = 0x02;
    a.bytes[15] = 0x01;
    return a;
}

namespace {

// Ethernet + IPv6 without extension headers + ICMPv6: returns the IPv6 Payload Length.
std::size_t checked_icmpv6_payload(std::span<const std::uint8_t> frame) {
    if (frame.size() < kEthernetHeader + kIpv6Header + 8) {
        malformed(fmt::format("Router Solicitation: frame of {} octets is too short", frame.size()));
    }
    const std::uint8_t* eth = frame.data();
    if (get16(eth + 12) != kEtherTypeIpv6) {
        malformed(fmt::format("EtherType 0x{:04x} is not IPv6", get16(eth + 12)));
    }
    const std::uint8_t* ip = eth + kEthernetHeader;
    if ((ip[0] >> 4) != 6) {
        malformed(fmt::format("IPv6 Version {} is not 6", ip[0] >> 4));
    }
    std::size_t payload = get16(ip + 4);
    if (kEthernetHeader + kIpv6Header + payload > frame.size()) {
        malformed(fmt::format("IPv6 Payload Length {} runs past the frame ({} octets)", payload,
                              frame.size() - kEthernetHeader - kIpv6Header));
    }
    if (ip[6] != kIpProtoIcmpv6) {
        malformed(fmt::format("IPv6 Next Header {} is not ICMPv6", ip[6]));
    }
    return payload;
}

// Hop limit, ICMP length, type, code and checksum of an RS; its options are walked below.
void check_rs_header(const std::uint8_t* ip, std::size_t payload, bool verify_checksum) {
    const std::uint8_t* icmp = ip + kIpv6Header;
    // RFC 4861 §6.1.1: a router MUST silently discard an RS unless all of these hold.
    if (ip[7] != 255) {
        malformed(fmt::format("Router Solicitation: IP Hop Limit {} is not 255", ip[7]));
    }
    if (payload < 8) {
        malformed(fmt::format("Router Solicitation: ICMP length {} is less than 8", payload));
    }
    if (icmp[0] != kIcmpv6RouterSolicitation) {
        malformed(fmt::format("ICMPv6 Type {} is not a Router Solicitation (133)", icmp[0]));
    }
    if (icmp[1] != 0) {
        malformed(fmt::format("Router Solicitation: ICMP Code {} is not 0", icmp[1]));
    }
    if (verify_checksum) {
        std::uint32_t sum = ipv6_pseudo_header(ipv6_at(ip + 8), ipv6_at(ip + 24), static_cast<std::uint32_t>(payload),
                                               kIpProtoIcmpv6);
        sum = checksum_add(std::span(icmp, payload), sum);
        if (checksum_finish(sum) != 0) {
            malformed(fmt::format("Router Solicitation: ICMPv6 Checksum 0x{:04x} is wrong", get16(icmp + 2)));
        }
    }
}

// Walk the RS options (RFC 4861 §6.1.1: every Length nonzero and inside the message); returns
// the address of the (last) Source Link-Layer Address option.
std::optional<MacAddress> rs_source_link_layer_address(const std::uint8_t* icmp, std::size_t payload) {
    std::optional<MacAddress> slla;
    for (std::size_t off = 8; off < payload;) {
        if (off + 2 > payload) {
            malformed(fmt::format("Router Solicitation: option at offset {} is truncated", off));
        }
        std::size_t olen = std::size_t{icmp[off + 1]} * 8;
        if (olen == 0) {
            malformed(fmt::format("Router Solicitation: option {} at offset {} has Length 0", icmp[off], off));
        }
        if (off + olen > payload) {
            malformed(fmt::format("Router Solicitation: option {} at offset {} (Length {}) runs past the message",
                                  icmp[off], off, icmp[off + 1]));
        }
        if (icmp[off] == kNdOptSourceLinkLayer && olen >= 8) {
            slla = mac_at(icmp + off + 2);
        }
        off += olen;
    }
    return slla;
}

} // namespace

RouterSolicitation parse_router_solicitation(std::span<const std::uint8_t> frame, bool verify_checksum) {
    const std::size_t payload = checked_icmpv6_payload(frame);
    const std::uint8_t* eth = frame.data();
    const std::uint8_t* ip = eth + kEthernetHeader;
    RouterSolicitation rs;
    rs.src_mac = mac_at(eth + 6);
    rs.src = ipv6_at(ip + 8);
    check_rs_header(ip, payload, verify_checksum);
    rs.slla = rs_source_link_layer_address(ip + kIpv6Header, payload);
    if (rs.slla && rs.src.is_unspecified()) {
        malformed("Router Solicitation: Source Link-Layer Address option with an unspecified source address");
    }
    return rs;
}

std::vector<std::uint8_t> build_router_advertisement(const RouterAdvertisement& ra) {
    std::vector<std::uint8_t> icmp;
    icmp.push_back(kIcmpv6RouterAdvertisement);
    icmp.push_back(0);          // Code
    put16(icmp, 0);             // Checksum, below
    icmp.push_back(ra.cur_hop_limit);
    icmp.push_back(0);          // M=0, O=0: SLAAC, no DHCPv6
    put16(icmp, ra.router_lifetime);
    put32(icmp, 0);             // Reachable Time: unspecified
    put32(icmp, 0);             // Retrans Timer: unspecified
    // Source Link-Layer Address (RFC 4861 §4.6.1): Type 1, Length 1 (8 octets).
    icmp.push_back(kNdOptSourceLinkLayer);
    icmp.push_back(1);
    put(icmp, ra.src_mac.bytes);
    if (ra.mtu) {
        // MTU (RFC 4861 §4.6.4): Type 5, Length 1, Reserved 16 bits, MTU 32 bits.
        icmp.push_back(kNdOptMtu);
        icmp.push_back(1);
        put16(icmp, 0);
        put32(icmp, *ra.mtu);
    }
    for (const auto& p : ra.prefixes) {
        // Prefix Information (RFC 4861 §4.6.2): Type 3, Length 4, Prefix Length, L|A|Reserved1,
        // Valid Lifetime, Preferred Lifetime, Reserved2, Prefix (bits after the length zero).
        icmp.push_back(kNdOptPrefixInformation);
        icmp.push_back(4);
        icmp.push_back(p.prefix.length);
        icmp.push_back(static_cast<std::uint8_t>((p.on_link ? 0x80 : 0) | (p.autonomous ? 0x40 : 0)));
        put32(icmp, p.valid_lifetime);
        put32(icmp, p.preferred_lifetime);
        put32(icmp, 0);
        put(icmp, p.prefix.canonical().address.bytes);
    }
    const Ipv6Address dst = ra.dst.is_unspecified() ? all_nodes() : ra.dst;
    std::uint32_t sum = ipv6_pseudo_header(ra.src, dst, static_cast<std::uint32_t>(icmp.size()), kIpProtoIcmpv6);
    set16(icmp, 2, checksum_finish(checksum_add(icmp, sum)));

    std::vector<std::uint8_t> out;
    out.reserve(kEthernetHeader + kIpv6Header + icmp.size());
    put_ethernet(out, ra.dst_mac, ra.src_mac, kEtherTypeIpv6);
    put32(out, 0x60000000);     // Version 6, Traffic Class 0, Flow Label 0
    put16(out, static_cast<std::uint16_t>(icmp.size()));
    out.push_back(kIpProtoIcmpv6);
    out.push_back(255);         // RFC 4861 §4.2: IP Hop Limit 255
    put(out, ra.src.bytes);
    put(out, dst.bytes);
    out.insert(out.end(), icmp.begin(), icmp.end());
    return out;
}

// ---- DHCPv4 ----------------------------------------------------------------------------------

std::string to_string(DhcpType t) {
    switch (t) {
    case DhcpType::Discover: return "DHCPDISCOVER";
    case DhcpType::Offer: return "DHCPOFFER";
    case DhcpType::Request: return "DHCPREQUEST";
    case DhcpType::Decline: return "DHCPDECLINE";
    case DhcpType::Ack: return "DHCPACK";
    case DhcpType::Nak: return "DHCPNAK";
    case DhcpType::Release: return "DHCPRELEASE";
    case DhcpType::Inform: return "DHCPINFORM";
    }
    return fmt::format("DHCP message type {}", static_cast<int>(t));
}

const std::vector<std::uint8_t>* DhcpMessage::option(std::uint8_t code) const {
    for (const auto& [c, v] : options) {
        if (c == code) {
            return &v;
        }
    }
    return nullptr;
}

std::optional<DhcpType> DhcpMessage::type() const {
    const auto* v = option(dhcp_option::kMessageType);
    if (!v || v->size() != 1 || (*v)[0] < 1 || (*v)[0] > 8) {
        return std::nullopt;
    }
    return static_cast<DhcpType>((*v)[0]);
}

std::optional<Ipv4Address> DhcpMessage::address_option(std::uint8_t code) const {
    const auto* v = option(code);
    if (!v || v->size() != 4) {
        return std::nullopt;
    }
    return ipv4_at(v->data());
}

Ipv4Address netmask(std::uint8_t prefix_length) {
    std::uint32_t m = prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - std::min<unsigned>(prefix_length, 32));
    return Ipv4Address::from_host_order(m);
}

namespace {

struct Ipv4Lengths {
    std::size_t ihl = 0;     // header length in octets, options included
    std::size_t total = 0;   // Total Length
};

// The IPv4 header of an unfragmented UDP datagram within `room` octets of frame payload.
Ipv4Lengths check_ipv4_udp_header(const std::uint8_t* ip, std::size_t room) {
    if ((ip[0] >> 4) != 4) {
        malformed(fmt::format("IPv4 Version {} is not 4", ip[0] >> 4));
    }
    std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    std::size_t total = get16(ip + 2);
    if (ihl < 20) {
        malformed(fmt::format("IPv4 IHL {} is less than 5", ihl / 4));
    }
    if (total < ihl + kUdpHeader || total > room) {
        malformed(fmt::format("IPv4 Total Length {} is invalid (header {}, frame payload {})", total, ihl, room));
    }
    if (checksum_finish(checksum_add(std::span(ip, ihl))) != 0) {
        malformed(fmt::format("IPv4 Header Checksum 0x{:04x} is wrong", get16(ip + 10)));
    }
    if ((get16(ip + 6) & 0x3fff) != 0) {
        malformed("IPv4: a fragment (MF set or Fragment Offset nonzero)");
    }
    if (ip[9] != kIpProtoUdp) {
        malformed(fmt::format("IPv4 Protocol {} is not UDP", ip[9]));
    }
    return {ihl, total};
}

// The UDP Length inside the IPv4 payload and, when nonzero (and asked for), the UDP checksum
// over the pseudo-header. Returns the UDP Length.
std::size_t check_udp_datagram(const std::uint8_t* ip, const Ipv4Lengths& lengths, bool verify_checksum) {
    const std::uint8_t* udp = ip + lengths.ihl;
    std::size_t udp_len = get16(udp + 4);
    if (udp_len < kUdpHeader || udp_len > lengths.total - lengths.ihl) {
        malformed(fmt::format("UDP Length {} is invalid (IPv4 payload {})", udp_len, lengths.total - lengths.ihl));
    }
    if (verify_checksum && get16(udp + 6) != 0) {
        std::uint8_t pseudo[12] = {};
        std::memcpy(pseudo, ip + 12, 8);
        pseudo[9] = kIpProtoUdp;
        pseudo[10] = static_cast<std::uint8_t>(udp_len >> 8);
        pseudo[11] = static_cast<std::uint8_t>(udp_len);
        if (checksum_finish(checksum_add(std::span(udp, udp_len), checksum_add(pseudo))) != 0) {
            malformed(fmt::format("UDP Checksum 0x{:04x} is wrong", get16(udp + 6)));
        }
    }
    return udp_len;
}

// The fixed BOOTP fields (RFC 2131 Figure 1) up to chaddr; only Ethernet hardware addresses.
void read_bootp_fixed(const std::uint8_t* b, DhcpMessage& m) {
    m.op = b[0];
    if (b[1] != 1 || b[2] != 6) {
        malformed(fmt::format("BOOTP htype {} / hlen {}: only Ethernet (1 / 6) is served", b[1], b[2]));
    }
    m.hops = b[3];
    m.xid = get32(b + 4);
    m.secs = get16(b + 8);
    m.flags = get16(b + 10);
    m.ciaddr = ipv4_at(b + 12);
    m.yiaddr = ipv4_at(b + 16);
    m.siaddr = ipv4_at(b + 20);
    m.giaddr = ipv4_at(b + 24);
    m.chaddr = mac_at(b + 28);
}

// The options after the magic cookie, and those in file / sname under option 52.
void read_dhcp_options(const std::uint8_t* b, std::size_t blen, DhcpMessage& m) {
    if (std::memcmp(b + kBootpFixed, kMagicCookie, 4) != 0) {
        malformed("BOOTP vendor field: no DHCP magic cookie 99.130.83.99");
    }
    parse_options(b + kBootpFixed + 4, blen - kBootpFixed - 4, "options", m);
    // RFC 2132 §9.3 Option Overload: 1 = file, 2 = sname, 3 = both carry options too.
    if (const auto* ov = m.option(dhcp_option::kOverload)) {
        if (ov->size() != 1 || (*ov)[0] < 1 || (*ov)[0] > 3) {
            malformed("DHCP option 52 (Option Overload) is not one octet of 1, 2 or 3");
        }
        std::uint8_t which = (*ov)[0];
        if (which & 1) {
            parse_options(b + 108, 128, "file", m);
        }
        if (which & 2) {
            parse_options(b + 44, 64, "sname", m);
        }
    }
    if (const auto* t = m.option(dhcp_option::kMessageType); t && !m.type()) {
        malformed(fmt::format("DHCP option 53 (Message Type) of {} octets / value {} is invalid", t->size(),
                              t->empty() ? 0 : (*t)[0]));
    }
}

// A BOOTP/DHCP message of `blen` octets (the UDP payload).
void read_dhcp_message(const std::uint8_t* b, std::size_t blen, DhcpMessage& m) {
    if (blen < kBootpFixed + 4) {
        malformed(fmt::format("BOOTP message of {} octets is shorter than {}", blen, kBootpFixed + 4));
    }
    read_bootp_fixed(b, m);
    read_dhcp_options(b, blen, m);
}

} // namespace

DhcpFrame parse_dhcp_frame(std::span<const std::uint8_t> frame, bool verify_checksum) {
    if (frame.size() < kEthernetHeader + 20) {
        malformed(fmt::format("DHCP: frame of {} octets is too short", frame.size()));
    }
    const std::uint8_t* eth = frame.data();
    if (get16(eth + 12) != kEtherTypeIpv4) {
        malformed(fmt::format("EtherType 0x{:04x} is not IPv4", get16(eth + 12)));
    }
    DhcpFrame f;
    f.dst_mac = mac_at(eth);
    f.src_mac = mac_at(eth + 6);
    const std::uint8_t* ip = eth + kEthernetHeader;
    const Ipv4Lengths lengths = check_ipv4_udp_header(ip, frame.size() - kEthernetHeader);
    f.ip_src = ipv4_at(ip + 12);
    f.ip_dst = ipv4_at(ip + 16);
    const std::uint8_t* udp = ip + lengths.ihl;
    const std::size_t udp_len = check_udp_datagram(ip, lengths, verify_checksum);
    f.src_port = get16(udp);
    f.dst_port = get16(udp + 2);
    read_dhcp_message(udp + kUdpHeader, udp_len - kUdpHeader, f.message);
    return f;
}

namespace {

// One option as code-length-value; longer values are split into several instances (RFC 3396 §5).
void put_dhcp_option(std::vector<std::uint8_t>& bootp, std::uint8_t code, const std::vector<std::uint8_t>& value) {
    std::size_t off = 0;
    do {
        std::size_t n = std::min<std::size_t>(255, value.size() - off);
        bootp.push_back(code);
        bootp.push_back(static_cast<std::uint8_t>(n));
        bootp.insert(bootp.end(), value.begin() + static_cast<std::ptrdiff_t>(off),
                     value.begin() + static_cast<std::ptrdiff_t>(off + n));
        off += n;
    } while (off < value.size());
}

// The BOOTP message (RFC 2131 Figure 1) with the options in the given order, End, and Pad up
// to RFC 1542 §3.4's minimum of 300 octets.
std::vector<std::uint8_t> build_bootp(const DhcpMessage& msg) {
    std::vector<std::uint8_t> bootp;
    bootp.push_back(msg.op);
    bootp.push_back(1);   // htype Ethernet
    bootp.push_back(6);   // hlen
    bootp.push_back(msg.hops);
    put32(bootp, msg.xid);
    put16(bootp, msg.secs);
    put16(bootp, msg.flags);
    put(bootp, msg.ciaddr.bytes);
    put(bootp, msg.yiaddr.bytes);
    put(bootp, msg.siaddr.bytes);
    put(bootp, msg.giaddr.bytes);
    put(bootp, msg.chaddr.bytes);
    bootp.resize(kBootpFixed, 0);   // rest of chaddr, sname, file
    bootp.insert(bootp.end(), std::begin(kMagicCookie), std::end(kMagicCookie));
    for (const auto& [code, value] : msg.options) {
        put_dhcp_option(bootp, code, value);
    }
    bootp.push_back(dhcp_option::kEnd);
    if (bootp.size() < kBootpMinimum) {
        bootp.resize(kBootpMinimum, dhcp_option::kPad);
    }
    return bootp;
}

// A 20-octet IPv4 header (no options, TTL 64, protocol UDP) with its header checksum.
void put_ipv4_udp_header(std::vector<std::uint8_t>& out, std::size_t total, std::uint16_t ip_id,
                         const Ipv4Address& ip_src, const Ipv4Address& ip_dst) {
    const std::size_t ip_at = out.size();
    out.push_back(0x45);  // Version 4, IHL 5
    out.push_back(0x10);  // DSCP: low delay, as ISC dhcpd; harmless
    put16(out, static_cast<std::uint16_t>(total));
    put16(out, ip_id);
    put16(out, 0);        // no fragmentation flags
    out.push_back(64);    // TTL
    out.push_back(kIpProtoUdp);
    put16(out, 0);        // header checksum, below
    put(out, ip_src.bytes);
    put(out, ip_dst.bytes);
    set16(out, ip_at + 10, checksum_finish(checksum_add(std::span(out.data() + ip_at, 20))));
}

// The UDP header and payload, the checksum over the IPv4 pseudo-header.
void put_udp(std::vector<std::uint8_t>& out, const Ipv4Address& ip_src, const Ipv4Address& ip_dst,
             std::uint16_t src_port, std::uint16_t dst_port, const std::vector<std::uint8_t>& payload) {
    const std::size_t udp_len = kUdpHeader + payload.size();
    const std::size_t udp_at = out.size();
    put16(out, src_port);
    put16(out, dst_port);
    put16(out, static_cast<std::uint16_t>(udp_len));
    put16(out, 0);
    out.insert(out.end(), payload.begin(), payload.end());
    std::uint8_t pseudo[12] = {};
    std::memcpy(pseudo, ip_src.bytes.data(), 4);
    std::memcpy(pseudo + 4, ip_dst.bytes.data(), 4);
    pseudo[9] = kIpProtoUdp;
    pseudo[10] = static_cast<std::uint8_t>(udp_len >> 8);
    pseudo[11] = static_cast<std::uint8_t>(udp_len);
    std::uint16_t csum = checksum_finish(checksum_add(std::span(out.data() + udp_at, udp_len), checksum_add(pseudo)));
    set16(out, udp_at + 6, csum == 0 ? 0xffff : csum);   // RFC 768: 0 is sent as all ones
}

} // namespace

std::vector<std::uint8_t> build_dhcp_frame(const MacAddress& dst_mac, const MacAddress& src_mac,
                                           const Ipv4Address& ip_src, const Ipv4Address& ip_dst,
                                           std::uint16_t src_port, std::uint16_t dst_port,
                                           std::uint16_t ip_id, const DhcpMessage& msg) {
    const std::vector<std::uint8_t> bootp = build_bootp(msg);
    const std::size_t udp_len = kUdpHeader + bootp.size();
    const std::size_t total = 20 + udp_len;
    std::vector<std::uint8_t> out;
    out.reserve(kEthernetHeader + total);
    put_ethernet(out, dst_mac, src_mac, kEtherTypeIpv4);
    put_ipv4_udp_header(out, total, ip_id, ip_src, ip_dst);
    put_udp(out, ip_src, ip_dst, src_port, dst_port, bootp);
    return out;
}

// ---- ARP -------------------------------------------------------------------------------------

ArpRequest parse_arp_request(std::span<const std::uint8_t> frame) {
    if (frame.size() < kEthernetHeader + 28) {
        malformed(fmt::format("ARP: frame of {} octets is too short", frame.size()));
    }
    const std::uint8_t* eth = frame.data();
    if (get16(eth + 12) != kEtherTypeArp) {
        malformed(fmt::format("EtherType 0x{:04x} is not ARP", get16(eth + 12)));
    }
    const std::uint8_t* a = eth + kEthernetHeader;
    if (get16(a) != 1 || get16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4) {
        malformed(fmt::format("ARP hrd {} / pro 0x{:04x} / hln {} / pln {} is not Ethernet / IPv4", get16(a),
                              get16(a + 2), a[4], a[5]));
    }
    if (get16(a + 6) != 1) {
        malformed(fmt::format("ARP op {} is not a request", get16(a + 6)));
    }
    ArpRequest r;
    r.src_mac = mac_at(eth + 6);
    r.sender_mac = mac_at(a + 8);
    r.sender_ip = ipv4_at(a + 14);
    r.target_ip = ipv4_at(a + 24);
    return r;
}

std::vector<std::uint8_t> build_arp_reply(const MacAddress& mac, const Ipv4Address& ip, const ArpRequest& to) {
    std::vector<std::uint8_t> out;
    out.reserve(60);
    put_ethernet(out, to.sender_mac, mac, kEtherTypeArp);
    put16(out, 1);                  // hrd Ethernet
    put16(out, kEtherTypeIpv4);     // pro IPv4
    out.push_back(6);
    out.push_back(4);
    put16(out, 2);                  // op reply
    put(out, mac.bytes);            // sha: us
    put(out, ip.bytes);             // spa: the address asked for
    put(out, to.sender_mac.bytes);  // tha
    put(out, to.sender_ip.bytes);   // tpa
    out.resize(60, 0);
    return out;
}

} // namespace xpmip::access
