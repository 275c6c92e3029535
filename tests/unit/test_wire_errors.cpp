// Malformed input: each defect gives a WireError naming the field and its offset, and nothing
// ever reads outside the buffer (every truncation and single-octet mutation of the golden
// vectors either decodes or is rejected with WireError).
#include "../wire/golden_vectors.hpp"
#include "wire/framing.hpp"
#include "wire_test_util.hpp"

#include <boost/test/unit_test.hpp>

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

BOOST_AUTO_TEST_CASE(unsupported_mh_type) {
    auto mh = golden::kPbaGreKeyRequired;
    mh[2] = 7;  // Binding Error
    require_wire_error([&] { decode_bytes(mh); }, "MH Type", 2);
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

BOOST_AUTO_TEST_CASE(every_truncation_and_mutation_is_decoded_or_rejected_cleanly) {
    std::size_t rejected = 0, accepted = 0;
    for (const auto& v : golden::kAll) {
        for (std::size_t n = 0; n < v.bytes.size(); ++n) {
            const Bytes cut(v.bytes.begin(), v.bytes.begin() + static_cast<std::ptrdiff_t>(n));
            BOOST_CHECK_THROW(decode_bytes(cut), WireError);  // any truncation breaks Header Len
            ++rejected;
        }
        for (std::size_t i = 0; i < v.bytes.size(); ++i) {
            for (int value : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
                auto m = v.bytes;
                m[i] = static_cast<std::uint8_t>(value);
                try {
                    decode_bytes(m);
                    ++accepted;
                } catch (const WireError&) {
                    ++rejected;
                }
            }
        }
    }
    BOOST_TEST(rejected > 0u);
    BOOST_TEST(accepted > 0u);
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
