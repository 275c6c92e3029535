#include "dataplane/session_table.hpp"

#include <bpf/bpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
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

template <class T>
T value_as(const std::vector<std::uint8_t>& b) {
    T v{};
    std::memcpy(&v, b.data(), std::min(b.size(), sizeof(T)));
    return v;
}

std::string describe(MapId map, const std::vector<std::uint8_t>& key) {
    switch (map) {
    case MapId::TunnelKeys: {
        const auto k = value_as<xpmip_tunnel_key>(key);
        return fmt::format("GRE key {:#x} (scope {})", k.key, k.scope);
    }
    case MapId::TunnelKeyless: {
        const auto k = value_as<xpmip_keyless_key>(key);
        return fmt::format("key-less tunnel entry (peer {}, MN prefix {}/{})", to_string(from_mapped(k.peer)),
                           to_string(from_mapped(k.inner)), k.prefixlen - 160 - (from_mapped(k.inner).index() == 0 ? 96 : 0));
    }
    case MapId::RoutesV4: {
        const auto k = value_as<xpmip_route4_key>(key);
        return fmt::format("IPv4 home address {}.{}.{}.{} in realm {}", k.addr[0], k.addr[1], k.addr[2], k.addr[3], k.realm);
    }
    case MapId::RoutesV6: {
        const auto k = value_as<xpmip_route6_key>(key);
        Ipv6Address a;
        std::memcpy(a.bytes.data(), k.prefix, 8);
        return fmt::format("home network prefix {}/64 in realm {}", a.to_string(), k.realm);
    }
    case MapId::PrefixesV4: {
        const auto k = value_as<xpmip_prefix4_key>(key);
        return fmt::format("IPv4 home prefix {}.{}.{}.{}/{} in realm {}", k.addr[0], k.addr[1], k.addr[2], k.addr[3],
                           k.prefixlen - 32, k.realm);
    }
    case MapId::PrefixesV6: {
        const auto k = value_as<xpmip_prefix6_key>(key);
        Ipv6Address a;
        std::memcpy(a.bytes.data(), k.addr, 16);
        return fmt::format("home network prefix {}/{} in realm {}", a.to_string(), k.prefixlen - 32, k.realm);
    }
    case MapId::Stations: {
        const auto k = value_as<xpmip_station_key>(key);
        MacAddress m;
        std::memcpy(m.bytes.data(), k.mac, 6);
        return fmt::format("station {} on ifindex {}", m.to_string(), k.ifindex);
    }
    default: return map_name(map);
    }
}

std::uint8_t session_flags(const SessionConfig& s) {
    return static_cast<std::uint8_t>((s.l2 ? XPMIP_SESSION_L2 : 0) | (s.gre_keys ? XPMIP_SESSION_GRE_KEY : 0) |
                                     (s.hnp ? XPMIP_SESSION_HNP : 0) | (s.hoa ? XPMIP_SESSION_HOA : 0));
}

// Octets the tunnel adds to an inner packet (outer IP, UDP / TLV / GRE [key]), as the data plane
// writes them: for the paths' outer byte counts.
std::uint64_t tunnel_overhead(const SessionConfig& s, const PathConfig& p) {
    std::uint64_t n = is_ipv4(p.remote) ? 20 : 40;
    const std::uint64_t gre = 4 + (s.gre_keys ? 4 : 0);
    switch (s.encap) {
    case Encapsulation::Udp: return n + 8;
    case Encapsulation::Gre: return n + gre;
    case Encapsulation::UdpTlvGre: return n + 8 + 4 + gre;
    case Encapsulation::IpInIp: return n;
    }
    return n;
}

void add(TrafficCounter& to, const xpmip_counter& c) {
    to.packets += c.packets;
    to.bytes += c.bytes;
}

} // namespace

