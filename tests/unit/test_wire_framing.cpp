// The two signaling framings: IPv6 (MH checksum over the pseudo-header) and IPv4/UDP 5436
// (MH checksum 0, UDP checksum over the message), RFC 6275 §6.1.1 and RFC 5844 §3.
#include "../wire/golden_vectors.hpp"
#include "wire/framing.hpp"
#include "wire_test_util.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <utility>

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

void fix_ipv4_header_checksum(Bytes& pkt) {
    const std::size_t ihl = (pkt[0] & 0x0f) * 4u;
    pkt[10] = pkt[11] = 0;
    const auto c = internet_checksum({ByteView(pkt).subspan(0, ihl)});
    pkt[10] = static_cast<std::uint8_t>(c >> 8);
    pkt[11] = static_cast<std::uint8_t>(c);
}

// Recompute the MH checksum of an IPv6 packet (MH at 40, Payload Length octets long).
void fix_mh_checksum(Bytes& pkt) {
    Ipv6Address src, dst;
    std::copy(pkt.begin() + 8, pkt.begin() + 24, src.bytes.begin());
    std::copy(pkt.begin() + 24, pkt.begin() + 40, dst.bytes.begin());
    Bytes mh(pkt.begin() + 40, pkt.begin() + 40 + load_be16(&pkt[4]));
    fill_mh_checksum(mh, src, dst);
    std::copy(mh.begin(), mh.end(), pkt.begin() + 40);
}

ProxyBindingAcknowledgement sample_pba() {
    return std::get<ProxyBindingAcknowledgement>(decode(golden::kPbaGreKeyTlv));
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

// RFC 6275 §9.2: "The checksum must be verified as per Section 6.1. Otherwise, the node MUST
// silently discard the message" - the first check, before the message is decoded.
BOOST_AUTO_TEST_CASE(ipv6_mh_checksum_is_verified_before_the_message_is_decoded) {
    auto pkt = frame_ipv6(sample_pbu(), kMag6, kLma6);
    BOOST_REQUIRE(pkt[40 + 76] == 0x21);  // the GRE Key option
    pkt[40 + 77] = 4;                     // a bad option Length, checksum left as it was
    require_wire_error([&] { (void)parse_packet(pkt); }, "Mobility Header Checksum", 44);
    fix_mh_checksum(pkt);  // with a right checksum the option is what is wrong
    require_wire_error([&] { (void)parse_packet(pkt); }, "Mobility Header GRE Key option Length", 40 + 77,
                       "must be 2 or 6");
}

// RFC 6275 §9.2: unknown MH Types get a Binding Error (Status 2): the subclass and its MH Type
// survive parse_packet, with the offset re-based onto the packet, in both framings.
BOOST_AUTO_TEST_CASE(unsupported_mh_type_reaches_the_caller_of_parse_packet) {
    const auto expect_unsupported = [](const Bytes& pkt, std::size_t offset, std::uint8_t type) {
        try {
            (void)parse_packet(pkt);
            BOOST_ERROR("accepted");
        } catch (const UnsupportedMessageError& e) {
            BOOST_TEST(e.field() == "Mobility Header MH Type");
            BOOST_TEST(e.offset() == offset);
            BOOST_TEST(e.mh_type() == type);
        } catch (const WireError& e) {
            BOOST_ERROR("a plain WireError: " << e.what());
        }
    };
    ProxyBindingAcknowledgement ba;
    ba.status = static_cast<std::uint8_t>(Status::GreKeyOptionRequired);
    auto v6 = frame_ipv6(ba, kLma6, kMag6);
    v6[40 + 2] = 17;  // Localized Routing Initiation (RFC 6705)
    fix_mh_checksum(v6);
    expect_unsupported(v6, 42, 17);
    auto v4 = frame_ipv4_udp(ba, kLma4, kMag4, 5436, 40000);
    v4[28 + 2] = 12;  // Home Agent Switch (RFC 5142)
    fix_udp_checksum(v4);
    expect_unsupported(v4, 30, 12);
}

// RFC 791 §3.1 / RFC 8200 §3: the IP length fields say where the packet ends; octets after it
// (Ethernet pads short frames to 60 octets) are ignored. A length beyond the buffer is an error.
BOOST_AUTO_TEST_CASE(octets_after_the_ip_length_are_ignored) {
    ProxyBindingAcknowledgement ba;  // short: 20 + 8 + 16 = 44 octets, padded to 46 on Ethernet
    ba.status = static_cast<std::uint8_t>(Status::GreKeyOptionRequired);
    auto v4 = frame_ipv4_udp(ba, kLma4, kMag4, 5436, 40000);
    BOOST_REQUIRE(v4.size() == 44u);
    v4.insert(v4.end(), {0xee, 0xee});
    const auto rx4 = parse_packet(v4);
    BOOST_TEST((std::get<ProxyBindingAcknowledgement>(rx4.message) == ba));
    BOOST_TEST(rx4.dst_port == 40000);

    auto v6 = frame_ipv6(sample_pbu(), kMag6, kLma6);
    v6.insert(v6.end(), {0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee});
    BOOST_TEST((std::get<ProxyBindingUpdate>(parse_packet(v6).message) == sample_pbu()));

    auto long6 = frame_ipv6(sample_pbu(), kMag6, kLma6);
    long6.pop_back();  // Payload Length now exceeds what is there
    require_wire_error([&] { (void)parse_packet(long6); }, "IPv6 Payload Length", 4, "exceeds");
    auto long4 = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 5436);
    long4.pop_back();
    require_wire_error([&] { (void)parse_packet(long4); }, "IPv4 Total Length", 2, "exceeds");
    auto short4 = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 5436);
    short4[2] = 0;
    short4[3] = 19;  // shorter than the IPv4 header itself
    fix_ipv4_header_checksum(short4);
    require_wire_error([&] { (void)parse_packet(short4); }, "IPv4 Total Length", 2, "shorter than");
}

