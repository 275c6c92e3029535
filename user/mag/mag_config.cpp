#include "mag/mag_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace xpmip::mag {

using config::MapReader;

std::string to_string(GreMode m) {
    switch (m) {
    case GreMode::Off: return "off";
    case GreMode::GreOnly: return "gre-only";
    case GreMode::Keys: return "keys";
    case GreMode::OnRequest: return "on-request";
    }
    return "?";
}

// Every PBA, access-link frame and event looks an MN up: indexes, not linear scans.
const MobileNodeConfig* MagConfig::mobile_node(const std::string& id) const {
    auto it = mobile_node_index.find(id);
    return it == mobile_node_index.end() ? nullptr : &mobile_nodes[it->second];
}

const MobileNodeConfig* MagConfig::mobile_node_by_mac(const MacAddress& mac) const {
    auto it = mobile_node_by_mac_index.find(mac);
    return it == mobile_node_by_mac_index.end() ? nullptr : &mobile_nodes[it->second];
}

IpAddress MagConfig::proxy_coa() const {
    for (const auto& a : addresses) {
        if (is_ipv4(a) == is_ipv4(lma)) {
            return a;
        }
    }
    return addresses.front();
}

bool MagConfig::is_lma_address(const IpAddress& a) const {
    if (a == lma) {
        return true;
    }
    for (const auto& w : wans) {
        if (w.lma == a) {
            return true;
        }
    }
    return false;
}

