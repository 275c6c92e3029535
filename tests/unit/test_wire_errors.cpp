// Malformed input: each defect gives a WireError naming the field and its offset, and nothing
// ever reads outside the buffer (every truncation and single-octet mutation of the golden
// vectors either decodes, and then re-encodes to the same message, or is rejected with
// WireError). Well-formed messages of other MH Types raise UnsupportedMessageError.
#include "../wire/golden_vectors.hpp"
#include "wire/framing.hpp"
#include "wire_test_util.hpp"

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

using namespace xpmip;
using namespace xpmip::wire;

namespace {

// A PBA whose options area (from octet 12) is `options`, padded with Pad1 to 8n octets and
// Header Len set to match.
Bytes pba_with(std::initializer_list<std::uint8_t> options) {
    Bytes mh = {0x3b, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00};
    mh.insert(mh.end(), options);
    while (mh.size() % 8) {
        mh.push_back(0x00);
    }
    mh[1] = static_cast<std::uint8_t>(mh.size() / 8 - 1);
    return mh;
}

void decode_bytes(const Bytes& b) { (void)decode(b); }

} // namespace

BOOST_AUTO_TEST_SUITE(wire_errors)

BOOST_AUTO_TEST_CASE(truncated_header) {
    require_wire_error([] { decode_bytes({}); }, "Payload Proto", 0, "truncated");
    require_wire_error([] { decode_bytes({0x3b}); }, "Header Len", 1, "truncated");
    require_wire_error([] { decode_bytes({0x3b, 0x01, 0x05, 0x00, 0x00}); }, "Checksum", 4, "truncated");
}

BOOST_AUTO_TEST_CASE(header_len_beyond_the_buffer) {
    auto mh = golden::kPbaGreKeyRequired;  // 16 octets, Header Len 1
    mh[1] = 2;                             // claims 24
    require_wire_error([&] { decode_bytes(mh); }, "Header Len", 1, "runs beyond");
}

BOOST_AUTO_TEST_CASE(trailing_octets_after_the_header) {
    auto mh = golden::kPbaGreKeyRequired;
    mh.push_back(0);
    require_wire_error([&] { decode_bytes(mh); }, "Header Len", 1, "trailing");
}

BOOST_AUTO_TEST_CASE(header_len_too_short_for_the_message) {
    require_wire_error([] { decode_bytes({0x3b, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00}); }, "Header Len", 1,
                       "too short");
}

BOOST_AUTO_TEST_CASE(wrong_payload_proto) {
    auto mh = golden::kPbaGreKeyRequired;
    mh[0] = 6;
    require_wire_error([&] { decode_bytes(mh); }, "Payload Proto", 0, "must be 59");
}

// RFC 6275 §9.2: a well-formed message of an unknown MH Type is answered with a Binding Error
// (Status 2), so it raises UnsupportedMessageError carrying the type, not a plain WireError.
BOOST_AUTO_TEST_CASE(unsupported_but_well_formed_mh_types_raise_unsupported_message_error) {
    // 12 Home Agent Switch (RFC 5142), 17 Localized Routing Initiation (RFC 6705), 0 Binding
    // Refresh Request (RFC 6275: a mobile node's), 255.
    for (int t : {12, 17, 0, 255}) {
        const auto type = static_cast<std::uint8_t>(t);
        auto mh = golden::kPbaGreKeyRequired;
        mh[2] = type;
        require_wire_error([&] { decode_bytes(mh); }, "MH Type", 2, "not supported");
        try {
            decode_bytes(mh);
        } catch (const UnsupportedMessageError& e) {
            BOOST_TEST(e.mh_type() == type);
            continue;
        } catch (const WireError& e) {
            BOOST_ERROR("MH Type " << int(type) << ": a plain WireError: " << e.what());
            continue;
        }
        BOOST_ERROR("MH Type " << int(type) << " decoded");
    }
    // Header Len 0 (8 octets) is enough for an unknown type: RFC 6275 §9.2 only knows the
    // minimum length of the types it defines.
    require_wire_error([] { decode_bytes({0x3b, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00}); }, "MH Type", 2);
}

