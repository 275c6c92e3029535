// The `interfaces` list of an LMA or MAG configuration: what the data plane attaches to.
#pragma once

#include "config/yaml_reader.hpp"
#include "dataplane/dataplane.hpp"

#include <vector>

namespace xpmip::config {

// Each entry: name, kind (core, core-l2, tunnel, access), realm, generic_xdp. Names unique.
std::vector<dataplane::InterfaceConfig> read_interfaces(MapReader& root);

} // namespace xpmip::config
