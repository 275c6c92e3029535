// The two signaling framings: IPv6 (MH checksum over the pseudo-header) and IPv4/UDP 5436
// (MH checksum 0, UDP checksum over the message), RFC 6275 §6.1.1 and RFC 5844 §3.
#include "../wire/golden_vectors.hpp"
#include "wire/framing.hpp"
#include "wire_test_util.hpp"

#include <boost/test/unit_test.hpp>

using namespace xpmip;
using namespace xpmip::wire;

namespace {

ProxyBindingUpdate sample_pbu() {
    return std::get<ProxyBindingUpdate>(decode(golden::kPbuGreKeyTlv));
}

const auto kMag6 = Ipv6Address::parse("2001:db8:100::1");
const auto kLma6 = Ipv6Address::parse("2001:db8:200::1");
const auto kMag4 = Ipv4Address::parse("192.0.2.10");
const auto kLma4 = Ipv4Address::parse("198.51.100.1");

void fix_udp_checksum(Bytes& pkt) {
    pkt[26] = pkt[27] = 0;
    Bytes ph = {pkt[12], pkt[13], pkt[14], pkt[15], pkt[16], pkt[17], pkt[18], pkt[19], 0, 17,
                pkt[24], pkt[25]};
    auto c = internet_checksum({ph, ByteView(pkt).subspan(20)});
    pkt[26] = static_cast<std::uint8_t>(c >> 8);
    pkt[27] = static_cast<std::uint8_t>(c);
}

} // namespace

BOOST_AUTO_TEST_SUITE(wire_framing)

BOOST_AUTO_TEST_CASE(internet_checksum_matches_rfc1071_example) {
    // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is 220d.
    const Bytes data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    BOOST_TEST(internet_checksum({data}) == 0x220d);
    // Split across parts at an odd boundary gives the same result.
    BOOST_TEST(internet_checksum({ByteView(data).subspan(0, 3), ByteView(data).subspan(3)}) == 0x220d);
}

BOOST_AUTO_TEST_CASE(ipv6_framing_fills_and_verifies_the_mh_checksum) {
    const auto pkt = frame_ipv6(sample_pbu(), kMag6, kLma6);
    BOOST_TEST(pkt.size() == 40 + golden::kPbuGreKeyTlv.size());
    BOOST_TEST(pkt[6] == 135);
    const ByteView mh = ByteView(pkt).subspan(40);
    BOOST_TEST(load_be16(&mh[4]) != 0);
    BOOST_TEST(mh_checksum_ok(mh, kMag6, kLma6));
    BOOST_TEST(!mh_checksum_ok(mh, kMag6, kMag6));  // the pseudo-header matters
    const auto rx = parse_packet(pkt);
    BOOST_TEST((rx.transport == Transport::Ipv6));
    BOOST_TEST((rx.src6 == kMag6));
    BOOST_TEST((rx.dst6 == kLma6));
    BOOST_TEST((std::get<ProxyBindingUpdate>(rx.message) == sample_pbu()));
}

BOOST_AUTO_TEST_CASE(ipv6_framing_rejects_a_bad_mh_checksum) {
    auto pkt = frame_ipv6(sample_pbu(), kMag6, kLma6);
    pkt[40 + 4] ^= 0x01;
    require_wire_error([&] { (void)parse_packet(pkt); }, "Mobility Header Checksum", 44);
}

BOOST_AUTO_TEST_CASE(ipv4_udp_framing_has_mh_checksum_zero_and_a_udp_checksum) {
    const auto pkt = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 40000);
    BOOST_TEST(pkt[9] == 17);
    BOOST_TEST(load_be16(&pkt[20]) == 40000);
    BOOST_TEST(load_be16(&pkt[22]) == kUdpPortPmipControl);
    BOOST_TEST(load_be16(&pkt[28 + 4]) == 0);  // MH checksum MUST be 0 (RFC 5844 §3)
    BOOST_TEST(load_be16(&pkt[26]) != 0);      // UDP checksum covers the message
    BOOST_TEST(internet_checksum({ByteView(pkt).subspan(0, 20)}) == 0);  // IPv4 header checksum
    const auto rx = parse_packet(pkt);
    BOOST_TEST((rx.transport == Transport::Ipv4Udp));
    BOOST_TEST((rx.src4 == kMag4));
    BOOST_TEST(rx.src_port == 40000);
    BOOST_TEST((std::get<ProxyBindingUpdate>(rx.message) == sample_pbu()));
}

BOOST_AUTO_TEST_CASE(ipv4_udp_ignores_a_nonzero_mh_checksum_on_receipt) {
    auto pkt = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 5436);
    pkt[28 + 4] = 0xab;
    pkt[28 + 5] = 0xcd;
    fix_udp_checksum(pkt);
    BOOST_TEST((std::get<ProxyBindingUpdate>(parse_packet(pkt).message) == sample_pbu()));
}

BOOST_AUTO_TEST_CASE(ipv4_udp_framing_errors_name_the_field) {
    const auto good = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 5436);
    auto bad_udp_csum = good;
    bad_udp_csum[40] ^= 0xff;  // corrupt a payload octet
    require_wire_error([&] { (void)parse_packet(bad_udp_csum); }, "UDP Checksum", 26);

    auto bad_udp_len = good;
    bad_udp_len[25] += 8;
    require_wire_error([&] { (void)parse_packet(bad_udp_len); }, "UDP Length", 24);

    auto bad_total = good;
    bad_total.pop_back();
    require_wire_error([&] { (void)parse_packet(bad_total); }, "IPv4 Total Length", 2);

    auto wrong_port = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 1234, 4321);
    require_wire_error([&] { (void)parse_packet(wrong_port); }, "UDP Destination Port", 22, "5436");

    auto bad_ip_csum = good;
    bad_ip_csum[8] = 1;  // TTL changed without fixing the header checksum
    require_wire_error([&] { (void)parse_packet(bad_ip_csum); }, "IPv4 Header Checksum", 10);

    require_wire_error([] { (void)parse_packet(Bytes{0x50}); }, "IP version", 0);
}

BOOST_AUTO_TEST_CASE(mh_errors_inside_a_packet_are_reported_at_packet_offsets) {
    // A bad GRE Key Length inside the MH of an IPv4/UDP packet: the MH starts at 28, the
    // option's Length octet is at MH offset 77 in the golden PBU.
    auto pkt = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 5436);
    BOOST_REQUIRE(pkt[28 + 76] == 0x21);
    pkt[28 + 77] = 4;
    fix_udp_checksum(pkt);
    require_wire_error([&] { (void)parse_packet(pkt); }, "Mobility Header GRE Key option Length", 28 + 77,
                       "must be 2 or 6");
}

BOOST_AUTO_TEST_SUITE_END()
