#include "wire/json.hpp"

#include "common/overloaded.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

namespace xpmip::wire {

using nlohmann::json;

namespace {


struct FlagName {
    char letter;
    std::uint16_t bit;
};
constexpr FlagName kBuFlags[] = {{'A', bu_flag::kAck},          {'H', bu_flag::kHomeRegistration},
                                 {'L', bu_flag::kLinkLocalCompat}, {'K', bu_flag::kKeyManagement},
                                 {'M', bu_flag::kMapRegistration}, {'R', bu_flag::kMobileRouter},
                                 {'P', bu_flag::kProxy},          {'F', bu_flag::kForceUdp},
                                 {'T', bu_flag::kTlvHeader},      {'B', bu_flag::kBulk}};
constexpr FlagName kBaFlags[] = {{'K', ba_flag::kKeyManagement}, {'R', ba_flag::kMobileRouter},
                                 {'P', ba_flag::kProxy},         {'T', ba_flag::kTlvHeader},
                                 {'B', ba_flag::kBulk}};

// Typed reads of JSON values. Every failure is an std::invalid_argument naming the key: a value
// that does not fit its wire field is refused, never truncated.
std::string describe(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

template <class T>
T uint_value(const json& v, std::string_view key) {
    constexpr std::uint64_t kMax = std::numeric_limits<T>::max();
    std::uint64_t x = 0;
    if (v.is_number_unsigned()) {
        x = v.get<std::uint64_t>();
    } else if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
        x = static_cast<std::uint64_t>(v.get<std::int64_t>());
    } else if (v.is_number_integer()) {
        throw std::invalid_argument(fmt::format("{}: {} is out of range (0..{})", key, describe(v), kMax));
    } else {
        throw std::invalid_argument(fmt::format("{}: {} is not an unsigned integer", key, describe(v)));
    }
    if (x > kMax) {
        throw std::invalid_argument(fmt::format("{}: {} is out of range (0..{})", key, x, kMax));
    }
    return static_cast<T>(x);
}

const json& member(const json& obj, std::string_view key) {
    const auto it = obj.find(key);
    if (it == obj.end()) {
        throw std::invalid_argument(fmt::format("{}: missing", key));
    }
    return *it;
}

template <class T>
T get_uint(const json& obj, std::string_view key) {
    return uint_value<T>(member(obj, key), key);
}

template <class T>
T get_uint_or(const json& obj, std::string_view key, T fallback) {
    return obj.contains(key) ? get_uint<T>(obj, key) : fallback;
}

std::string get_string(const json& obj, std::string_view key) {
    const auto& v = member(obj, key);
    if (!v.is_string()) {
        throw std::invalid_argument(fmt::format("{}: {} is not a string", key, describe(v)));
    }
    return v.get<std::string>();
}

std::string get_string_or(const json& obj, std::string_view key, std::string fallback) {
    return obj.contains(key) ? get_string(obj, key) : fallback;
}

bool get_bool_or(const json& obj, std::string_view key, bool fallback) {
    if (!obj.contains(key)) {
        return fallback;
    }
    const auto& v = obj.at(std::string(key));
    if (!v.is_boolean()) {
        throw std::invalid_argument(fmt::format("{}: {} is not true or false", key, describe(v)));
    }
    return v.get<bool>();
}

template <std::size_t N>
json flags_to_json(std::uint16_t flags, const FlagName (&names)[N]) {
    json out = json::array();
    for (const auto& f : names) {
        if (flags & f.bit) {
            out.push_back(std::string(1, f.letter));
        }
    }
    return out;
}

// T: the type of the message's Flags field (16 bits in a BU, 8 in a BA).
template <class T, std::size_t N>
T flags_from_json(const json& j, const FlagName (&names)[N], std::string_view what) {
    if (j.contains("flags_raw")) {
        return get_uint<T>(j, "flags_raw");
    }
    const json letters = j.value("flags", json::array());
    if (!letters.is_array()) {
        throw std::invalid_argument(fmt::format("flags: {} is not an array of flag letters", describe(letters)));
    }
    T flags = 0;
    for (const auto& letter : letters) {
        if (!letter.is_string()) {
            throw std::invalid_argument(fmt::format("flags: {} is not a flag letter", describe(letter)));
        }
        const auto s = letter.get<std::string>();
        bool found = false;
        for (const auto& f : names) {
            if (s.size() == 1 && s[0] == f.letter) {
                flags = static_cast<T>(flags | f.bit);
                found = true;
            }
        }
        if (!found) {
            throw std::invalid_argument(fmt::format("flags: '{}' is not a {} flag", s, what));
        }
    }
    return flags;
}

std::string to_hex(const std::vector<std::uint8_t>& data) {
    std::string s;
    for (auto b : data) {
        s += fmt::format("{:02x}", b);
    }
    return s;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Pairs of [0-9a-fA-F] only: no "0x", signs, blanks or separators.
std::vector<std::uint8_t> from_hex(const std::string& s, std::string_view key) {
    if (s.size() % 2 != 0) {
        throw std::invalid_argument(fmt::format("{}: '{}' is not an even number of hex digits", key, s));
    }
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < s.size(); i += 2) {
        const int hi = hex_digit(s[i]);
        const int lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            throw std::invalid_argument(fmt::format("{}: '{}' has a non-hex character at position {}", key, s,
                                                    hi < 0 ? i : i + 1));
        }
        out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    return out;
}

// MN-ID and MAG Identifier: an NAI (subtype 1, UTF-8 by RFC 7542 §2.2) is shown as text; any
// other subtype (binary: IMSI, EUI-48, ... RFC 7330) as hex, so the JSON is always valid UTF-8.
void identifier_to_json(json& j, std::uint8_t subtype, const std::string& identifier) {
    const ByteView bytes(reinterpret_cast<const std::uint8_t*>(identifier.data()), identifier.size());
    if (subtype == kMnIdSubtypeNai && is_valid_utf8(bytes)) {
        j["identifier"] = identifier;
    } else {
        j["identifier_hex"] = to_hex({bytes.begin(), bytes.end()});
    }
}

std::string identifier_from_json(const json& j) {
    const bool text = j.contains("identifier");
    if (text == j.contains("identifier_hex")) {
        throw std::invalid_argument("identifier, identifier_hex: give exactly one of them");
    }
    if (text) {
        return get_string(j, "identifier");
    }
    const auto bytes = from_hex(get_string(j, "identifier_hex"), "identifier_hex");
    return {bytes.begin(), bytes.end()};
}

// One option's JSON object, "type" first; option_from_json() reads the same keys back.
json option_json(const MobileNodeIdentifierOption& o) {
    json j{{"type", "mn_id"}, {"subtype", o.subtype}};
    identifier_to_json(j, o.subtype, o.identifier);
    return j;
}
json option_json(const HomeNetworkPrefixOption& o) {
    return {{"type", "hnp"}, {"prefix", Ipv6Prefix{o.prefix, o.prefix_length}.to_string()}};
}
json option_json(const HandoffIndicatorOption& o) { return {{"type", "hi"}, {"value", o.value}}; }
json option_json(const AccessTechnologyTypeOption& o) { return {{"type", "att"}, {"value", o.value}}; }
json option_json(const MobileNodeLinkLayerIdOption& o) {
    return {{"type", "mn_ll_id"}, {"identifier", to_hex(o.identifier)}};
}
json option_json(const LinkLocalAddressOption& o) {
    return {{"type", "link_local"}, {"address", o.address.to_string()}};
}
json option_json(const TimestampOption& o) { return {{"type", "timestamp"}, {"value", o.value}}; }
json option_json(const NatDetectionOption& o) {
    return {{"type", "nat_detection"},
            {"udp_encapsulation_required", o.udp_encapsulation_required},
            {"refresh_time", o.refresh_time}};
}
json option_json(const Ipv4CareOfAddressOption& o) {
    return {{"type", "ipv4_coa"}, {"address", o.address.to_string()}};
}
json option_json(const GreKeyOption& o) {
    json j{{"type", "gre_key"}};
    if (o.key) {
        j["key"] = *o.key;
    }
    return j;
}
json option_json(const BindingIdentifierOption& o) {
    json j{{"type", "bid"},
           {"binding_id", o.binding_id},
           {"status", o.status},
           {"H", o.simultaneous_home},
           {"priority", o.priority}};
    if (o.ipv4_care_of) {
        j["care_of"] = o.ipv4_care_of->to_string();
    }
    if (o.ipv6_care_of) {
        j["care_of"] = o.ipv6_care_of->to_string();
    }
    return j;
}
json option_json(const Ipv4HomeAddressRequestOption& o) {
    return {{"type", "ipv4_hoa_request"}, {"prefix_length", o.prefix_length}, {"address", o.address.to_string()}};
}
json option_json(const Ipv4HomeAddressReplyOption& o) {
    return {{"type", "ipv4_hoa_reply"},
            {"status", o.status},
            {"prefix_length", o.prefix_length},
            {"address", o.address.to_string()}};
}
json option_json(const Ipv4DefaultRouterAddressOption& o) {
    return {{"type", "ipv4_default_router"}, {"address", o.address.to_string()}};
}
json option_json(const Ipv4DhcpSupportModeOption& o) {
    return {{"type", "ipv4_dhcp_support_mode"}, {"server", o.server}};
}
json option_json(const MagMultipathBindingOption& o) {
    return {{"type", "mag_multipath_binding"},
            {"if_att", o.if_att},
            {"if_label", o.if_label},
            {"binding_id", o.binding_id},
            {"B", o.bulk_reregistration},
            {"O", o.overwrite}};
}
json option_json(const MagIdentifierOption& o) {
    json j{{"type", "mag_identifier"}, {"subtype", o.subtype}};
    identifier_to_json(j, o.subtype, o.identifier);
    return j;
}
json option_json(const RestartCounterOption& o) { return {{"type", "restart_counter"}, {"value", o.counter}}; }
json option_json(const MobileNodeGroupIdentifierOption& o) {
    return {{"type", "mn_group_id"}, {"subtype", o.subtype}, {"group", o.group}};
}
json option_json(const UnknownOption& o) {
    return {{"type", "unknown"}, {"option_type", o.type}, {"data", to_hex(o.data)}};
}

json option_to_json(const MobilityOption& option) {
    // Overload resolution picks the option's own option_json(): one per MobilityOption type.
    return std::visit([](const auto& o) { return option_json(o); }, option);
}

GreKeyOption gre_key_from_json(const json& j) {
    GreKeyOption o;
    if (j.contains("key")) {
        o.key = get_uint<std::uint32_t>(j, "key");
    }
    return o;
}

// RFC 5648 §6.1: the Priority field is 7 bits; the care-of address is IPv4 or IPv6.
BindingIdentifierOption binding_identifier_from_json(const json& j) {
    BindingIdentifierOption o;
    o.binding_id = get_uint<std::uint16_t>(j, "binding_id");
    o.status = get_uint_or<std::uint8_t>(j, "status", 0);
    o.simultaneous_home = get_bool_or(j, "H", false);
    o.priority = get_uint_or<std::uint8_t>(j, "priority", 0);
    if (o.priority > 0x7f) {
        throw std::invalid_argument(fmt::format("priority: {} is out of range (0..127)", o.priority));
    }
    if (j.contains("care_of")) {
        const auto s = get_string(j, "care_of");
        if (auto v4 = Ipv4Address::try_parse(s)) {
            o.ipv4_care_of = v4;
        } else {
            o.ipv6_care_of = Ipv6Address::parse(s);
        }
    }
    return o;
}

// How each options[].type is read: the names and keys option_json() writes.
struct JsonOptionReader {
    std::string_view type;
    MobilityOption (*read)(const json& j);
};

constexpr JsonOptionReader kJsonOptionReaders[] = {
    {"mn_id", [](const json& j) -> MobilityOption {
         return MobileNodeIdentifierOption{get_uint_or<std::uint8_t>(j, "subtype", kMnIdSubtypeNai),
                                           identifier_from_json(j)};
     }},
    {"hnp", [](const json& j) -> MobilityOption {
         auto p = Ipv6Prefix::parse(get_string(j, "prefix"));
         return HomeNetworkPrefixOption{p.length, p.address};
     }},
    {"hi", [](const json& j) -> MobilityOption { return HandoffIndicatorOption{get_uint<std::uint8_t>(j, "value")}; }},
    {"att",
     [](const json& j) -> MobilityOption { return AccessTechnologyTypeOption{get_uint<std::uint8_t>(j, "value")}; }},
    {"mn_ll_id", [](const json& j) -> MobilityOption {
         return MobileNodeLinkLayerIdOption{from_hex(get_string(j, "identifier"), "identifier")};
     }},
    {"link_local", [](const json& j) -> MobilityOption {
         return LinkLocalAddressOption{Ipv6Address::parse(get_string(j, "address"))};
     }},
    {"timestamp", [](const json& j) -> MobilityOption { return TimestampOption{get_uint<std::uint64_t>(j, "value")}; }},
    {"nat_detection", [](const json& j) -> MobilityOption {
         return NatDetectionOption{get_bool_or(j, "udp_encapsulation_required", false),
                                   get_uint_or<std::uint32_t>(j, "refresh_time", 0)};
     }},
    {"ipv4_coa", [](const json& j) -> MobilityOption {
         return Ipv4CareOfAddressOption{Ipv4Address::parse(get_string(j, "address"))};
     }},
    {"gre_key", [](const json& j) -> MobilityOption { return gre_key_from_json(j); }},
    {"bid", [](const json& j) -> MobilityOption { return binding_identifier_from_json(j); }},
    {"ipv4_hoa_request", [](const json& j) -> MobilityOption {
         return Ipv4HomeAddressRequestOption{get_uint_or<std::uint8_t>(j, "prefix_length", 0),
                                             Ipv4Address::parse(get_string_or(j, "address", "0.0.0.0"))};
     }},
    {"ipv4_hoa_reply", [](const json& j) -> MobilityOption {
         return Ipv4HomeAddressReplyOption{get_uint_or<std::uint8_t>(j, "status", 0),
                                           get_uint<std::uint8_t>(j, "prefix_length"),
                                           Ipv4Address::parse(get_string(j, "address"))};
     }},
    {"ipv4_default_router", [](const json& j) -> MobilityOption {
         return Ipv4DefaultRouterAddressOption{Ipv4Address::parse(get_string(j, "address"))};
     }},
    {"ipv4_dhcp_support_mode",
     [](const json& j) -> MobilityOption { return Ipv4DhcpSupportModeOption{get_bool_or(j, "server", false)}; }},
    {"mag_multipath_binding", [](const json& j) -> MobilityOption {
         return MagMultipathBindingOption{get_uint_or<std::uint8_t>(j, "if_att", 0),
                                          get_uint_or<std::uint8_t>(j, "if_label", 0),
                                          get_uint<std::uint8_t>(j, "binding_id"), get_bool_or(j, "B", false),
                                          get_bool_or(j, "O", false)};
     }},
    {"mag_identifier", [](const json& j) -> MobilityOption {
         return MagIdentifierOption{get_uint_or<std::uint8_t>(j, "subtype", kMnIdSubtypeNai), identifier_from_json(j)};
     }},
    {"restart_counter",
     [](const json& j) -> MobilityOption { return RestartCounterOption{get_uint<std::uint32_t>(j, "value")}; }},
    {"mn_group_id", [](const json& j) -> MobilityOption {
         return MobileNodeGroupIdentifierOption{
             get_uint_or<std::uint8_t>(j, "subtype", kMngSubtypeBulkBindingUpdateGroup),
             get_uint_or<std::uint32_t>(j, "group", kMngAllSessions)};
     }},
    {"unknown", [](const json& j) -> MobilityOption {
         return UnknownOption{get_uint<std::uint8_t>(j, "option_type"), from_hex(get_string_or(j, "data", ""), "data")};
     }},
};

MobilityOption option_from_json(const json& j) {
    const auto type = get_string(j, "type");
    for (const auto& reader : kJsonOptionReaders) {
        if (type == reader.type) {
            return reader.read(j);
        }
    }
    throw std::invalid_argument(fmt::format("options[].type: '{}' is not a known option name", type));
}

json options_to_json(const OptionList& options) {
    json arr = json::array();
    for (const auto& o : options.items) {
        arr.push_back(option_to_json(o));
    }
    return arr;
}

OptionList options_from_json(const json& j) {
    OptionList list;
    std::size_t i = 0;
    const json options = j.value("options", json::array());
    if (!options.is_array()) {
        throw std::invalid_argument(fmt::format("options: {} is not an array", describe(options)));
    }
    for (const auto& o : options) {
        try {
            list.add(option_from_json(o));
        } catch (const std::exception& e) {
            throw std::invalid_argument(fmt::format("options[{}]: {}", i, e.what()));
        }
        ++i;
    }
    return list;
}

// RFC 5846 §5.1: {"P": true, "V": false, "G": false}.
json br_flags_to_json(std::uint16_t flags) {
    return {{"P", (flags & br_flag::kProxy) != 0},
            {"V", (flags & br_flag::kIpv4HoaOnly) != 0},
            {"G", (flags & br_flag::kGlobal) != 0}};
}

std::uint16_t br_flags_from_json(const json& j, std::uint16_t fallback) {
    std::uint16_t flags = get_uint_or<std::uint16_t>(j, "flags_raw", fallback);
    if (j.contains("flags") && j["flags"].is_object()) {
        const auto& f = j["flags"];
        flags = static_cast<std::uint16_t>((get_bool_or(f, "P", false) ? br_flag::kProxy : 0) |
                                           (get_bool_or(f, "V", false) ? br_flag::kIpv4HoaOnly : 0) |
                                           (get_bool_or(f, "G", false) ? br_flag::kGlobal : 0));
    }
    return flags;
}

} // namespace

json to_json(const MobilityMessage& message) {
    return std::visit(
        Overloaded{
            [](const ProxyBindingUpdate& bu) -> json {
                return {{"type", "PBU"},
                        {"sequence", bu.sequence},
                        {"flags", flags_to_json(bu.flags, kBuFlags)},
                        {"flags_raw", bu.flags},
                        {"lifetime", bu.lifetime},
                        {"lifetime_seconds", bu.lifetime_seconds().count()},
                        {"options", options_to_json(bu.options)}};
            },
            [](const Heartbeat& hb) -> json {
                return {{"type", "heartbeat"},
                        {"sequence", hb.sequence},
                        {"flags", {{"U", hb.unsolicited()}, {"R", hb.response()}}},
                        {"flags_raw", hb.flags},
                        {"options", options_to_json(hb.options)}};
            },
            [](const ProxyBindingAcknowledgement& ba) -> json {
                return {{"type", "PBA"},
                        {"status", ba.status},
                        {"status_name", std::string(status_name(ba.status))},
                        {"sequence", ba.sequence},
                        {"flags", flags_to_json(ba.flags, kBaFlags)},
                        {"flags_raw", ba.flags},
                        {"lifetime", ba.lifetime},
                        {"lifetime_seconds", ba.lifetime_seconds().count()},
                        {"options", options_to_json(ba.options)}};
            },
            [](const BindingRevocationIndication& bri) -> json {
                return {{"type", "BRI"},
                        {"trigger", bri.trigger},
                        {"trigger_name", std::string(revocation_trigger_name(bri.trigger))},
                        {"sequence", bri.sequence},
                        {"flags", br_flags_to_json(bri.flags)},
                        {"flags_raw", bri.flags},
                        {"options", options_to_json(bri.options)}};
            },
            [](const BindingRevocationAcknowledgement& bra) -> json {
                return {{"type", "BRA"},
                        {"status", bra.status},
                        {"status_name", std::string(bra_status_name(bra.status))},
                        {"sequence", bra.sequence},
                        {"flags", br_flags_to_json(bra.flags)},
                        {"flags_raw", bra.flags},
                        {"options", options_to_json(bra.options)}};
            },
            [](const BindingError& be) -> json {
                return {{"type", "binding-error"},
                        {"status", be.status},
                        {"home_address", be.home_address.to_string()},
                        {"options", options_to_json(be.options)}};
            },
        },
        message);
}

json to_json(const ReceivedPacket& packet) {
    json j = to_json(packet.message);
    if (packet.transport == Transport::Ipv6) {
        j["transport"] = "ipv6";
        j["src"] = packet.src6.to_string();
        j["dst"] = packet.dst6.to_string();
    } else {
        j["transport"] = "ipv4-udp";
        j["src"] = packet.src4.to_string();
        j["dst"] = packet.dst4.to_string();
        j["sport"] = packet.src_port;
        j["dport"] = packet.dst_port;
    }
    return j;
}

std::string dump_json(const json& j, int indent) {
    return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

MobilityMessage message_from_json(const json& j) {
    try {
        if (!j.is_object()) {
            throw std::invalid_argument(fmt::format("message: {} is not a JSON object", describe(j)));
        }
        const auto type = get_string(j, "type");
        if (type == "PBU") {
            ProxyBindingUpdate bu;
            bu.sequence = get_uint_or<std::uint16_t>(j, "sequence", 0);
            if (j.contains("flags") || j.contains("flags_raw")) {
                bu.flags = flags_from_json<std::uint16_t>(j, kBuFlags, "Binding Update");
            }
            bu.lifetime = get_uint_or<std::uint16_t>(j, "lifetime", 0);
            bu.options = options_from_json(j);
            return bu;
        }
        if (type == "PBA") {
            ProxyBindingAcknowledgement ba;
            ba.status = get_uint_or<std::uint8_t>(j, "status", 0);
            ba.sequence = get_uint_or<std::uint16_t>(j, "sequence", 0);
            if (j.contains("flags") || j.contains("flags_raw")) {
                ba.flags = flags_from_json<std::uint8_t>(j, kBaFlags, "Binding Acknowledgement");
            }
            ba.lifetime = get_uint_or<std::uint16_t>(j, "lifetime", 0);
            ba.options = options_from_json(j);
            return ba;
        }
        if (type == "heartbeat") {
            Heartbeat hb;
            hb.sequence = get_uint_or<std::uint32_t>(j, "sequence", 0);
            hb.flags = get_uint_or<std::uint8_t>(j, "flags_raw", 0);
            if (j.contains("flags") && j["flags"].is_object()) {
                hb.flags = static_cast<std::uint8_t>((get_bool_or(j["flags"], "U", false) ? hb_flag::kUnsolicited : 0) |
                                                     (get_bool_or(j["flags"], "R", false) ? hb_flag::kResponse : 0));
            }
            hb.options = options_from_json(j);
            return hb;
        }
        if (type == "BRI") {
            BindingRevocationIndication bri;
            bri.trigger = get_uint_or<std::uint8_t>(j, "trigger", revocation_trigger::kAdministrativeReason);
            bri.sequence = get_uint_or<std::uint16_t>(j, "sequence", 0);
            bri.flags = br_flags_from_json(j, bri.flags);
            bri.options = options_from_json(j);
            return bri;
        }
        if (type == "BRA") {
            BindingRevocationAcknowledgement bra;
            bra.status = get_uint_or<std::uint8_t>(j, "status", bra_status::kSuccess);
            bra.sequence = get_uint_or<std::uint16_t>(j, "sequence", 0);
            bra.flags = br_flags_from_json(j, bra.flags);
            bra.options = options_from_json(j);
            return bra;
        }
        if (type == "binding-error") {
            BindingError be;
            be.status = get_uint_or<std::uint8_t>(j, "status", be_status::kUnrecognizedMhType);
            if (j.contains("home_address")) {
                be.home_address = Ipv6Address::parse(get_string(j, "home_address"));
            }
            be.options = options_from_json(j);
            return be;
        }
        throw std::invalid_argument(fmt::format("type: '{}' must be PBU, PBA, heartbeat, binding-error, BRI or BRA", type));
    } catch (const json::exception& e) {
        throw std::invalid_argument(e.what());
    }
}

} // namespace xpmip::wire
