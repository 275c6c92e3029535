#include "control/agent.hpp"

#include "netlink/interfaces.hpp"

#include <spdlog/spdlog.h>

namespace xpmip::control {

AgentDataplane::AgentDataplane(const std::string& instance, dataplane::Role role, const dataplane::Limits& limits,
                               const std::vector<dataplane::InterfaceConfig>& interfaces, bool keep)
    : keep_(keep) {
    dataplane::DataplaneOptions o;
    o.instance = instance;
    o.role = role;
    o.limits = limits;
    dp_ = std::make_unique<dataplane::Dataplane>(o);
    try {
        for (const auto& iface : interfaces) {
            dp_->attach(iface);
            spdlog::info("interface {} attached as {} (realm {})", iface.name, dataplane::to_string(iface.kind),
                         iface.realm);
        }
    } catch (...) {
        if (!keep_) {
            dp_->unload();   // a failed start leaves nothing pinned
        }
        throw;
    }
}

AgentDataplane::~AgentDataplane() {
    if (keep_) {
        return;
    }
    try {
        dp_->unload();
    } catch (const std::exception& e) {
        spdlog::error("unloading the data plane: {}", e.what());
    }
}

std::optional<MetricsServer> open_metrics(const std::optional<std::string>& listen) {
    std::optional<MetricsServer> m;
    if (listen) {
        m.emplace(*listen);
        spdlog::info("metrics on http://{}/metrics", *listen);
    }
    return m;
}

void log_steering(const config::SteeringConfig& s) {
    for (const auto& line : config::describe_rules(s)) {
        spdlog::info("steering rule {}", line);
    }
}

bool carrier_changed(netlink::LinkMonitor& links) {
    try {
        const auto changed = links.dispatch();
        for (auto ifindex : changed) {
            spdlog::info("link {} ({}): carrier {}", netlink::interface_name(static_cast<int>(ifindex)), ifindex,
                         links.carrier(ifindex) ? "up" : "down");
        }
        return !changed.empty();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return false;
    }
}

} // namespace xpmip::control
