#include "lma/lma_daemon.hpp"

#include "common/fd.hpp"
#include "agent/agent.hpp"
#include "agent/heartbeat.hpp"
#include "agent/signals.hpp"
#include "control/control.hpp"
#include "control/metrics.hpp"
#include "dataplane/dataplane.hpp"
#include "lma/lma.hpp"
#include "netlink/interfaces.hpp"
#include "netlink/link_monitor.hpp"
#include "transport/signaling_socket.hpp"
#include "wire/error.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <map>

namespace xpmip::lma {

namespace {

class DataplaneSink : public SessionSink {
public:
    DataplaneSink(dataplane::Dataplane& dp, const LmaConfig& cfg, const netlink::LinkMonitor& links)
        : dp_(dp), cfg_(cfg), links_(links) {}
    bool link_up(std::uint32_t ifindex) override { return links_.carrier(ifindex); }
    bool peer_answers(const IpAddress& address) override { return !silent_.contains(address); }
    void set_peer_answers(const IpAddress& address, bool answers) {
        if (answers) {
            silent_.erase(address);
        } else {
            silent_.insert(address);
        }
    }
    void upsert(const dataplane::SessionConfig& s) override { dp_.sessions().upsert(s); }
    std::vector<dataplane::SessionConfig> held_sessions() override { return dp_.sessions().list(); }
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
    std::set<IpAddress> silent_;   // MAG addresses whose heartbeats go unanswered (RFC 5847)
};

} // namespace

namespace {

nlohmann::json binding_view(const LocalMobilityAnchor& lma, const std::string& id, const BindingCacheEntry& e,
                            Clock::time_point now) {
    nlohmann::json b{{"mn", id},
                     {"mag", to_string(e.proxy_coa)},
                     {"transport", e.transport == wire::Transport::Ipv6 ? "ipv6" : "ipv4-udp"},
                     {"realm", e.realm},
                     {"state", e.deregistered ? "deregistered" : "registered"},
                     {"lifetime", e.lifetime.count()},
                     {"remaining", std::chrono::duration_cast<std::chrono::seconds>(
                                       e.expires - now).count()},
                     {"gre", e.gre},
                     {"key_downlink", control::json_or_null(e.key_downlink)},
                     {"key_uplink", control::json_or_null(e.key_uplink)},
                     {"tlv", e.tlv_header},
                     {"session", e.session_id}};
    b["hnp"] = control::json_or_null(e.hnp);
    b["hoa"] = control::json_or_null(e.ipv4_hoa);
    b["multipath"] = static_cast<bool>(e.multipath);
    if (e.multipath) {
        // RFC 8278: one row per binding; the keys above are the bindings' (none of the session).
        b["mag_id"] = e.multipath->mag_id;
        nlohmann::json paths = nlohmann::json::array();
        for (const auto& [binding_id, p] : e.multipath->bindings) {
            const std::uint8_t bid = binding_id;
            paths.push_back({{"bid", bid},
                             {"label", p.label},
                             {"label_name", lma.config().steering.label_name(p.label)},
                             {"if_att", p.if_att},
                             {"mag", to_string(p.proxy_coa)},
                             {"lma", to_string(p.lma_address)},
                             {"up", e.in_dataplane && p.path_up},
                             {"remaining", std::chrono::duration_cast<std::chrono::seconds>(p.expires - now).count()},
                             {"gre", p.gre},
                             {"key_downlink", control::json_or_null(p.key_downlink)},
                             {"key_uplink", control::json_or_null(p.key_uplink)},
                             {"tlv", p.tlv_header}});
        }
        b["paths"] = paths;
    }
    return b;
}

} // namespace

nlohmann::json bindings_view(const LocalMobilityAnchor& lma, Clock::time_point now, const control::PageRequest& page,
                             const std::optional<std::string>& mn) {
    return control::mn_page(lma.cache().entries(), page, mn,
                            [&](const std::string& id, const auto& e) { return binding_view(lma, id, e, now); });
}

namespace {

// The signaling sockets of the LMA's address families (RFC 5213 over IPv6, RFC 5844 UDP 5436).
std::vector<transport::SignalingSocket> open_sockets(const LmaConfig& cfg) {
    std::vector<transport::SignalingSocket> sockets;
    const bool v6 = std::any_of(cfg.addresses.begin(), cfg.addresses.end(), [](const auto& a) { return !is_ipv4(a); });
    const bool v4 = std::any_of(cfg.addresses.begin(), cfg.addresses.end(), [](const auto& a) { return is_ipv4(a); });
    if (v6) {
        sockets.push_back(transport::SignalingSocket::open_ipv6());
    }
    if (v4) {
        sockets.push_back(transport::SignalingSocket::open_ipv4_udp());
    }
    return sockets;
}

// RFC 5847 from the LMA: every configured MAG address, from our address of its family.
std::vector<agent::HeartbeatPeer> heartbeat_peers(const LmaConfig& cfg) {
    std::vector<agent::HeartbeatPeer> out;
    for (const auto& peer : cfg.peers) {
        for (const auto& a : peer.addresses) {
            for (const auto& ours : cfg.addresses) {
                if (is_ipv4(ours) == is_ipv4(a)) {
                    out.push_back({ours, a});
                    break;
                }
            }
        }
    }
    return out;
}

// The running LMA: its logic, data plane, sockets and the handlers the event loop calls.
class LmaDaemon {
public:
    explicit LmaDaemon(const LmaRunOptions& options, UniqueFd signals)
        : options_(options), signals_(std::move(signals)), cfg_(agent::with_log_level(load_lma_config(options.config_file))),
          agent_dp_(cfg_.instance, dataplane::Role::Lma, cfg_.limits, cfg_.dataplane, cfg_.interfaces, cfg_.signaling_interfaces,
                    options.keep_dataplane),
          sink_(*agent_dp_, cfg_, links_), lma_(cfg_, sink_), sockets_(open_sockets(cfg_)),
          ctl_(control::socket_path(cfg_.instance)) {
        agent::serve_metrics(metrics_, cfg_.metrics, agent_dp_->maps());
        install_steering(cfg_.steering);
        restore_bindings();
    }

