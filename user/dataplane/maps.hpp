// File descriptors of one data plane instance's maps, opened from a freshly loaded BPF object
// or from the pin directory (/sys/fs/bpf/xpmip/<instance>/<map>), with checked accessors.
#pragma once

#include "common/fd.hpp"
#include "dataplane/types.hpp"

#include <array>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

struct bpf_object;

namespace xpmip::dataplane {

enum class MapId {
    Config,
    Ifaces,
    Sessions,
    SessionPaths,
    RoutesV4,
    RoutesV6,
    PrefixesV4,
    PrefixesV6,
    Stations,
    TunnelKeys,
    TunnelKeyless,
    Nexthops,
    Policies,
    Counters,
    Events,
    StationReports,
    CpuMap,
    SpreadCpus,
    RouteCache,
    Count
};

inline constexpr std::size_t kMapCount = static_cast<std::size_t>(MapId::Count);
const char* map_name(MapId id);
// What to raise in Limits when this map is full (for the error message).
const char* limit_name(MapId id);

class MapSet {
public:
    MapSet() = default;
    static MapSet open_pinned(const std::filesystem::path& dir);   // throws naming a missing map
    static bool pinned(const std::filesystem::path& dir);          // all maps present?
    static MapSet from_object(bpf_object* obj);

    int fd(MapId id) const { return fds_[static_cast<std::size_t>(id)].get(); }

    // Throws DataplaneError naming the map; a full map says which limit to raise.
    void update(MapId id, const void* key, const void* value, std::uint64_t flags = 0) const;
    bool lookup(MapId id, const void* key, void* value) const;
    // BPF_NOEXIST: writes only a key not there yet; false (nothing written) when it is.
    bool insert(MapId id, const void* key, const void* value) const;
    bool erase(MapId id, const void* key) const;   // false when absent
    std::uint32_t max_entries(MapId id) const;
    // All keys of a hash or LPM map, as raw bytes of key_size each.
    std::vector<std::vector<std::uint8_t>> keys(MapId id, std::size_t key_size) const;
    // Every entry of a hash or array map (an array's every slot), read in batches of `batch`
    // (BPF_MAP_LOOKUP_BATCH): a million entries cost a few hundred system calls, not a million.
    void for_each(MapId id, std::size_t key_size, std::size_t value_size,
                  const std::function<void(const std::uint8_t* key, const std::uint8_t* value)>& fn,
                  std::uint32_t batch = 4096) const;

private:
    void read_sizes();
    std::array<UniqueFd, kMapCount> fds_;
    std::array<std::uint32_t, kMapCount> max_entries_{};
};

int possible_cpus();

} // namespace xpmip::dataplane
