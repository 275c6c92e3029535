// The JSON view of messages (user/wire/json.cpp), as `xpmip-mh` prints and reads it: to_json never
// throws and always dumps as valid UTF-8; message_from_json refuses what does not fit a field.
#include "../wire/golden_vectors.hpp"
#include "wire/json.hpp"
#include "wire_test_util.hpp"

#include <boost/test/unit_test.hpp>

#include <stdexcept>

using namespace xpmip;
using namespace xpmip::wire;
using nlohmann::json;

namespace {

// Require std::invalid_argument whose text names `key`.
void require_invalid(const json& j, const std::string& key) {
    try {
        (void)message_from_json(j);
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find(key) != std::string::npos,
                   "'" << e.what() << "' does not name " << key);
        return;
    } catch (const std::exception& e) {
        BOOST_ERROR("not an invalid_argument: " << e.what());
        return;
    }
    BOOST_ERROR("accepted " << j.dump() << " (expected an error naming " << key << ")");
}

json pba_with_option(json option) {
    return {{"type", "PBA"}, {"status", 0}, {"options", json::array({std::move(option)})}};
}

} // namespace

BOOST_AUTO_TEST_SUITE(wire_json)

BOOST_AUTO_TEST_CASE(every_golden_vector_round_trips_through_json) {
    for (const auto& v : golden::kAll) {
        const auto m = decode(v.bytes);
        const auto text = to_json(m).dump();
        BOOST_TEST((message_from_json(json::parse(text)) == m), v.name);
    }
}

// Numbers that do not fit their wire field are refused, naming the key (never truncated mod 2^n).
BOOST_AUTO_TEST_CASE(numeric_fields_are_range_checked) {
    require_invalid({{"type", "PBA"}, {"flags_raw", 0x1ff}}, "flags_raw");  // BA Flags: 8 bits
    require_invalid({{"type", "PBU"}, {"flags_raw", 0x10000}}, "flags_raw");
    const auto bu = std::get<ProxyBindingUpdate>(message_from_json({{"type", "PBU"}, {"flags_raw", 0xffff}}));
    BOOST_TEST(bu.flags == 0xffff);
    const auto ba_flags = message_from_json({{"type", "PBA"}, {"flags_raw", 0xff}});
    BOOST_TEST(std::get<ProxyBindingAcknowledgement>(ba_flags).flags == 0xff);
    require_invalid({{"type", "PBA"}, {"status", 256}}, "status");
    require_invalid({{"type", "PBU"}, {"sequence", 65536}}, "sequence");
    require_invalid({{"type", "PBU"}, {"sequence", -1}}, "sequence");
    require_invalid({{"type", "PBU"}, {"lifetime", 1.5}}, "lifetime");
    require_invalid({{"type", "PBU"}, {"lifetime", "10"}}, "lifetime");
    require_invalid(pba_with_option({{"type", "bid"}, {"binding_id", 65536}}), "binding_id");
    require_invalid(pba_with_option({{"type", "bid"}, {"binding_id", 7}, {"priority", 128}}), "priority");
    require_invalid(pba_with_option({{"type", "mag_multipath_binding"}, {"binding_id", 257}}), "binding_id");
    require_invalid(pba_with_option({{"type", "hi"}, {"value", 300}}), "value");
    require_invalid(pba_with_option({{"type", "gre_key"}, {"key", 0x1'0000'0000LL}}), "key");
    require_invalid(pba_with_option({{"type", "timestamp"}, {"value", -5}}), "value");
    require_invalid(pba_with_option({{"type", "unknown"}, {"option_type", 256}}), "option_type");
    require_invalid(pba_with_option({{"type", "mn_id"}, {"subtype", 256}, {"identifier", "a"}}), "subtype");
    require_invalid(pba_with_option({{"type", "nat_detection"}, {"refresh_time", 0x1'0000'0000LL}}),
                    "refresh_time");
    require_invalid(pba_with_option({{"type", "ipv4_dhcp_support_mode"}, {"server", 1}}), "server");
    require_invalid(pba_with_option({{"type", "bid"}}), "binding_id");  // missing
    // In range, the value arrives unchanged.
    const auto ba = std::get<ProxyBindingAcknowledgement>(
        message_from_json(pba_with_option({{"type", "bid"}, {"binding_id", 65535}, {"priority", 127}})));
    BOOST_TEST(ba.options.find<BindingIdentifierOption>()->binding_id == 65535);
    BOOST_TEST(ba.options.find<BindingIdentifierOption>()->priority == 127);
}

