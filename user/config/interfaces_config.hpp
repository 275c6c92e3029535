// The `interfaces` list of an LMA or MAG configuration: what the data plane attaches to.
#pragma once

#include "config/yaml_reader.hpp"
#include "dataplane/dataplane.hpp"

#include <vector>

namespace xpmip::config {

// Each entry: name, kind (core, core-l2, tunnel, access), realm, generic_xdp. Names unique.
std::vector<dataplane::InterfaceConfig> read_interfaces(MapReader& root);

// `dataplane: {spread_cpus: ...}`: the CPUs tunnel ingress is spread over ("all", "none", or
// CPU ids and ranges, as a list or "0-3,6"); none when absent.
std::vector<unsigned> read_spread_cpus(MapReader& root);

} // namespace xpmip::config
