// The `interfaces` list of an LMA or MAG configuration: what the data plane attaches to.
#pragma once

#include "config/yaml_reader.hpp"
#include "dataplane/dataplane.hpp"

#include <vector>

namespace xpmip::config {

// `state_directory` (issue 17: the journal, the restart counter): absolute, default
// /var/lib/xpmip/<instance>; `role` names the agent in the error ("LMA", "MAG").
std::string read_state_directory(MapReader& root, const std::string& instance, const char* role);

// Each entry: name, kind (core, core-l2, tunnel, access), realm, generic_xdp. Names unique.
// `signaling_interfaces:` the interfaces PBUs/PBAs may arrive on (README "Trust boundaries");
// default: every `tunnel` interface. Signaling from anywhere else is dropped unread.
std::vector<std::string> read_signaling_interfaces(MapReader& root,
                                                   const std::vector<dataplane::InterfaceConfig>& interfaces);

std::vector<dataplane::InterfaceConfig> read_interfaces(MapReader& root);

// `dataplane:`, how the data plane runs (defaults when absent).
struct DataplaneTuning {
    // spread_cpus: the CPUs tunnel ingress is spread over ("all", "none", or CPU ids and ranges,
    // as a list or "0-3,6"; README "Every core for one tunnel").
    std::vector<unsigned> spread_cpus;
    // route_cache: the LMA uplink remembers routes toward correspondents (README "Route cache").
    bool route_cache = true;
};
DataplaneTuning read_dataplane(MapReader& root);

} // namespace xpmip::config
