#include "lma/lma_daemon.hpp"

#include "common/fd.hpp"
#include "control/agent.hpp"
#include "control/control.hpp"
#include "control/metrics.hpp"
#include "dataplane/dataplane.hpp"
#include "lma/lma.hpp"
#include "netlink/interfaces.hpp"
#include "netlink/link_monitor.hpp"
#include "transport/daemon_util.hpp"
#include "transport/signaling_socket.hpp"
#include "wire/error.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <csignal>
#include <sys/signalfd.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace xpmip::lma {

namespace {

class DataplaneSink : public SessionSink {
public:
    DataplaneSink(dataplane::Dataplane& dp, const LmaConfig& cfg, const netlink::LinkMonitor& links)
        : dp_(dp), cfg_(cfg), links_(links) {}
    bool link_up(std::uint32_t ifindex) override { return links_.carrier(ifindex); }
    void upsert(const dataplane::SessionConfig& s) override { dp_.sessions().upsert(s); }
    void remove(std::uint32_t id) override { dp_.sessions().remove(id); }
    std::uint32_t realm_ifindex(std::uint32_t realm) override {
        // Asked on every registration; the interfaces were attached by name at start-up, so
        // their ifindexes are asked of netlink once.
        if (auto it = ifindex_.find(realm); it != ifindex_.end()) {
            return it->second;
        }
        const Realm* r = cfg_.realm(realm);
        if (!r) {
            throw std::runtime_error(fmt::format("realm {} is not configured", realm));
        }
        auto ifindex = static_cast<std::uint32_t>(netlink::query_interface(r->interface).ifindex);
        ifindex_[realm] = ifindex;
        return ifindex;
    }

private:
    dataplane::Dataplane& dp_;
    const LmaConfig& cfg_;
    const netlink::LinkMonitor& links_;
    std::map<std::uint32_t, std::uint32_t> ifindex_;   // realm -> its core interface
};

} // namespace

nlohmann::json bindings_view(const LocalMobilityAnchor& lma, Clock::time_point now) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [id, e] : lma.cache().entries()) {
        nlohmann::json b{{"mn", id},
                         {"mag", to_string(e.proxy_coa)},
                         {"transport", e.transport == wire::Transport::Ipv6 ? "ipv6" : "ipv4-udp"},
                         {"realm", e.realm},
                         {"state", e.deregistered ? "deregistered" : "registered"},
                         {"lifetime", e.lifetime.count()},
                         {"remaining", std::chrono::duration_cast<std::chrono::seconds>(
                                           (e.deregistered ? e.delete_at : e.expires) - now).count()},
                         {"gre", e.gre},
                         {"key_downlink", control::json_or_null(e.key_downlink)},
                         {"key_uplink", control::json_or_null(e.key_uplink)},
                         {"tlv", e.tlv_header},
                         {"session", e.session_id}};
        b["hnp"] = control::json_or_null(e.hnp);
        b["hoa"] = control::json_or_null(e.ipv4_hoa);
        b["multipath"] = e.multipath;
        if (e.multipath) {
            // RFC 8278: one row per binding; the keys above are the bindings' (none of the session).
            b["mag_id"] = e.mag_id;
            nlohmann::json paths = nlohmann::json::array();
            for (const auto& [binding_id, p] : e.bindings) {
                const std::uint8_t bid = binding_id;
                const bool up = std::any_of(e.session.paths.begin(), e.session.paths.end(),
                                            [bid](const auto& sp) { return sp.bid == bid && sp.up; });
                paths.push_back({{"bid", bid},
                                 {"label", p.label},
                                 {"label_name", lma.config().steering.label_name(p.label)},
                                 {"if_att", p.if_att},
                                 {"mag", to_string(p.proxy_coa)},
                                 {"lma", to_string(p.lma_address)},
                                 {"up", e.in_dataplane && up},
                                 {"remaining", std::chrono::duration_cast<std::chrono::seconds>(p.expires - now).count()},
                                 {"gre", p.gre},
                                 {"key_downlink", control::json_or_null(p.key_downlink)},
                                 {"key_uplink", control::json_or_null(p.key_uplink)},
                                 {"tlv", p.tlv_header}});
            }
            b["paths"] = paths;
        }
        out.push_back(b);
    }
    return out;
}