BOOST_AUTO_TEST_CASE(malformed_headers_of_unsupported_types_are_plain_wire_errors) {
    const auto expect_plain = [](const Bytes& mh, const std::string& field) {
        try {
            decode_bytes(mh);
            BOOST_ERROR("decoded");
        } catch (const UnsupportedMessageError& e) {
            BOOST_ERROR("malformed input reported as unsupported: " << e.what());
        } catch (const WireError& e) {
            BOOST_TEST(e.field() == field, e.what());
        }
    };
    auto mh = golden::kPbaGreKeyRequired;
    mh[2] = 12;
    auto beyond = mh;
    beyond[1] = 2;  // Header Len claims 24 octets of 16
    expect_plain(beyond, "Header Len");
    auto trailing = mh;
    trailing.push_back(0);
    expect_plain(trailing, "Header Len");
    auto proto = mh;
    proto[0] = 6;  // Payload Proto must be 59
    expect_plain(proto, "Payload Proto");
    expect_plain({0x3b, 0x00, 0x07}, "Reserved");  // truncated
}

BOOST_AUTO_TEST_CASE(option_running_past_the_end) {
    // GRE Key option at 12 with Length 6 but only 4 octets left in the 16-octet message.
    const Bytes mh = {0x3b, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00,
                      0x21, 0x06, 0x00, 0x00};
    require_wire_error([&] { decode_bytes(mh); }, "GRE Key option Length", 13, "runs past the end");
}

BOOST_AUTO_TEST_CASE(option_type_as_the_last_octet) {
    const Bytes mh = {0x3b, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00,
                      0x00, 0x00, 0x00, 0x21};
    require_wire_error([&] { decode_bytes(mh); }, "GRE Key option Length", 16, "truncated");
}

BOOST_AUTO_TEST_CASE(gre_key_length_other_than_2_or_6) {
    for (std::uint8_t len : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{3}, std::uint8_t{4}, std::uint8_t{5}, std::uint8_t{7}, std::uint8_t{8}}) {
        Bytes opts = {0x21, len};
        for (int i = 0; i < len; ++i) {
            opts.push_back(0);
        }
        auto mh = pba_with({});
        mh.resize(12);
        mh.insert(mh.end(), opts.begin(), opts.end());
        while (mh.size() % 8) {
            mh.push_back(0);
        }
        mh[1] = static_cast<std::uint8_t>(mh.size() / 8 - 1);
        require_wire_error([&] { decode_bytes(mh); }, "GRE Key option Length", 13, "must be 2 or 6");
    }
}

BOOST_AUTO_TEST_CASE(multipath_binding_length_other_than_6) {
    require_wire_error([] { decode_bytes(pba_with({0x3f, 0x04, 0x04, 0x01, 0x05, 0x00})); },
                       "MAG Multipath-Binding option Length", 13, "must be 6");
    require_wire_error([] { decode_bytes(pba_with({0x3f, 0x07, 0x04, 0x01, 0x05, 0x00, 0, 0, 0})); },
                       "MAG Multipath-Binding option Length", 13, "must be 6");
}

BOOST_AUTO_TEST_CASE(multipath_binding_id_0_or_255) {
    require_wire_error([] { decode_bytes(pba_with({0x3f, 0x06, 0x04, 0x01, 0x00, 0x00, 0, 0})); },
                       "MAG Multipath-Binding option Binding-Id", 16, "reserved");
    require_wire_error([] { decode_bytes(pba_with({0x3f, 0x06, 0x04, 0x01, 0xff, 0x00, 0, 0})); },
                       "MAG Multipath-Binding option Binding-Id", 16, "reserved");
}

BOOST_AUTO_TEST_CASE(multipath_binding_b_and_o_both_set) {
    require_wire_error([] { decode_bytes(pba_with({0x3f, 0x06, 0x04, 0x01, 0x05, 0xc0, 0, 0})); },
                       "MAG Multipath-Binding option Flags", 17, "B and O");
}

