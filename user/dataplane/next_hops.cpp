#include "dataplane/next_hops.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace xpmip::dataplane {

namespace {
constexpr auto kFullPassEvery = std::chrono::seconds(1);
constexpr auto kUnresolvedPassEvery = std::chrono::seconds(1);
} // namespace

std::vector<NextHopView> list_next_hops(const MapSet& maps) {
    std::vector<NextHopView> out;
    const std::uint32_t n = maps.max_entries(MapId::Nexthops);
    for (std::uint32_t i = 1; i < n; ++i) {
        xpmip_nexthop nh{};
        if (!maps.lookup(MapId::Nexthops, &i, &nh) || !(nh.flags & XPMIP_NEXTHOP_USED)) {
            continue;
        }
        NextHopView v;
        v.id = i;
        v.remote = from_mapped(nh.remote);
        v.local = from_mapped(nh.local);
        v.ifindex = nh.ifindex;
        v.mtu = nh.mtu;
        v.resolved = (nh.flags & XPMIP_NEXTHOP_RESOLVED) != 0;
        std::memcpy(v.smac.bytes.data(), nh.smac, 6);
        std::memcpy(v.dmac.bytes.data(), nh.dmac, 6);
        v.scope = nh.scope;
        v.pinned_ifindex = nh.pinned_ifindex;
        v.pinned_mtu = nh.pinned_mtu;
        out.push_back(v);
    }
    return out;
}

void NextHopCache::remember_neighbour(std::uint32_t id, int ifindex, const IpAddress& neighbour) {
    if (auto it = neighbour_of_.find(id); it != neighbour_of_.end()) {
        by_neighbour_[it->second].erase(id);
        neighbour_of_.erase(it);
    }
    if (ifindex > 0) {
        const std::pair<int, std::string> n{ifindex, to_string(neighbour)};
        by_neighbour_[n].insert(id);
        neighbour_of_[id] = n;
    }
}

bool NextHopCache::refresh_entry(std::uint32_t id, const xpmip_nexthop& nh) {
    const IpAddress remote = from_mapped(nh.remote);
    const IpAddress local = from_mapped(nh.local);
    const auto hop = resolver_.resolve(remote, local, static_cast<int>(nh.pinned_ifindex));
    remember_neighbour(id, hop ? hop->ifindex : 0, hop ? hop->neighbour : remote);
    xpmip_nexthop want = nh;
    const bool resolved = hop && hop->dmac && hop->ifindex > 0 &&
                          (nh.pinned_ifindex == 0 || nh.pinned_ifindex == static_cast<std::uint32_t>(hop->ifindex));
    if (resolved) {
        want.ifindex = static_cast<std::uint32_t>(hop->ifindex);
        want.mtu = nh.pinned_mtu ? nh.pinned_mtu : static_cast<std::uint16_t>(std::min(hop->mtu, 65535u));
        std::memcpy(want.smac, hop->smac.bytes.data(), 6);
        std::memcpy(want.dmac, hop->dmac->bytes.data(), 6);
        want.flags = XPMIP_NEXTHOP_USED | XPMIP_NEXTHOP_RESOLVED;
    } else {
        want.ifindex = nh.pinned_ifindex;
        want.mtu = nh.pinned_mtu;
        std::memset(want.smac, 0, 6);
        std::memset(want.dmac, 0, 6);
        want.flags = XPMIP_NEXTHOP_USED;
    }
    if (std::memcmp(&want, &nh, sizeof want) != 0) {
        maps_.update(MapId::Nexthops, &id, &want);
        spdlog::debug("next hop {} toward {}: {}", id, to_string(remote),
                      resolved ? fmt::format("ifindex {} to {}", want.ifindex, hop->dmac->to_string())
                               : std::string("not resolved (the FIB and the stack until it is)"));
    }
    return resolved;
}

unsigned NextHopCache::refresh(bool only_unresolved) {
    unsigned resolved = 0;
    const std::uint32_t n = maps_.max_entries(MapId::Nexthops);
    for (std::uint32_t i = 1; i < n; ++i) {
        xpmip_nexthop nh{};
        if (!maps_.lookup(MapId::Nexthops, &i, &nh) || !(nh.flags & XPMIP_NEXTHOP_USED)) {
            continue;
        }
        if (only_unresolved && (nh.flags & XPMIP_NEXTHOP_RESOLVED)) {
            ++resolved;
            continue;
        }
        try {
            resolved += refresh_entry(i, nh) ? 1 : 0;
        } catch (const std::exception& e) {
            spdlog::warn("next hop {}: {}", i, e.what());
        }
    }
    return resolved;
}

unsigned NextHopCache::refresh_all() {
    routes_changed_ = false;
    last_full_pass_ = Clock::now();
    return refresh(false);
}

void NextHopCache::on_changes(const netlink::RouteChanges& changes) {
    routes_changed_ = routes_changed_ || changes.routes;
    for (const auto& [ifindex, address] : changes.neighbours) {
        const auto it = by_neighbour_.find({ifindex, to_string(address)});
        if (it == by_neighbour_.end()) {
            continue;
        }
        const std::set<std::uint32_t> ids = it->second;   // (refresh_entry edits the index)
        for (std::uint32_t id : ids) {
            xpmip_nexthop nh{};
            if (maps_.lookup(MapId::Nexthops, &id, &nh) && (nh.flags & XPMIP_NEXTHOP_USED)) {
                try {
                    refresh_entry(id, nh);
                } catch (const std::exception& e) {
                    spdlog::warn("next hop {}: {}", id, e.what());
                }
            }
        }
    }
}

void NextHopCache::tick(Clock::time_point now) {
    if (routes_changed_ && now - last_full_pass_ >= kFullPassEvery) {
        refresh_all();
        last_unresolved_pass_ = now;
        return;
    }
    if (now - last_unresolved_pass_ >= kUnresolvedPassEvery) {
        last_unresolved_pass_ = now;
        refresh(true);
    }
}

} // namespace xpmip::dataplane