int run_lma(const LmaRunOptions& options) {
    // Signals blocked from the start: a SIGTERM while the data plane loads is handled by the
    // loop (clean unload), not by the default action (pins left behind).
    UniqueFd sfd = transport::signal_fd();
    LmaConfig cfg = load_lma_config(options.config_file);
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));

    control::AgentDataplane agent_dp(cfg.instance, dataplane::Role::Lma, cfg.limits, cfg.interfaces,
                                     options.keep_dataplane);
    dataplane::Dataplane& dp = *agent_dp;

    netlink::LinkMonitor links;
    DataplaneSink sink(dp, cfg, links);
    LocalMobilityAnchor lma(cfg, sink);
    // RFC 8278 §3.2 routing rules: one policy for every multipath session.
    auto install_steering = [&](const config::SteeringConfig& st) {
        dp.sessions().set_policy(config::kSteeringPolicyId, st.policy);
        control::log_steering(st);
    };
    install_steering(cfg.steering);

    std::vector<transport::SignalingSocket> sockets;
    bool v6 = false, v4 = false;
    for (const auto& a : cfg.addresses) {
        (is_ipv4(a) ? v4 : v6) = true;
    }
    if (v6) {
        sockets.push_back(transport::SignalingSocket::open_ipv6());
    }
    if (v4) {
        sockets.push_back(transport::SignalingSocket::open_ipv4_udp());
    }
    control::ControlServer ctl(control::socket_path(cfg.instance));
    auto handle = [&](const nlohmann::json& req) -> nlohmann::json {
        const auto cmd = req.value("command", "");
        if (cmd != "show") {
            throw control::ControlError(fmt::format("an LMA does not do '{}' (show only)", cmd));
        }
        const auto what = req.value("what", "");
        if (what == "bindings") {
            return {{"role", "lma"}, {"result", bindings_view(lma, Clock::now())}};
        }
        return {{"role", "lma"}, {"result", control::show_from_dataplane(what, dp.maps(), dp.sessions())}};
    };
    UniqueFd tfd = transport::timer_fd();
    spdlog::info("LMA '{}' up: {} realm(s), {} peer(s), {} mobile node(s), {} mobile node domain(s)", cfg.instance,
                 cfg.realms.size(), cfg.peers.size(), cfg.mobile_nodes.size(), cfg.mobile_node_domains.size());

    control::AgentMetrics metrics;
    metrics.role = "lma";
    auto metrics_server = control::open_metrics(cfg.metrics);
    auto render_metrics = [&]() {
        metrics.bindings = lma.cache().size();
        metrics.session_mn.clear();
        for (const auto& [id, e] : lma.cache().entries()) {
            metrics.session_mn[e.session_id] = id;
        }
        return control::render_metrics(metrics, dp.maps(), dp.sessions());
    };
    auto send_all = [&](const std::vector<OutgoingPba>& replies) {
        for (const auto& r : replies) {
            ++metrics.pba[std::string(wire::status_name(r.pba.status))];
            for (auto& s : sockets) {
                if (s.transport() != r.transport) {
                    continue;
                }
                try {
                    s.send(wire::encode(r.pba), r.src, r.dst, r.dst_port);
                } catch (const std::exception& e) {
                    spdlog::error("PBA to {}: {}", to_string(r.dst), e.what());
                }
            }
        }
    };

    for (;;) {
        transport::arm_timer(tfd.get(), lma.next_deadline());
        std::vector<pollfd> fds;
        fds.push_back({sfd.get(), POLLIN, 0});
        fds.push_back({tfd.get(), POLLIN, 0});
        fds.push_back({ctl.fd(), POLLIN, 0});
        fds.push_back({metrics_server ? metrics_server->fd() : -1, POLLIN, 0});
        fds.push_back({links.fd(), POLLIN, 0});
        for (auto& s : sockets) {
            fds.push_back({s.fd(), POLLIN, 0});
        }
        if (poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
        }
        if (fds[0].revents & POLLIN) {
            signalfd_siginfo si{};
            while (read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                    try {
                        auto fresh = load_lma_config(options.config_file);
                        install_steering(fresh.steering);
                        lma.reload(std::move(fresh));
                        spdlog::set_level(spdlog::level::from_str(lma.config().log_level));
                        spdlog::info("configuration reloaded from {}", options.config_file);
                    } catch (const std::exception& e) {
                        spdlog::error("reload refused, the running configuration stays: {}", e.what());
                    }
                } else {
                    spdlog::info("signal {}: shutting down ({} binding(s))", si.ssi_signo, lma.cache().size());
                    return 0;
                }
            }
        }
        if (fds[1].revents & POLLIN) {
            std::uint64_t ticks = 0;
            [[maybe_unused]] auto n = read(tfd.get(), &ticks, sizeof(ticks));
            send_all(lma.on_timer(Clock::now()));
        }
        if (fds[2].revents & POLLIN) {
            ctl.serve_one(handle);
        }
        if (metrics_server && (fds[3].revents & POLLIN)) {
            metrics_server->serve_one(render_metrics);
        }
        if (fds[4].revents & POLLIN) {
            if (control::carrier_changed(links)) {
                lma.on_link_change();
            }
        }
        for (std::size_t i = 0; i < sockets.size(); ++i) {
            if (!(fds[5 + i].revents & POLLIN)) {
                continue;
            }
            while (auto d = sockets[i].receive()) {
                try {
                    auto msg = wire::decode(d->mh);
                    if (auto* pbu = std::get_if<wire::ProxyBindingUpdate>(&msg)) {
                        ++metrics.pbu_received;
                        send_all(lma.on_pbu(IncomingPbu{d->transport, d->src, d->dst, d->src_port, *pbu, d->ifindex}, Clock::now()));
                    } else {
                        spdlog::warn("a PBA from {}: an LMA expects none, dropped", to_string(d->src));
                    }
                } catch (const wire::WireError& e) {
                    ++metrics.malformed;
                    spdlog::warn("malformed message from {} ({} octets) dropped: {}", to_string(d->src), d->mh.size(),
                                 e.what());
                } catch (const std::exception& e) {
                    spdlog::error("message from {}: {}", to_string(d->src), e.what());
                }
            }
        }
    }
}

} // namespace xpmip::lma