BOOST_AUTO_TEST_CASE(empty_mn_identifier) {
    require_wire_error([] { decode_bytes(pba_with({0x08, 0x01, 0x01})); }, "Mobile Node Identifier option Identifier",
                       15, "empty");
    require_wire_error([] { decode_bytes(pba_with({0x08, 0x00})); }, "Mobile Node Identifier option Length", 13,
                       "at least 1");
}

BOOST_AUTO_TEST_CASE(over_long_mn_identifier) {
    Bytes mh = {0x3b, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x08, 0xff, 0x01};
    mh.insert(mh.end(), 254, 'a');  // Length 255: subtype + 254-octet identifier
    while (mh.size() % 8) {
        mh.push_back(0);
    }
    mh[1] = static_cast<std::uint8_t>(mh.size() / 8 - 1);
    require_wire_error([&] { decode_bytes(mh); }, "Mobile Node Identifier option Identifier", 15, "exceeds");
}

// RFC 7542 §2.3 limits an NAI (subtype 1) to 253 octets; other subtypes (RFC 7330) may use all
// 254 octets an MN-ID option Length of 255 leaves.
BOOST_AUTO_TEST_CASE(identifier_length_limit_depends_on_the_subtype) {
    const auto mn_id = [](std::uint8_t subtype, std::size_t n) {
        Bytes mh = {0x3b, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x08,
                    static_cast<std::uint8_t>(n + 1), subtype};
        mh.insert(mh.end(), n, 'a');
        while (mh.size() % 8) {
            mh.push_back(0);
        }
        mh[1] = static_cast<std::uint8_t>(mh.size() / 8 - 1);
        return mh;
    };
    const auto id_of = [](const Bytes& mh) {
        return std::get<ProxyBindingAcknowledgement>(decode(mh)).options.find<MobileNodeIdentifierOption>()->identifier;
    };
    BOOST_TEST(id_of(mn_id(1, 253)).size() == 253u);
    require_wire_error([&] { decode_bytes(mn_id(1, 254)); }, "Mobile Node Identifier option Identifier", 15,
                       "RFC 7542 §2.3");
    BOOST_TEST(id_of(mn_id(2, 254)).size() == 254u);  // e.g. an IPv6 address subtype: no NAI limit
    BOOST_TEST(id_of(mn_id(200, 254)).size() == 254u);

    ProxyBindingUpdate bu;
    bu.options.add(MobileNodeIdentifierOption{3, std::string(254, '\x01')});
    BOOST_TEST((decode(encode(bu)) == MobilityMessage{bu}));
    bu.options.items[0] = MobileNodeIdentifierOption{kMnIdSubtypeNai, std::string(254, 'a')};
    require_wire_error([&] { (void)encode(bu); }, "Mobile Node Identifier option Identifier", 15, "253");
    // The MAG Identifier (RFC 8278 §4.2) follows the same rules; its wire maximum is 253.
    bu.options.items[0] = MagIdentifierOption{2, std::string(253, '\xff')};
    BOOST_TEST((decode(encode(bu)) == MobilityMessage{bu}));
}

// RFC 7330: MN-ID subtype 0 is reserved; RFC 8278 §4.2 uses the same registry.
BOOST_AUTO_TEST_CASE(identifier_subtype_0_is_reserved) {
    require_wire_error([] { decode_bytes(pba_with({0x08, 0x02, 0x00, 'a'})); },
                       "Mobile Node Identifier option Subtype", 14, "reserved");
    require_wire_error([] { decode_bytes(pba_with({0x40, 0x03, 0x00, 0x00, 'a'})); }, "MAG Identifier option Subtype",
                       14, "reserved");
    ProxyBindingUpdate bu;
    bu.options.add(MobileNodeIdentifierOption{0, "mn1"});
    require_wire_error([&] { (void)encode(bu); }, "Mobile Node Identifier option Subtype", 14, "reserved");
}