namespace {

bool has_interface(const MagConfig& c, const std::string& name, dataplane::InterfaceKind kind) {
    return std::any_of(c.interfaces.begin(), c.interfaces.end(),
                       [&](const auto& i) { return i.name == name && i.kind == kind; });
}

GreMode read_gre_mode(MapReader& m) {
    const auto gre = m.opt_choice("gre", {"off", "gre-only", "keys", "on-request"}).value_or("keys");
    return gre == "off"          ? GreMode::Off
           : gre == "gre-only"   ? GreMode::GreOnly
           : gre == "on-request" ? GreMode::OnRequest
                                 : GreMode::Keys;
}

// `mag:`: the proxy CoAs, the LMA and what the MAG asks of it (RFC 5845 §4, RFC 5844 §3.1).
void read_mag_section(MapReader& root, MagConfig& c) {
    auto m = root.opt_map("mag");
    if (!m) {
        root.fail("mag", "is required (the MAG's addresses and its LMA)");
    }
    for (const auto& a : m->str_list("addresses")) {
        try {
            c.addresses.push_back(parse_ip_address(a));
        } catch (const std::exception&) {
            m->fail("addresses", fmt::format("'{}' is not an IPv4 or IPv6 address", a));
        }
    }
    // With a `wan` list the proxy CoAs are its addresses.
    if (c.addresses.empty() && !root.has("wan")) {
        m->fail("addresses", "is required (the MAG's proxy care-of addresses), or a `wan` list");
    }
    auto lma = m->opt_ip("lma");
    if (!lma) {
        m->fail("lma", "is required (the LMA's IPv6 LMAA, or its IPv4-LMAA for UDP 5436)");
    }
    c.lma = *lma;
    const bool family_ok = std::any_of(c.addresses.begin(), c.addresses.end(),
                                       [&](const auto& a) { return is_ipv4(a) == is_ipv4(c.lma); });
    if (!family_ok && !c.addresses.empty()) {
        m->fail("lma", fmt::format("{} has no proxy care-of address of its family in addresses", to_string(c.lma)));
    }
    c.gre = read_gre_mode(*m);
    c.tlv_header = m->opt_bool("tlv_header").value_or(false);
    c.force_udp = m->opt_bool("force_udp").value_or(false);
    c.timestamps = m->opt_bool("timestamps").value_or(true);
    c.access_technology = static_cast<std::uint8_t>(m->opt_uint("access_technology", 0, 255).value_or(4));
    if ((c.tlv_header || c.force_udp) && !is_ipv4(c.lma)) {
        m->fail(c.tlv_header ? "tlv_header" : "force_udp", "needs an IPv4 LMA address (UDP, RFC 5844)");
    }
    c.identifier = m->opt_str("identifier").value_or(c.instance);
    if (c.identifier.empty() || c.identifier.size() > 253) {
        m->fail("identifier", "must be 1..253 octets (an NAI, RFC 8278 §4.2)");
    }
    m->finish();
}

// One `wan:` entry (RFC 8278 §3.1: a WAN interface, its proxy CoA, LMA address, If-Label, BID).
WanPath read_wan_path(MapReader& w, const MagConfig& c, std::size_t paths, std::set<unsigned>& bids,
                      std::set<std::string>& interfaces) {
    WanPath p;
    p.interface = w.str("interface");
    if (!has_interface(c, p.interface, dataplane::InterfaceKind::Tunnel)) {
        w.fail("interface", fmt::format("'{}' is not a tunnel interface in interfaces", p.interface));
    }
    if (!interfaces.insert(p.interface).second) {
        w.fail("interface", fmt::format("'{}' is listed twice", p.interface));
    }
    auto addr = w.opt_ip("address");
    if (!addr) {
        w.fail("address", "is required (this interface's proxy care-of address)");
    }
    p.address = *addr;
    p.lma = w.opt_ip("lma").value_or(c.lma);
    if (is_ipv4(p.lma) != is_ipv4(p.address)) {
        w.fail("address", fmt::format("{} and the LMA address {} differ in family", to_string(p.address),
                                      to_string(p.lma)));
    }
    if (is_ipv4(p.lma) != is_ipv4(c.lma)) {
        w.fail("lma", fmt::format("{}: every path uses mag.lma's family ({})", to_string(p.lma), to_string(c.lma)));
    }
    if (auto l = w.opt_str("label")) {
        p.label = config::resolve_label(c.steering, w, "label", *l);
    } else if (paths > 1) {
        w.fail("label", "is required with several WAN interfaces (RFC 8278 If-Label)");
    }
    p.bid = static_cast<std::uint8_t>(w.opt_uint("bid", 1, 254).value_or(c.wans.size() + 1));
    if (!bids.insert(p.bid).second) {
        w.fail("bid", fmt::format("Binding-Id {} is used twice", p.bid));
    }
    p.access_technology = static_cast<std::uint8_t>(w.opt_uint("access_technology", 0, 255).value_or(c.access_technology));
    w.finish();
    return p;
}

// `wan:`, or the one path of a MAG without it: the first tunnel interface, mag.addresses, mag.lma.
void read_wan_paths(MapReader& root, MagConfig& c) {
    std::set<unsigned> bids;
    std::set<std::string> interfaces;
    auto list = root.map_list("wan");
    for (auto& w : list) {
        c.wans.push_back(read_wan_path(w, c, list.size(), bids, interfaces));
        if (std::find(c.addresses.begin(), c.addresses.end(), c.wans.back().address) == c.addresses.end()) {
            c.addresses.push_back(c.wans.back().address);
        }
    }
    if (c.wans.size() > XPMIP_MAX_PATHS) {
        root.fail("wan", fmt::format("{} WAN interfaces: a session has at most {} paths", c.wans.size(), XPMIP_MAX_PATHS));
    }
    if (!c.wans.empty()) {
        return;
    }
    WanPath p;
    for (const auto& i : c.interfaces) {
        if (i.kind == dataplane::InterfaceKind::Tunnel) {
            p.interface = i.name;
            break;
        }
    }
    p.address = c.proxy_coa();
    p.lma = c.lma;
    p.access_technology = c.access_technology;
    c.wans.push_back(p);
}

// `timers:` (RFC 6275 §11.8 retransmission and rate, RFC 5213 §6.9 lifetime) and `limits:`.
void read_timers_and_limits(MapReader& root, MagConfig& c) {
    if (auto lim = root.opt_map("limits")) {
        c.limits.sessions = static_cast<std::uint32_t>(lim->opt_uint("sessions", 1, 1u << 24).value_or(c.limits.sessions));
        lim->finish();
    }
    auto t = root.opt_map("timers");
    if (!t) {
        return;
    }
    MagTimers& m = c.timers;
    m.initial_retransmit = t->opt_seconds("initial_retransmit", 0.01, 60).value_or(m.initial_retransmit);
    m.max_retransmit = t->opt_seconds("max_retransmit", 0.01, 3600).value_or(m.max_retransmit);
    m.max_pbu_per_second = static_cast<unsigned>(t->opt_uint("max_pbu_per_second", 1, 1000).value_or(m.max_pbu_per_second));
    m.lifetime = std::chrono::seconds(t->opt_uint("lifetime", 4, 65535u * 4).value_or(3600));
    m.inactivity_timeout = std::chrono::seconds(t->opt_uint("inactivity_timeout", 0, 86400).value_or(0));
    m.deregistration_attempts = static_cast<unsigned>(t->opt_uint("deregistration_attempts", 1, 10).value_or(3));
    m.shutdown_timeout = t->opt_seconds("shutdown_timeout", 0, 600).value_or(m.shutdown_timeout);
    m.heartbeat_interval = t->opt_seconds("heartbeat_interval", 0, 3600).value_or(m.heartbeat_interval);
    m.missing_heartbeats_allowed =
        static_cast<unsigned>(t->opt_uint("missing_heartbeats_allowed", 1, 100).value_or(m.missing_heartbeats_allowed));
    t->finish();
}

// One `mobile_nodes:` entry: MN-ID (RFC 4283), MAC, access interface, attach mode, services.
MobileNodeConfig read_mobile_node(MapReader& r, const MagConfig& c) {
    MobileNodeConfig mn;
    mn.id = r.str("id");
    if (mn.id.empty() || mn.id.size() > 255) {
        r.fail("id", "must be 1..255 octets (an NAI, RFC 4283)");
    }
    if (c.mobile_node(mn.id)) {
        r.fail("id", fmt::format("mobile node '{}' is listed twice", mn.id));
    }
    auto mac = r.opt_mac("mac");
    if (!mac) {
        r.fail("mac", "is required (the MN's MAC on its access link)");
    }
    mn.mac = *mac;
    if (const auto* other = c.mobile_node_by_mac(mn.mac)) {
        r.fail("mac", fmt::format("{} is already mobile node '{}''s", mn.mac.to_string(), other->id));
    }
    mn.interface = r.str("interface");
    if (!has_interface(c, mn.interface, dataplane::InterfaceKind::Access)) {
        r.fail("interface", fmt::format("'{}' is not an access interface in interfaces", mn.interface));
    }
    mn.dynamic = r.opt_choice("attach", {"static", "dynamic"}).value_or("static") == "dynamic";
    mn.ipv4 = r.opt_bool("ipv4").value_or(true);
    mn.ipv6 = r.opt_bool("ipv6").value_or(true);
    if (auto realm = r.opt_uint("realm", 0, 0xffffffffu)) {
        mn.realm = static_cast<std::uint32_t>(*realm);
    }
    if (!mn.ipv4 && !mn.ipv6) {
        r.fail("", "asks for neither IPv4 nor IPv6");
    }
    r.finish();
    return mn;
}

} // namespace

