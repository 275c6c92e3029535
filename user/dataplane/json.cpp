#include "dataplane/json.hpp"

#include "netlink/interfaces.hpp"

#include <fmt/format.h>
#include <net/if.h>

namespace xpmip::dataplane {

using nlohmann::json;

namespace {

std::uint32_t ifindex_from(const json& j, const char* name_key, const char* index_key) {
    if (j.contains(name_key)) {
        const auto name = j.at(name_key).get<std::string>();
        const unsigned idx = if_nametoindex(name.c_str());
        if (!idx) {
            throw DataplaneError(fmt::format("{}: interface '{}' does not exist", name_key, name));
        }
        return idx;
    }
    return j.value<std::uint32_t>(index_key, 0);
}

template <class T>
T checked(const json& j, const char* key, T fallback) {
    if (!j.contains(key)) {
        return fallback;
    }
    const auto& v = j.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
        v.get<std::uint64_t>() > std::numeric_limits<T>::max()) {
        throw DataplaneError(fmt::format("{}: {} is not an integer from 0 to {}", key, v.dump(),
                                         std::numeric_limits<T>::max()));
    }
    return v.get<T>();
}

} // namespace

json to_json(const SessionConfig& s) {
    json j{{"id", s.id}, {"encap", to_string(s.encap)}, {"gre_keys", s.gre_keys}, {"l2", s.l2},
           {"realm", s.realm}, {"policy", s.policy}, {"mn_ifindex", s.mn_ifindex}};
    if (s.mn_ifindex) {
        j["mn_interface"] = netlink::interface_name(static_cast<int>(s.mn_ifindex));
    }
    if (s.hnp) j["hnp"] = s.hnp->to_string();
    if (s.hoa) j["hoa"] = s.hoa->to_string();
    if (s.mn_mac) j["mn_mac"] = s.mn_mac->to_string();
    json paths = json::array();
    for (const auto& p : s.paths) {
        json jp{{"local", to_string(p.local)}, {"remote", to_string(p.remote)}, {"ifindex", p.ifindex},
                {"key_downlink", p.key_downlink}, {"key_uplink", p.key_uplink}, {"remote_port", p.remote_port},
                {"label", p.label}, {"bid", p.bid}, {"weight", p.weight}, {"up", p.up}, {"mtu", p.mtu},
                {"scope", p.scope}};
        if (p.ifindex) {
            jp["interface"] = netlink::interface_name(static_cast<int>(p.ifindex));
        }
        paths.push_back(jp);
    }
    j["paths"] = paths;
    return j;
}

SessionConfig session_from_json(const json& j) {
    try {
        SessionConfig s;
        s.id = checked<std::uint32_t>(j, "id", 0);
        s.encap = parse_encapsulation(j.value("encap", std::string("ipip")));
        s.gre_keys = j.value("gre_keys", false);
        s.l2 = j.value("l2", false);
        s.realm = checked<std::uint32_t>(j, "realm", 0);
        s.policy = checked<std::uint8_t>(j, "policy", 0);
        s.mn_ifindex = ifindex_from(j, "mn_interface", "mn_ifindex");
        if (j.contains("hnp")) s.hnp = Ipv6Prefix::parse(j.at("hnp").get<std::string>());
        if (j.contains("hoa")) {
            const auto text = j.at("hoa").get<std::string>();
            s.hoa = text.find('/') == std::string::npos ? Ipv4Prefix{Ipv4Address::parse(text), 32}
                                                         : Ipv4Prefix::parse(text);
        }
        if (j.contains("mn_mac")) s.mn_mac = MacAddress::parse(j.at("mn_mac").get<std::string>());
        std::size_t i = 0;
        for (const auto& jp : j.value("paths", json::array())) {
            try {
                PathConfig p;
                p.local = parse_ip_address(jp.at("local").get<std::string>());
                p.remote = parse_ip_address(jp.at("remote").get<std::string>());
                p.ifindex = ifindex_from(jp, "interface", "ifindex");
                p.key_downlink = checked<std::uint32_t>(jp, "key_downlink", 0);
                p.key_uplink = checked<std::uint32_t>(jp, "key_uplink", 0);
                p.remote_port = checked<std::uint16_t>(jp, "remote_port", XPMIP_UDP_PORT_DATA);
                p.label = checked<std::uint8_t>(jp, "label", 0);
                p.bid = checked<std::uint8_t>(jp, "bid", static_cast<std::uint8_t>(i + 1));
                p.weight = checked<std::uint8_t>(jp, "weight", 1);
                p.up = jp.value("up", true);
                p.mtu = checked<std::uint16_t>(jp, "mtu", 0);
                p.scope = checked<std::uint32_t>(jp, "scope", 0);
                s.paths.push_back(p);
            } catch (const std::exception& e) {
                throw DataplaneError(fmt::format("paths[{}]: {}", i, e.what()));
            }
            ++i;
        }
        validate(s);
        return s;
    } catch (const json::exception& e) {
        throw DataplaneError(fmt::format("session: {}", e.what()));
    } catch (const std::invalid_argument& e) {
        throw DataplaneError(fmt::format("session: {}", e.what()));
    }
}

