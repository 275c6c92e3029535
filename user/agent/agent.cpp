#include "agent/agent.hpp"

#include "agent/binding_error.hpp"
#include "agent/signals.hpp"

#include "netlink/interfaces.hpp"

#include "wire/error.hpp"
#include "common/log_limit.hpp"
#include "control/dataplane_metrics.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <net/if.h>

namespace xpmip::agent {

AgentDataplane::AgentDataplane(const std::string& instance, dataplane::Role role, const dataplane::Limits& limits,
                               const config::DataplaneTuning& tuning,
                               const std::vector<dataplane::InterfaceConfig>& interfaces,
                               const std::vector<std::string>& signaling_interfaces, bool keep)
    : keep_(keep) {
    dataplane::DataplaneOptions o;
    o.instance = instance;
    o.role = role;
    o.limits = limits;
    o.spread_cpus = tuning.spread_cpus;
    o.route_cache = tuning.route_cache;
    dp_ = std::make_unique<dataplane::Dataplane>(o);
    if (!tuning.spread_cpus.empty()) {
        spdlog::info("tunnel ingress spread over {} CPUs by inner flow", tuning.spread_cpus.size());
    }
    try {
        for (auto iface : interfaces) {
            // Trust boundaries (issue 17): signaling is dropped in XDP where no peer may be.
            iface.refuse_signaling = std::find(signaling_interfaces.begin(), signaling_interfaces.end(), iface.name) ==
                                     signaling_interfaces.end();
            dp_->attach(iface);
            spdlog::info("interface {} attached as {} (realm {})", iface.name, dataplane::to_string(iface.kind),
                         iface.realm);
        }
        next_hops_ = std::make_unique<dataplane::NextHopCache>(dp_->maps());
        next_hops_->refresh_all();   // entries a previous agent left (adopted sessions)
    } catch (...) {
        if (!keep_) {
            dp_->unload();   // a failed start leaves nothing pinned
        }
        throw;
    }
}

void AgentDataplane::watch_next_hops(EventLoop& loop) {
    loop.watch("route events", route_events_.fd(), [this] {
        const auto changes = route_events_.dispatch();
        if (changes.any()) {
            dp_->invalidate_routes();   // README "Route cache": before the next hops are re-resolved
        }
        next_hops_->on_changes(changes);
    });
    loop.after_wakeup("next hops", [this] {
        next_hops_->tick(Clock::now());
        return std::chrono::milliseconds(1000);
    });
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

void serve_metrics(control::AgentMetrics& metrics, const std::optional<std::string>& listen,
                   const dataplane::MapSet& maps) {
    if (!listen) {
        return;
    }
    metrics.add(std::make_shared<control::DataplaneEvents>(maps));
    metrics.add(std::make_shared<control::PeerTraffic>(maps, std::chrono::seconds(10)));
    metrics.serve(*listen);
    spdlog::info("metrics on http://{}/metrics", *listen);
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

void watch_agent(EventLoop& loop, int signal_fd, control::ControlServer& ctl, control::AgentMetrics& metrics,
                 netlink::LinkMonitor& links, AgentHooks hooks) {
    loop.watch("signals", signal_fd,
               [&loop, signal_fd, reload = hooks.reload, shutdown = hooks.shutdown, asked = false]() mutable {
                   for (int signo : read_signals(signal_fd)) {
                       if (signo == SIGHUP) {
                           notify_systemd("RELOADING=1", "reloading the configuration");
                           reload();
                           notify_systemd("READY=1", "configuration reload done (the log says how)");
                           continue;
                       }
                       notify_systemd("STOPPING=1", fmt::format("signal {}: stopping", signo));
                       if (asked) {
                           spdlog::info("signal {} again: stopping now", signo);
                       }
                       if (asked || shutdown(signo)) {
                           loop.stop();
                           return;
                       }
                       asked = true;
                   }
               });
    loop.watch("control socket", ctl.fd(), [&ctl, handler = hooks.control] { ctl.serve_pending(handler); });
    loop.watch("link events", links.fd(), [&links, changed = hooks.link_changed] {
        if (carrier_changed(links)) {
            changed();
        }
    });
    loop.after_wakeup("metrics", [&metrics, publish = hooks.publish_metrics] {
        publish();
        for (const auto& [reason, lines] : signaling_log_limiter().take_suppressed()) {
            metrics.log_suppressed(reason, lines);
        }
        return std::chrono::milliseconds(1000);
    });
}

std::string suppressed_note(std::uint64_t suppressed) {
    return suppressed ? fmt::format(" ({} more like it suppressed)", suppressed) : "";
}

void notify_systemd(const std::string& state, const std::string& status) {
    const std::string message = state + "\nSTATUS=" + status;
    if (const int rc = sd_notify(0, message.c_str()); rc < 0) {
        spdlog::warn("sd_notify {}: {}", state, std::strerror(-rc));
    }
}

std::uint32_t next_restart_counter(const std::string& state_directory) {
    namespace fs = std::filesystem;
    const fs::path path = fs::path(state_directory) / "restart_counter";
    try {
        fs::create_directories(state_directory);
        std::uint32_t last = 0;
        if (std::ifstream in(path); in) {
            in >> last;
        }
        const std::uint32_t now = last + 1;
        const fs::path tmp = path.string() + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << now << "\n";
            if (!out.flush()) {
                throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
            }
        }
        fs::rename(tmp, path);
        spdlog::info("restart counter {} ({})", now, path.string());
        return now;
    } catch (const std::exception& e) {
        const auto t = static_cast<std::uint32_t>(std::time(nullptr));
        spdlog::warn("restart counter: {} ({}): using the time, {}", path.string(), e.what(), t);
        return t;
    }
}

SignalingInterfaces::SignalingInterfaces(std::vector<std::string> names) : names_(std::move(names)) {
    for (const auto& n : names_) {
        ifindexes_.push_back(static_cast<std::uint32_t>(netlink::query_interface(n).ifindex));
    }
    spdlog::info("{} (signaling arriving elsewhere is dropped unread)", describe());
}

bool SignalingInterfaces::admits(std::uint32_t ifindex) const {
    return ifindex != 0 && std::find(ifindexes_.begin(), ifindexes_.end(), ifindex) != ifindexes_.end();
}

std::string SignalingInterfaces::name_of(std::uint32_t ifindex) const {
    char name[IF_NAMESIZE] = {};
    if (ifindex != 0 && if_indextoname(ifindex, name)) {
        return name;
    }
    return fmt::format("ifindex {}", ifindex);
}

std::string SignalingInterfaces::describe() const {
    return fmt::format("signaling interfaces: {}", fmt::join(names_, ", "));
}

namespace {

// RFC 6275 §9.2: an MH Type we do not know gets a Binding Error with Status 2, the way it came,
// within the process's Binding Error rate limit.
void answer_unrecognized_mh_type(transport::SignalingSocket& sock, control::AgentMetrics& metrics,
                                 const transport::Datagram& d, std::uint8_t mh_type) {
    static BindingErrorLimit limit;
    auto& limiter = signaling_log_limiter();
    std::uint64_t suppressed = 0;
    // §9.3.3: "If the source address ... does not contain a unicast address, the Binding Error
    // message MUST NOT be sent."
    if (!is_unicast(d.src)) {
        metrics.binding_error("not_unicast");
        return;
    }
    const bool answer = limit.admit(Clock::now());
    if (answer) {
        try {
            sock.send(wire::encode(unrecognized_mh_type_error()), d.dst, d.src, d.src_port);
            metrics.binding_error("sent");
        } catch (const std::exception& e) {
            spdlog::error("binding error to {}: {}", to_string(d.src), e.what());
        }
    } else {
        metrics.binding_error("rate_limited");
    }
    if (limiter.admit(to_string(d.src), "unsupported MH type", Clock::now(), &suppressed)) {
        spdlog::warn("MH type {} from {}: not one we know; {}{}", mh_type, to_string(d.src),
                     answer ? "answered with a Binding Error (status 2)" : "Binding Error rate limit reached: dropped",
                     suppressed_note(suppressed));
    }
}

} // namespace

nlohmann::json peer_view(const std::string& name, const std::vector<IpAddress>& addresses, std::int64_t bindings,
                         std::optional<Clock::time_point> last_heard, const std::vector<HeartbeatView>& heartbeats,
                         const std::map<int, std::uint64_t>& statuses, Clock::time_point now) {
    nlohmann::json addrs = nlohmann::json::array();
    for (const auto& a : addresses) {
        addrs.push_back(to_string(a));
    }
    nlohmann::json hb = nlohmann::json::array();
    for (const auto& v : heartbeats) {
        if (std::find(addresses.begin(), addresses.end(), v.remote) == addresses.end()) {
            continue;
        }
        hb.push_back({{"address", to_string(v.remote)},
                      {"local", to_string(v.local)},
                      {"state", v.state},
                      {"restart_counter", v.restart_counter ? nlohmann::json(*v.restart_counter) : nlohmann::json()},
                      {"missed", v.missed}});
    }
    nlohmann::json by_status = nlohmann::json::object();
    for (const auto& [code, n] : statuses) {
        by_status[std::to_string(code)] = n;
    }
    nlohmann::json ago;
    if (last_heard) {
        ago = std::chrono::duration<double>(now - *last_heard).count();
    }
    return {{"peer", name},       {"addresses", addrs}, {"bindings", bindings}, {"last_heard_s_ago", ago},
            {"heartbeat", hb},    {"pba_status", by_status}};
}

std::vector<HeartbeatEvent> on_binding_error(control::AgentMetrics& metrics, const transport::Datagram& d,
                                             const wire::BindingError& be, HeartbeatMonitor& heartbeat) {
    metrics.binding_error("received");
    std::uint64_t suppressed = 0;
    if (signaling_log_limiter().admit(to_string(d.src), "binding error", Clock::now(), &suppressed)) {
        const char* what = be.status == wire::be_status::kUnrecognizedMhType ? " (MH Type not recognized)"
                           : be.status == wire::be_status::kUnknownBindingForHomeAddressOption
                               ? " (unknown binding for the Home Address option)"
                               : "";
        spdlog::warn("Binding Error status {}{} from {} (home address {}){}", be.status, what, to_string(d.src),
                     be.home_address.to_string(), suppressed_note(suppressed));
    }
    std::vector<HeartbeatEvent> events;
    if (be.status == wire::be_status::kUnrecognizedMhType) {
        heartbeat.on_refused(d.src, Clock::now(), events);
    }
    return events;
}

void receive_messages(transport::SignalingSocket& sock, control::AgentMetrics& metrics,
                      const SignalingInterfaces& allowed,
                      const std::function<void(const transport::Datagram&, wire::MobilityMessage&)>& on_message,
                      const std::function<void()>& after_batch) {
    auto& limiter = signaling_log_limiter();
    std::uint64_t suppressed = 0;
    // A batch per recvmmsg; after each, the answers it produced go out together (sendmmsg). At
    // most kMaxBatches per wake-up: under a flood the loop (poll is level-triggered) comes back,
    // and the other socket, the timers and the control socket get their turn in between.
    constexpr int kMaxBatches = 16;
    for (int i = 0; i < kMaxBatches; ++i) {
        const auto& batch = sock.receive_batch();
        if (batch.empty()) {
            break;
        }
        for (const auto& d : batch) {
            if (!allowed.admits(d.ifindex)) {
                // A MAG's (LMA's) address from a network it is not on: spoofed; not even parsed.
                metrics.refused_interface();
                if (limiter.admit(to_string(d.src), "wrong interface", Clock::now(), &suppressed)) {
                    spdlog::warn("signaling from {} arrived on {} ({}), which is not a signaling interface: "
                                 "dropped{}", to_string(d.src), allowed.name_of(d.ifindex), allowed.describe(),
                                 suppressed_note(suppressed));
                }
                continue;
            }
            try {
                auto msg = wire::decode(d.mh);
                on_message(d, msg);
            } catch (const wire::UnsupportedMessageError& e) {
                answer_unrecognized_mh_type(sock, metrics, d, e.mh_type());
            } catch (const wire::WireError& e) {
                metrics.malformed();
                if (limiter.admit(to_string(d.src), "malformed", Clock::now(), &suppressed)) {
                    spdlog::warn("malformed message from {} ({} octets) dropped: {}{}", to_string(d.src), d.mh.size(),
                                 e.what(), suppressed_note(suppressed));
                }
            } catch (const std::exception& e) {
                if (limiter.admit(to_string(d.src), "error", Clock::now(), &suppressed)) {
                    spdlog::error("message from {}: {}{}", to_string(d.src), e.what(), suppressed_note(suppressed));
                }
            }
        }
        if (after_batch) {
            after_batch();
        }
    }
}

} // namespace xpmip::agent
