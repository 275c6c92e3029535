// The codec against hand-assembled golden vectors (tests/wire/golden_vectors.hpp).
#include "../wire/golden_vectors.hpp"
#include "wire/messages.hpp"
#include "wire_test_util.hpp"

#include <boost/test/unit_test.hpp>

using namespace xpmip;
using namespace xpmip::wire;

namespace {

OptionList rfc5213_options(std::uint32_t gre_key) {
    OptionList o;
    o.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1@xpmip.example"});
    o.add(HomeNetworkPrefixOption{64, Ipv6Address::parse("2001:db8:1:1::")});
    o.add(HandoffIndicatorOption{1});
    o.add(AccessTechnologyTypeOption{4});
    o.add(TimestampOption{0x00004c044c808000ULL});
    o.add(GreKeyOption{gre_key});
    return o;
}

ProxyBindingUpdate golden_pbu() {
    ProxyBindingUpdate bu;
    bu.sequence = 0x1234;
    bu.flags = bu_flag::kAck | bu_flag::kHomeRegistration | bu_flag::kProxy | bu_flag::kTlvHeader;
    bu.lifetime = 150;
    bu.options = rfc5213_options(0x1001);
    return bu;
}

ProxyBindingAcknowledgement golden_pba() {
    ProxyBindingAcknowledgement ba;
    ba.status = 0;
    ba.flags = ba_flag::kProxy | ba_flag::kTlvHeader;
    ba.sequence = 0x1234;
    ba.lifetime = 150;
    ba.options = rfc5213_options(0x2002);
    return ba;
}

ProxyBindingUpdate golden_ipv4_pbu() {
    ProxyBindingUpdate bu;
    bu.sequence = 7;
    bu.flags = bu_flag::kAck | bu_flag::kHomeRegistration | bu_flag::kProxy | bu_flag::kForceUdp;
    bu.lifetime = 255;
    bu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn2"});
    bu.options.add(Ipv4HomeAddressRequestOption{0, Ipv4Address{}});
    bu.options.add(HandoffIndicatorOption{1});
    bu.options.add(AccessTechnologyTypeOption{3});
    bu.options.add(GreKeyOption{});
    bu.options.add(MagMultipathBindingOption{4, 1, 5, true, false});
    bu.options.add(MagIdentifierOption{kMnIdSubtypeNai, "mag1.example"});
    return bu;
}

ProxyBindingUpdate golden_pbu_lkmrb() {
    ProxyBindingUpdate bu;
    bu.sequence = 3;
    bu.flags = bu_flag::kAck | bu_flag::kHomeRegistration | bu_flag::kLinkLocalCompat | bu_flag::kKeyManagement |
               bu_flag::kMapRegistration | bu_flag::kMobileRouter | bu_flag::kProxy | bu_flag::kBulk;
    bu.lifetime = 100;
    bu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn3"});
    bu.options.add(Ipv4DhcpSupportModeOption{true});
    bu.options.add(MobileNodeLinkLayerIdOption{{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}});
    return bu;
}

ProxyBindingUpdate golden_pbu_bids() {
    ProxyBindingUpdate bu;
    bu.sequence = 4;
    bu.lifetime = 100;
    bu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn3"});
    bu.options.add(BindingIdentifierOption{1, 0, true, 5, std::nullopt, std::nullopt});
    bu.options.add(BindingIdentifierOption{2, 0, false, 127, Ipv4Address::parse("192.0.2.10"), std::nullopt});
    bu.options.add(BindingIdentifierOption{259, 0, true, 3, std::nullopt, Ipv6Address::parse("2001:db8::8")});
    return bu;
}

ProxyBindingAcknowledgement golden_pba_krb() {
    ProxyBindingAcknowledgement ba;
    ba.status = 0;
    ba.flags = ba_flag::kKeyManagement | ba_flag::kMobileRouter | ba_flag::kProxy | ba_flag::kBulk;
    ba.sequence = 4;
    ba.lifetime = 100;
    ba.options.add(NatDetectionOption{true, 110});
    ba.options.add(Ipv4HomeAddressReplyOption{ipv4_hoa_status::kIncorrectHoa, 24, Ipv4Address::parse("10.1.2.3")});
    ba.options.add(BindingIdentifierOption{1, 128, false, 0, std::nullopt, std::nullopt});
    return ba;
}

} // namespace

BOOST_AUTO_TEST_SUITE(wire_golden)