BOOST_AUTO_TEST_CASE(ipv6_next_header_other_than_135) {
    auto pkt = frame_ipv6(sample_pbu(), kMag6, kLma6);
    pkt[6] = 17;
    require_wire_error([&] { (void)parse_packet(pkt); }, "IPv6 Next Header", 6, "135");
}

BOOST_AUTO_TEST_CASE(ipv4_header_paths) {
    const auto good = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 40000);

    auto ihl4 = good;
    ihl4[0] = 0x44;  // IHL 4: 16 octets, less than the fixed header
    require_wire_error([&] { (void)parse_packet(ihl4); }, "IPv4 IHL", 0, "shorter than 20");

    // IHL 6: one word of options (NOP NOP NOP End, RFC 791 §3.1) is skipped.
    Bytes ihl6(good.begin(), good.begin() + 20);
    ihl6.insert(ihl6.end(), {0x01, 0x01, 0x01, 0x00});
    ihl6.insert(ihl6.end(), good.begin() + 20, good.end());
    ihl6[0] = 0x46;
    ihl6[3] = static_cast<std::uint8_t>(ihl6[3] + 4);
    fix_ipv4_header_checksum(ihl6);
    const auto rx = parse_packet(ihl6);
    BOOST_TEST((std::get<ProxyBindingUpdate>(rx.message) == sample_pbu()));
    BOOST_TEST(rx.src_port == 40000);

    for (auto [hi, lo] : {std::pair<std::uint8_t, std::uint8_t>{0x20, 0x00},   // MF: a first fragment
                          std::pair<std::uint8_t, std::uint8_t>{0x00, 0x10}}) { // a later fragment
        auto frag = good;
        frag[6] = hi;
        frag[7] = lo;
        fix_ipv4_header_checksum(frag);
        require_wire_error([&] { (void)parse_packet(frag); }, "IPv4 Flags/Fragment Offset", 6, "fragments");
    }

    auto tcp = good;
    tcp[9] = 6;
    fix_ipv4_header_checksum(tcp);
    require_wire_error([&] { (void)parse_packet(tcp); }, "IPv4 Protocol", 9, "not UDP");
}

// RFC 768: a UDP checksum of 0 means "not computed"; it is accepted over IPv4.
BOOST_AUTO_TEST_CASE(udp_checksum_zero_is_accepted) {
    auto pkt = frame_ipv4_udp(sample_pbu(), kMag4, kLma4, 40000);
    pkt[26] = pkt[27] = 0;
    BOOST_TEST((std::get<ProxyBindingUpdate>(parse_packet(pkt).message) == sample_pbu()));
}

// RFC 5844 §3: the PBA goes from port 5436 to the PBU's (ephemeral) source port.
BOOST_AUTO_TEST_CASE(pba_from_port_5436_to_an_ephemeral_port_is_accepted) {
    const auto rx = parse_packet(frame_ipv4_udp(sample_pba(), kLma4, kMag4, kUdpPortPmipControl, 49152));
    BOOST_TEST((rx.transport == Transport::Ipv4Udp));
    BOOST_TEST(rx.src_port == kUdpPortPmipControl);
    BOOST_TEST(rx.dst_port == 49152);
    BOOST_TEST((rx.src4 == kLma4));
    BOOST_TEST((std::get<ProxyBindingAcknowledgement>(rx.message) == sample_pba()));
}

// RFC 6275 §6.1.1: Header Len is 8 bits of 8-octet units beyond the first 8, so 255 (2048
// octets) is the largest Mobility Header.
BOOST_AUTO_TEST_CASE(header_len_255_is_the_largest_message) {
    // 12 fixed octets + 7 unknown options of 257 octets + one of 237 = 2048 exactly, no padding.
    ProxyBindingUpdate bu;
    bu.lifetime = 100;
    for (int i = 0; i < 7; ++i) {
        bu.options.add(UnknownOption{200, std::vector<std::uint8_t>(255, static_cast<std::uint8_t>(i))});
    }
    bu.options.add(UnknownOption{201, std::vector<std::uint8_t>(235, 0xaa)});
    const auto mh = encode(bu);
    BOOST_TEST(mh.size() == 2048u);
    BOOST_TEST(mh[1] == 255);
    BOOST_TEST((decode(mh) == MobilityMessage{bu}));
    const auto pkt = frame_ipv6(bu, kMag6, kLma6);
    BOOST_TEST((std::get<ProxyBindingUpdate>(parse_packet(pkt).message) == bu));

    // One octet more needs 2049 octets, padded to 2056: Header Len would be 256.
    std::get<UnknownOption>(bu.options.items.back()).data.push_back(0xaa);
    require_wire_error([&] { (void)encode(bu); }, "Header Len", WireError::kNoOffset, "2048");
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
