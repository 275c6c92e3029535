#include "dataplane/session_table.hpp"

#include <bpf/bpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace xpmip::dataplane {

namespace {

template <class T>
std::vector<std::uint8_t> bytes_of(const T& v) {
    std::vector<std::uint8_t> b(sizeof(T));
    std::memcpy(b.data(), &v, sizeof(T));
    return b;
}

std::string describe(MapId map, const std::vector<std::uint8_t>& key) {
    switch (map) {
    case MapId::TunnelKeys: {
        xpmip_tunnel_key k;
        std::memcpy(&k, key.data(), sizeof k);
        return fmt::format("GRE key {:#x} (scope {})", k.key, k.scope);
    }
    case MapId::TunnelKeyless: {
        xpmip_keyless_key k;
        std::memcpy(&k, key.data(), sizeof k);
        return fmt::format("key-less tunnel entry (peer {}, MN prefix {}/{})", to_string(from_mapped(k.peer)),
                           to_string(from_mapped(k.inner)), k.prefixlen - 160 - (from_mapped(k.inner).index() == 0 ? 96 : 0));
    }
    case MapId::RoutesV4: {
        xpmip_route4_key k;
        std::memcpy(&k, key.data(), sizeof k);
        return fmt::format("IPv4 home address {}.{}.{}.{}/{} in realm {}", k.addr[0], k.addr[1], k.addr[2], k.addr[3],
                           k.prefixlen - 32, k.realm);
    }
    case MapId::RoutesV6: {
        xpmip_route6_key k;
        std::memcpy(&k, key.data(), sizeof k);
        Ipv6Address a;
        std::memcpy(a.bytes.data(), k.addr, 16);
        return fmt::format("home network prefix {}/{} in realm {}", a.to_string(), k.prefixlen - 32, k.realm);
    }
    case MapId::Stations: {
        xpmip_station_key k;
        std::memcpy(&k, key.data(), sizeof k);
        MacAddress m;
        std::memcpy(m.bytes.data(), k.mac, 6);
        return fmt::format("station {} on ifindex {}", m.to_string(), k.ifindex);
    }
    default: return map_name(map);
    }
}

} // namespace

std::vector<SessionTable::Entry> SessionTable::lookup_entries(const xpmip_session& v) const {
    std::vector<Entry> out;
    const auto sid = bytes_of(v.id);
    const unsigned npaths = std::min<unsigned>(v.npaths, XPMIP_MAX_PATHS);
    const bool keyed = (v.flags & XPMIP_SESSION_GRE_KEY) != 0;
    for (unsigned i = 0; i < npaths; ++i) {
        const auto& p = v.paths[i];
        const xpmip_path_ref ref{v.id, i};
        if (keyed) {
            // The key we receive with: the LMA gets uplink keys, the MAG downlink keys (RFC 5845 §3.3).
            const xpmip_tunnel_key k{p.scope, role_ == Role::Lma ? p.key_uplink : p.key_downlink};
            out.push_back({MapId::TunnelKeys, bytes_of(k), bytes_of(ref)});
        } else if (!(v.flags & XPMIP_SESSION_L2)) {
            if (v.flags & XPMIP_SESSION_HNP) {
                xpmip_keyless_key k{};
                k.prefixlen = 32 + 128 + v.hnp_len;
                k.scope = p.scope;
                std::memcpy(k.peer, p.remote, 16);
                std::memcpy(k.inner, v.hnp, 16);
                out.push_back({MapId::TunnelKeyless, bytes_of(k), bytes_of(ref)});
            }
            if (v.flags & XPMIP_SESSION_HOA) {
                xpmip_keyless_key k{};
                k.prefixlen = 32 + 128 + 96 + v.hoa_len;
                k.scope = p.scope;
                std::memcpy(k.peer, p.remote, 16);
                const auto mapped = to_mapped(Ipv4Address{{v.hoa[0], v.hoa[1], v.hoa[2], v.hoa[3]}});
                std::memcpy(k.inner, mapped.data(), 16);
                out.push_back({MapId::TunnelKeyless, bytes_of(k), bytes_of(ref)});
            }
        }
    }
    if (v.flags & XPMIP_SESSION_HNP) {
        xpmip_route6_key k{};
        k.prefixlen = 32 + v.hnp_len;
        k.realm = v.realm;
        std::memcpy(k.addr, v.hnp, 16);
        out.push_back({MapId::RoutesV6, bytes_of(k), sid});
    }
    if (v.flags & XPMIP_SESSION_HOA) {
        xpmip_route4_key k{};
        k.prefixlen = 32 + v.hoa_len;
        k.realm = v.realm;
        std::memcpy(k.addr, v.hoa, 4);
        out.push_back({MapId::RoutesV4, bytes_of(k), sid});
    }
    const bool has_mac = std::any_of(std::begin(v.mn_mac), std::end(v.mn_mac), [](auto b) { return b != 0; });
    // MAG: frames from the MN on its access link; LMA: frames to an L2 session's station.
    if (has_mac && v.mn_ifindex && (role_ == Role::Mag || (v.flags & XPMIP_SESSION_L2))) {
        xpmip_station_key k{};
        k.ifindex = v.mn_ifindex;
        std::memcpy(k.mac, v.mn_mac, 6);
        out.push_back({MapId::Stations, bytes_of(k), sid});
    }
    return out;
}