    int run() {
        agent::EventLoop loop;
        agent::watch_agent(loop, signals_.get(), ctl_, metrics_, links_,
                           {.reload = [this] { reload(); },
                            .shutdown = [this](int signo) {
                                spdlog::info("signal {}: shutting down ({} binding(s))", signo, lma_.cache().size());
                                return true;
                            },
                            .control = [this](const nlohmann::json& req) { return control(req); },
                            .link_changed = [this] { lma_.on_link_change(); },
                            .publish_metrics = [this] { lma_.binding_classes().publish(metrics_); }});
        agent_dp_.watch_next_hops(loop);
        loop.deadline("binding timers", [this] { return lma_.next_deadline(); },
                      [this] {
                          send(lma_.on_timer(Clock::now()));
                          flush();
                      });
        for (auto& sock : sockets_) {
            loop.watch(sock.transport() == wire::Transport::Ipv6 ? "MH socket" : "UDP 5436 socket", sock.fd(),
                       [this, &sock] { receive(sock); });
        }
        loop.deadline("revocations", [this] { return lma_.next_revocation_deadline(); },
                      [this] { send_bris(lma_.on_revocation_timer(Clock::now())); });
        loop.deadline("heartbeats", [this] { return heartbeat_.next_deadline(); },
                      [this] { on_heartbeat_events(heartbeat_.on_timer(Clock::now())); });
        spdlog::info("LMA '{}' up: {} realm(s), {} peer(s), {} mobile node(s), {} mobile node domain(s)",
                     cfg_.instance, cfg_.realms.size(), cfg_.peers.size(), cfg_.mobile_nodes.size(),
                     cfg_.mobile_node_domains.size());
        agent::notify_systemd("READY=1", fmt::format("LMA '{}' up", cfg_.instance));
        loop.run();
        return 0;
    }

private:
    // Issue 17: the bindings of the previous run back from the journal, and the data plane
    // (pinned, so a kill -9 left it forwarding) made to match them, before the first PBU.
    void restore_bindings() {
        JournalRecovery recovered;
        if (cfg_.journal) {
            journal_ = std::make_unique<BindingJournal>(cfg_.state_directory);
            recovered = journal_->take_recovery();
            for (const auto& loss : recovered.losses) {
                spdlog::error("binding journal: {}", loss);
            }
            lma_.attach_journal(journal_.get());
        }
        const std::size_t journaled = recovered.entries.size();
        const auto r = lma_.restore(std::move(recovered.entries), Clock::now());
        if (journal_) {
            journal_->flush();
            spdlog::info("binding journal {}: {} record(s) read, {} binding(s) restored, {} dropped (generation {})",
                         cfg_.state_directory, recovered.records, r.bindings, journaled - r.bindings,
                         journal_->generation());
        } else {
            spdlog::warn("journal: false: bindings do not survive a restart");
        }
        spdlog::info("data plane: {} session(s) adopted as they were, {} written, {} orphan(s) removed", r.sessions_kept,
                     r.sessions_written, r.orphans_removed);
        const auto now = Clock::now();
        for (const auto& [id, e] : lma_.cache().entries()) {   // (the MAGs it holds bindings of: heartbeats at once)
            heartbeat_.heard(e.proxy_coa, now);
            for (const auto& [bid, b] : bindings_of(e)) {
                heartbeat_.heard(b.proxy_coa, now);
            }
        }
    }