// RFC 7542 §2.2: an NAI is UTF-8. Binary subtypes are not checked.
BOOST_AUTO_TEST_CASE(nai_identifier_must_be_valid_utf8) {
    const std::vector<Bytes> bad = {
        {0xff},                    // never valid in UTF-8
        {'a', 0x80},               // a stray continuation octet
        {0xc0, 0x80},              // overlong NUL
        {0xe0, 0x80, 0x80},        // overlong 3-octet form
        {0xed, 0xa0, 0x80},        // UTF-16 surrogate U+D800
        {0xf4, 0x90, 0x80, 0x80},  // above U+10FFFF
        {'a', 0xe2, 0x82},         // sequence cut short by the end
    };
    for (const auto& id : bad) {
        Bytes opt = {0x08, static_cast<std::uint8_t>(id.size() + 1), kMnIdSubtypeNai};
        opt.insert(opt.end(), id.begin(), id.end());
        auto mh = pba_with({});
        mh.resize(12);
        mh.insert(mh.end(), opt.begin(), opt.end());
        while (mh.size() % 8) {
            mh.push_back(0);
        }
        mh[1] = static_cast<std::uint8_t>(mh.size() / 8 - 1);
        require_wire_error([&] { decode_bytes(mh); }, "Mobile Node Identifier option Identifier", 15, "UTF-8");
        mh[14] = 4;  // the same octets under a binary subtype (RFC 7330 IMSI) are fine
        BOOST_CHECK_NO_THROW(decode_bytes(mh));
    }
    // Multi-octet UTF-8 is fine: "ü@ß.example" style NAIs (RFC 7542 §2.2 allows UTF-8).
    ProxyBindingUpdate bu;
    bu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "m\xc3\xbc@\xf0\x9f\x98\x80.example"});
    BOOST_TEST((decode(encode(bu)) == MobilityMessage{bu}));
    bu.options.items[0] = MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn\xff"};
    require_wire_error([&] { (void)encode(bu); }, "Mobile Node Identifier option Identifier", 15, "UTF-8");
    require_wire_error([] { decode_bytes(pba_with({0x40, 0x04, 0x01, 0x00, 'a', 0xc1})); },
                       "MAG Identifier option Identifier", 16, "UTF-8");
}

BOOST_AUTO_TEST_CASE(empty_mag_identifier) {
    require_wire_error([] { decode_bytes(pba_with({0x40, 0x02, 0x01, 0x00})); }, "MAG Identifier option Identifier",
                       16, "empty");
}

