#include "dataplane/maps.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <unistd.h>
#include <cstring>

namespace xpmip::dataplane {

namespace {
constexpr const char* kNames[kMapCount] = {
    "config", "ifaces", "sessions", "session_paths", "mn_routes4", "mn_routes6", "mn_prefixes4", "mn_prefixes6",
    "stations", "tunnel_keys", "tunnel_keyless", "nexthops", "policies", "counters", "events", "station_reports",
    "cpu_map", "spread_cpus", "route_cache",
};
} // namespace

const char* map_name(MapId id) { return kNames[static_cast<std::size_t>(id)]; }

const char* limit_name(MapId id) {
    switch (id) {
    case MapId::Sessions: return "sessions";
    case MapId::SessionPaths: return "multipath_sessions";
    case MapId::TunnelKeys: return "tunnel_keys";
    case MapId::TunnelKeyless: return "keyless";
    case MapId::RoutesV4:
    case MapId::RoutesV6: return "routes";
    case MapId::PrefixesV4:
    case MapId::PrefixesV6: return "prefixes";
    case MapId::Stations: return "stations";
    case MapId::Nexthops: return "nexthops";
    case MapId::Ifaces: return "interfaces";
    case MapId::Policies: return "policies";
    case MapId::RouteCache: return "route_cache";
    default: return "(fixed size)";
    }
}

MapSet MapSet::open_pinned(const std::filesystem::path& dir) {
    MapSet m;
    for (std::size_t i = 0; i < kMapCount; ++i) {
        const auto path = dir / kNames[i];
        int fd = bpf_obj_get(path.c_str());
        if (fd < 0) {
            throw DataplaneError(fmt::format("pinned map {} cannot be opened: {} (is the data plane loaded?)",
                                             path.string(), std::strerror(errno)));
        }
        m.fds_[i].reset(fd);
    }
    m.read_sizes();
    return m;
}

bool MapSet::pinned(const std::filesystem::path& dir) {
    for (const auto* name : kNames) {
        if (!std::filesystem::exists(dir / name)) {
            return false;
        }
    }
    return true;
}

MapSet MapSet::from_object(bpf_object* obj) {
    MapSet m;
    for (std::size_t i = 0; i < kMapCount; ++i) {
        bpf_map* map = bpf_object__find_map_by_name(obj, kNames[i]);
        if (!map || bpf_map__fd(map) < 0) {
            throw DataplaneError(fmt::format("BPF object has no loaded map '{}'", kNames[i]));
        }
        int fd = fcntl(bpf_map__fd(map), F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            throw DataplaneError(fmt::format("dup of map '{}': {}", kNames[i], std::strerror(errno)));
        }
        m.fds_[i].reset(fd);
    }
    m.read_sizes();
    return m;
}

// A map's size is fixed when it is created: asked once (a syscall), not per session written.
void MapSet::read_sizes() {
    for (std::size_t i = 0; i < kMapCount; ++i) {
        bpf_map_info info{};
        std::uint32_t len = sizeof(info);
        max_entries_[i] = bpf_obj_get_info_by_fd(fds_[i].get(), &info, &len) == 0 ? info.max_entries : 0;
    }
}

void MapSet::update(MapId id, const void* key, const void* value, std::uint64_t flags) const {
    // A hash map without preallocation (per-CPU session_stats) can fail with a transient ENOMEM
    // while the kernel refills its per-CPU element cache under a burst of inserts: retry a few
    // times before calling the map full. E2BIG is the real "max_entries reached".
    int err = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
        if (bpf_map_update_elem(fd(id), key, value, flags) == 0) {
            return;
        }
        err = errno;
        if (err != ENOMEM) {
            break;
        }
        usleep(static_cast<useconds_t>(100u << attempt));
    }
    if (err == E2BIG || err == ENOMEM || err == ENOSPC) {
        throw DataplaneError(fmt::format("map {} is full ({} entries): raise limits.{}", map_name(id),
                                         max_entries(id), limit_name(id)));
    }
    throw DataplaneError(fmt::format("map {}: update failed: {}", map_name(id), std::strerror(err)));
}

bool MapSet::insert(MapId id, const void* key, const void* value) const {
    if (bpf_map_update_elem(fd(id), key, value, BPF_NOEXIST) == 0) {
        return true;
    }
    if (errno == EEXIST) {
        return false;
    }
    update(id, key, value, BPF_NOEXIST);   // the same error again, with its retries and message
    return true;
}

bool MapSet::lookup(MapId id, const void* key, void* value) const {
    return bpf_map_lookup_elem(fd(id), key, value) == 0;
}

bool MapSet::erase(MapId id, const void* key) const {
    if (bpf_map_delete_elem(fd(id), key) == 0) {
        return true;
    }
    if (errno == ENOENT) {
        return false;
    }
    throw DataplaneError(fmt::format("map {}: delete failed: {}", map_name(id), std::strerror(errno)));
}

std::uint32_t MapSet::max_entries(MapId id) const {
    return max_entries_[static_cast<std::size_t>(id)];
}

std::vector<std::vector<std::uint8_t>> MapSet::keys(MapId id, std::size_t key_size) const {
    std::vector<std::vector<std::uint8_t>> out;
    std::vector<std::uint8_t> cur(key_size), next(key_size);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd(id), prev, next.data()) == 0) {
        out.push_back(next);
        cur = next;
        prev = cur.data();
    }
    return out;
}

void MapSet::for_each(MapId id, std::size_t key_size, std::size_t value_size,
                      const std::function<void(const std::uint8_t* key, const std::uint8_t* value)>& fn,
                      std::uint32_t batch) const {
    std::vector<std::uint8_t> keys(key_size * batch), values(value_size * batch);
    // The batch cursor is opaque: hash maps use a bucket index (4 octets), arrays the key.
    std::array<std::uint8_t, 64> start{}, next{};
    bool first = true;
    for (;;) {
        __u32 count = batch;
        bpf_map_batch_opts opts{};
        opts.sz = sizeof opts;
        const int rc = bpf_map_lookup_batch(fd(id), first ? nullptr : start.data(), next.data(), keys.data(),
                                            values.data(), &count, &opts);
        const int err = rc ? errno : 0;
        for (__u32 i = 0; i < count; ++i) {
            fn(keys.data() + i * key_size, values.data() + i * value_size);
        }
        if (rc != 0) {
            if (err == ENOENT) {
                return;   // the end of the map
            }
            throw DataplaneError(fmt::format("map {}: batch lookup failed: {}", map_name(id), std::strerror(err)));
        }
        start = next;
        first = false;
    }
}

int possible_cpus() {
    const int n = libbpf_num_possible_cpus();
    if (n <= 0) {
        throw DataplaneError("cannot determine the number of possible CPUs");
    }
    return n;
}

} // namespace xpmip::dataplane