bool SessionTable::Entry::same_value(const Entry& o) const {
    if (value.size() != o.value.size()) {
        return false;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        if ((i < counters_at || i >= counters_at + counters_len) && value[i] != o.value[i]) {
            return false;
        }
    }
    return true;
}

// ---- next hops --------------------------------------------------------------------------------

void SessionTable::load_nexthops() const {
    if (nexthops_loaded_) {
        return;
    }
    const std::uint32_t n = maps_.max_entries(MapId::Nexthops);
    for (std::uint32_t i = 1; i < n; ++i) {
        xpmip_nexthop nh{};
        if (maps_.lookup(MapId::Nexthops, &i, &nh) && (nh.flags & XPMIP_NEXTHOP_USED)) {
            nexthops_[nexthop_key(nh)] = static_cast<std::uint16_t>(i);
        }
    }
    nexthops_loaded_ = true;
}

SessionTable::NexthopKey SessionTable::nexthop_key(const xpmip_nexthop& nh) {
    NexthopKey k{};
    std::memcpy(std::get<0>(k).data(), nh.remote, 16);
    std::memcpy(std::get<1>(k).data(), nh.local, 16);
    std::get<2>(k) = nh.pinned_ifindex;
    std::get<3>(k) = nh.pinned_mtu;
    std::get<4>(k) = nh.scope;
    return k;
}

std::optional<std::uint16_t> SessionTable::take_free_nexthop(const xpmip_nexthop& want) const {
    std::set<std::uint16_t> taken;
    for (const auto& [k, id] : nexthops_) {
        taken.insert(id);
    }
    const std::uint32_t n = std::min<std::uint32_t>(maps_.max_entries(MapId::Nexthops), 0x10000);
    for (std::uint32_t i = 1; i < n; ++i) {
        xpmip_nexthop nh{};
        if (taken.count(static_cast<std::uint16_t>(i)) ||
            (maps_.lookup(MapId::Nexthops, &i, &nh) && (nh.flags & XPMIP_NEXTHOP_USED))) {
            continue;   // (another writer may have taken it since we read the table)
        }
        maps_.update(MapId::Nexthops, &i, &want);
        nexthops_[nexthop_key(want)] = static_cast<std::uint16_t>(i);
        return static_cast<std::uint16_t>(i);
    }
    return std::nullopt;
}

