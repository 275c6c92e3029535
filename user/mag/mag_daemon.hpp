// The MAG process: load the data plane, register statically attached MNs, attach dynamic ones
// when the access-side XDP program reports their MAC, keep bindings refreshed, detach idle MNs,
// and de-register everyone on SIGTERM.
#pragma once

#include "control/control.hpp"
#include "mag/mag.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace xpmip::mag {

struct MagRunOptions {
    std::string config_file;
    bool keep_dataplane = false;
};

int run_mag(const MagRunOptions& options);
nlohmann::json bindings_view(const MobileAccessGateway& mag, Clock::time_point now,
                             const control::PageRequest& page = {}, const std::optional<std::string>& mn = {});

} // namespace xpmip::mag
