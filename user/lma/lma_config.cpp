#include "lma/lma_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace xpmip::lma {

using config::ConfigError;
using config::MapReader;

namespace {
const std::vector<std::string> kGreChoices = {"allowed", "not-required", "unsupported", "gre-required",
                                              "keys-required"};
}

std::string to_string(GrePolicy p) {
    return kGreChoices.at(static_cast<std::size_t>(p));
}

GrePolicy parse_gre_policy(const std::string& s) {
    for (std::size_t i = 0; i < kGreChoices.size(); ++i) {
        if (kGreChoices[i] == s) {
            return static_cast<GrePolicy>(i);
        }
    }
    throw std::invalid_argument(fmt::format("GRE policy '{}' is not one of allowed, not-required, unsupported, "
                                            "gre-required, keys-required", s));
}

EffectivePolicy effective_policy(std::initializer_list<const TunnelPolicy*> levels) {
    EffectivePolicy e;
    for (const TunnelPolicy* p : levels) {
        if (!p) {
            continue;
        }
        if (p->gre && *p->gre > e.gre) {
            e.gre = *p->gre;
        }
        if (p->tlv_header && !*p->tlv_header) {
            e.tlv_header = false;
        }
        if (p->udp && !*p->udp) {
            e.udp = false;
        }
    }
    return e;
}

const Realm* LmaConfig::realm(std::uint32_t id) const {
    for (const auto& r : realms) {
        if (r.id == id) {
            return &r;
        }
    }
    return nullptr;
}

const MagPeer* LmaConfig::peer_by_address(const IpAddress& a) const {
    for (const auto& p : peers) {
        for (const auto& pa : p.addresses) {
            if (pa == a) {
                return &p;
            }
        }
    }
    return nullptr;
}

namespace {
std::string ascii_lower(std::string s) {
    for (char& ch : s) {
        if (ch >= 'A' && ch <= 'Z') {
            ch = static_cast<char>(ch - 'A' + 'a');
        }
    }
    return s;
}
} // namespace

const MobileNodeProfile* LmaConfig::mobile_node(const std::string& id) const {
    if (const auto* m = listed_mobile_node(id)) {
        return m;
    }
    return domain_mobile_node(id);
}

const MobileNodeProfile* LmaConfig::listed_mobile_node(const std::string& id) const {
    // Every PBU looks its MN up: hash lookups only, however many MNs and domains there are.
    auto it = mobile_node_index.find(id);
    return it == mobile_node_index.end() ? nullptr : &mobile_nodes[it->second];
}

const MobileNodeProfile* LmaConfig::domain_mobile_node(const std::string& id) const {
    const auto at = id.rfind('@');
    if (mobile_node_domains.empty() || at == std::string::npos) {
        return nullptr;
    }
    // The NAI realm, then each parent domain: a.b.example, b.example, example.
    const std::string realm = ascii_lower(id.substr(at + 1));
    for (std::size_t from = 0; from < realm.size();) {
        if (auto it = mobile_node_domain_index.find(realm.substr(from)); it != mobile_node_domain_index.end()) {
            return &mobile_node_domains[it->second].profile;
        }
        const auto dot = realm.find('.', from);
        if (dot == std::string::npos) {
            break;
        }
        from = dot + 1;
    }
    return nullptr;
}

bool LmaConfig::is_own_address(const IpAddress& a) const {
    for (const auto& x : addresses) {
        if (x == a) {
            return true;
        }
    }
    return false;
}

