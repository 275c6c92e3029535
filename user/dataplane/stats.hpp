// The data plane's global counters (drops by reason, notable events), summed over CPUs.
#pragma once

#include "dataplane/maps.hpp"

#include <array>
#include <string_view>

namespace xpmip::dataplane {

using Counters = std::array<std::uint64_t, XPMIP_STAT_MAX>;

// "drop_unknown_key", "pass_no_neigh", ... (stable names: logs, metrics, tests).
std::string_view stat_name(unsigned stat);
Counters read_counters(const MapSet& maps);
void reset_counters(const MapSet& maps);

} // namespace xpmip::dataplane
