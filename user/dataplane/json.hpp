// JSON forms of sessions, policies, counters and next hops: for `show --json`, test fixtures and tools.
// Interfaces may be given by name ("interface", "mn_interface") and are resolved to ifindexes.
#pragma once

#include "dataplane/session_table.hpp"
#include "dataplane/next_hops.hpp"
#include "dataplane/stats.hpp"

#include <nlohmann/json.hpp>

namespace xpmip::dataplane {

nlohmann::json to_json(const SessionConfig& s);
SessionConfig session_from_json(const nlohmann::json& j);   // throws DataplaneError naming the key
nlohmann::json to_json(const PolicyConfig& p);
PolicyConfig policy_from_json(const nlohmann::json& j);
nlohmann::json to_json(const SessionCounters& c, std::size_t npaths);
nlohmann::json to_json(const Counters& c);
nlohmann::json to_json(const std::vector<NextHopView>& hops);

} // namespace xpmip::dataplane
