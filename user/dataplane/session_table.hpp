// The typed session API over the maps (include/xpmip/dataplane.h, README "Data plane at scale").
// A session becomes: its slot in the `sessions` array (its id; our GRE key of its first path is
// that id when we assigned it so), its other paths in session_paths (multipath only), one lookup
// entry per way a packet may find it (an MN route, a station, a GRE key that is not its index, a
// key-less tunnel entry), and a next-hop entry per distinct tunnel peer and egress. The lookup
// entries are derived from the session value itself, so an update computes what to add and
// remove without remembering anything: it works the same from the agent, a restarted agent or a
// one-shot tool.
//
// Atomic as the programs see it: a session is written before its lookup entries and removed
// after them, so every entry the programs find leads to a complete session. An entry already
// owned by another session is an error before anything is written; a full map rolls back.
// Counters live in the entries themselves (atomic adds by every CPU); a rewrite carries them over
// (what is counted between its read and its write, a few microseconds, is lost).
#pragma once

#include "dataplane/maps.hpp"

#include <functional>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

namespace xpmip::dataplane {

struct TrafficCounter {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
};

// Bytes: inner octets for uplink/downlink; outer octets (the tunnel packets) for the paths.
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
    // Up to `limit` sessions with ids above `after`, in id order (paged `xpmip show`).
    std::vector<SessionConfig> list_page(std::uint32_t after, std::size_t limit) const;
    // Mark the path with Binding-Id `bid` up or down (RFC 8278 failover), keys unchanged.
    void set_path_up(std::uint32_t id, std::uint8_t bid, bool up);
    SessionCounters counters(std::uint32_t id) const;

    void set_policy(std::uint8_t id, const PolicyConfig& policy);

    // A map write of a session: key, value, and the octets of the value that are counters
    // (carried over from what is there, not compared).
    struct Entry {
        MapId map;
        std::vector<std::uint8_t> key;
        std::vector<std::uint8_t> value;
        std::size_t counters_at = 0;
        std::size_t counters_len = 0;
        bool operator<(const Entry& o) const { return std::tie(map, key) < std::tie(o.map, o.key); }
        bool same_value(const Entry& o) const;   // counters aside
    };

private:
    // The session's slot, its paths (multipath) and its lookup entries, in write order.
    std::vector<Entry> entries_of(const SessionConfig& s) const;
    std::vector<Entry> lookup_entries(const SessionConfig& s, const xpmip_session& v) const;
    xpmip_session session_value(const SessionConfig& s) const;
    std::optional<xpmip_session> read_slot(std::uint32_t id) const;
    SessionConfig config_of(const xpmip_session& v) const;
    std::uint32_t owner(const Entry& e) const;   // session id the existing entry points to, 0 if none
    void write(const Entry& e) const;            // counters carried over
    // The slot, its counters carried over from `old` (read already: no second lookup).
    void write_slot(const Entry& e, const std::optional<xpmip_session>& old) const;
    // A lookup entry of session `id`: written if its key is free or id's already (the kernel
    // checks with BPF_NOEXIST: one syscall for a new key). Returns whether it was free; throws
    // KeyConflictError when another session owns the key.
    bool claim(const Entry& e, std::uint32_t id) const;
    void erase(const Entry& e) const;
    // The nexthops entry of paths toward `remote` from `local` (with their egress, MTU and key
    // scope), taken when there is none yet.
    using NexthopKey = std::tuple<std::array<std::uint8_t, 16>, std::array<std::uint8_t, 16>, std::uint32_t,
                                  std::uint16_t, std::uint32_t>;
    static NexthopKey nexthop_key(const xpmip_nexthop& nh);
    std::uint16_t nexthop_for(const PathConfig& p) const;
    std::optional<std::uint16_t> take_free_nexthop(const xpmip_nexthop& want) const;
    unsigned reclaim_nexthops() const;   // frees the entries no path names; returns how many
    void load_nexthops() const;
    void for_each_slot(const std::function<void(const xpmip_session&)>& fn) const;
    // The sessions with ids above `after` until `fn` returns false.
    void for_each_slot_after(std::uint32_t after, const std::function<bool(const xpmip_session&)>& fn,
                             std::uint32_t batch = 4096) const;

    const MapSet& maps_;
    Role role_;
    // nexthops entries by (remote, local, pinned ifindex, pinned MTU, scope), read from the map once.
    mutable std::map<NexthopKey, std::uint16_t> nexthops_;
    mutable bool nexthops_loaded_ = false;
};

} // namespace xpmip::dataplane