    // The journal's records of this wake-up reach the kernel before its PBAs leave (a MAG told
    // "accepted" finds the binding after a kill -9); a compaction starts when one is due.
    void flush_journal() {
        if (!journal_) {
            return;
        }
        journal_->tend(lma_.cache());
    }

    // RFC 8278 §3.2 routing rules: one policy for every multipath session.
    void install_steering(const config::SteeringConfig& st) {
        agent_dp_->sessions().set_policy(config::kSteeringPolicyId, st.policy);
        agent::log_steering(st);
    }

    void reload() {
        try {
            auto fresh = load_lma_config(options_.config_file);
            install_steering(fresh.steering);
            lma_.reload(std::move(fresh));
            spdlog::set_level(spdlog::level::from_str(lma_.config().log_level));
            spdlog::info("configuration reloaded from {}", options_.config_file);
            send_bris(lma_.revoke_unauthorized(Clock::now()));   // (RFC 5846: the MAGs learn of it)
        } catch (const std::exception& e) {
            spdlog::error("reload refused, the running configuration stays: {}", e.what());
        }
    }

    // One bounded step of the event loop per request: views are paged (README "Control socket").
    nlohmann::json control(const nlohmann::json& req) {
        const auto cmd = req.value("command", "");
        if (cmd == "revoke") {
            return revoke(req);
        }
        if (cmd != "show") {
            throw control::ControlError(fmt::format("an LMA does not do '{}' (show, revoke)", cmd));
        }
        const auto what = req.value("what", "");
        const auto page = control::page_request(req);
        nlohmann::json answer;
        if (what == "bindings") {
            std::optional<std::string> mn;
            if (req.contains("mn")) {
                mn = req["mn"].get<std::string>();
            }
            answer = bindings_view(lma_, Clock::now(), page, mn);
        } else if (what == "peers") {
            answer = peers_view();
        } else {
            answer = control::show_from_dataplane(what, agent_dp_->maps(), agent_dp_->sessions(), page);
        }
        answer["role"] = "lma";
        return answer;
    }

    // `show peers`: each configured MAG (one page: peers are few).
    nlohmann::json peers_view() {
        const auto now = Clock::now();
        const auto bindings = lma_.binding_classes().by_peer("registered");
        const auto heartbeats = heartbeat_.view(now);
        nlohmann::json out = nlohmann::json::array();
        for (const auto& p : lma_.config().peers) {
            const auto b = bindings.find(p.name);
            const auto heard = last_pbu_.find(p.name);
            out.push_back(agent::peer_view(p.name, p.addresses, b == bindings.end() ? 0 : b->second,
                                           heard == last_pbu_.end() ? std::nullopt : std::optional(heard->second),
                                           heartbeats, metrics_.pba_counts(p.name), now));
        }
        return {{"result", out}, {"next", nullptr}};
    }

    // `xpmip revoke --mn ID | --peer NAME | --all [--trigger CODE]` (RFC 5846 §8.1): the BRIs go
    // out at once; the bindings go when their BRA comes (or after the last retransmission).
    nlohmann::json revoke(const nlohmann::json& req) {
        RevocationRequest r;
        const auto scope = req.value("scope", "");
        if (scope == "mn" || scope == "peer") {
            r.scope = scope == "mn" ? RevocationRequest::Scope::MobileNode : RevocationRequest::Scope::Peer;
            r.target = req.value("target", "");
        } else if (scope == "all") {
            r.scope = RevocationRequest::Scope::All;
        } else {
            throw control::ControlError(fmt::format("revoke: scope '{}' is not mn, peer or all", scope));
        }
        if (req.contains("trigger") && !req["trigger"].is_null()) {
            const auto t = req["trigger"].get<int>();
            if (t < 0 || t > 255) {
                throw control::ControlError(fmt::format("trigger: {} is not 0-255", t));
            }
            r.trigger = static_cast<std::uint8_t>(t);
        }
        std::vector<OutgoingBri> out;
        try {
            out = lma_.revoke(r, Clock::now());
        } catch (const std::invalid_argument& e) {
            throw control::ControlError(e.what());
        }
        send_bris(out);
        nlohmann::json bris = nlohmann::json::array();
        for (const auto& b : out) {
            bris.push_back({{"sequence", b.bri.sequence}, {"to", to_string(b.dst)},
                            {"bindings", lma_.revocations().at(b.bri.sequence).mns.size()}});
        }
        return {{"result", fmt::format("{} BRI(s) sent", out.size())}, {"bris", bris}};
    }