namespace {

TunnelPolicy read_policy(MapReader& r) {
    TunnelPolicy p;
    if (auto g = r.opt_choice("gre", kGreChoices)) {
        p.gre = parse_gre_policy(*g);
    }
    p.tlv_header = r.opt_bool("tlv_header");
    p.udp = r.opt_bool("udp_encapsulation");
    return p;
}

IpAddress parse_ip_in(MapReader& r, const std::string& key, const std::string& text) {
    try {
        return parse_ip_address(text);
    } catch (const std::exception&) {
        r.fail(key, fmt::format("'{}' is not an IPv4 or IPv6 address", text));
    }
}

// What an MN, or every MN of a domain, is authorized for: its realm, IPv4 and IPv6 service
// (from the realm's pools unless `m` has static addresses already) and its tunnel policy.
const Realm& read_service(MapReader& r, const LmaConfig& c, MobileNodeProfile& m) {
    m.realm = static_cast<std::uint32_t>(r.uint("realm", 1, 0xffffffffu));
    const Realm* realm = c.realm(m.realm);
    if (!realm) {
        r.fail("realm", fmt::format("realm {} is not defined in realms", m.realm));
    }
    m.ipv4 = r.opt_bool("ipv4").value_or(true);
    m.ipv6 = r.opt_bool("ipv6").value_or(true);
    if (m.ipv4 && !m.ipv4_home_address && !realm->ipv4_pool) {
        r.fail("ipv4", fmt::format("realm {} has no ipv4_pool: give an ipv4_home_address or ipv4: false", m.realm));
    }
    if (m.ipv6 && !m.home_network_prefix && !realm->ipv6_pool) {
        r.fail("ipv6", fmt::format("realm {} has no ipv6_pool: give a home_network_prefix or ipv6: false", m.realm));
    }
    if (!m.ipv4 && !m.ipv6) {
        r.fail("", "is authorized for neither IPv4 nor IPv6");
    }
    m.policy = read_policy(r);
    m.multipath = r.opt_bool("multipath").value_or(true);
    return *realm;
}

// An NAI realm as a domain name (RFC 7542 §2.2): labels separated by dots, no '@', no white space.
bool is_nai_realm(const std::string& d) {
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.' || d.find("..") != std::string::npos) {
        return false;
    }
    return std::none_of(d.begin(), d.end(), [](char ch) {
        return ch == '@' || static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f;
    });
}

// `lma:`: its addresses (LMAA, IPv4-LMAA) and LMA-wide defaults.
void read_lma_section(MapReader& root, LmaConfig& c) {
    auto lma = root.opt_map("lma");
    if (!lma) {
        root.fail("lma", "is required (the LMA's addresses and defaults)");
    }
    for (const auto& a : lma->str_list("addresses")) {
        c.addresses.push_back(parse_ip_in(*lma, "addresses", a));
    }
    c.policy = read_policy(*lma);
    c.multipath = lma->opt_bool("multipath").value_or(true);
    c.bulk_registration = lma->opt_bool("bulk_registration").value_or(true);
    lma->finish();
    if (c.addresses.empty()) {
        root.fail("lma", "addresses: at least one LMA address (IPv6 LMAA and/or IPv4-LMAA) is required");
    }
}

// `limits:` and `timers:` (RFC 5213 §9.3).
void read_timers_and_limits(MapReader& root, LmaConfig& c) {
    if (auto lim = root.opt_map("limits")) {
        c.limits.sessions = static_cast<std::uint32_t>(lim->opt_uint("sessions", 1, 1u << 24).value_or(c.limits.sessions));
        c.limits.policies = static_cast<std::uint32_t>(lim->opt_uint("policies", 1, 256).value_or(c.limits.policies));
        c.limits.route_cache =
            static_cast<std::uint32_t>(lim->opt_uint("route_cache", 1, 1u << 24).value_or(c.limits.route_cache));
        lim->finish();
    }
    auto t = root.opt_map("timers");
    if (!t) {
        return;
    }
    LmaTimers& m = c.timers;
    m.min_delay_before_bce_delete =
        t->opt_seconds("min_delay_before_bce_delete", 0, 3600).value_or(m.min_delay_before_bce_delete);
    m.max_delay_before_new_bce_assign =
        t->opt_seconds("max_delay_before_new_bce_assign", 0, 60).value_or(m.max_delay_before_new_bce_assign);
    m.timestamp_validity_window =
        t->opt_seconds("timestamp_validity_window", 0.001, 3600).value_or(m.timestamp_validity_window);
    // The Lifetime field counts 4-second units in 16 bits (RFC 6275 §6.1.7).
    m.max_lifetime = std::chrono::seconds(t->opt_uint("max_lifetime", 4, 65535u * 4).value_or(3600));
    m.heartbeat_interval = t->opt_seconds("heartbeat_interval", 0, 3600).value_or(m.heartbeat_interval);
    m.missing_heartbeats_allowed =
        static_cast<unsigned>(t->opt_uint("missing_heartbeats_allowed", 1, 100).value_or(m.missing_heartbeats_allowed));
    m.mag_restart_grace = t->opt_seconds("mag_restart_grace", 0, 3600).value_or(m.mag_restart_grace);
    // RFC 5846 §11: InitMINDelayBRIs "not to be configured to less than 0.5 seconds".
    m.bri_initial_delay = t->opt_seconds("bri_initial_delay", 0.5, 60).value_or(m.bri_initial_delay);
    m.bri_max_timeout = t->opt_seconds("bri_max_timeout", 0.5, 600).value_or(m.bri_max_timeout);
    m.bri_max_retries = static_cast<unsigned>(t->opt_uint("bri_max_retries", 0, 10).value_or(m.bri_max_retries));
    t->finish();
}