BOOST_AUTO_TEST_CASE(pbu_with_gre_key_and_t_flag_encodes_to_golden_bytes) {
    BOOST_TEST(encode(golden_pbu()) == golden::kPbuGreKeyTlv, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(pbu_golden_bytes_decode_to_the_message) {
    const auto m = decode(golden::kPbuGreKeyTlv);
    BOOST_REQUIRE(std::holds_alternative<ProxyBindingUpdate>(m));
    const auto& bu = std::get<ProxyBindingUpdate>(m);
    BOOST_TEST(bu == golden_pbu());
    BOOST_TEST(bu.has(bu_flag::kTlvHeader));
    BOOST_TEST(bu.lifetime_seconds().count() == 600);
    BOOST_TEST(bu.options.find<GreKeyOption>()->key.value() == 0x1001u);
    BOOST_TEST(bu.options.find<MobileNodeIdentifierOption>()->identifier == "mn1@xpmip.example");
}

BOOST_AUTO_TEST_CASE(pba_with_uplink_key_encodes_and_decodes) {
    BOOST_TEST(encode(golden_pba()) == golden::kPbaGreKeyTlv, boost::test_tools::per_element());
    const auto ba = std::get<ProxyBindingAcknowledgement>(decode(golden::kPbaGreKeyTlv));
    BOOST_TEST(ba == golden_pba());
    BOOST_TEST(ba.has(ba_flag::kTlvHeader));
    BOOST_TEST(ba.options.find<GreKeyOption>()->key.value() == 0x2002u);
}

BOOST_AUTO_TEST_CASE(pba_status_163_without_options) {
    ProxyBindingAcknowledgement ba;
    ba.status = static_cast<std::uint8_t>(Status::GreKeyOptionRequired);
    ba.sequence = 0x1234;
    BOOST_TEST(encode(ba) == golden::kPbaGreKeyRequired, boost::test_tools::per_element());
    const auto back = std::get<ProxyBindingAcknowledgement>(decode(golden::kPbaGreKeyRequired));
    BOOST_TEST(back == ba);
    BOOST_TEST(!back.accepted());
    BOOST_TEST(status_name(back.status) == "GRE_KEY_OPTION_REQUIRED");
}

BOOST_AUTO_TEST_CASE(ipv4_pbu_gre_mode_only_with_multipath_encodes_and_decodes) {
    BOOST_TEST(encode(golden_ipv4_pbu()) == golden::kPbuIpv4GreModeMultipath, boost::test_tools::per_element());
    const auto bu = std::get<ProxyBindingUpdate>(decode(golden::kPbuIpv4GreModeMultipath));
    BOOST_TEST(bu == golden_ipv4_pbu());
    BOOST_TEST(!bu.options.find<GreKeyOption>()->key.has_value());  // GRE mode only (RFC 5845 §3.2)
    BOOST_TEST(bu.options.find<MagMultipathBindingOption>()->bulk_reregistration);
    BOOST_TEST(bu.has(bu_flag::kForceUdp));
}

BOOST_AUTO_TEST_CASE(pbu_with_l_k_m_r_b_flags_dhcp_mode_and_link_layer_id) {
    BOOST_TEST(encode(golden_pbu_lkmrb()) == golden::kPbuLkmrbDhcpLinkLayerId, boost::test_tools::per_element());
    const auto bu = std::get<ProxyBindingUpdate>(decode(golden::kPbuLkmrbDhcpLinkLayerId));
    BOOST_TEST(bu == golden_pbu_lkmrb());
    BOOST_TEST(bu.flags == 0xfe40);
    for (auto flag : {bu_flag::kLinkLocalCompat, bu_flag::kKeyManagement, bu_flag::kMapRegistration,
                      bu_flag::kMobileRouter, bu_flag::kBulk}) {
        BOOST_TEST(bu.has(flag), "flag 0x" << std::hex << flag);
    }
    BOOST_TEST(!bu.has(bu_flag::kForceUdp));
    BOOST_TEST(!bu.has(bu_flag::kTlvHeader));
    BOOST_TEST(bu.options.find<Ipv4DhcpSupportModeOption>()->server);  // S (RFC 5844 §3.3.4)
    BOOST_TEST((bu.options.find<MobileNodeLinkLayerIdOption>()->identifier ==
                std::vector<std::uint8_t>{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}));
}

BOOST_AUTO_TEST_CASE(pbu_with_binding_identifiers_of_length_4_8_and_20) {
    BOOST_TEST(encode(golden_pbu_bids()) == golden::kPbuBindingIdentifiers, boost::test_tools::per_element());
    const auto bu = std::get<ProxyBindingUpdate>(decode(golden::kPbuBindingIdentifiers));
    BOOST_TEST(bu == golden_pbu_bids());
    const auto bids = bu.options.all<BindingIdentifierOption>();
    BOOST_REQUIRE(bids.size() == 3u);
    BOOST_TEST(bids[0].binding_id == 1);
    BOOST_TEST(bids[0].simultaneous_home);
    BOOST_TEST(bids[0].priority == 5);
    BOOST_TEST(!bids[0].ipv4_care_of.has_value());
    BOOST_TEST(!bids[0].ipv6_care_of.has_value());
    BOOST_TEST(bids[1].binding_id == 2);
    BOOST_TEST(!bids[1].simultaneous_home);
    BOOST_TEST(bids[1].priority == 127);
    BOOST_TEST(bids[1].ipv4_care_of->to_string() == "192.0.2.10");
    BOOST_TEST(bids[2].binding_id == 259);
    BOOST_TEST(bids[2].simultaneous_home);
    BOOST_TEST(bids[2].priority == 3);
    BOOST_TEST(bids[2].ipv6_care_of->to_string() == "2001:db8::8");
}

BOOST_AUTO_TEST_CASE(pba_with_k_r_b_flags_nat_detection_and_ipv4_hoa_reply) {
    BOOST_TEST(encode(golden_pba_krb()) == golden::kPbaKrbNatHoaReply, boost::test_tools::per_element());
    const auto ba = std::get<ProxyBindingAcknowledgement>(decode(golden::kPbaKrbNatHoaReply));
    BOOST_TEST(ba == golden_pba_krb());
    BOOST_TEST(ba.flags == 0xe8);
    BOOST_TEST(ba.has(ba_flag::kKeyManagement));
    BOOST_TEST(ba.has(ba_flag::kMobileRouter));
    BOOST_TEST(ba.has(ba_flag::kBulk));
    BOOST_TEST(!ba.has(ba_flag::kTlvHeader));
    const auto* nat = ba.options.find<NatDetectionOption>();
    BOOST_TEST(nat->udp_encapsulation_required);  // F (RFC 5555 §4.2.2)
    BOOST_TEST(nat->refresh_time == 110u);
    const auto* reply = ba.options.find<Ipv4HomeAddressReplyOption>();
    BOOST_TEST(reply->status == ipv4_hoa_status::kIncorrectHoa);
    BOOST_TEST(reply->prefix_length == 24);
    BOOST_TEST(reply->address.to_string() == "10.1.2.3");
    BOOST_TEST(ba.options.find<BindingIdentifierOption>()->status == 128);
}

BOOST_AUTO_TEST_CASE(every_golden_vector_is_a_whole_number_of_8_octet_units) {
    for (const auto& v : golden::kAll) {
        BOOST_TEST(v.bytes.size() % 8 == 0u, v.name);
        BOOST_TEST((v.bytes[1] + 1u) * 8 == v.bytes.size(), v.name);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// RFC 5847 §6.1 and §6.2, octet by octet: a Heartbeat response with the Restart Counter.
BOOST_AUTO_TEST_SUITE(heartbeat)

BOOST_AUTO_TEST_CASE(a_heartbeat_response_with_its_restart_counter_octet_by_octet) {
    Heartbeat hb;
    hb.flags = hb_flag::kResponse;
    hb.sequence = 0x01020304;
    hb.options.add(RestartCounterOption{7});
    const Bytes got = encode(hb);
    // MH (Payload Proto 59, Header Len 2: 24 octets, type 13, checksum), Reserved, Flags R,
    // Sequence Number; a PadN of 2 octets so the option sits at 4n+2; padding to 8n at the end.
    BOOST_REQUIRE_EQUAL(got.size(), 24u);
    BOOST_TEST(std::vector<std::uint8_t>(got.begin(), got.begin() + 12) ==
               std::vector<std::uint8_t>({0x3b, 0x02, 13, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04}),
               boost::test_tools::per_element());
    BOOST_TEST(got[12] == 0x01);   // PadN, Length 0
    BOOST_TEST(got[13] == 0x00);
    BOOST_TEST(std::vector<std::uint8_t>(got.begin() + 14, got.begin() + 20) ==
                   std::vector<std::uint8_t>({0x1c, 0x04, 0x00, 0x00, 0x00, 0x07}),
               boost::test_tools::per_element());
    const auto back = decode(got);
    BOOST_TEST((std::get<Heartbeat>(back) == hb));
    BOOST_TEST(std::get<Heartbeat>(back).response());
    BOOST_TEST(!std::get<Heartbeat>(back).unsolicited());
}

BOOST_AUTO_TEST_CASE(a_heartbeat_cut_short_is_an_error_naming_the_field) {
    Heartbeat hb;
    hb.sequence = 9;
    Bytes mh = encode(hb);
    mh[1] = 0;   // Header Len 0: 8 octets, no room for the sequence number
    mh.resize(8);
    try {
        decode(mh);
        BOOST_FAIL("decoded");
    } catch (const WireError& e) {
        BOOST_TEST(std::string(e.what()).find("Header Len") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_SUITE_END()

// RFC 6275 §6.1.9, octet by octet: Status 2, Reserved, the unspecified Home Address; options
// start at octet 24 (Header Len 2).
BOOST_AUTO_TEST_SUITE(binding_error)

BOOST_AUTO_TEST_CASE(a_binding_error_octet_by_octet_and_back) {
    BindingError be;
    be.status = be_status::kUnrecognizedMhType;
    const Bytes got = encode(be);
    std::vector<std::uint8_t> want{0x3b, 0x02, 7, 0x00, 0x00, 0x00, 0x02, 0x00};
    want.resize(24, 0x00);
    BOOST_TEST(std::vector<std::uint8_t>(got.begin(), got.end()) == want, boost::test_tools::per_element());
    BOOST_TEST((std::get<BindingError>(decode(got)) == be));
    be.status = be_status::kUnknownBindingForHomeAddressOption;
    be.home_address = Ipv6Address::parse("2001:db8::7");
    const Bytes with_home = encode(be);
    BOOST_TEST(with_home[6] == 1);
    BOOST_TEST(with_home[8] == 0x20);
    BOOST_TEST(with_home[23] == 0x07);
    BOOST_TEST((std::get<BindingError>(decode(with_home)) == be));
}

BOOST_AUTO_TEST_CASE(a_binding_error_without_room_for_its_home_address_is_an_error) {
    Bytes mh = encode(BindingError{});
    mh[1] = 1;   // 16 octets: the Home Address cut
    mh.resize(16);
    try {
        decode(mh);
        BOOST_FAIL("decoded");
    } catch (const UnsupportedMessageError& e) {
        BOOST_FAIL("reported as an unknown type: " << e.what());
    } catch (const WireError& e) {
        BOOST_TEST(e.field() == "Header Len", e.what());
        BOOST_TEST(std::string(e.what()).find("Binding Error (needs at least 2)") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_SUITE_END()

// RFC 5846 §5.1 and §5.2, octet by octet: B.R. Type, Trigger or Status, Sequence #, P|V|G, options.
BOOST_AUTO_TEST_SUITE(binding_revocation)

BOOST_AUTO_TEST_CASE(a_per_mn_bri_with_its_mn_identifier_octet_by_octet) {
    BindingRevocationIndication bri;
    bri.trigger = revocation_trigger::kAdministrativeReason;
    bri.sequence = 0x1234;
    bri.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1"});
    const Bytes got = encode(bri);
    // MH (59, Header Len 1: 16 octets, type 16), B.R. Type 1, Trigger 1, Sequence, P only; MN-ID
    // (8, Length 4, subtype 1, "mn1"), then padding to 16.
    BOOST_REQUIRE_EQUAL(got.size(), 24u);
    BOOST_TEST(std::vector<std::uint8_t>(got.begin(), got.begin() + 12) ==
                   std::vector<std::uint8_t>({0x3b, 0x02, 16, 0x00, 0x00, 0x00, 1, 1, 0x12, 0x34, 0x80, 0x00}),
               boost::test_tools::per_element());
    BOOST_TEST(std::vector<std::uint8_t>(got.begin() + 12, got.begin() + 18) ==
                   std::vector<std::uint8_t>({8, 4, 1, 'm', 'n', '1'}),
               boost::test_tools::per_element());
    BOOST_TEST((std::get<BindingRevocationIndication>(decode(got)) == bri));
}

BOOST_AUTO_TEST_CASE(a_global_bri_has_no_options_and_header_len_1) {
    BindingRevocationIndication bri;
    bri.trigger = revocation_trigger::kPerPeerPolicy;
    bri.flags = br_flag::kProxy | br_flag::kGlobal;
    bri.sequence = 7;
    const Bytes got = encode(bri);
    // §5.1: "4 octets of padding ... Header Len ... set to 1".
    BOOST_REQUIRE_EQUAL(got.size(), 16u);
    BOOST_TEST(got[1] == 1);
    BOOST_TEST(got[7] == 128);
    BOOST_TEST(got[10] == 0xa0, "P and G");
    BOOST_TEST((std::get<BindingRevocationIndication>(decode(got)) == bri));
}

BOOST_AUTO_TEST_CASE(a_bra_copies_sequence_and_flags_and_reserved_bits_are_ignored) {
    BindingRevocationAcknowledgement bra;
    bra.status = bra_status::kRevocationFailedMnIsAttached;
    bra.sequence = 0xbeef;
    bra.flags = br_flag::kProxy | br_flag::kIpv4HoaOnly;
    Bytes got = encode(bra);
    BOOST_REQUIRE_EQUAL(got.size(), 16u);
    BOOST_TEST(std::vector<std::uint8_t>(got.begin() + 6, got.begin() + 12) ==
                   std::vector<std::uint8_t>({2, 132, 0xbe, 0xef, 0xc0, 0x00}),
               boost::test_tools::per_element());
    got[10] |= 0x1f;   // reserved bits set by a sender: ignored (§5.2)
    got[11] = 0xff;
    const auto back = std::get<BindingRevocationAcknowledgement>(decode(got));
    BOOST_TEST((back == bra));
    BOOST_TEST(!back.accepted());
}

BOOST_AUTO_TEST_CASE(an_unknown_br_type_is_an_error_naming_the_field) {
    Bytes mh = encode(BindingRevocationIndication{});
    mh[6] = 3;
    try {
        decode(mh);
        BOOST_FAIL("decoded");
    } catch (const WireError& e) {
        BOOST_TEST(e.field() == "B.R. Type", e.what());
        BOOST_TEST(e.offset() == 6u);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// RFC 6602 §4.3, octet by octet: the Mobile Node Group Identifier option in a PBU (B set: the
// MAG asks for bulk support) and status 175 (§4.4).
BOOST_AUTO_TEST_SUITE(bulk_binding_update)

BOOST_AUTO_TEST_CASE(a_pbu_asking_for_bulk_support_with_its_group_octet_by_octet) {
    ProxyBindingUpdate bu;
    bu.sequence = 1;
    bu.flags |= bu_flag::kBulk;
    bu.lifetime = 100;
    bu.options.add(MobileNodeGroupIdentifierOption{kMngSubtypeBulkBindingUpdateGroup, 0x01020304});
    const Bytes got = encode(bu);
    // Options start at 12 (4n): no padding before it; Type 50, Length 6, Sub-type 1, Reserved,
    // the identifier; 2 octets of padding to 24.
    BOOST_REQUIRE_EQUAL(got.size(), 24u);
    BOOST_TEST(got[9] == 0x40, "B (0x0040) with A, H, P in the high octet");
    BOOST_TEST(std::vector<std::uint8_t>(got.begin() + 12, got.begin() + 20) ==
                   std::vector<std::uint8_t>({50, 6, 1, 0, 0x01, 0x02, 0x03, 0x04}),
               boost::test_tools::per_element());
    BOOST_TEST((std::get<ProxyBindingUpdate>(decode(got)) == bu));
}

BOOST_AUTO_TEST_CASE(a_group_option_of_another_length_is_an_error_and_175_has_its_name) {
    ProxyBindingUpdate bu;
    bu.options.add(MobileNodeGroupIdentifierOption{});
    Bytes mh = encode(bu);
    BOOST_REQUIRE_EQUAL(mh[12], 50);
    mh[13] = 4;    // Length 4
    mh[18] = 1;    // (the octets left: a PadN of 0)
    mh[19] = 0;
    try {
        decode(mh);
        BOOST_FAIL("decoded");
    } catch (const WireError& e) {
        BOOST_TEST(e.field() == "Mobile Node Group Identifier option Length", e.what());
    }
    BOOST_TEST(status_name(Status::InvalidMobileNodeGroupIdentifier) == "INVALID_MOBILE_NODE_GROUP_IDENTIFIER");
    BOOST_TEST(static_cast<unsigned>(Status::InvalidMobileNodeGroupIdentifier) == 175u);
}

BOOST_AUTO_TEST_SUITE_END()
