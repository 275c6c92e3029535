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

BOOST_AUTO_TEST_CASE(every_golden_vector_is_a_whole_number_of_8_octet_units) {
    for (const auto& v : golden::kAll) {
        BOOST_TEST(v.bytes.size() % 8 == 0u, v.name);
        BOOST_TEST((v.bytes[1] + 1u) * 8 == v.bytes.size(), v.name);
    }
}

BOOST_AUTO_TEST_SUITE_END()