// One `realms:` entry: its core interface, pools (RFC 5213 §5.3 HNPs, RFC 5844 §3.3 home
// addresses), default router and policy.
Realm read_realm(MapReader& r, const LmaConfig& c, std::set<std::uint32_t>& ids) {
    Realm realm;
    realm.id = static_cast<std::uint32_t>(r.uint("id", 1, 0xffffffffu));
    if (!ids.insert(realm.id).second) {
        r.fail("id", fmt::format("realm {} is defined twice", realm.id));
    }
    realm.name = r.opt_str("name").value_or(fmt::format("realm-{}", realm.id));
    realm.interface = r.str("interface");
    auto ic = std::find_if(c.interfaces.begin(), c.interfaces.end(), [&](const auto& i) { return i.name == realm.interface; });
    if (ic == c.interfaces.end()) {
        r.fail("interface", fmt::format("'{}' is not in interfaces", realm.interface));
    }
    if (ic->kind != dataplane::InterfaceKind::Core || ic->realm != realm.id) {
        r.fail("interface", fmt::format("'{}' must be listed in interfaces with kind core and realm {}",
                                        realm.interface, realm.id));
    }
    realm.ipv4_pool = r.opt_ipv4_prefix("ipv4_pool");
    realm.ipv6_pool = r.opt_ipv6_prefix("ipv6_pool");
    realm.hnp_length = static_cast<std::uint8_t>(r.opt_uint("hnp_length", 1, 128).value_or(64));
    if (realm.ipv6_pool && realm.hnp_length < realm.ipv6_pool->length) {
        r.fail("hnp_length", fmt::format("/{} is shorter than ipv6_pool {}", realm.hnp_length,
                                         realm.ipv6_pool->to_string()));
    }
    if (realm.ipv4_pool && realm.ipv4_pool->length > 30) {
        r.fail("ipv4_pool", fmt::format("{} has no room for a router and hosts (at most /30)",
                                        realm.ipv4_pool->to_string()));
    }
    realm.ipv4_default_router = r.opt_ipv4("ipv4_default_router");
    if (realm.ipv4_pool && !realm.ipv4_default_router) {
        realm.ipv4_default_router = Ipv4Address::from_host_order(realm.ipv4_pool->address.to_host_order() + 1);
    }
    realm.policy = read_policy(r);
    r.finish();
    return realm;
}

// One `peers:` entry: a MAG allowed to register (RFC 5213 §5.3.1 step 2) and its policy.
MagPeer read_peer(MapReader& r, const LmaConfig& c) {
    MagPeer p;
    p.name = r.str("name");
    for (const auto& a : r.str_list("addresses")) {
        IpAddress ip = parse_ip_in(r, "addresses", a);
        if (const auto* other = c.peer_by_address(ip)) {
            r.fail("addresses", fmt::format("{} is already the address of peer '{}'", a, other->name));
        }
        p.addresses.push_back(ip);
    }
    if (p.addresses.empty()) {
        r.fail("addresses", "is required (the MAG's proxy care-of addresses)");
    }
    p.policy = read_policy(r);
    r.finish();
    return p;
}

// Static addresses: inside one realm no two MNs may share one. `taken`: (realm, address) -> MN-ID.
using TakenAddresses = std::map<std::pair<std::uint32_t, std::string>, std::string>;

void claim_static_address(MapReader& r, const MobileNodeProfile& m, const char* key, std::optional<std::string> value,
                          TakenAddresses& taken) {
    if (!value) {
        return;
    }
    auto [it, fresh] = taken.emplace(std::pair{m.realm, *value}, m.id);
    if (!fresh) {
        r.fail(key, fmt::format("{} is already mobile node '{}''s in realm {}", *value, it->second, m.realm));
    }
}