    // The socket of a transport (IPv6 Mobility Header or IPv4 UDP 5436), if we have one open.
    transport::SignalingSocket* socket_for(wire::Transport t) {
        for (auto& s : sockets_) {
            if (s.transport() == t) {
                return &s;
            }
        }
        return nullptr;
    }

    void send_bris(const std::vector<OutgoingBri>& out) {
        for (const auto& b : out) {
            try {
                if (auto* s = socket_for(b.transport)) {
                    s->send(wire::encode(b.bri), b.src, b.dst, b.dst_port);
                }
            } catch (const std::exception& e) {
                spdlog::error("BRI seq={} to {}: {}", b.bri.sequence, to_string(b.dst), e.what());
            }
        }
    }

    // RFC 5846 §8.2 from a MAG: this LMA authorizes no MAG to revoke (§13: "MUST be locally
    // configurable"; not configurable yet): a global one gets 130, any other 134. Answered the
    // way it came, with its Sequence # and flags (§6.1.2).
    void answer_bri(transport::SignalingSocket& sock, const transport::Datagram& d,
                    const wire::BindingRevocationIndication& bri) {
        if (!lma_.config().peer_by_address(d.src)) {
            spdlog::warn("BRI seq={} from {}: not a configured MAG, dropped", bri.sequence, to_string(d.src));
            return;
        }
        wire::BindingRevocationAcknowledgement bra;
        bra.sequence = bri.sequence;
        bra.flags = bri.flags;
        bra.status = bri.has(wire::br_flag::kGlobal) ? wire::bra_status::kGlobalRevocationNotAuthorized
                                                     : wire::bra_status::kRevocationFunctionNotSupported;
        spdlog::warn("BRI seq={} trigger={} from MAG {}: refused with {} ({})", bri.sequence, bri.trigger,
                     to_string(d.src), bra.status, wire::bra_status_name(bra.status));
        try {
            sock.send(wire::encode(bra), d.dst, d.src, d.src_port);
        } catch (const std::exception& e) {
            spdlog::error("BRA to {}: {}", to_string(d.src), e.what());
        }
    }

    // The configured name of the MAG at `address` ("unknown" when it is none).
    std::string peer_name(const IpAddress& address) const {
        const MagPeer* p = lma_.config().peer_by_address(address);
        return p ? p->name : "unknown";
    }

    void receive(transport::SignalingSocket& sock) {
        agent::receive_messages(sock, metrics_, signaling_, [this, &sock](const transport::Datagram& d, wire::MobilityMessage& m) {
            if (auto* pbu = std::get_if<wire::ProxyBindingUpdate>(&m)) {
                const std::string& peer = peer_name(d.src);
                metrics_.pbu(peer);
                last_pbu_.insert_or_assign(peer, Clock::now());
                heartbeat_.heard(d.src, Clock::now());   // (RFC 5847 toward the MAG addresses that speak to us)
                send(lma_.on_pbu(IncomingPbu{d.transport, d.src, d.dst, d.src_port, *pbu, d.ifindex}, Clock::now()));
            } else if (auto* hb = std::get_if<wire::Heartbeat>(&m); hb && hb->response()) {
                std::vector<agent::HeartbeatEvent> events;
                if (!heartbeat_.on_message(d.src, *hb, Clock::now(), events)) {
                    spdlog::debug("heartbeat response seq={} from {}: no request of ours outstanding, ignored",
                                  hb->sequence, to_string(d.src));
                }
                on_heartbeat_events(events);
            } else if (hb) {
                answer_heartbeat(sock, d, *hb);
            } else if (auto* bra = std::get_if<wire::BindingRevocationAcknowledgement>(&m)) {
                lma_.on_bra(d.src, *bra, Clock::now());
            } else if (auto* bri = std::get_if<wire::BindingRevocationIndication>(&m)) {
                answer_bri(sock, d, *bri);
            } else if (auto* be = std::get_if<wire::BindingError>(&m)) {
                // (RFC 6275 §9.2: with a heartbeat of ours outstanding, RFC 5847 it does not do)
                on_heartbeat_events(agent::on_binding_error(metrics_, d, *be, heartbeat_));
            } else {
                spdlog::warn("a PBA from {}: an LMA expects none, dropped", to_string(d.src));
            }
        }, [this] { flush(); });
    }