BOOST_AUTO_TEST_CASE(hex_fields_accept_only_pairs_of_hex_digits) {
    for (const char* bad : {"0x12", " 1", "+1", "-1", "1g", "zz", "12 34", "1"}) {
        require_invalid(pba_with_option({{"type", "unknown"}, {"option_type", 200}, {"data", bad}}), "data");
        require_invalid(pba_with_option({{"type", "mn_ll_id"}, {"identifier", bad}}), "identifier");
    }
    const auto ba = std::get<ProxyBindingAcknowledgement>(
        message_from_json(pba_with_option({{"type", "unknown"}, {"option_type", 200}, {"data", "0A0bFf"}})));
    BOOST_TEST((ba.options.find<UnknownOption>()->data == std::vector<std::uint8_t>{0x0a, 0x0b, 0xff}));
}

// Identifiers of binary MN-ID subtypes (RFC 7330: IMSI, EUI-48, ...) are shown as hex, NAIs
// (subtype 1, UTF-8 by RFC 7542 §2.2) as text: the JSON is always valid UTF-8.
BOOST_AUTO_TEST_CASE(binary_identifiers_are_shown_as_hex) {
    ProxyBindingUpdate bu;
    bu.lifetime = 10;
    bu.options.add(MobileNodeIdentifierOption{4, std::string("\x21\x43\xff\x00\x80", 5)});
    bu.options.add(MagIdentifierOption{kMnIdSubtypeNai, "mag1.example"});
    const auto m = decode(encode(bu));  // through the codec: what the agent would print
    const auto j = to_json(m);
    const auto& mn = j.at("options").at(0);
    BOOST_TEST(mn.at("identifier_hex").get<std::string>() == "2143ff0080");
    BOOST_TEST(!mn.contains("identifier"));
    BOOST_TEST(j.at("options").at(1).at("identifier").get<std::string>() == "mag1.example");
    BOOST_CHECK_NO_THROW((void)j.dump());  // the strict handler: would throw on invalid UTF-8
    BOOST_TEST((message_from_json(json::parse(j.dump())) == m));

    require_invalid(pba_with_option({{"type", "mn_id"}, {"identifier", "a"}, {"identifier_hex", "61"}}),
                    "identifier_hex");
    require_invalid(pba_with_option({{"type", "mag_identifier"}}), "identifier");
    require_invalid(pba_with_option({{"type", "mn_id"}, {"subtype", 4}, {"identifier_hex", "0x01"}}),
                    "identifier_hex");
}

// Whatever decode() accepts - here every single-octet mutation of the golden vectors - gives
// JSON that dumps with the strict (throwing) UTF-8 handler.
BOOST_AUTO_TEST_CASE(to_json_never_throws_on_a_decoded_message) {
    std::size_t dumped = 0;
    for (const auto& v : golden::kAll) {
        for (std::size_t i = 0; i < v.bytes.size(); ++i) {
            for (int value : {0x00, 0x02, 0x7f, 0x80, 0xc3, 0xff}) {
                auto b = v.bytes;
                b[i] = static_cast<std::uint8_t>(value);
                MobilityMessage m;
                try {
                    m = decode(b);
                } catch (const WireError&) {
                    continue;
                }
                try {
                    (void)to_json(m).dump();
                    ++dumped;
                } catch (const std::exception& e) {
                    BOOST_ERROR(v.name << " octet " << i << " = " << value << ": " << e.what());
                }
            }
        }
    }
    BOOST_TEST(dumped > 0u);
}

BOOST_AUTO_TEST_CASE(dump_json_replaces_invalid_utf8_instead_of_throwing) {
    const json j{{"identifier", std::string("a\xff", 2)}};
    BOOST_CHECK_THROW((void)j.dump(), json::type_error);
    BOOST_TEST(dump_json(j) == "{\"identifier\":\"a\xEF\xBF\xBD\"}");
}

BOOST_AUTO_TEST_SUITE_END()