// One `mobile_nodes:` entry: MN-ID, realm, services, static addresses, policy.
MobileNodeProfile read_mobile_node(MapReader& r, LmaConfig& c, TakenAddresses& taken) {
    MobileNodeProfile m;
    m.id = r.str("id");
    if (m.id.empty() || m.id.size() > 255) {
        r.fail("id", "must be 1..255 octets (an NAI, RFC 4283)");
    }
    if (c.mobile_node_index.count(m.id)) {
        r.fail("id", fmt::format("mobile node '{}' is listed twice", m.id));
    }
    m.ipv4_home_address = r.opt_ipv4("ipv4_home_address");
    m.home_network_prefix = r.opt_ipv6_prefix("home_network_prefix");
    const Realm* realm = &read_service(r, c, m);
    if (m.ipv4_home_address && realm->ipv4_default_router && *m.ipv4_home_address == *realm->ipv4_default_router) {
        r.fail("ipv4_home_address", fmt::format("{} is realm {}'s default router", m.ipv4_home_address->to_string(),
                                                m.realm));
    }
    claim_static_address(r, m, "ipv4_home_address",
                         m.ipv4_home_address ? std::optional(m.ipv4_home_address->to_string()) : std::nullopt, taken);
    claim_static_address(r, m, "home_network_prefix",
                         m.home_network_prefix ? std::optional(m.home_network_prefix->to_string()) : std::nullopt,
                         taken);
    r.finish();
    return m;
}

// One `mobile_node_domains:` entry: every MN of an NAI domain (operators with more MNs than a list
// should hold) with one profile.
MobileNodeDomain read_mobile_node_domain(MapReader& r, LmaConfig& c) {
    MobileNodeDomain d;
    const std::string text = r.str("domain");
    d.domain = ascii_lower(text);
    if (!is_nai_realm(d.domain)) {
        r.fail("domain", fmt::format("'{}' is not an NAI realm (a domain name such as operator.example, without '@')",
                                     text));
    }
    if (c.mobile_node_domain_index.count(d.domain)) {
        r.fail("domain", fmt::format("domain '{}' is listed twice", d.domain));
    }
    for (const char* key : {"ipv4_home_address", "home_network_prefix"}) {
        if (r.has(key)) {
            r.fail(key, "a domain's mobile nodes share its profile: static addresses need a mobile_nodes entry");
        }
    }
    d.profile.id = "*@" + d.domain;
    read_service(r, c, d.profile);
    r.finish();
    return d;
}

} // namespace

LmaConfig parse_lma_config(MapReader root) {
    LmaConfig c;
    c.instance = root.opt_str("instance").value_or("lma");
    c.log_level = root.opt_choice("log_level", {"trace", "debug", "info", "warn", "error"}).value_or("info");
    c.metrics = root.opt_endpoint("metrics");
    c.subscriber_store = root.opt_str("subscriber_store");
    if (c.subscriber_store && (c.subscriber_store->empty() || c.subscriber_store->front() != '/')) {
        // Absolute: the LMA and `xpmip subscribers`, started from anywhere, must open the same file.
        root.fail("subscriber_store", fmt::format("'{}' is not an absolute path (the store's file, e.g. "
                                                  "/var/lib/xpmip/subscribers.lmdb)", *c.subscriber_store));
    }
    c.state_directory = config::read_state_directory(root, c.instance, "LMA");
    c.journal = root.opt_bool("journal").value_or(true);
    read_lma_section(root, c);
    c.interfaces = config::read_interfaces(root);
    c.signaling_interfaces = config::read_signaling_interfaces(root, c.interfaces);
    c.dataplane = config::read_dataplane(root);
    if (c.interfaces.empty()) {
        root.fail("interfaces", "at least one interface is required");
    }
    c.steering = config::read_steering(root);
    read_timers_and_limits(root, c);
    std::set<std::uint32_t> realm_ids;
    for (auto& r : root.map_list("realms")) {
        c.realms.push_back(read_realm(r, c, realm_ids));
    }
    if (c.realms.empty()) {
        root.fail("realms", "at least one realm is required");
    }
    for (auto& r : root.map_list("peers")) {
        c.peers.push_back(read_peer(r, c));
    }
    TakenAddresses taken;
    for (auto& r : root.map_list("mobile_nodes")) {
        MobileNodeProfile m = read_mobile_node(r, c, taken);
        c.mobile_node_index[m.id] = c.mobile_nodes.size();
        c.mobile_nodes.push_back(std::move(m));
    }
    for (auto& r : root.map_list("mobile_node_domains")) {
        MobileNodeDomain d = read_mobile_node_domain(r, c);
        c.mobile_node_domain_index[d.domain] = c.mobile_node_domains.size();
        c.mobile_node_domains.push_back(std::move(d));
    }
    root.finish();
    return c;
}

LmaConfig load_lma_config(const std::string& file) {
    LmaConfig c = parse_lma_config(config::load_file(file));
    c.file = file;
    return c;
}

} // namespace xpmip::lma
