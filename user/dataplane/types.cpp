#include "dataplane/types.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace xpmip::dataplane {

std::string to_string(Role r) { return r == Role::Lma ? "lma" : "mag"; }

std::string to_string(InterfaceKind k) {
    switch (k) {
    case InterfaceKind::Core: return "core";
    case InterfaceKind::CoreL2: return "core-l2";
    case InterfaceKind::Tunnel: return "tunnel";
    case InterfaceKind::Access: return "access";
    }
    return "?";
}

std::string to_string(Encapsulation e) {
    switch (e) {
    case Encapsulation::IpInIp: return "ipip";
    case Encapsulation::Udp: return "udp";
    case Encapsulation::Gre: return "gre";
    case Encapsulation::UdpTlvGre: return "udp-tlv-gre";
    }
    return "?";
}

std::vector<unsigned> parse_cpu_list(const std::string& s, int possible) {
    std::vector<unsigned> out;
    if (s == "none" || s.empty()) {
        return out;
    }
    const unsigned last = static_cast<unsigned>(std::min(possible, XPMIP_MAX_SPREAD_CPUS)) - 1;
    if (s == "all") {
        for (unsigned c = 0; c <= last; ++c) {
            out.push_back(c);
        }
        return out;
    }
    const auto number = [&](const std::string& item, const std::string& text) {
        std::size_t used = 0;
        unsigned long v = 0;
        try {
            v = std::stoul(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != text.size()) {
            throw DataplaneError(fmt::format("CPU list '{}': '{}' is not a CPU number or range", s, item));
        }
        if (v > last) {
            throw DataplaneError(fmt::format("CPU list '{}': CPU {} does not exist (CPUs 0-{})", s, v, last));
        }
        return static_cast<unsigned>(v);
    };
    std::vector<bool> seen(last + 1, false);
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto comma = s.find(',', start);
        const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const auto dash = item.find('-');
        const unsigned lo = number(item, item.substr(0, dash));
        const unsigned hi = dash == std::string::npos ? lo : number(item, item.substr(dash + 1));
        if (hi < lo) {
            throw DataplaneError(fmt::format("CPU list '{}': range '{}' runs backwards", s, item));
        }
        for (unsigned c = lo; c <= hi; ++c) {
            if (seen[c]) {
                throw DataplaneError(fmt::format("CPU list '{}': CPU {} is listed twice", s, c));
            }
            seen[c] = true;
            out.push_back(c);
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

Role parse_role(const std::string& s) {
    if (s == "lma") return Role::Lma;
    if (s == "mag") return Role::Mag;
    throw DataplaneError(fmt::format("role '{}' is neither lma nor mag", s));
}

InterfaceKind parse_interface_kind(const std::string& s) {
    for (auto k : {InterfaceKind::Core, InterfaceKind::CoreL2, InterfaceKind::Tunnel, InterfaceKind::Access}) {
        if (s == to_string(k)) {
            return k;
        }
    }
    throw DataplaneError(fmt::format("interface kind '{}' is not core, core-l2, tunnel or access", s));
}

Encapsulation parse_encapsulation(const std::string& s) {
    for (auto e : {Encapsulation::IpInIp, Encapsulation::Udp, Encapsulation::Gre, Encapsulation::UdpTlvGre}) {
        if (s == to_string(e)) {
            return e;
        }
    }
    throw DataplaneError(fmt::format("encapsulation '{}' is not ipip, udp, gre or udp-tlv-gre", s));
}

namespace {

// Defensive: a mobile node's route that covers one of its own tunnel's endpoints would take the
// gateway's traffic to its peer (PBUs, neighbour discovery, the tunnel itself) into the session.
template <class Fail>
void refuse_routes_over_tunnel_endpoints(const SessionConfig& s, const Fail& fail) {
    for (std::size_t i = 0; i < s.paths.size(); ++i) {
        for (const auto& [end, a] : {std::pair{"local", s.paths[i].local}, std::pair{"remote", s.paths[i].remote}}) {
            const bool v6 = std::holds_alternative<Ipv6Address>(a);
            if (v6 && s.hnp && s.hnp->contains(std::get<Ipv6Address>(a))) {
                fail(fmt::format("hnp {} covers paths[{}].{} {}, a tunnel endpoint: refused (it would capture the "
                                 "gateway's own traffic)", s.hnp->to_string(), i, end, to_string(a)));
            }
            if (!v6 && s.hoa && s.hoa->contains(std::get<Ipv4Address>(a))) {
                fail(fmt::format("hoa {} covers paths[{}].{} {}, a tunnel endpoint: refused (it would capture the "
                                 "gateway's own traffic)", s.hoa->to_string(), i, end, to_string(a)));
            }
        }
    }
}

} // namespace

void validate(const SessionConfig& s) {
    const auto fail = [&](const std::string& what) {
        throw DataplaneError(fmt::format("session {}: {}", s.id, what));
    };
    if (s.paths.empty()) {
        fail("has no path");
    }
    if (s.paths.size() > XPMIP_MAX_PATHS) {
        fail(fmt::format("{} paths exceed the maximum of {} (RFC 8278 bindings per session)", s.paths.size(),
                         XPMIP_MAX_PATHS));
    }
    if (!s.hnp && !s.hoa && !s.l2) {
        fail("has neither an IPv6 home network prefix (hnp) nor an IPv4 home address (hoa)");
    }
    if (s.l2 && !s.mn_mac) {
        fail("is an L2 session without the mobile node's MAC (mn_mac)");
    }
    if (s.l2 && s.encap != Encapsulation::Gre && s.encap != Encapsulation::UdpTlvGre) {
        fail(fmt::format("L2 sessions need GRE (protocol 0x6558), not encap {}", to_string(s.encap)));
    }
    if (s.l2 && !s.gre_keys) {
        fail("L2 sessions need GRE keys (gre_keys): frames carry no address to find the session by");
    }
    if (s.gre_keys && s.encap != Encapsulation::Gre && s.encap != Encapsulation::UdpTlvGre) {
        fail(fmt::format("gre_keys needs a GRE encapsulation, not {}", to_string(s.encap)));
    }
    std::set<std::uint8_t> bids;
    for (std::size_t i = 0; i < s.paths.size(); ++i) {
        const auto& p = s.paths[i];
        const auto where = fmt::format("paths[{}]", i);
        if (is_ipv4(p.local) != is_ipv4(p.remote)) {
            fail(fmt::format("{}.local {} and remote {} differ in family", where, to_string(p.local),
                             to_string(p.remote)));
        }
        // RFC 5844 / RFC 5845 §7: UDP encapsulation is the IPv4 transport's NAT traversal.
        if ((s.encap == Encapsulation::Udp || s.encap == Encapsulation::UdpTlvGre) && !is_ipv4(p.remote)) {
            fail(fmt::format("{}: {} needs an IPv4 path (RFC 5844), remote is {}", where, to_string(s.encap),
                             to_string(p.remote)));
        }
        if (p.bid == 0 || p.bid == 255) {
            fail(fmt::format("{}.bid {} is reserved (RFC 8278 §4.1: 1..254)", where, p.bid));
        }
        if (!bids.insert(p.bid).second) {
            fail(fmt::format("{}.bid {} is used by another path", where, p.bid));
        }
        if (s.gre_keys && (p.key_downlink == 0 || p.key_uplink == 0)) {
            fail(fmt::format("{}: GRE keys must be non-zero (key_downlink {}, key_uplink {})", where, p.key_downlink,
                             p.key_uplink));
        }
    }
    // A zero-length home network prefix is "nothing assigned" (RFC 5213 §6.9.1.2, §8.3), and as a
    // route it would capture every packet of the realm, the gateway's own signaling included.
    if (s.hnp && (s.hnp->length == 0 || s.hnp->length > 128)) {
        fail(fmt::format("hnp prefix length {} is not 1..128", s.hnp->length));
    }
    if (s.hoa && (s.hoa->length == 0 || s.hoa->length > 32)) {
        fail(fmt::format("hoa prefix length {} is not 1..32", s.hoa->length));
    }
    refuse_routes_over_tunnel_endpoints(s, fail);
}

xpmip_policy to_map_value(const PolicyConfig& p) {
    if (p.rules.size() > XPMIP_MAX_RULES) {
        throw DataplaneError(fmt::format("policy: {} rules exceed the maximum of {}", p.rules.size(), XPMIP_MAX_RULES));
    }
    xpmip_policy v{};
    v.nrules = static_cast<std::uint32_t>(p.rules.size());
    for (std::size_t i = 0; i < p.rules.size(); ++i) {
        const auto& r = p.rules[i];
        auto& out = v.rules[i];
        const auto fail = [&](const std::string& what) {
            throw DataplaneError(fmt::format("policy rules[{}]: {}", i, what));
        };
        out.proto = r.proto;
        out.dscp = r.dscp ? *r.dscp : 0xff;
        if (r.dscp && *r.dscp > 63) {
            fail(fmt::format("dscp {} exceeds 63", *r.dscp));
        }
        if (r.remote_prefix) {
            const auto addr_part = r.remote_prefix->substr(0, r.remote_prefix->find('/'));
            if (Ipv4Address::try_parse(addr_part)) {
                const auto pfx = Ipv4Prefix::parse(*r.remote_prefix).canonical();
                const auto mapped = to_mapped(pfx.address);
                std::memcpy(out.remote, mapped.data(), 16);
                out.remote_len = pfx.length;
                out.family = 4;
            } else {
                const auto pfx = Ipv6Prefix::parse(*r.remote_prefix).canonical();
                std::memcpy(out.remote, pfx.address.bytes.data(), 16);
                out.remote_len = pfx.length;
                out.family = 6;
            }
        }
        if (r.remote_port_lo > r.remote_port_hi || r.local_port_lo > r.local_port_hi) {
            fail("a port range has its low end above its high end");
        }
        out.remote_port_lo = r.remote_port_lo;
        out.remote_port_hi = r.remote_port_hi;
        out.local_port_lo = r.local_port_lo;
        out.local_port_hi = r.local_port_hi;
        out.mode = r.per_packet ? XPMIP_STEER_PER_PACKET : XPMIP_STEER_PER_FLOW;
        out.flags = r.strict ? XPMIP_RULE_STRICT : 0;
        if (r.labels.size() > XPMIP_MAX_LABEL_PREFS) {
            fail(fmt::format("{} labels exceed the maximum of {}", r.labels.size(), XPMIP_MAX_LABEL_PREFS));
        }
        if (r.labels.empty() && !r.per_packet) {
            fail("a per-flow rule needs at least one label");
        }
        out.nlabels = static_cast<std::uint8_t>(r.labels.size());
        std::copy(r.labels.begin(), r.labels.end(), out.labels);
    }
    return v;
}

PolicyConfig from_map_value(const xpmip_policy& v) {
    PolicyConfig p;
    for (unsigned i = 0; i < std::min<unsigned>(v.nrules, XPMIP_MAX_RULES); ++i) {
        const auto& in = v.rules[i];
        RuleConfig r;
        r.proto = in.proto;
        if (in.dscp != 0xff) {
            r.dscp = in.dscp;
        }
        if (in.remote_len) {
            const auto a = from_mapped(in.remote);
            r.remote_prefix = fmt::format("{}/{}", to_string(a), in.remote_len);
        }
        r.remote_port_lo = in.remote_port_lo;
        r.remote_port_hi = in.remote_port_hi;
        r.local_port_lo = in.local_port_lo;
        r.local_port_hi = in.local_port_hi;
        r.per_packet = in.mode == XPMIP_STEER_PER_PACKET;
        r.strict = (in.flags & XPMIP_RULE_STRICT) != 0;
        r.labels.assign(in.labels, in.labels + std::min<unsigned>(in.nlabels, XPMIP_MAX_LABEL_PREFS));
        p.rules.push_back(r);
    }
    return p;
}

Limits Limits::resolved() const {
    Limits l = *this;
    const auto scaled = [&](std::uint32_t given, std::uint64_t factor) {
        return given ? given : static_cast<std::uint32_t>(std::min<std::uint64_t>(sessions * factor, 0xffffffffULL));
    };
    l.tunnel_keys = scaled(tunnel_keys, 1);
    l.keyless = scaled(keyless, 2);
    l.routes = scaled(routes, 1);
    l.prefixes = scaled(prefixes, 1);
    l.stations = scaled(stations, 1);
    l.multipath_sessions = scaled(multipath_sessions, 1);
    return l;
}

} // namespace xpmip::dataplane