MagConfig parse_mag_config(MapReader root) {
    MagConfig c;
    c.instance = root.opt_str("instance").value_or("mag");
    c.log_level = root.opt_choice("log_level", {"trace", "debug", "info", "warn", "error"}).value_or("info");
    c.metrics = root.opt_endpoint("metrics");
    c.state_directory = config::read_state_directory(root, c.instance, "MAG");
    c.journal = root.opt_bool("journal").value_or(true);
    read_mag_section(root, c);
    c.interfaces = config::read_interfaces(root);
    c.signaling_interfaces = config::read_signaling_interfaces(root, c.interfaces);
    c.dataplane = config::read_dataplane(root);
    if (std::none_of(c.interfaces.begin(), c.interfaces.end(),
                     [](const auto& i) { return i.kind == dataplane::InterfaceKind::Tunnel; })) {
        root.fail("interfaces", "needs a tunnel interface (toward the LMA)");
    }
    c.steering = config::read_steering(root);
    read_wan_paths(root, c);
    read_timers_and_limits(root, c);
    for (auto& r : root.map_list("mobile_nodes")) {
        MobileNodeConfig mn = read_mobile_node(r, c);
        c.mobile_node_index[mn.id] = c.mobile_nodes.size();
        c.mobile_node_by_mac_index[mn.mac] = c.mobile_nodes.size();
        c.mobile_nodes.push_back(std::move(mn));
    }
    root.finish();
    return c;
}

MagConfig load_mag_config(const std::string& file) {
    MagConfig c = parse_mag_config(config::load_file(file));
    c.file = file;
    return c;
}

} // namespace xpmip::mag
