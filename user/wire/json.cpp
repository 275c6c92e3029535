#include "wire/json.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace xpmip::wire {

using nlohmann::json;

namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

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

template <std::size_t N>
std::uint16_t flags_from_json(const json& j, const FlagName (&names)[N], std::string_view what) {
    if (j.contains("flags_raw")) {
        return j.at("flags_raw").get<std::uint16_t>();
    }
    std::uint16_t flags = 0;
    for (const auto& letter : j.value("flags", json::array())) {
        const auto s = letter.get<std::string>();
        bool found = false;
        for (const auto& f : names) {
            if (s.size() == 1 && s[0] == f.letter) {
                flags |= f.bit;
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

std::vector<std::uint8_t> from_hex(const std::string& s, std::string_view key) {
    if (s.size() % 2 != 0) {
        throw std::invalid_argument(fmt::format("{}: '{}' is not an even number of hex digits", key, s));
    }
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < s.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
    }
    return out;
}

json option_to_json(const MobilityOption& option) {
    return std::visit(
        Overloaded{
            [](const MobileNodeIdentifierOption& o) -> json {
                return {{"type", "mn_id"}, {"subtype", o.subtype}, {"identifier", o.identifier}};
            },
            [](const HomeNetworkPrefixOption& o) -> json {
                return {{"type", "hnp"}, {"prefix", Ipv6Prefix{o.prefix, o.prefix_length}.to_string()}};
            },
            [](const HandoffIndicatorOption& o) -> json { return {{"type", "hi"}, {"value", o.value}}; },
            [](const AccessTechnologyTypeOption& o) -> json { return {{"type", "att"}, {"value", o.value}}; },
            [](const MobileNodeLinkLayerIdOption& o) -> json {
                return {{"type", "mn_ll_id"}, {"identifier", to_hex(o.identifier)}};
            },
            [](const LinkLocalAddressOption& o) -> json {
                return {{"type", "link_local"}, {"address", o.address.to_string()}};
            },
            [](const TimestampOption& o) -> json { return {{"type", "timestamp"}, {"value", o.value}}; },
            [](const NatDetectionOption& o) -> json {
                return {{"type", "nat_detection"},
                        {"udp_encapsulation_required", o.udp_encapsulation_required},
                        {"refresh_time", o.refresh_time}};
            },
            [](const Ipv4CareOfAddressOption& o) -> json {
                return {{"type", "ipv4_coa"}, {"address", o.address.to_string()}};
            },
            [](const GreKeyOption& o) -> json {
                json j{{"type", "gre_key"}};
                if (o.key) {
                    j["key"] = *o.key;
                }
                return j;
            },
            [](const BindingIdentifierOption& o) -> json {
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
            },
            [](const Ipv4HomeAddressRequestOption& o) -> json {
                return {{"type", "ipv4_hoa_request"},
                        {"prefix_length", o.prefix_length},
                        {"address", o.address.to_string()}};
            },
            [](const Ipv4HomeAddressReplyOption& o) -> json {
                return {{"type", "ipv4_hoa_reply"},
                        {"status", o.status},
                        {"prefix_length", o.prefix_length},
                        {"address", o.address.to_string()}};
            },
            [](const Ipv4DefaultRouterAddressOption& o) -> json {
                return {{"type", "ipv4_default_router"}, {"address", o.address.to_string()}};
            },
            [](const Ipv4DhcpSupportModeOption& o) -> json {
                return {{"type", "ipv4_dhcp_support_mode"}, {"server", o.server}};
            },
            [](const MagMultipathBindingOption& o) -> json {
                return {{"type", "mag_multipath_binding"},
                        {"if_att", o.if_att},
                        {"if_label", o.if_label},
                        {"binding_id", o.binding_id},
                        {"B", o.bulk_reregistration},
                        {"O", o.overwrite}};
            },
            [](const MagIdentifierOption& o) -> json {
                return {{"type", "mag_identifier"}, {"subtype", o.subtype}, {"identifier", o.identifier}};
            },
            [](const UnknownOption& o) -> json {
                return {{"type", "unknown"}, {"option_type", o.type}, {"data", to_hex(o.data)}};
            },
        },
        option);
}

MobilityOption option_from_json(const json& j) {
    const auto type = j.at("type").get<std::string>();
    if (type == "mn_id") {
        return MobileNodeIdentifierOption{j.value<std::uint8_t>("subtype", kMnIdSubtypeNai),
                                          j.at("identifier").get<std::string>()};
    }
    if (type == "hnp") {
        auto p = Ipv6Prefix::parse(j.at("prefix").get<std::string>());
        return HomeNetworkPrefixOption{p.length, p.address};
    }
    if (type == "hi") {
        return HandoffIndicatorOption{j.at("value").get<std::uint8_t>()};
    }
    if (type == "att") {
        return AccessTechnologyTypeOption{j.at("value").get<std::uint8_t>()};
    }
    if (type == "mn_ll_id") {
        return MobileNodeLinkLayerIdOption{from_hex(j.at("identifier").get<std::string>(), "identifier")};
    }
    if (type == "link_local") {
        return LinkLocalAddressOption{Ipv6Address::parse(j.at("address").get<std::string>())};
    }
    if (type == "timestamp") {
        return TimestampOption{j.at("value").get<std::uint64_t>()};
    }
    if (type == "nat_detection") {
        return NatDetectionOption{j.value("udp_encapsulation_required", false),
                                  j.value<std::uint32_t>("refresh_time", 0)};
    }
    if (type == "ipv4_coa") {
        return Ipv4CareOfAddressOption{Ipv4Address::parse(j.at("address").get<std::string>())};
    }
    if (type == "gre_key") {
        GreKeyOption o;
        if (j.contains("key")) {
            o.key = j.at("key").get<std::uint32_t>();
        }
        return o;
    }
    if (type == "bid") {
        BindingIdentifierOption o;
        o.binding_id = j.at("binding_id").get<std::uint16_t>();
        o.status = j.value<std::uint8_t>("status", 0);
        o.simultaneous_home = j.value("H", false);
        o.priority = j.value<std::uint8_t>("priority", 0);
        if (j.contains("care_of")) {
            const auto s = j.at("care_of").get<std::string>();
            if (auto v4 = Ipv4Address::try_parse(s)) {
                o.ipv4_care_of = v4;
            } else {
                o.ipv6_care_of = Ipv6Address::parse(s);
            }
        }
        return o;
    }
    if (type == "ipv4_hoa_request") {
        return Ipv4HomeAddressRequestOption{j.value<std::uint8_t>("prefix_length", 0),
                                            Ipv4Address::parse(j.value("address", std::string("0.0.0.0")))};
    }
    if (type == "ipv4_hoa_reply") {
        return Ipv4HomeAddressReplyOption{j.value<std::uint8_t>("status", 0), j.at("prefix_length").get<std::uint8_t>(),
                                          Ipv4Address::parse(j.at("address").get<std::string>())};
    }
    if (type == "ipv4_default_router") {
        return Ipv4DefaultRouterAddressOption{Ipv4Address::parse(j.at("address").get<std::string>())};
    }
    if (type == "ipv4_dhcp_support_mode") {
        return Ipv4DhcpSupportModeOption{j.value("server", false)};
    }
    if (type == "mag_multipath_binding") {
        return MagMultipathBindingOption{j.value<std::uint8_t>("if_att", 0), j.value<std::uint8_t>("if_label", 0),
                                         j.at("binding_id").get<std::uint8_t>(), j.value("B", false),
                                         j.value("O", false)};
    }
    if (type == "mag_identifier") {
        return MagIdentifierOption{j.value<std::uint8_t>("subtype", kMnIdSubtypeNai),
                                   j.at("identifier").get<std::string>()};
    }
    if (type == "unknown") {
        return UnknownOption{j.at("option_type").get<std::uint8_t>(),
                             from_hex(j.value("data", std::string()), "data")};
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
    for (const auto& o : j.value("options", json::array())) {
        try {
            list.add(option_from_json(o));
        } catch (const std::exception& e) {
            throw std::invalid_argument(fmt::format("options[{}]: {}", i, e.what()));
        }
        ++i;
    }
    return list;
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

MobilityMessage message_from_json(const json& j) {
    try {
        const auto type = j.at("type").get<std::string>();
        if (type == "PBU") {
            ProxyBindingUpdate bu;
            bu.sequence = j.value<std::uint16_t>("sequence", 0);
            if (j.contains("flags") || j.contains("flags_raw")) {
                bu.flags = flags_from_json(j, kBuFlags, "Binding Update");
            }
            bu.lifetime = j.value<std::uint16_t>("lifetime", 0);
            bu.options = options_from_json(j);
            return bu;
        }
        if (type == "PBA") {
            ProxyBindingAcknowledgement ba;
            ba.status = j.value<std::uint8_t>("status", 0);
            ba.sequence = j.value<std::uint16_t>("sequence", 0);
            if (j.contains("flags") || j.contains("flags_raw")) {
                ba.flags = static_cast<std::uint8_t>(flags_from_json(j, kBaFlags, "Binding Acknowledgement"));
            }
            ba.lifetime = j.value<std::uint16_t>("lifetime", 0);
            ba.options = options_from_json(j);
            return ba;
        }
        throw std::invalid_argument(fmt::format("type: '{}' must be PBU or PBA", type));
    } catch (const json::exception& e) {
        throw std::invalid_argument(e.what());
    }
}

} // namespace xpmip::wire