json to_json(const PolicyConfig& p) {
    json rules = json::array();
    for (const auto& r : p.rules) {
        json jr{{"proto", r.proto},
                {"remote_ports", {r.remote_port_lo, r.remote_port_hi}},
                {"local_ports", {r.local_port_lo, r.local_port_hi}},
                {"mode", r.per_packet ? "per-packet" : "per-flow"},
                {"strict", r.strict},
                {"labels", r.labels}};
        if (r.dscp) jr["dscp"] = *r.dscp;
        if (r.remote_prefix) jr["remote_prefix"] = *r.remote_prefix;
        rules.push_back(jr);
    }
    return {{"rules", rules}};
}

PolicyConfig policy_from_json(const json& j) {
    PolicyConfig p;
    std::size_t i = 0;
    for (const auto& jr : j.value("rules", json::array())) {
        try {
            RuleConfig r;
            r.proto = checked<std::uint8_t>(jr, "proto", 0);
            if (jr.contains("dscp")) r.dscp = checked<std::uint8_t>(jr, "dscp", 0);
            if (jr.contains("remote_prefix")) r.remote_prefix = jr.at("remote_prefix").get<std::string>();
            if (jr.contains("remote_ports")) {
                r.remote_port_lo = jr.at("remote_ports").at(0).get<std::uint16_t>();
                r.remote_port_hi = jr.at("remote_ports").at(1).get<std::uint16_t>();
            }
            if (jr.contains("local_ports")) {
                r.local_port_lo = jr.at("local_ports").at(0).get<std::uint16_t>();
                r.local_port_hi = jr.at("local_ports").at(1).get<std::uint16_t>();
            }
            const auto mode = jr.value("mode", std::string("per-flow"));
            if (mode != "per-flow" && mode != "per-packet") {
                throw DataplaneError(fmt::format("mode '{}' is neither per-flow nor per-packet", mode));
            }
            r.per_packet = mode == "per-packet";
            r.strict = jr.value("strict", false);
            r.labels = jr.value("labels", std::vector<std::uint8_t>{});
            p.rules.push_back(r);
        } catch (const std::exception& e) {
            throw DataplaneError(fmt::format("rules[{}]: {}", i, e.what()));
        }
        ++i;
    }
    (void)to_map_value(p);  // the same checks the map write makes
    return p;
}

json to_json(const SessionCounters& c, std::size_t npaths) {
    const auto tc = [](const TrafficCounter& t) { return json{{"packets", t.packets}, {"bytes", t.bytes}}; };
    json paths = json::array();
    for (std::size_t i = 0; i < npaths && i < XPMIP_MAX_PATHS; ++i) {
        paths.push_back({{"tx", tc(c.path_tx[i])}, {"rx", tc(c.path_rx[i])}});
    }
    return {{"uplink", tc(c.uplink)}, {"downlink", tc(c.downlink)}, {"paths", paths}};
}

json to_json(const Counters& c) {
    json j = json::object();
    for (unsigned i = 0; i < XPMIP_STAT_MAX; ++i) {
        j[std::string(stat_name(i))] = c[i];
    }
    return j;
}

json to_json(const std::vector<NextHopView>& hops) {
    json out = json::array();
    for (const auto& h : hops) {
        json j{{"id", h.id}, {"remote", to_string(h.remote)}, {"local", to_string(h.local)},
               {"resolved", h.resolved}, {"mtu", h.mtu}, {"scope", h.scope}};
        j["interface"] = h.ifindex ? json(netlink::interface_name(static_cast<int>(h.ifindex))) : json();
        j["smac"] = h.resolved ? json(h.smac.to_string()) : json();
        j["dmac"] = h.resolved ? json(h.dmac.to_string()) : json();
        j["pinned_interface"] =
            h.pinned_ifindex ? json(netlink::interface_name(static_cast<int>(h.pinned_ifindex))) : json();
        j["pinned_mtu"] = h.pinned_mtu;
        out.push_back(j);
    }
    return out;
}

} // namespace xpmip::dataplane
