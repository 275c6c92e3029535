// The access-link frame codec (user/access/packets.hpp): byte layouts of what we build, and every
// validity check of what we parse, with the field each error names.
#define BOOST_TEST_MODULE access_packets
#include <boost/test/unit_test.hpp>

#include "access/packets.hpp"

#include <cstring>
#include <string>

using namespace xpmip;
using namespace xpmip::access;

namespace {

const MacAddress kMn = MacAddress::parse("02:00:00:00:0a:01");
const MacAddress kMag = MacAddress::parse("02:00:00:00:00:fe");

std::uint16_t get16(const std::vector<std::uint8_t>& v, std::size_t at) {
    return static_cast<std::uint16_t>((v[at] << 8) | v[at + 1]);
}
std::uint32_t get32(const std::vector<std::uint8_t>& v, std::size_t at) {
    return (std::uint32_t{v[at]} << 24) | (std::uint32_t{v[at + 1]} << 16) | (std::uint32_t{v[at + 2]} << 8) |
           v[at + 3];
}

// The ICMPv6 checksum of an Ethernet/IPv6 frame, recomputed: 0 when the stored one is right.
std::uint16_t icmpv6_residue(const std::vector<std::uint8_t>& f) {
    const std::size_t len = get16(f, 18);
    std::uint32_t sum = checksum_add(std::span(f.data() + 22, 32));   // source, destination
    const std::uint8_t tail[8] = {0, 0, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len), 0, 0, 0, 58};
    sum = checksum_add(tail, sum);
    return checksum_finish(checksum_add(std::span(f.data() + 54, len), sum));
}

// A Router Solicitation frame as a host sends it (source link-local, SLLA), checksum filled in.
std::vector<std::uint8_t> rs_frame(std::uint8_t hop_limit = 255, bool unspecified = false,
                                   std::vector<std::uint8_t> options = {1, 1, 2, 0, 0, 0, 0x0a, 1}) {
    std::vector<std::uint8_t> f = {0x33, 0x33, 0, 0, 0, 2, 2, 0, 0, 0, 0x0a, 1, 0x86, 0xdd};
    const std::size_t len = 8 + options.size();
    const std::uint8_t ip[8] = {0x60, 0, 0, 0, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len), 58,
                                hop_limit};
    f.insert(f.end(), ip, ip + 8);
    auto src = unspecified ? Ipv6Address{} : Ipv6Address::parse("fe80::ff:fe00:a01");
    auto dst = Ipv6Address::parse("ff02::2");
    f.insert(f.end(), src.bytes.begin(), src.bytes.end());
    f.insert(f.end(), dst.bytes.begin(), dst.bytes.end());
    const std::uint8_t icmp[8] = {133, 0, 0, 0, 0, 0, 0, 0};
    f.insert(f.end(), icmp, icmp + 8);
    f.insert(f.end(), options.begin(), options.end());
    std::uint16_t c = icmpv6_residue(f);   // with checksum field 0, the residue is the checksum
    f[56] = static_cast<std::uint8_t>(c >> 8);
    f[57] = static_cast<std::uint8_t>(c);
    return f;
}

DhcpMessage discover() {
    DhcpMessage m;
    m.op = 1;
    m.xid = 0x12345678;
    m.flags = kDhcpBroadcastFlag;
    m.chaddr = kMn;
    m.options.emplace_back(dhcp_option::kMessageType, std::vector<std::uint8_t>{1});
    m.options.emplace_back(dhcp_option::kRequestedAddress, std::vector<std::uint8_t>{10, 0, 0, 5});
    return m;
}

std::vector<std::uint8_t> discover_frame(const DhcpMessage& m = discover()) {
    return build_dhcp_frame(MacAddress::parse("ff:ff:ff:ff:ff:ff"), kMn, Ipv4Address{},
                            Ipv4Address::parse("255.255.255.255"), kDhcpClientPort, kDhcpServerPort, 7, m);
}

// Recompute the UDP checksum after a test edited the payload.
void fix_udp_checksum(std::vector<std::uint8_t>& f) {
    const std::size_t udp = 14 + 20;
    f[udp + 6] = f[udp + 7] = 0;
    const std::size_t len = get16(f, udp + 4);
    std::uint8_t pseudo[12] = {};
    std::memcpy(pseudo, f.data() + 14 + 12, 8);
    pseudo[9] = 17;
    pseudo[10] = static_cast<std::uint8_t>(len >> 8);
    pseudo[11] = static_cast<std::uint8_t>(len);
    std::uint16_t c = checksum_finish(checksum_add(std::span(f.data() + udp, len), checksum_add(pseudo)));
    f[udp + 6] = static_cast<std::uint8_t>(c >> 8);
    f[udp + 7] = static_cast<std::uint8_t>(c);
}

