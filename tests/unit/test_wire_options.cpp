// Round trip and alignment of every mobility option, in both messages; padding tolerance.
#include "../wire/golden_vectors.hpp"
#include "wire/messages.hpp"
#include "wire_test_util.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

using namespace xpmip;
using namespace xpmip::wire;
namespace bdata = boost::unit_test::data;

namespace {

// One representative value of every option the codec knows, plus an unknown one.
std::vector<MobilityOption> every_option() {
    BindingIdentifierOption bid4{7, 0, true, 3, Ipv4Address::parse("198.51.100.7"), std::nullopt};
    BindingIdentifierOption bid6{8, 1, false, 0, std::nullopt, Ipv6Address::parse("2001:db8::8")};
    BindingIdentifierOption bid_bare{9, 0, false, 0, std::nullopt, std::nullopt};
    return {
        MobileNodeIdentifierOption{kMnIdSubtypeNai, "user@operator-a.example"},
        HomeNetworkPrefixOption{56, Ipv6Address::parse("2001:db8:aa00::")},
        HomeNetworkPrefixOption{0, Ipv6Address{}},
        HandoffIndicatorOption{3},
        AccessTechnologyTypeOption{5},
        MobileNodeLinkLayerIdOption{{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}},
        LinkLocalAddressOption{Ipv6Address::parse("fe80::1")},
        TimestampOption{0x0000'6543'2100'8000ULL},
        NatDetectionOption{true, 110},
        Ipv4CareOfAddressOption{Ipv4Address::parse("203.0.113.9")},
        GreKeyOption{0xdeadbeef},
        GreKeyOption{std::nullopt},
        bid4,
        bid6,
        bid_bare,
        Ipv4HomeAddressRequestOption{24, Ipv4Address::parse("10.0.0.7")},
        Ipv4HomeAddressReplyOption{ipv4_hoa_status::kSuccess, 24, Ipv4Address::parse("10.0.0.7")},
        Ipv4DefaultRouterAddressOption{Ipv4Address::parse("10.0.0.1")},
        Ipv4DhcpSupportModeOption{true},
        MagMultipathBindingOption{4, 2, 254, false, true},
        MagIdentifierOption{kMnIdSubtypeNai, "mag-7@xpmip.example"},
        UnknownOption{200, {1, 2, 3}},
        UnknownOption{201, {}},
    };
}

bool aligned(std::size_t at, Alignment a) { return at % a.factor == a.offset; }

// Walk an encoded MH and return the offsets of every non-padding option's Type octet.
std::vector<std::size_t> option_offsets(const Bytes& mh) {
    std::vector<std::size_t> out;
    std::size_t at = kMhFixedPartLength;
    while (at < mh.size()) {
        if (mh[at] == 0) {
            ++at;
            continue;
        }
        if (mh[at] != 1) {
            out.push_back(at);
        }
        at += 2 + mh[at + 1];
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(wire_options)

BOOST_DATA_TEST_CASE(every_option_round_trips_in_a_pbu_and_a_pba, bdata::xrange(every_option().size()), i) {
    const auto option = every_option()[i];
    ProxyBindingUpdate bu;
    bu.sequence = 42;
    bu.options.add(option);
    BOOST_TEST((std::get<ProxyBindingUpdate>(decode(encode(bu))) == bu));
    ProxyBindingAcknowledgement ba;
    ba.status = 0;
    ba.options.add(option);
    BOOST_TEST((std::get<ProxyBindingAcknowledgement>(decode(encode(ba))) == ba));
}

BOOST_AUTO_TEST_CASE(all_options_together_round_trip_in_order) {
    ProxyBindingUpdate bu;
    for (auto& o : every_option()) {
        bu.options.add(o);
    }
    const auto bytes = encode(bu);
    BOOST_TEST(bytes.size() % 8 == 0u);
    BOOST_TEST((std::get<ProxyBindingUpdate>(decode(bytes)) == bu));
}

// RFC 6275 §6.2.1: each option starts at its xn+y offset; the MH is a multiple of 8 octets.
// Shift every option through all eight phases by preceding it with MN-IDs of 1..8 octets.
BOOST_DATA_TEST_CASE(every_option_honours_its_alignment_after_any_preceding_length,
                     bdata::xrange(every_option().size()) * bdata::xrange(1, 9), i, shift) {
    const auto option = every_option()[i];
    ProxyBindingUpdate bu;
    bu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, std::string(static_cast<std::size_t>(shift), 'x')});
    bu.options.add(option);
    const auto bytes = encode(bu);
    BOOST_TEST(bytes.size() % 8 == 0u);
    BOOST_TEST(bytes[1] == bytes.size() / 8 - 1);
    const auto offsets = option_offsets(bytes);
    BOOST_REQUIRE(offsets.size() == 2u);
    const auto a = option_alignment(option);
    BOOST_TEST(aligned(offsets[1], a), "option " << int(option_type(option)) << " at " << offsets[1]
                                                 << " wants " << int(a.factor) << "n+" << int(a.offset));
    BOOST_TEST(bytes[offsets[1]] == option_type(option));
}

BOOST_AUTO_TEST_CASE(alignment_table_matches_the_rfcs) {
    BOOST_TEST(GreKeyOption::kAlign.factor == 4);                   // RFC 5845 §6.1: 4n
    BOOST_TEST(GreKeyOption::kAlign.offset == 0);
    BOOST_TEST(MagMultipathBindingOption::kAlign.factor == 8);      // RFC 8278 §4.1: 8n+2
    BOOST_TEST(MagMultipathBindingOption::kAlign.offset == 2);
    BOOST_TEST(TimestampOption::kAlign.factor == 8);                // RFC 5213 §8.8: 8n+2
    BOOST_TEST(TimestampOption::kAlign.offset == 2);
    BOOST_TEST(HomeNetworkPrefixOption::kAlign.factor == 8);        // RFC 5213 §8.3: 8n+4
    BOOST_TEST(HomeNetworkPrefixOption::kAlign.offset == 4);
    BOOST_TEST(MagIdentifierOption::kAlign.factor == 1);            // RFC 8278 §4.2: none
}

BOOST_AUTO_TEST_CASE(unknown_options_are_kept_raw_and_skipped_by_length) {
    // PBA with an unknown option type 250 (3 octets of data) between two known ones.
    const Bytes mh = {0x3b, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00,
                      0x17, 0x02, 0x00, 0x02,           // 12: HI 2
                      0xfa, 0x03, 0xaa, 0xbb, 0xcc,     // 16: unknown type 250
                      0x18, 0x02, 0x00, 0x04};          // 21: ATT 4  -> 25 octets? pad below
    Bytes padded = mh;
    padded.insert(padded.end(), {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});  // 7 x Pad1 to 32
    padded[1] = 3;
    const auto ba = std::get<ProxyBindingAcknowledgement>(decode(padded));
    BOOST_REQUIRE(ba.options.items.size() == 3u);
    const auto* unk = std::get_if<UnknownOption>(&ba.options.items[1]);
    BOOST_REQUIRE(unk);
    BOOST_TEST(unk->type == 250);
    BOOST_TEST((unk->data == std::vector<std::uint8_t>{0xaa, 0xbb, 0xcc}));
    BOOST_TEST(ba.options.find<AccessTechnologyTypeOption>()->value == 4);
    // Re-emitted unchanged.
    const auto again = std::get<ProxyBindingAcknowledgement>(decode(encode(ba)));
    BOOST_TEST(again == ba);
}

BOOST_AUTO_TEST_CASE(input_accepts_any_legal_padding) {
    // The golden PBU with its padding rewritten: Pad1 runs instead of PadN, a PadN with
    // non-zero contents (ignored on receipt), and extra padding between options.
    const auto& g = golden::kPbuGreKeyTlv;
    Bytes mh(g.begin(), g.begin() + 12);
    mh.insert(mh.end(), g.begin() + 12, g.begin() + 32);         // MN-ID
    mh.insert(mh.end(), {0x00, 0x00, 0x00});                     // 3 x Pad1 (HNP now at 35: unaligned)
    mh.insert(mh.end(), g.begin() + 36, g.begin() + 56);         // HNP
    mh.insert(mh.end(), {0x01, 0x03, 0xde, 0xad, 0xbe});         // PadN(3) with junk
    mh.insert(mh.end(), g.begin() + 56, g.begin() + 64);         // HI, ATT
    mh.insert(mh.end(), g.begin() + 66, g.begin() + 84);         // Timestamp, GRE Key (no padding)
    while (mh.size() % 8) {
        mh.push_back(0x00);
    }
    mh[1] = static_cast<std::uint8_t>(mh.size() / 8 - 1);
    BOOST_TEST((decode(mh) == decode(g)));
}

BOOST_AUTO_TEST_CASE(timestamp_fixed_point_conversion) {
    // RFC 5213 §8.8: 48 bits of seconds, 16 bits of 1/65536 s.
    BOOST_TEST(timestamp_from_unix_nanos(1'275'350'144'500'000'000ULL) == 0x00004c044c808000ULL);
    BOOST_TEST(timestamp_to_unix_nanos(0x00004c044c808000ULL) == 1'275'350'144'500'000'000ULL);
    const auto now = timestamp_now();
    BOOST_TEST((now >> 16) > 1'700'000'000ULL);
}

BOOST_AUTO_TEST_SUITE_END()
