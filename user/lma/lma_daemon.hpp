// The LMA process: load the data plane, open the signaling sockets, and run the registration
// logic until SIGTERM/SIGINT. SIGHUP re-reads the configuration's policy without touching
// bindings.
#pragma once

#include "control/control.hpp"
#include "lma/lma.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace xpmip::lma {

struct LmaRunOptions {
    std::string config_file;
    bool keep_dataplane = false;   // leave maps and programs pinned at exit (default: unload)
};

// Returns the process exit status. Throws config::ConfigError for a bad configuration.
int run_lma(const LmaRunOptions& options);
// The binding cache as `xpmip show bindings` prints it, one page: {"result": [...], "next": the
// last MN-ID when more follow, else null}; with `mn`, that MN's entry only.
nlohmann::json bindings_view(const LocalMobilityAnchor& lma, Clock::time_point now,
                             const control::PageRequest& page = {}, const std::optional<std::string>& mn = {});

} // namespace xpmip::lma