template <typename F>
void expect_malformed(F&& f, const std::string& needle) {
    try {
        f();
        BOOST_ERROR("accepted; expected an error containing \"" << needle << "\"");
    } catch (const MalformedFrame& e) {
        BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, "\"" << e.what() << "\" lacks \"" << needle << "\"");
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(access_packets)

BOOST_AUTO_TEST_CASE(internet_checksum_rfc1071_example) {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2; the checksum is its complement.
    const std::uint8_t data[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    BOOST_TEST(checksum_add(data) == 0xddf2u);
    BOOST_TEST(checksum_finish(checksum_add(data)) == 0x220du);
    const std::uint8_t odd[3] = {0x01, 0x02, 0x03};   // the odd octet is padded with zero
    BOOST_TEST(checksum_add(odd) == 0x0402u);
}

BOOST_AUTO_TEST_CASE(router_advertisement_layout) {
    RouterAdvertisement ra;
    ra.dst_mac = kMn;
    ra.src_mac = kMag;
    ra.src = Ipv6Address::parse("fe80::1");
    ra.router_lifetime = 1800;
    ra.mtu = 1400;
    ra.prefixes.push_back({Ipv6Prefix::parse("2001:db8:a:1::5/64"), 900, 600, true, true});
    ra.prefixes.push_back({Ipv6Prefix::parse("2001:db8:a:2::/64"), 0, 0, true, true});
    auto f = build_router_advertisement(ra);
    BOOST_TEST(f.size() == 14u + 40 + 16 + 8 + 8 + 32 + 32);
    BOOST_TEST(std::memcmp(f.data(), kMn.bytes.data(), 6) == 0);
    BOOST_TEST(std::memcmp(f.data() + 6, kMag.bytes.data(), 6) == 0);
    BOOST_TEST(get16(f, 12) == 0x86ddu);
    BOOST_TEST(f[14] == 0x60);
    BOOST_TEST(get16(f, 18) == f.size() - 54);   // Payload Length
    BOOST_TEST(f[20] == 58);
    BOOST_TEST(f[21] == 255);                    // Hop Limit (RFC 4861 §4.2)
    Ipv6Address dst;
    std::memcpy(dst.bytes.data(), f.data() + 38, 16);
    BOOST_TEST(dst.to_string() == "ff02::1");
    BOOST_TEST(f[54] == 134);
    BOOST_TEST(f[55] == 0);
    BOOST_TEST(icmpv6_residue(f) == 0u);
    BOOST_TEST(f[58] == 64);                     // Cur Hop Limit
    BOOST_TEST(f[59] == 0);                      // M = O = 0
    BOOST_TEST(get16(f, 60) == 1800u);
    BOOST_TEST(get32(f, 62) == 0u);
    BOOST_TEST(get32(f, 66) == 0u);
    // SLLA at 70, MTU at 78, PIOs at 86 and 118.
    BOOST_TEST(f[70] == 1);
    BOOST_TEST(f[71] == 1);
    BOOST_TEST(std::memcmp(f.data() + 72, kMag.bytes.data(), 6) == 0);
    BOOST_TEST(f[78] == 5);
    BOOST_TEST(f[79] == 1);
    BOOST_TEST(get32(f, 82) == 1400u);
    BOOST_TEST(f[86] == 3);
    BOOST_TEST(f[87] == 4);
    BOOST_TEST(f[88] == 64);
    BOOST_TEST(f[89] == 0xc0);                   // L = A = 1
    BOOST_TEST(get32(f, 90) == 900u);
    BOOST_TEST(get32(f, 94) == 600u);
    BOOST_TEST(get32(f, 98) == 0u);
    Ipv6Address p;
    std::memcpy(p.bytes.data(), f.data() + 102, 16);
    BOOST_TEST(p.to_string() == "2001:db8:a:1::");   // host bits cleared
    BOOST_TEST(get32(f, 122) == 0u);
    BOOST_TEST(get32(f, 126) == 0u);
}

BOOST_AUTO_TEST_CASE(router_solicitation_accepted) {
    auto rs = parse_router_solicitation(rs_frame());
    BOOST_TEST(rs.src_mac.to_string() == "02:00:00:00:0a:01");
    BOOST_TEST(rs.src.to_string() == "fe80::ff:fe00:a01");
    BOOST_REQUIRE(rs.slla.has_value());
    BOOST_TEST(rs.slla->to_string() == "02:00:00:00:0a:01");
    auto bare = parse_router_solicitation(rs_frame(255, true, {}));   // :: without SLLA is fine
    BOOST_TEST(bare.src.is_unspecified());
    BOOST_TEST(!bare.slla.has_value());
}

BOOST_AUTO_TEST_CASE(router_solicitation_rfc4861_6_1_1_checks) {
    expect_malformed([] { parse_router_solicitation(rs_frame(64)); }, "Hop Limit 64 is not 255");
    auto bad = rs_frame();
    bad[57] ^= 0xff;
    expect_malformed([&] { parse_router_solicitation(bad); }, "ICMPv6 Checksum");
    BOOST_CHECK_NO_THROW(parse_router_solicitation(bad, false));   // when the kernel says it is not filled in
    auto code = rs_frame();
    code[55] = 1;
    expect_malformed([&] { parse_router_solicitation(code, false); }, "ICMP Code 1");
    expect_malformed([] { parse_router_solicitation(rs_frame(255, false, {1, 0, 0, 0, 0, 0, 0, 0})); }, "has Length 0");
    expect_malformed([] { parse_router_solicitation(rs_frame(255, false, {1, 2, 0, 0, 0, 0, 0, 0})); },
                     "runs past the message");
    expect_malformed([] { parse_router_solicitation(rs_frame(255, true)); }, "unspecified source");
    auto truncated = rs_frame();
    truncated.resize(truncated.size() - 4);
    expect_malformed([&] { parse_router_solicitation(truncated); }, "Payload Length 16 runs past");
    auto udp = rs_frame();
    udp[20] = 17;
    expect_malformed([&] { parse_router_solicitation(udp); }, "Next Header 17");
}

BOOST_AUTO_TEST_CASE(dhcp_round_trip_and_layout) {
    auto f = discover_frame();
    BOOST_TEST(f.size() == 14u + 20 + 8 + 300);   // padded to the BOOTP minimum
    BOOST_TEST(checksum_finish(checksum_add(std::span(f.data() + 14, 20))) == 0u);
    BOOST_TEST(get16(f, 14 + 2) == 20u + 8 + 300);
    BOOST_TEST(get16(f, 34) == 68u);
    BOOST_TEST(get16(f, 36) == 67u);
    auto d = parse_dhcp_frame(f);
    BOOST_TEST(d.src_mac.to_string() == "02:00:00:00:0a:01");
    BOOST_TEST(d.ip_dst.to_string() == "255.255.255.255");
    BOOST_TEST(d.message.xid == 0x12345678u);
    BOOST_TEST(d.message.flags == kDhcpBroadcastFlag);
    BOOST_TEST(d.message.chaddr.to_string() == "02:00:00:00:0a:01");
    BOOST_TEST((d.message.type() == DhcpType::Discover));
    BOOST_TEST(d.message.address_option(dhcp_option::kRequestedAddress)->to_string() == "10.0.0.5");
    BOOST_TEST(!d.message.address_option(dhcp_option::kServerId).has_value());
}

BOOST_AUTO_TEST_CASE(dhcp_long_option_split_and_joined_rfc3396) {
    auto m = discover();
    std::vector<std::uint8_t> big(300);
    for (std::size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<std::uint8_t>(i);
    }
    m.options.emplace_back(dhcp_option::kClientId, big);
    auto f = discover_frame(m);
    // Two instances: 255 + 45 octets.
    const std::size_t opts = 14 + 20 + 8 + 240;
    std::size_t at = opts + 3 + 6;   // after message type and requested address
    BOOST_TEST(f[at] == dhcp_option::kClientId);
    BOOST_TEST(f[at + 1] == 255);
    BOOST_TEST(f[at + 2 + 255] == dhcp_option::kClientId);
    BOOST_TEST(f[at + 2 + 255 + 1] == 45);
    auto d = parse_dhcp_frame(f);
    BOOST_REQUIRE(d.message.option(dhcp_option::kClientId));
    BOOST_TEST(*d.message.option(dhcp_option::kClientId) == big);
}

BOOST_AUTO_TEST_CASE(dhcp_option_overload_reads_file_field) {
    auto m = discover();
    m.options.emplace_back(dhcp_option::kOverload, std::vector<std::uint8_t>{1});
    auto f = discover_frame(m);
    const std::size_t file = 14 + 20 + 8 + 108;
    const std::uint8_t server_id[] = {54, 4, 10, 0, 0, 1, 255};
    std::memcpy(f.data() + file, server_id, sizeof(server_id));
    fix_udp_checksum(f);
    auto d = parse_dhcp_frame(f);
    BOOST_TEST(d.message.address_option(dhcp_option::kServerId)->to_string() == "10.0.0.1");
}

BOOST_AUTO_TEST_CASE(dhcp_malformed_inputs_name_the_field) {
    const std::size_t ip = 14, udp = 34, bootp = 42, opts = 42 + 240;
    {
        auto f = discover_frame();
        f[ip + 10] ^= 1;
        expect_malformed([&] { parse_dhcp_frame(f); }, "IPv4 Header Checksum");
    }
    {
        auto f = discover_frame();
        f[bootp + 100] ^= 1;
        expect_malformed([&] { parse_dhcp_frame(f); }, "UDP Checksum");
        BOOST_CHECK_NO_THROW(parse_dhcp_frame(f, false));
    }
    {
        auto f = discover_frame();
        f[udp + 6] = f[udp + 7] = 0;   // no UDP checksum: allowed over IPv4
        BOOST_CHECK_NO_THROW(parse_dhcp_frame(f));
    }
    {
        auto f = discover_frame();
        f[ip + 6] = 0x20;   // MF
        f[ip + 10] = f[ip + 11] = 0;
        std::uint16_t c = checksum_finish(checksum_add(std::span(f.data() + ip, 20)));
        f[ip + 10] = static_cast<std::uint8_t>(c >> 8);
        f[ip + 11] = static_cast<std::uint8_t>(c);
        expect_malformed([&] { parse_dhcp_frame(f); }, "fragment");
    }
    {
        auto f = discover_frame();
        f.resize(f.size() - 10);
        expect_malformed([&] { parse_dhcp_frame(f); }, "IPv4 Total Length 328 is invalid");
    }
    {
        auto f = discover_frame();
        f[bootp + 1] = 6;   // htype IEEE 802
        fix_udp_checksum(f);
        expect_malformed([&] { parse_dhcp_frame(f); }, "htype 6");
    }
    {
        auto f = discover_frame();
        f[bootp + 236] = 1;
        fix_udp_checksum(f);
        expect_malformed([&] { parse_dhcp_frame(f); }, "magic cookie");
    }
    {
        auto f = discover_frame();
        f[opts + 2] = 9;   // message type value 9
        fix_udp_checksum(f);
        expect_malformed([&] { parse_dhcp_frame(f); }, "option 53");
    }
    {
        auto f = discover_frame();
        // Replace the End and the padding after the last option with one that runs off the end.
        const std::size_t last = opts + 3 + 6;
        f[last] = 12;
        f[last + 1] = 200;
        fix_udp_checksum(f);
        expect_malformed([&] { parse_dhcp_frame(f); }, "DHCP option 12 in options: length 200 runs past");
    }
}

BOOST_AUTO_TEST_CASE(arp_request_and_reply) {
    std::vector<std::uint8_t> f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0x0a, 1, 0x08, 0x06,
                                   0, 1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0x0a, 1, 10, 0, 0, 5,
                                   0, 0, 0, 0, 0, 0, 10, 0, 0, 1};
    auto r = parse_arp_request(f);
    BOOST_TEST(r.sender_mac.to_string() == "02:00:00:00:0a:01");
    BOOST_TEST(r.sender_ip.to_string() == "10.0.0.5");
    BOOST_TEST(r.target_ip.to_string() == "10.0.0.1");
    auto reply = build_arp_reply(kMag, r.target_ip, r);
    BOOST_TEST(reply.size() == 60u);
    BOOST_TEST(std::memcmp(reply.data(), kMn.bytes.data(), 6) == 0);
    BOOST_TEST(get16(reply, 20) == 2u);                                   // op reply
    BOOST_TEST(std::memcmp(reply.data() + 22, kMag.bytes.data(), 6) == 0); // sha
    BOOST_TEST(reply[28] == 10);
    BOOST_TEST(reply[31] == 1);                                            // spa 10.0.0.1
    BOOST_TEST(std::memcmp(reply.data() + 32, kMn.bytes.data(), 6) == 0);  // tha
    BOOST_TEST(reply[41] == 5);                                            // tpa 10.0.0.5
    f[21] = 2;
    expect_malformed([&] { parse_arp_request(f); }, "ARP op 2 is not a request");
}

BOOST_AUTO_TEST_CASE(netmasks) {
    BOOST_TEST(netmask(0).to_string() == "0.0.0.0");
    BOOST_TEST(netmask(16).to_string() == "255.255.0.0");
    BOOST_TEST(netmask(20).to_string() == "255.255.240.0");
    BOOST_TEST(netmask(31).to_string() == "255.255.255.254");
    BOOST_TEST(netmask(32).to_string() == "255.255.255.255");
}

BOOST_AUTO_TEST_SUITE_END()
