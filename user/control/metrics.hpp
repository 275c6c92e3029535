// Prometheus metrics (text exposition format 0.0.4) over a minimal HTTP/1.0 endpoint: GET /metrics.
#pragma once

#include "common/address.hpp"
#include "common/fd.hpp"
#include "dataplane/maps.hpp"
#include "dataplane/session_table.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace xpmip::control {

class MetricsServer {
public:
    // `listen` is "address:port" ("127.0.0.1:9430", "[::1]:9430", ":9430" for any).
    explicit MetricsServer(const std::string& listen);
    int fd() const { return fd_.get(); }
    // Answer one client: GET /metrics -> render(); anything else 404.
    void serve_one(const std::function<std::string()>& render);

private:
    UniqueFd fd_;
};

// Counts of signaling messages by status name, e.g. {"ACCEPTED": 3, "GRE_KEY_OPTION_REQUIRED": 1}.
using StatusCounts = std::map<std::string, std::uint64_t>;

struct AgentMetrics {
    std::string role;                             // "lma" or "mag"
    std::uint64_t pbu_received = 0;               // LMA
    std::uint64_t pbu_sent = 0;                   // MAG
    StatusCounts pba;                             // LMA: sent, MAG: received
    std::uint64_t malformed = 0;
    std::uint64_t bindings = 0;
    std::map<std::uint32_t, std::string> session_mn;   // session id -> MN-ID, for labels
};

// The whole exposition: agent counters, data plane sessions/paths counters, drops by reason.
std::string render_metrics(const AgentMetrics& agent, const dataplane::MapSet& maps,
                           const dataplane::SessionTable& sessions);

} // namespace xpmip::control
