// What both agents (LMA and MAG) do the same way around their registration logic: own the data
// plane for the process's lifetime, and serve signals, the control socket, the metrics endpoint
// and carrier changes from the one event loop.
#pragma once

#include "agent/heartbeat.hpp"

#include "agent/event_loop.hpp"
#include "control/control.hpp"
#include "control/metrics.hpp"
#include "transport/signaling_socket.hpp"
#include "wire/messages.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/next_hops.hpp"
#include "config/interfaces_config.hpp"
#include "config/steering_config.hpp"
#include "netlink/link_monitor.hpp"

#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::agent {

// Loads the instance's data plane and attaches it to every configured interface; unloads it
// (detach, unpin) when destroyed unless `keep` (--keep-dataplane).
class AgentDataplane {
public:
    AgentDataplane(const std::string& instance, dataplane::Role role, const dataplane::Limits& limits,
                   const config::DataplaneTuning& tuning,
                   const std::vector<dataplane::InterfaceConfig>& interfaces,
                   const std::vector<std::string>& signaling_interfaces, bool keep);
    ~AgentDataplane();
    AgentDataplane(const AgentDataplane&) = delete;
    AgentDataplane& operator=(const AgentDataplane&) = delete;

    dataplane::Dataplane& operator*() { return *dp_; }
    dataplane::Dataplane* operator->() { return dp_.get(); }

    // Keep the next-hop cache (README "Next hops") from `loop`: route and neighbour events, and
    // the periodic passes.
    void watch_next_hops(EventLoop& loop);

private:
    std::unique_ptr<dataplane::Dataplane> dp_;
    bool keep_;
    netlink::RouteEvents route_events_;
    std::unique_ptr<dataplane::NextHopCache> next_hops_;
};

// The Prometheus endpoint when the configuration asks for one: the data plane's collectors
// (events at every scrape, traffic by peer and path from a background pass) and the exposer.
void serve_metrics(control::AgentMetrics& metrics, const std::optional<std::string>& listen,
                   const dataplane::MapSet& maps);

// Log the steering rules (RFC 8278 §3.2) an agent writes into its data plane.
void log_steering(const config::SteeringConfig& s);

// Read pending link events and log every carrier change; true when one changed (RFC 8278
// failover then recomputes the paths). Errors are logged, not thrown.
bool carrier_changed(netlink::LinkMonitor& links);

// " (N more like it suppressed)" for a rate-limited log line, or nothing.
std::string suppressed_note(std::uint64_t suppressed);

// A configuration just loaded, after its log_level took effect (before anything else logs).
template <class Config>
Config with_log_level(Config c) {
    spdlog::set_level(spdlog::level::from_str(c.log_level));
    return c;
}

// What the common part of an agent asks of its role.
struct AgentHooks {
    std::function<void()> reload;                     // SIGHUP: re-read the configuration
    // SIGTERM / SIGINT. True: the loop stops now; false: the role stops it once it is done (a
    // second signal stops it at once).
    std::function<bool(int signo)> shutdown;
    control::ControlServer::Handler control;          // a control socket request
    std::function<void()> link_changed;               // a carrier changed (RFC 8278 failover)
    std::function<void()> publish_metrics;            // after a wake-up: what changed, into the gauges
};

// Signals, control socket requests, link events and the metrics' publishing as named handlers of
// `loop`. The fds stay the caller's (they must outlive the loop's run()).
void watch_agent(EventLoop& loop, int signal_fd, control::ControlServer& ctl, control::AgentMetrics& metrics,
                 netlink::LinkMonitor& links, AgentHooks hooks);

// Every datagram waiting on `sock`, decoded: on_message gets it; malformed ones are counted, logged
// with their source (rate limited per source: README "Logs under attack") and dropped
// (RFC 6275 §9.2: silently, for the peer). They are read a batch at a time (recvmmsg);
// after_batch runs after each (the LMA sends the batch's PBAs then, with one sendmmsg).
// The interfaces signaling may arrive on (README "Trust boundaries"): the `tunnel` interfaces, or
// the configured `signaling_interfaces`; resolved to ifindexes once, at start.
class SignalingInterfaces {
public:
    explicit SignalingInterfaces(std::vector<std::string> names);
    bool admits(std::uint32_t ifindex) const;   // 0 (arrival unknown) is not admitted
    std::string name_of(std::uint32_t ifindex) const;
    std::string describe() const;                // "signaling interfaces: tun0, tun1"

private:
    std::vector<std::string> names_;
    std::vector<std::uint32_t> ifindexes_;
};

// systemd's service notification (sd_notify(3)): "READY=1" once the data plane is attached and
// the sockets are open, "RELOADING=1" / "READY=1" around a SIGHUP, "STOPPING=1" at SIGTERM, each
// with a STATUS= line. Nothing when not started by systemd (no NOTIFY_SOCKET).
void notify_systemd(const std::string& state, const std::string& status);

// RFC 5847 §6.2: this start's Restart Counter, one more than the last start's, kept in
// `state_directory`/restart_counter. Where that cannot be written, the time in seconds (it
// still changes at every restart, which is all a peer looks at).
std::uint32_t next_restart_counter(const std::string& state_directory);

// `show peers`: one peer as a row: its addresses, bindings, when it was last heard from (a PBU
// at the LMA, a PBA at the MAG), the heartbeat state of each of its addresses and the PBAs by
// status code.
nlohmann::json peer_view(const std::string& name, const std::vector<IpAddress>& addresses, std::int64_t bindings,
                         std::optional<Clock::time_point> last_heard, const std::vector<HeartbeatView>& heartbeats,
                         const std::map<int, std::uint64_t>& statuses, Clock::time_point now);

// A Binding Error received (RFC 6275 §6.1.9): counted and logged (rate limited), never answered.
// Status 2 (§9.2) while a heartbeat of ours to its source is outstanding: the peer does not do
// RFC 5847 (HeartbeatMonitor::on_refused); the events that gives are returned.
std::vector<HeartbeatEvent> on_binding_error(control::AgentMetrics& metrics, const transport::Datagram& d,
                                             const wire::BindingError& be, HeartbeatMonitor& heartbeat);

void receive_messages(transport::SignalingSocket& sock, control::AgentMetrics& metrics,
                      const SignalingInterfaces& allowed,
                      const std::function<void(const transport::Datagram&, wire::MobilityMessage&)>& on_message,
                      const std::function<void()>& after_batch = nullptr);

} // namespace xpmip::agent