// Entries are not counted as paths come and go (a restarted agent or a tool could not know the
// counts); when the table is full, the ones no session's path names any more are freed.
unsigned SessionTable::reclaim_nexthops() const {
    std::set<std::uint16_t> used;
    for_each_slot([&](const xpmip_session& v) { used.insert(v.path.nexthop); });
    std::uint32_t key = 0, next = 0;
    bool first = true;
    xpmip_paths mp{};
    while (bpf_map_get_next_key(maps_.fd(MapId::SessionPaths), first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        if (maps_.lookup(MapId::SessionPaths, &key, &mp)) {
            for (unsigned i = 0; i < mp.npaths && i < XPMIP_MAX_PATHS; ++i) {
                used.insert(mp.paths[i].nexthop);
            }
        }
    }
    unsigned freed = 0;
    for (auto it = nexthops_.begin(); it != nexthops_.end();) {
        if (used.count(it->second)) {
            ++it;
            continue;
        }
        const std::uint32_t id = it->second;
        const xpmip_nexthop unused{};
        maps_.update(MapId::Nexthops, &id, &unused);
        it = nexthops_.erase(it);
        ++freed;
    }
    return freed;
}

std::uint16_t SessionTable::nexthop_for(const PathConfig& p) const {
    load_nexthops();
    xpmip_nexthop want{};
    want.flags = XPMIP_NEXTHOP_USED;
    want.ifindex = want.pinned_ifindex = p.ifindex;
    want.mtu = want.pinned_mtu = p.mtu;
    want.scope = p.scope;
    const auto remote = to_mapped(p.remote);
    const auto local = to_mapped(p.local);
    std::memcpy(want.remote, remote.data(), 16);
    std::memcpy(want.local, local.data(), 16);
    if (auto it = nexthops_.find(nexthop_key(want)); it != nexthops_.end()) {
        return it->second;
    }
    if (auto id = take_free_nexthop(want)) {
        return *id;
    }
    if (reclaim_nexthops() > 0) {
        if (auto id = take_free_nexthop(want)) {
            return *id;
        }
    }
    throw DataplaneError(fmt::format("the next-hop table is full ({} entries in use, one per tunnel peer, source "
                                     "and egress): raise limits.nexthops",
                                     nexthops_.size()));
}

// ---- values -----------------------------------------------------------------------------------

xpmip_session SessionTable::session_value(const SessionConfig& s) const {
    validate(s);
    xpmip_session v{};
    v.id = s.id;
    v.encap = static_cast<std::uint8_t>(s.encap);
    v.flags = session_flags(s);
    v.npaths = static_cast<std::uint8_t>(s.paths.size());
    v.policy = s.policy;
    v.realm = s.realm;
    v.mn_ifindex = s.mn_ifindex;
    if (s.hnp) {
        const auto p = s.hnp->canonical();
        std::memcpy(v.hnp, p.address.bytes.data(), 16);
        v.hnp_len = p.length;
    }
    if (s.hoa) {
        const auto p = s.hoa->canonical();
        std::memcpy(v.hoa, p.address.bytes.data(), 4);
        v.hoa_len = p.length;
    }
    if (s.mn_mac) {
        std::memcpy(v.mn_mac, s.mn_mac->bytes.data(), 6);
    }
    const auto& p = s.paths.front();
    const auto local = to_mapped(p.local);
    const auto remote = to_mapped(p.remote);
    std::memcpy(v.path.local, local.data(), 16);
    std::memcpy(v.path.remote, remote.data(), 16);
    v.path.key_downlink = p.key_downlink;
    v.path.key_uplink = p.key_uplink;
    v.path.remote_port = p.remote_port;
    v.path.label = p.label;
    v.path.bid = p.bid;
    v.path.weight = p.weight;
    v.path.flags = static_cast<std::uint8_t>((p.up ? XPMIP_PATH_UP : 0) | (is_ipv4(p.remote) ? XPMIP_PATH_IPV4 : 0));
    v.path.nexthop = nexthop_for(p);
    return v;
}

std::vector<SessionTable::Entry> SessionTable::entries_of(const SessionConfig& s) const {
    const xpmip_session v = session_value(s);
    std::vector<Entry> out{{MapId::Sessions, bytes_of(v.id), bytes_of(v), offsetof(xpmip_session, rx),
                            2 * sizeof(xpmip_counter)}};
    if (s.paths.size() > 1) {
        xpmip_paths mp{};
        mp.npaths = v.npaths;
        for (std::size_t i = 0; i < s.paths.size(); ++i) {
            SessionConfig one = s;
            one.paths = {s.paths[i]};
            mp.paths[i] = session_value(one).path;
        }
        out.push_back({MapId::SessionPaths, bytes_of(v.id), bytes_of(mp), offsetof(xpmip_paths, tx),
                       2 * XPMIP_MAX_PATHS * sizeof(xpmip_counter)});
    }
    auto lookups = lookup_entries(s, v);
    out.insert(out.end(), lookups.begin(), lookups.end());
    return out;
}

std::vector<SessionTable::Entry> SessionTable::lookup_entries(const SessionConfig& s, const xpmip_session& v) const {
    std::vector<Entry> out;
    const auto sid = bytes_of(v.id);
    xpmip_route route{};
    route.session = v.id;
    route.encap = v.encap;
    route.flags = v.flags;
    route.npaths = v.npaths;
    route.policy = v.policy;
    route.path = v.path;
    // The MN's routes: an exact hash for a /32 home address and a /64 prefix, a trie otherwise.
    if (s.hoa && v.hoa_len == 32) {
        xpmip_route4_key k{v.realm, {}};
        std::memcpy(k.addr, v.hoa, 4);
        out.push_back({MapId::RoutesV4, bytes_of(k), bytes_of(route), offsetof(xpmip_route, tx), sizeof(xpmip_counter)});
    } else if (s.hoa) {
        xpmip_prefix4_key k{32u + v.hoa_len, v.realm, {}};
        std::memcpy(k.addr, v.hoa, 4);
        out.push_back({MapId::PrefixesV4, bytes_of(k), sid});
    }
    if (s.hnp && v.hnp_len == 64) {
        xpmip_route6_key k{v.realm, 0, {}};
        std::memcpy(k.prefix, v.hnp, 8);
        out.push_back({MapId::RoutesV6, bytes_of(k), bytes_of(route), offsetof(xpmip_route, tx), sizeof(xpmip_counter)});
    } else if (s.hnp) {
        xpmip_prefix6_key k{32u + v.hnp_len, v.realm, {}};
        std::memcpy(k.addr, v.hnp, 16);
        out.push_back({MapId::PrefixesV6, bytes_of(k), sid});
    }
    // MAG: frames from the MN on its access link; LMA: frames to an L2 session's station.
    const bool has_mac = std::any_of(std::begin(v.mn_mac), std::end(v.mn_mac), [](auto b) { return b != 0; });
    if (has_mac && v.mn_ifindex && (role_ == Role::Mag || s.l2)) {
        xpmip_station_key k{v.mn_ifindex, {}, 0};
        std::memcpy(k.mac, v.mn_mac, 6);
        xpmip_station st{};
        st.route = route;
        std::memcpy(st.hnp, v.hnp, 16);
        st.hnp_len = v.hnp_len;
        st.hoa_len = v.hoa_len;
        std::memcpy(st.hoa, v.hoa, 4);
        out.push_back({MapId::Stations, bytes_of(k), bytes_of(st), offsetof(xpmip_station, route.tx),
                       sizeof(xpmip_counter)});
    }
    // Received tunnel packets: by our key (the LMA receives uplink keys, the MAG downlink keys,
    // RFC 5845 §3.3), which needs no entry when it is the session's index; else by addresses.
    const std::uint32_t slots = maps_.max_entries(MapId::Sessions);
    for (std::uint32_t i = 0; i < s.paths.size(); ++i) {
        const auto& p = s.paths[i];
        const xpmip_path_ref ref{v.id, i};
        if (s.gre_keys) {
            const std::uint32_t key = role_ == Role::Lma ? p.key_uplink : p.key_downlink;
            if (!(i == 0 && key == v.id && p.scope == 0 && key < slots)) {
                out.push_back({MapId::TunnelKeys, bytes_of(xpmip_tunnel_key{p.scope, key}), bytes_of(ref)});
            }
            continue;
        }
        if (s.l2) {
            continue;
        }
        for (const bool v6 : {true, false}) {
            if ((v6 && !s.hnp) || (!v6 && !s.hoa)) {
                continue;
            }
            xpmip_keyless_key k{};
            k.scope = p.scope;
            const auto remote = to_mapped(p.remote);
            std::memcpy(k.peer, remote.data(), 16);
            if (v6) {
                k.prefixlen = 32 + 128 + v.hnp_len;
                std::memcpy(k.inner, v.hnp, 16);
            } else {
                k.prefixlen = 32 + 128 + 96 + v.hoa_len;
                const auto mapped = to_mapped(Ipv4Address{{v.hoa[0], v.hoa[1], v.hoa[2], v.hoa[3]}});
                std::memcpy(k.inner, mapped.data(), 16);
            }
            out.push_back({MapId::TunnelKeyless, bytes_of(k), bytes_of(ref)});
        }
    }
    return out;
}

// ---- reading back ---------------------------------------------------------------------------------

std::optional<xpmip_session> SessionTable::read_slot(std::uint32_t id) const {
    xpmip_session v{};
    if (id == 0 || id >= maps_.max_entries(MapId::Sessions) || !maps_.lookup(MapId::Sessions, &id, &v) || v.id != id) {
        return std::nullopt;
    }
    return v;
}

SessionConfig SessionTable::config_of(const xpmip_session& v) const {
    SessionConfig s;
    s.id = v.id;
    s.encap = static_cast<Encapsulation>(v.encap);
    s.l2 = (v.flags & XPMIP_SESSION_L2) != 0;
    s.gre_keys = (v.flags & XPMIP_SESSION_GRE_KEY) != 0;
    s.realm = v.realm;
    s.mn_ifindex = v.mn_ifindex;
    s.policy = v.policy;
    if (v.flags & XPMIP_SESSION_HNP) {
        Ipv6Prefix p;
        std::memcpy(p.address.bytes.data(), v.hnp, 16);
        p.length = v.hnp_len;
        s.hnp = p;
    }
    if (v.flags & XPMIP_SESSION_HOA) {
        Ipv4Prefix p;
        std::memcpy(p.address.bytes.data(), v.hoa, 4);
        p.length = v.hoa_len;
        s.hoa = p;
    }
    MacAddress mac;
    std::memcpy(mac.bytes.data(), v.mn_mac, 6);
    if (mac != MacAddress{}) {
        s.mn_mac = mac;
    }
    std::vector<xpmip_path> paths{v.path};
    xpmip_paths mp{};
    if (v.npaths > 1 && maps_.lookup(MapId::SessionPaths, &v.id, &mp)) {
        paths.assign(mp.paths, mp.paths + std::min<unsigned>(mp.npaths, XPMIP_MAX_PATHS));
    }
    for (const auto& in : paths) {
        PathConfig p;
        p.local = from_mapped(in.local);
        p.remote = from_mapped(in.remote);
        p.key_downlink = in.key_downlink;
        p.key_uplink = in.key_uplink;
        p.remote_port = in.remote_port;
        p.label = in.label;
        p.bid = in.bid;
        p.weight = in.weight;
        p.up = (in.flags & XPMIP_PATH_UP) != 0;
        std::uint32_t nh_id = in.nexthop;
        xpmip_nexthop nh{};
        if (nh_id && maps_.lookup(MapId::Nexthops, &nh_id, &nh)) {
            p.ifindex = nh.pinned_ifindex;
            p.mtu = nh.pinned_mtu;
            p.scope = nh.scope;
        }
        s.paths.push_back(p);
    }
    return s;
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

// ---- writing ----------------------------------------------------------------------------------

void SessionTable::write(const Entry& e) const {
    Entry w = e;
    if (e.counters_len) {
        std::vector<std::uint8_t> old(e.value.size());
        if (maps_.lookup(e.map, e.key.data(), old.data()) && old.size() >= e.counters_at + e.counters_len &&
            (e.map != MapId::Sessions || std::memcmp(old.data(), e.value.data(), sizeof(std::uint32_t)) == 0)) {
            std::memcpy(w.value.data() + e.counters_at, old.data() + e.counters_at, e.counters_len);
        }
    }
    maps_.update(w.map, w.key.data(), w.value.data());
}

void SessionTable::erase(const Entry& e) const {
    if (e.map == MapId::Sessions) {
        const xpmip_session free_slot{};   // an array has no delete: id 0 marks the slot free
        maps_.update(MapId::Sessions, e.key.data(), &free_slot);
        return;
    }
    maps_.erase(e.map, e.key.data());
}

void SessionTable::write_slot(const Entry& e, const std::optional<xpmip_session>& old) const {
    Entry w = e;
    if (old && std::memcmp(&old->id, e.value.data(), sizeof old->id) == 0) {
        std::memcpy(w.value.data() + e.counters_at, reinterpret_cast<const std::uint8_t*>(&*old) + e.counters_at,
                    e.counters_len);
    }
    maps_.update(MapId::Sessions, w.key.data(), w.value.data());
}

bool SessionTable::claim(const Entry& e, std::uint32_t id) const {
    if (maps_.insert(e.map, e.key.data(), e.value.data())) {   // a new key: its counters start at 0
        return true;
    }
    const auto o = owner(e);
    if (o != 0 && o != id) {
        throw KeyConflictError(fmt::format("session {}: {} already belongs to session {}", id, describe(e.map, e.key), o),
                               e.map);
    }
    write(e);
    return o == 0;
}

// A new session costs one lookup (its slot) and one write per entry; a changed one writes only
// what changed. Nothing may take another session's key, route or station: a conflict undoes
// what this call wrote.
void SessionTable::upsert(const SessionConfig& session) {
    const std::uint32_t slots = maps_.max_entries(MapId::Sessions);
    if (session.id == 0 || session.id >= slots) {
        throw DataplaneError(fmt::format("session id {} is outside 1..{} (limits.sessions)", session.id, slots - 1));
    }
    const auto old = read_slot(session.id);
    const auto wanted = entries_of(session);
    const auto previous = old ? entries_of(config_of(*old)) : std::vector<Entry>{};
    const std::set<Entry> previous_set(previous.begin(), previous.end());
    std::vector<const Entry*> added;
    try {
        for (const auto& e : wanted) {
            auto it = previous_set.find(e);
            if (it != previous_set.end() && it->same_value(e)) {
                continue;
            }
            if (e.map == MapId::Sessions) {
                write_slot(e, old);
            } else if (e.map == MapId::SessionPaths) {
                write(e);   // keyed by the session's own id
                if (it == previous_set.end()) {
                    added.push_back(&e);
                }
            } else if (claim(e, session.id)) {
                added.push_back(&e);
            }
        }
    } catch (const DataplaneError& err) {
        for (auto it = added.rbegin(); it != added.rend(); ++it) {
            erase(**it);
        }
        if (old) {
            maps_.update(MapId::Sessions, &session.id, &*old);
        } else {
            erase(wanted.front());
        }
        if (dynamic_cast<const KeyConflictError*>(&err)) {
            throw;
        }
        throw DataplaneError(fmt::format("session {}: {}", session.id, err.what()));
    }
    // Then what the session no longer has.
    const std::set<Entry> wanted_set(wanted.begin(), wanted.end());
    for (const auto& e : previous) {
        if (!wanted_set.count(e) && (e.map == MapId::SessionPaths || owner(e) == session.id)) {
            erase(e);
        }
    }
}

bool SessionTable::remove(std::uint32_t id) {
    const auto v = read_slot(id);
    if (!v) {
        return false;
    }
    const auto entries = entries_of(config_of(*v));
    // Lookup entries first, the slot last: whatever a program finds still leads to the session.
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
        if (it->map == MapId::Sessions || it->map == MapId::SessionPaths || owner(*it) == id) {
            erase(*it);
        }
    }
    return true;
}

std::optional<SessionConfig> SessionTable::get(std::uint32_t id) const {
    const auto v = read_slot(id);
    return v ? std::optional(config_of(*v)) : std::nullopt;
}

void SessionTable::for_each_slot(const std::function<void(const xpmip_session&)>& fn) const {
    for_each_slot_after(0, [&](const xpmip_session& v) {
        fn(v);
        return true;
    });
}

// Slot 0 is never a session, so "after 0" is every slot. BPF_MAP_LOOKUP_BATCH's cursor on an
// array is the last index returned: the next batch starts after it.
void SessionTable::for_each_slot_after(std::uint32_t after, const std::function<bool(const xpmip_session&)>& fn,
                                       std::uint32_t batch) const {
    const std::uint32_t slots = maps_.max_entries(MapId::Sessions);
    std::vector<std::uint32_t> keys(batch);
    std::vector<xpmip_session> values(batch);
    std::uint32_t start = after, next = 0;
    bool first = after == 0;
    for (;;) {
        __u32 count = batch;
        bpf_map_batch_opts bopts{};
        bopts.sz = sizeof bopts;
        const int rc = bpf_map_lookup_batch(maps_.fd(MapId::Sessions), first ? nullptr : &start, &next, keys.data(),
                                            values.data(), &count, &bopts);
        for (__u32 i = 0; i < count; ++i) {
            if (values[i].id != 0 && values[i].id == keys[i] && keys[i] > after && !fn(values[i])) {
                return;
            }
        }
        if (rc != 0 || next >= slots) {
            break;   // ENOENT: the end of the array
        }
        start = next;
        first = false;
    }
}

std::vector<SessionConfig> SessionTable::list_page(std::uint32_t after, std::size_t limit) const {
    std::vector<SessionConfig> out;
    if (limit == 0) {
        return out;
    }
    // Batches no larger than the page: a page of 100 costs ~100 slots read, not 4096.
    const auto batch = static_cast<std::uint32_t>(std::clamp<std::size_t>(limit, 64, 4096));
    for_each_slot_after(after, [&](const xpmip_session& v) {
        out.push_back(config_of(v));
        return out.size() < limit;
    }, batch);
    return out;
}

std::vector<SessionConfig> SessionTable::list() const {
    std::vector<SessionConfig> out;
    for_each_slot([&](const xpmip_session& v) { out.push_back(config_of(v)); });
    return out;
}

void SessionTable::set_path_up(std::uint32_t id, std::uint8_t bid, bool up) {
    auto s = get(id);
    if (!s) {
        throw DataplaneError(fmt::format("session {} does not exist", id));
    }
    for (auto& p : s->paths) {
        if (p.bid == bid) {
            p.up = up;
            upsert(*s);
            return;
        }
    }
    throw DataplaneError(fmt::format("session {} has no path with Binding-Id {}", id, bid));
}

SessionCounters SessionTable::counters(std::uint32_t id) const {
    SessionCounters out;
    const auto v = read_slot(id);
    if (!v) {
        return out;
    }
    const SessionConfig s = config_of(*v);
    // Received from the tunnel (the session), sent into it (its routes and station, and the
    // session itself for what a prefix route found).
    TrafficCounter rx, tx;
    add(rx, v->rx);
    add(tx, v->tx);
    for (const auto& e : lookup_entries(s, *v)) {
        if (!e.counters_len) {
            continue;
        }
        std::vector<std::uint8_t> value(e.value.size());
        if (maps_.lookup(e.map, e.key.data(), value.data())) {
            xpmip_counter c{};
            std::memcpy(&c, value.data() + e.counters_at, sizeof c);
            add(tx, c);
        }
    }
    out.uplink = role_ == Role::Lma ? rx : tx;
    out.downlink = role_ == Role::Lma ? tx : rx;
    const auto outer = [&](const TrafficCounter& t, std::size_t i) {
        return TrafficCounter{t.packets, t.bytes + t.packets * tunnel_overhead(s, s.paths[i])};
    };
    xpmip_paths mp{};
    if (s.paths.size() > 1 && maps_.lookup(MapId::SessionPaths, &id, &mp)) {
        for (std::size_t i = 0; i < s.paths.size() && i < XPMIP_MAX_PATHS; ++i) {
            out.path_tx[i] = outer({mp.tx[i].packets, mp.tx[i].bytes}, i);
            out.path_rx[i] = outer({mp.rx[i].packets, mp.rx[i].bytes}, i);
        }
    } else if (!s.paths.empty()) {
        out.path_tx[0] = outer(tx, 0);
        out.path_rx[0] = outer(rx, 0);
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
