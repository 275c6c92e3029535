// Round trip and alignment of every mobility option, in both messages; padding tolerance.
#include "../wire/golden_vectors.hpp"
#include "wire/messages.hpp"
#include "wire_test_util.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <limits>
#include <set>
#include <variant>

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
    bu.lifetime = 100;  // a registration: O may be set in the Multipath-Binding (RFC 8278 §4.1)
    bu.options.add(option);
    BOOST_TEST((std::get<ProxyBindingUpdate>(decode(encode(bu))) == bu));
    ProxyBindingAcknowledgement ba;
    ba.status = 0;
    ba.options.add(option);
    BOOST_TEST((std::get<ProxyBindingAcknowledgement>(decode(encode(ba))) == ba));
}

BOOST_AUTO_TEST_CASE(all_options_together_round_trip_in_order) {
    // Every option once; the repeatable ones (HNP, BID, unknown) with all their instances.
    ProxyBindingUpdate bu;
    bu.lifetime = 100;
    std::set<std::uint8_t> seen;
    for (auto& o : every_option()) {
        if (option_may_repeat(option_type(o)) || seen.insert(option_type(o)).second) {
            bu.options.add(o);
        }
    }
    BOOST_TEST(bu.options.count<HomeNetworkPrefixOption>() == 2u);
    BOOST_TEST(bu.options.count<BindingIdentifierOption>() == 3u);
    BOOST_TEST(bu.options.count<GreKeyOption>() == 1u);
    const auto bytes = encode(bu);
    BOOST_TEST(bytes.size() % 8 == 0u);
    BOOST_TEST((std::get<ProxyBindingUpdate>(decode(bytes)) == bu));
}

// RFC 6275 §6.2.1: each option starts at its xn+y offset; the MH is a multiple of 8 octets.
// Shift every option through all eight phases by preceding it with an unknown option (no
// alignment, kept raw) of 3..10 octets: the option under test then starts at 15..22 + padding.
BOOST_DATA_TEST_CASE(every_option_honours_its_alignment_after_any_preceding_length,
                     bdata::xrange(every_option().size()) * bdata::xrange(1, 9), i, shift) {
    const auto option = every_option()[i];
    ProxyBindingUpdate bu;
    bu.lifetime = 100;
    bu.options.add(UnknownOption{250, std::vector<std::uint8_t>(static_cast<std::size_t>(shift) + 1, 0xee)});
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

// Every option's output alignment, pinned (RFC 6275 §6.2.1 "xn+y"): a change to any kAlign
// must be a deliberate change here too. factor 1 = no requirement.
BOOST_AUTO_TEST_CASE(alignment_table_matches_the_rfcs) {
    const auto pin = [](MobilityOption option, unsigned factor, unsigned offset) {
        const auto a = option_alignment(option);
        BOOST_TEST(a.factor == factor, "option " << int(option_type(option)) << " factor " << int(a.factor));
        BOOST_TEST(a.offset == offset, "option " << int(option_type(option)) << " offset " << int(a.offset));
    };
    pin(MobileNodeIdentifierOption{}, 1, 0);        //  8 RFC 4283 §3: none
    pin(HomeNetworkPrefixOption{}, 8, 4);           // 22 RFC 5213 §8.3: 8n+4
    pin(HandoffIndicatorOption{}, 1, 0);            // 23 RFC 5213 §8.4: none
    pin(AccessTechnologyTypeOption{}, 1, 0);        // 24 RFC 5213 §8.5: none
    pin(MobileNodeLinkLayerIdOption{}, 8, 2);       // 25 RFC 5213 §8.6: 8n+2
    pin(LinkLocalAddressOption{}, 8, 6);            // 26 RFC 5213 §8.7: 8n+6
    pin(TimestampOption{}, 8, 2);                   // 27 RFC 5213 §8.8: 8n+2
    pin(NatDetectionOption{}, 4, 0);                // 31 RFC 5555 §4.2.2: 4n
    pin(Ipv4CareOfAddressOption{}, 4, 0);           // 32 RFC 5555 §3.1.1: 4n
    pin(GreKeyOption{}, 4, 0);                      // 33 RFC 5845 §6.1: 4n
    pin(BindingIdentifierOption{}, 2, 0);           // 35 RFC 5648 §6.1: 2n (our choice)
    pin(Ipv4HomeAddressRequestOption{}, 4, 0);      // 36 RFC 5844 §3.3.1: 4n
    pin(Ipv4HomeAddressReplyOption{}, 4, 0);        // 37 RFC 5844 §3.3.2: 4n
    pin(Ipv4DefaultRouterAddressOption{}, 4, 0);    // 38 RFC 5844 §3.3.3: 4n
    pin(Ipv4DhcpSupportModeOption{}, 4, 0);         // 39 RFC 5844 §3.3.4: 4n
    pin(MagMultipathBindingOption{}, 8, 2);         // 63 RFC 8278 §4.1: 8n+2
    pin(MagIdentifierOption{}, 1, 0);               // 64 RFC 8278 §4.2: none
    pin(RestartCounterOption{}, 4, 2);              // 28 RFC 5847 §6.2: 4n+2
    pin(MobileNodeGroupIdentifierOption{}, 4, 0);   // 50 RFC 6602 §4.3: none given, 4n (our choice)
    pin(UnknownOption{200, {}}, 1, 0);              // kept raw, no alignment
    // Every alternative of MobilityOption is pinned above (19 known options + unknown).
    BOOST_TEST(std::variant_size_v<MobilityOption> == 20u);
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

// 48 bits of seconds reach 2^48 s, but 64-bit nanoseconds end at about 1.8e10 s (2554): later
// timestamps saturate to UINT64_MAX instead of wrapping to a small (early) time.
BOOST_AUTO_TEST_CASE(timestamp_to_unix_nanos_saturates_instead_of_overflowing) {
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    constexpr std::uint64_t kLastSecond = kMax / 1'000'000'000ULL;  // 18446744073
    BOOST_TEST(timestamp_to_unix_nanos(kLastSecond << 16) == kLastSecond * 1'000'000'000ULL);
    // UINT64_MAX is kLastSecond + 0.709551615 s: + 0.6875 s (0xb000) still fits, + 0.71875 s does not.
    BOOST_TEST(timestamp_to_unix_nanos((kLastSecond << 16) | 0xb000) == 18'446'744'073'687'500'000ULL);
    BOOST_TEST(timestamp_to_unix_nanos((kLastSecond << 16) | 0xb800) == kMax);
    BOOST_TEST(timestamp_to_unix_nanos((kLastSecond << 16) | 0xffff) == kMax);
    BOOST_TEST(timestamp_to_unix_nanos((kLastSecond + 1) << 16) == kMax);
    BOOST_TEST(timestamp_to_unix_nanos(0xffff'ffff'ffff'0000ULL) == kMax);
    BOOST_TEST(timestamp_to_unix_nanos(~0ULL) == kMax);
    // Below the limit nothing changes.
    BOOST_TEST(timestamp_to_unix_nanos(0x0001'0000ULL) == 1'000'000'000ULL);
}

BOOST_AUTO_TEST_SUITE_END()