    // RFC 5847 §3.1: a request from a configured MAG is answered at once with the same Sequence
    // Number and our Restart Counter (§6.2), the way it came; nothing else is answered.
    void answer_heartbeat(transport::SignalingSocket& sock, const transport::Datagram& d, const wire::Heartbeat& hb) {
        if (!lma_.config().peer_by_address(d.src)) {
            spdlog::debug("heartbeat seq={} from {}: not a configured MAG, ignored", hb.sequence, to_string(d.src));
            return;
        }
        heartbeat_.heard(d.src, Clock::now());
        try {
            sock.queue(wire::encode(agent::heartbeat_response(hb, restart_counter_)), d.dst, d.src, d.src_port);
        } catch (const std::exception& e) {
            spdlog::error("heartbeat to {}: {}", to_string(d.src), e.what());
        }
    }

    // RFC 5847 from the LMA: requests out, the paths toward a MAG that stopped answering down
    // (multipath sessions move to their other paths) and up when it answers, and a restarted
    // MAG's bindings it does not register again let go.
    void on_heartbeat_events(const std::vector<agent::HeartbeatEvent>& events) {
        bool links = false;
        for (const auto& ev : events) {
            const agent::HeartbeatPeer& peer = heartbeat_peers_.at(ev.path);
            switch (ev.kind) {
            case agent::HeartbeatEvent::Kind::Send:
                try {
                    if (auto* s = socket_for(is_ipv4(peer.remote) ? wire::Transport::Ipv4Udp : wire::Transport::Ipv6)) {
                        s->send(wire::encode(ev.message), peer.local, peer.remote);
                    }
                } catch (const std::exception& e) {
                    spdlog::error("heartbeat to {}: {}", to_string(peer.remote), e.what());
                }
                break;
            case agent::HeartbeatEvent::Kind::PeerDown:
            case agent::HeartbeatEvent::Kind::PeerUp:
                sink_.set_peer_answers(peer.remote, ev.kind == agent::HeartbeatEvent::Kind::PeerUp);
                links = true;
                break;
            case agent::HeartbeatEvent::Kind::PeerRestarted:
                lma_.on_mag_restart(peer.remote, ev.restarted_after, Clock::now());
                break;
            }
        }
        if (links) {
            lma_.on_link_change();
        }
    }

    // The PBAs queued since the last flush, out with one sendmmsg per socket.
    void flush() {
        flush_journal();
        for (auto& s : sockets_) {
            for (const auto& e : s.flush()) {
                spdlog::error("PBA: {}", e);
            }
        }
    }

    void send(const std::vector<OutgoingPba>& replies) {
        for (const auto& r : replies) {
            metrics_.pba(peer_name(r.dst), static_cast<wire::Status>(r.pba.status));
            try {
                if (auto* s = socket_for(r.transport)) {
                    s->queue(wire::encode(r.pba), r.src, r.dst, r.dst_port);
                }
            } catch (const std::exception& e) {
                spdlog::error("PBA to {}: {}", to_string(r.dst), e.what());
            }
        }
    }

    const LmaRunOptions& options_;
    UniqueFd signals_;
    LmaConfig cfg_;
    agent::AgentDataplane agent_dp_;
    netlink::LinkMonitor links_;
    DataplaneSink sink_;
    LocalMobilityAnchor lma_;
    std::unique_ptr<BindingJournal> journal_;
    std::vector<transport::SignalingSocket> sockets_;
    agent::SignalingInterfaces signaling_{cfg_.signaling_interfaces};
    std::uint32_t restart_counter_ = agent::next_restart_counter(cfg_.state_directory);
    std::vector<agent::HeartbeatPeer> heartbeat_peers_ = heartbeat_peers(cfg_);
    agent::HeartbeatMonitor heartbeat_{heartbeat_peers_, cfg_.timers.heartbeat_interval,
                                       cfg_.timers.missing_heartbeats_allowed, "MAG", true};
    control::ControlServer ctl_;
    std::map<std::string, Clock::time_point> last_pbu_;   // by peer name (`show peers`)
    control::AgentMetrics metrics_{"lma"};   // after the data plane: its threads read the maps
};

} // namespace

int run_lma(const LmaRunOptions& options) {
    // Signals blocked from the start: a SIGTERM while the data plane loads is handled by the loop
    // (clean unload), not by the default action (pins left behind).
    UniqueFd signals = agent::signal_fd();
    return LmaDaemon(options, std::move(signals)).run();
}

} // namespace xpmip::lma