std::uint32_t SessionTable::owner(const Entry& e) const {
    std::vector<std::uint8_t> value(e.value.size());
    if (!maps_.lookup(e.map, e.key.data(), value.data())) {
        return 0;
    }
    std::uint32_t id = 0;
    std::memcpy(&id, value.data(), sizeof id);  // every lookup value starts with the session id
    return id;
}

void SessionTable::write_stats_if_missing(std::uint32_t id) const {
    std::vector<xpmip_session_stats> zero(static_cast<std::size_t>(possible_cpus()));
    if (bpf_map_update_elem(maps_.fd(MapId::SessionStats), &id, zero.data(), BPF_NOEXIST) != 0 && errno != EEXIST) {
        maps_.update(MapId::SessionStats, &id, zero.data(), BPF_NOEXIST);  // throws with the reason
    }
}

void SessionTable::upsert(const SessionConfig& session) {
    if (session.id == 0) {
        throw DataplaneError("session id 0 is reserved");
    }
    const xpmip_session v = to_map_value(session);
    xpmip_session old{};
    const bool had = maps_.lookup(MapId::Sessions, &v.id, &old);
    const auto wanted = lookup_entries(v);
    const auto previous = had ? lookup_entries(old) : std::vector<Entry>{};
    const std::set<Entry> previous_set(previous.begin(), previous.end());

    // Nothing may take another session's key, route or station.
    for (const auto& e : wanted) {
        if (const auto o = owner(e); o != 0 && o != v.id) {
            throw KeyConflictError(fmt::format("session {}: {} already belongs to session {}", v.id,
                                               describe(e.map, e.key), o),
                                   e.map);
        }
    }
    const auto restore = [&] {
        if (had) {
            bpf_map_update_elem(maps_.fd(MapId::Sessions), &v.id, &old, BPF_ANY);
        } else {
            bpf_map_delete_elem(maps_.fd(MapId::Sessions), &v.id);
            bpf_map_delete_elem(maps_.fd(MapId::SessionStats), &v.id);
        }
    };
    maps_.update(MapId::Sessions, &v.id, &v);
    std::vector<const Entry*> added;
    try {
        write_stats_if_missing(v.id);
        for (const auto& e : wanted) {
            auto it = previous_set.find(e);
            if (it != previous_set.end() && it->value == e.value) {
                continue;
            }
            const bool existed = owner(e) == v.id;
            maps_.update(e.map, e.key.data(), e.value.data());
            if (!existed) {
                added.push_back(&e);
            }
        }
    } catch (const DataplaneError& err) {
        for (const auto* e : added) {
            bpf_map_delete_elem(maps_.fd(e->map), e->key.data());
        }
        restore();
        throw DataplaneError(fmt::format("session {}: {}", v.id, err.what()));
    }
    // Then what the session no longer has.
    const std::set<Entry> wanted_set(wanted.begin(), wanted.end());
    for (const auto& e : previous) {
        if (!wanted_set.count(e) && owner(e) == v.id) {
            maps_.erase(e.map, e.key.data());
        }
    }
}

