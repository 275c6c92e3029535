// What both agents do the same way around their registration logic: own the data plane for
// the process's lifetime, and open the optional metrics endpoint.
#pragma once

#include "control/metrics.hpp"
#include "dataplane/dataplane.hpp"
#include "config/steering_config.hpp"
#include "netlink/link_monitor.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::control {

// Loads the instance's data plane and attaches it to every configured interface; unloads it
// (detach, unpin) when destroyed unless `keep` (--keep-dataplane).
class AgentDataplane {
public:
    AgentDataplane(const std::string& instance, dataplane::Role role, const dataplane::Limits& limits,
                   const std::vector<dataplane::InterfaceConfig>& interfaces, bool keep);
    ~AgentDataplane();
    AgentDataplane(const AgentDataplane&) = delete;
    AgentDataplane& operator=(const AgentDataplane&) = delete;

    dataplane::Dataplane& operator*() { return *dp_; }
    dataplane::Dataplane* operator->() { return dp_.get(); }

private:
    std::unique_ptr<dataplane::Dataplane> dp_;
    bool keep_;
};

// The Prometheus endpoint when the configuration asks for one.
std::optional<MetricsServer> open_metrics(const std::optional<std::string>& listen);

// Log the steering rules (RFC 8278 §3.2) an agent writes into its data plane.
void log_steering(const config::SteeringConfig& s);

// Read pending link events and log every carrier change; true when one changed (RFC 8278
// failover then recomputes the paths). Errors are logged, not thrown.
bool carrier_changed(netlink::LinkMonitor& links);

} // namespace xpmip::control