BOOST_AUTO_TEST_CASE(hnp_prefix_length_over_128) {
    require_wire_error(
        [] {
            decode_bytes(pba_with({0x16, 0x12, 0x00, 0x81, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
        },
        "Home Network Prefix option Prefix Length", 15, "exceeds 128");
    require_wire_error([] { decode_bytes(pba_with({0x16, 0x10, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})); },
                       "Home Network Prefix option Length", 13, "must be 18");
}

BOOST_AUTO_TEST_CASE(timestamp_length_other_than_8) {
    require_wire_error([] { decode_bytes(pba_with({0x1b, 0x06, 0, 0, 0, 0, 0, 0})); }, "Timestamp option Length", 13,
                       "must be 8");
    require_wire_error([] { decode_bytes(pba_with({0x1b, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})); },
                       "Timestamp option Length", 13, "must be 8");
}

BOOST_AUTO_TEST_CASE(fixed_length_options_with_a_wrong_length) {
    require_wire_error([] { decode_bytes(pba_with({0x17, 0x01, 0x01})); }, "Handoff Indicator option Length", 13);
    require_wire_error([] { decode_bytes(pba_with({0x18, 0x03, 0, 4, 0})); }, "Access Technology Type option Length",
                       13);
    require_wire_error([] { decode_bytes(pba_with({0x1a, 0x04, 0xfe, 0x80, 0, 0})); },
                       "Link-local Address option Length", 13);
    require_wire_error([] { decode_bytes(pba_with({0x24, 0x04, 0, 0, 0, 0})); },
                       "IPv4 Home Address Request option Length", 13);
    require_wire_error([] { decode_bytes(pba_with({0x23, 0x05, 0, 1, 0, 0, 0})); },
                       "Binding Identifier option Length", 13, "must be 4 or 8 or 20");
    require_wire_error([] { decode_bytes(pba_with({0x19, 0x02, 0, 0})); },
                       "Mobile Node Link-layer Identifier option Length", 13, "at least 3");
}

BOOST_AUTO_TEST_CASE(ipv4_prefix_lengths_over_32) {
    // Prefix-len is the top 6 bits: 33 << 10 = 0x8400.
    require_wire_error([] { decode_bytes(pba_with({0x24, 0x06, 0x84, 0x00, 10, 0, 0, 1})); },
                       "IPv4 Home Address Request option Prefix-len", 14, "exceeds 32");
    require_wire_error([] { decode_bytes(pba_with({0x25, 0x06, 0x00, 33 << 2, 10, 0, 0, 1})); },
                       "IPv4 Home Address Reply option Pref-len", 15, "exceeds 32");
}

BOOST_AUTO_TEST_CASE(encoder_refuses_what_the_parser_would_reject) {
    const auto encode_with = [](MobilityOption o) {
        ProxyBindingUpdate bu;
        bu.options.add(std::move(o));
        (void)encode(bu);
    };
    require_wire_error([&] { encode_with(MobileNodeIdentifierOption{1, ""}); },
                       "Mobile Node Identifier option Identifier", 15, "empty");
    require_wire_error([&] { encode_with(MobileNodeIdentifierOption{1, std::string(254, 'a')}); },
                       "Mobile Node Identifier option Identifier", 15, "exceeds");
    require_wire_error([&] { encode_with(MobileNodeIdentifierOption{1, std::string(300, 'a')}); },
                       "Mobile Node Identifier option Length", WireError::kNoOffset, "does not fit");
    // 8n+2 alignment puts the option at 18 (after a 6-octet PadN), so Binding-Id is at 22.
    require_wire_error([&] { encode_with(MagMultipathBindingOption{4, 1, 0, false, false}); },
                       "MAG Multipath-Binding option Binding-Id", 22, "reserved");
    require_wire_error([&] { encode_with(MagMultipathBindingOption{4, 1, 3, true, true}); },
                       "MAG Multipath-Binding option Flags", 23, "B and O");
    // Octet 12 already satisfies 8n+4: no padding, Prefix Length is at 15.
    require_wire_error([&] { encode_with(HomeNetworkPrefixOption{129, Ipv6Address{}}); },
                       "Home Network Prefix option Prefix Length", 15, "exceeds 128");
    require_wire_error([&] { encode_with(Ipv4HomeAddressRequestOption{40, Ipv4Address{}}); },
                       "IPv4 Home Address Request option Prefix-len", WireError::kNoOffset, "exceeds 32");
    require_wire_error([&] { encode_with(UnknownOption{1, {0, 0}}); }, "option Type", WireError::kNoOffset,
                       "padding");
}

// The property: on every truncation and every single-octet mutation of each golden vector,
// decode() either returns a message - which then re-encodes and decodes to the same message -
// or throws WireError. Any other exception (std::out_of_range, bad_variant_access, ...) fails.
// Every truncation must be rejected: it breaks Header Len.
BOOST_AUTO_TEST_CASE(every_truncation_and_mutation_is_decoded_or_rejected_cleanly) {
    const auto outcome = [](const Bytes& m, const std::string& what) -> int {  // 1 accepted, 0 rejected, -1 bad
        try {
            const auto msg = decode(m);
            try {
                const auto again = encode(msg);
                BOOST_TEST((decode(again) == msg), what << ": re-encoding changes the message");
            } catch (const WireError& e) {
                BOOST_TEST(e.field() == "Header Len", what << ": accepted but cannot re-encode: " << e.what());
            }
            return 1;
        } catch (const WireError&) {
            return 0;
        } catch (const std::exception& e) {
            BOOST_ERROR(what << ": " << e.what() << " escaped instead of a WireError");
        } catch (...) {
            BOOST_ERROR(what << ": a non-std exception escaped instead of a WireError");
        }
        return -1;
    };
    for (const auto& v : golden::kAll) {
        for (std::size_t n = 0; n < v.bytes.size(); ++n) {
            const Bytes cut(v.bytes.begin(), v.bytes.begin() + static_cast<std::ptrdiff_t>(n));
            BOOST_TEST(outcome(cut, fmt::format("{} cut to {} octets", v.name, n)) == 0,
                       v.name << " cut to " << n << " octets is not rejected");
        }
        std::size_t accepted = 0, rejected = 0;
        for (std::size_t i = 0; i < v.bytes.size(); ++i) {
            for (int value : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
                auto m = v.bytes;
                m[i] = static_cast<std::uint8_t>(value);
                const int r = outcome(m, fmt::format("{} with octet {} = 0x{:02x}", v.name, i, value));
                accepted += r == 1 ? 1 : 0;
                rejected += r == 0 ? 1 : 0;
            }
        }
        BOOST_TEST_MESSAGE(v.name << ": " << accepted << " mutations accepted, " << rejected << " rejected");
    }
}

// Options that describe one property of the binding may appear once (see option_may_repeat).
BOOST_AUTO_TEST_CASE(single_instance_options_are_rejected_when_repeated) {
    const std::vector<MobilityOption> singles = {
        MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1"},
        HandoffIndicatorOption{1},
        AccessTechnologyTypeOption{4},
        TimestampOption{0x00004c044c808000ULL},
        GreKeyOption{0x1001},
        LinkLocalAddressOption{Ipv6Address::parse("fe80::1")},
        MobileNodeLinkLayerIdOption{{0x02, 0x00, 0x5e, 0x00, 0x53, 0x01}},
        NatDetectionOption{true, 110},
        Ipv4CareOfAddressOption{Ipv4Address::parse("192.0.2.10")},
        Ipv4HomeAddressRequestOption{0, Ipv4Address{}},
        Ipv4HomeAddressReplyOption{0, 24, Ipv4Address::parse("10.0.0.7")},
        Ipv4DefaultRouterAddressOption{Ipv4Address::parse("10.0.0.1")},
        Ipv4DhcpSupportModeOption{true},
        MagMultipathBindingOption{4, 1, 5, false, false},
        MagIdentifierOption{kMnIdSubtypeNai, "mag1.example"},
    };
    for (const auto& option : singles) {
        const auto type = option_type(option);
        const std::string field = std::string(option_name(type)) + " option";
        BOOST_TEST_CONTEXT(field) {
            BOOST_TEST(!option_may_repeat(type));
            // One instance encodes; take its TLV octets and put them twice, back to back (input
            // accepts any alignment), then Pad1 to 8n octets.
            ProxyBindingUpdate bu;
            bu.lifetime = 100;
            bu.options.add(option);
            const auto one = encode(bu);
            std::size_t at = kMhFixedPartLength;
            while (one[at] == 0 || one[at] == 1) {  // skip the alignment padding
                at += one[at] == 0 ? 1 : 2u + one[at + 1];
            }
            const Bytes tlv(one.begin() + static_cast<std::ptrdiff_t>(at),
                            one.begin() + static_cast<std::ptrdiff_t>(at + 2 + one[at + 1]));
            Bytes twice(one.begin(), one.begin() + kMhFixedPartLength);
            twice.insert(twice.end(), tlv.begin(), tlv.end());
            twice.insert(twice.end(), tlv.begin(), tlv.end());
            while (twice.size() % 8) {
                twice.push_back(0);
            }
            twice[1] = static_cast<std::uint8_t>(twice.size() / 8 - 1);
            require_wire_error([&] { decode_bytes(twice); }, field, kMhFixedPartLength + tlv.size(),
                               "appears more than once");
            // The encoder refuses it too, at the offset the second instance would take.
            bu.options.add(option);
            const auto a = option_alignment(option);
            const std::size_t end = at + tlv.size();
            const std::size_t second_at = end + (a.offset + a.factor - end % a.factor) % a.factor;
            require_wire_error([&] { (void)encode(bu); }, field, second_at, "appears more than once");
        }
    }
}

BOOST_AUTO_TEST_CASE(hnp_bid_and_unknown_options_may_repeat) {
    ProxyBindingUpdate bu;
    bu.lifetime = 100;
    bu.options.add(HomeNetworkPrefixOption{64, Ipv6Address::parse("2001:db8:1::")});
    bu.options.add(HomeNetworkPrefixOption{64, Ipv6Address::parse("2001:db8:2::")});
    bu.options.add(BindingIdentifierOption{1, 0, false, 0, std::nullopt, std::nullopt});
    bu.options.add(BindingIdentifierOption{2, 0, false, 0, Ipv4Address::parse("192.0.2.1"), std::nullopt});
    bu.options.add(UnknownOption{200, {1}});
    bu.options.add(UnknownOption{200, {2}});
    const auto back = std::get<ProxyBindingUpdate>(decode(encode(bu)));
    BOOST_TEST(back == bu);
    BOOST_TEST(back.options.count<HomeNetworkPrefixOption>() == 2u);
    BOOST_TEST(back.options.count<BindingIdentifierOption>() == 2u);
    BOOST_TEST(back.options.count<UnknownOption>() == 2u);
}

// RFC 8278 §4.1: the O flag MUST be 0 in a de-registration (a PBU with Lifetime 0).
BOOST_AUTO_TEST_CASE(multipath_overwrite_flag_in_a_deregistration) {
    // PBU, Lifetime 0, Multipath-Binding at 12 (If-ATT 4, If-Label 1, BID 5, O): flags octet at 17.
    Bytes mh = {0x3b, 0x02, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc2, 0x00, 0x00, 0x00,
                0x3f, 0x06, 0x04, 0x01, 0x05, 0x40, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00};
    require_wire_error([&] { decode_bytes(mh); }, "MAG Multipath-Binding option Flags", 17, "RFC 8278 §4.1");
    mh[11] = 1;  // Lifetime 1: a registration, O allowed
    BOOST_TEST(std::get<ProxyBindingUpdate>(decode(mh)).options.find<MagMultipathBindingOption>()->overwrite);
    mh[11] = 0;
    mh[17] = 0x80;  // B instead of O: fine in a de-registration
    BOOST_CHECK_NO_THROW(decode_bytes(mh));

    ProxyBindingUpdate bu;
    bu.lifetime = 0;
    bu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1"});  // 12..17, then PadN to 18 = 8n+2
    bu.options.add(MagMultipathBindingOption{4, 1, 5, false, true});
    require_wire_error([&] { (void)encode(bu); }, "MAG Multipath-Binding option Flags", 23, "RFC 8278 §4.1");
    bu.lifetime = 1;
    BOOST_TEST((decode(encode(bu)) == MobilityMessage{bu}));
}

// RFC 5648 §6.1: BID value 0 is reserved.
BOOST_AUTO_TEST_CASE(binding_identifier_0_is_reserved) {
    require_wire_error([] { decode_bytes(pba_with({0x23, 0x04, 0x00, 0x00, 0x00, 0x00})); },
                       "Binding Identifier option Binding ID", 14, "reserved");
    require_wire_error([] { decode_bytes(pba_with({0x23, 0x08, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 1})); },
                       "Binding Identifier option Binding ID", 14, "reserved");
    BOOST_CHECK_NO_THROW(decode_bytes(pba_with({0x23, 0x04, 0x00, 0x01, 0x00, 0x00})));
    ProxyBindingUpdate bu;
    bu.options.add(BindingIdentifierOption{0, 0, false, 0, std::nullopt, std::nullopt});  // at 12 = 2n
    require_wire_error([&] { (void)encode(bu); }, "Binding Identifier option Binding ID", 14, "reserved");
}

BOOST_AUTO_TEST_CASE(error_message_names_field_and_offset) {
    try {
        decode_bytes(pba_with({0x21, 0x04, 0, 0, 0, 0}));
        BOOST_FAIL("no error");
    } catch (const WireError& e) {
        BOOST_TEST(std::string(e.what()) == "GRE Key option Length at offset 13: 4 is invalid (must be 2 or 6)");
    }
}

BOOST_AUTO_TEST_SUITE_END()