bool SessionTable::remove(std::uint32_t id) {
    xpmip_session v{};
    if (!maps_.lookup(MapId::Sessions, &id, &v)) {
        return false;
    }
    for (const auto& e : lookup_entries(v)) {
        if (owner(e) == id) {
            maps_.erase(e.map, e.key.data());
        }
    }
    maps_.erase(MapId::Sessions, &id);
    maps_.erase(MapId::SessionStats, &id);
    return true;
}

std::optional<SessionConfig> SessionTable::get(std::uint32_t id) const {
    xpmip_session v{};
    if (!maps_.lookup(MapId::Sessions, &id, &v)) {
        return std::nullopt;
    }
    return from_map_value(v);
}

std::vector<SessionConfig> SessionTable::list() const {
    std::vector<SessionConfig> out;
    for (const auto& k : maps_.keys(MapId::Sessions, sizeof(std::uint32_t))) {
        std::uint32_t id;
        std::memcpy(&id, k.data(), sizeof id);
        if (auto s = get(id)) {
            out.push_back(*s);
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

void SessionTable::set_path_up(std::uint32_t id, std::uint8_t bid, bool up) {
    xpmip_session v{};
    if (!maps_.lookup(MapId::Sessions, &id, &v)) {
        throw DataplaneError(fmt::format("session {} does not exist", id));
    }
    for (unsigned i = 0; i < std::min<unsigned>(v.npaths, XPMIP_MAX_PATHS); ++i) {
        if (v.paths[i].bid == bid) {
            v.paths[i].flags = static_cast<std::uint8_t>(up ? (v.paths[i].flags | XPMIP_PATH_UP)
                                                             : (v.paths[i].flags & ~XPMIP_PATH_UP));
            maps_.update(MapId::Sessions, &id, &v, BPF_EXIST);
            return;
        }
    }
    throw DataplaneError(fmt::format("session {} has no path with Binding-Id {}", id, bid));
}

SessionCounters SessionTable::counters(std::uint32_t id) const {
    std::vector<xpmip_session_stats> per_cpu(static_cast<std::size_t>(possible_cpus()));
    SessionCounters out;
    if (!maps_.lookup(MapId::SessionStats, &id, per_cpu.data())) {
        return out;
    }
    const auto add = [](TrafficCounter& to, const xpmip_counter& c) {
        to.packets += c.packets;
        to.bytes += c.bytes;
    };
    for (const auto& c : per_cpu) {
        add(out.uplink, c.uplink);
        add(out.downlink, c.downlink);
        for (std::size_t p = 0; p < XPMIP_MAX_PATHS; ++p) {
            add(out.path_tx[p], c.path_tx[p]);
            add(out.path_rx[p], c.path_rx[p]);
        }
    }
    return out;
}

void SessionTable::set_policy(std::uint8_t id, const PolicyConfig& policy) {
    if (id == 0) {
        throw DataplaneError("policy id 0 means 'no policy' and cannot be set");
    }
    const std::uint32_t key = id;
    if (key >= maps_.max_entries(MapId::Policies)) {
        throw DataplaneError(fmt::format("policy id {} is beyond the policy table ({} entries): raise limits.policies",
                                         id, maps_.max_entries(MapId::Policies)));
    }
    const auto v = to_map_value(policy);
    maps_.update(MapId::Policies, &key, &v);
}

} // namespace xpmip::dataplane
