// The typed session API over the maps. A session's lookup keys (tunnel keys, key-less tunnel
// entries, MN routes, station MACs) are derived from the session value itself, so an update
// computes what to add and remove without remembering anything: it works the same from the
// agent, a restarted agent or a one-shot tool.
//
// Atomic as the programs see it: a session is written before its lookup keys and removed
// after them, so every key the programs find leads to a complete session. A key already owned
// by another session is an error before anything is written; a full map rolls back.
#pragma once

#include "dataplane/maps.hpp"

#include <optional>
#include <vector>

namespace xpmip::dataplane {

struct TrafficCounter {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
};

struct SessionCounters {
    TrafficCounter uplink;     // from the MN
    TrafficCounter downlink;   // to the MN
    std::array<TrafficCounter, XPMIP_MAX_PATHS> path_tx{};
    std::array<TrafficCounter, XPMIP_MAX_PATHS> path_rx{};
};

// A lookup key (tunnel key, key-less tunnel entry, MN route, station) another session owns.
class KeyConflictError : public DataplaneError {
public:
    KeyConflictError(const std::string& what, MapId map) : DataplaneError(what), map_(map) {}
    MapId map() const { return map_; }

private:
    MapId map_;
};

class SessionTable {
public:
    SessionTable(const MapSet& maps, Role role) : maps_(maps), role_(role) {}

    void upsert(const SessionConfig& session);
    bool remove(std::uint32_t id);                       // false when there was none
    std::optional<SessionConfig> get(std::uint32_t id) const;
    std::vector<SessionConfig> list() const;
    // Mark the path with Binding-Id `bid` up or down (RFC 8278 failover), keys unchanged.
    void set_path_up(std::uint32_t id, std::uint8_t bid, bool up);
    SessionCounters counters(std::uint32_t id) const;

    void set_policy(std::uint8_t id, const PolicyConfig& policy);

private:
    struct Entry {
        MapId map;
        std::vector<std::uint8_t> key;
        std::vector<std::uint8_t> value;
        bool operator<(const Entry& o) const { return std::tie(map, key) < std::tie(o.map, o.key); }
        bool operator==(const Entry& o) const { return map == o.map && key == o.key && value == o.value; }
    };
    std::vector<Entry> lookup_entries(const xpmip_session& v) const;
    std::uint32_t owner(const Entry& e) const;   // session id the existing entry points to, 0 if none
    void write_stats_if_missing(std::uint32_t id) const;

    const MapSet& maps_;
    Role role_;
};

} // namespace xpmip::dataplane
