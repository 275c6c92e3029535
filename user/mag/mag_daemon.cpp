#include "mag/mag_daemon.hpp"

#include "mag/bul_journal.hpp"

#include "access/access_link.hpp"
#include "agent/agent.hpp"
#include "agent/signals.hpp"
#include "control/control.hpp"
#include "control/metrics.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/events.hpp"
#include "agent/heartbeat.hpp"
#include "mag/mag.hpp"
#include "netlink/interfaces.hpp"
#include "netlink/link_monitor.hpp"
#include "transport/signaling_socket.hpp"
#include "wire/error.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <map>
#include <set>

namespace xpmip::mag {

namespace {

using AccessLinks = std::map<std::string, std::unique_ptr<access::AccessLink>>;
using agent::HeartbeatEvent;
using agent::HeartbeatMonitor;
using agent::HeartbeatPeer;

std::vector<HeartbeatPeer> heartbeat_peers(const MagConfig& cfg) {
    std::vector<HeartbeatPeer> out;
    for (const auto& w : cfg.wans) {
        out.push_back({w.address, w.lma});
    }
    return out;
}

class DataplaneSink : public MagSink {
public:
    DataplaneSink(dataplane::Dataplane& dp, AccessLinks& links, const netlink::LinkMonitor& carrier)
        : dp_(dp), links_(links), carrier_(carrier) {}
    // A WAN path is up with carrier and while its LMA answers heartbeats (RFC 5847).
    bool link_up(std::uint32_t ifindex) override { return carrier_.carrier(ifindex) && !unanswered_.contains(ifindex); }
    void set_peer_answers(std::uint32_t ifindex, bool answers) {
        if (answers) {
            unanswered_.erase(ifindex);
        } else {
            unanswered_.insert(ifindex);
        }
    }
    ~DataplaneSink() override {
        for (const auto& [ifname, addr] : routers_) {
            try {
                netlink::remove_address(static_cast<int>(ifindex(ifname)), addr, 32);
            } catch (const std::exception& e) {
                spdlog::warn("{}: removing router address {}: {}", ifname, addr.to_string(), e.what());
            }
        }
    }
    void upsert(const dataplane::SessionConfig& s) override { dp_.sessions().upsert(s); }
    void remove(std::uint32_t id) override { dp_.sessions().remove(id); }
    std::vector<std::uint32_t> held_sessions() override {
        std::vector<std::uint32_t> ids;
        for (const auto& s : dp_.sessions().list()) {
            ids.push_back(s.id);
        }
        return ids;
    }
    std::uint32_t ifindex(const std::string& name) override {
        // Asked on every registration; attached by name at start-up: one netlink query each.
        if (auto it = ifindex_.find(name); it != ifindex_.end()) {
            return it->second;
        }
        auto ifindex = static_cast<std::uint32_t>(netlink::query_interface(name).ifindex);
        ifindex_[name] = ifindex;
        return ifindex;
    }
    void registered(const BindingUpdateListEntry& e) override {
        // Home network emulation (RFC 5213 §6.7, RFC 5844 §3.3): the MN's access link hands out
        // what the LMA assigned - the HNP in Router Advertisements, the IPv4 home address and
        // default router by DHCP - and answers ARP for that router.
        if (auto it = links_.find(e.interface); it != links_.end()) {
            access::StationConfig sc;
            sc.hnp = e.hnp;
            sc.ipv4_address = e.ipv4_hoa;
            sc.ipv4_prefix_length = e.ipv4_prefix_length;
            sc.ipv4_router = e.ipv4_router;
            sc.lifetime_seconds = static_cast<std::uint32_t>(e.lifetime.count());
            try {
                it->second->set_station(e.mac, sc);
            } catch (const std::exception& ex) {
                spdlog::error("{}: access link {}: {}", e.mn_id, e.interface, ex.what());
            }
        }
        // The router address on the access interface too: the data plane's ICMP errors to the
        // MN ("fragmentation needed" for path MTU discovery, RFC 1191) need a source address
        // there, and the MN's packets to its router reach this host's stack.
        if (e.ipv4_router && !routers_.count({e.interface, *e.ipv4_router})) {
            try {
                netlink::add_address(static_cast<int>(ifindex(e.interface)), *e.ipv4_router, 32);
                routers_.insert({e.interface, *e.ipv4_router});
                dp_.refresh_interface(e.interface);
            } catch (const std::exception& ex) {
                spdlog::error("{}: default router {} on {}: {}", e.mn_id, e.ipv4_router->to_string(), e.interface,
                              ex.what());
            }
        }
        spdlog::info("{} registered: {}{}{} session {} encap {}{}", e.mn_id, e.hnp ? "hnp " + e.hnp->to_string() : "",
                     e.hnp && e.ipv4_hoa ? " " : "", e.ipv4_hoa ? "hoa " + e.ipv4_hoa->to_string() : "",
                     e.session_id, dataplane::to_string(e.session.encap),
                     e.key_downlink && e.key_uplink
                         ? fmt::format(" keys down {} up {}", *e.key_downlink, *e.key_uplink)
                         : "");
    }

    std::optional<Ipv6Address> link_local(const std::string& interface) override {
        auto it = links_.find(interface);
        return it == links_.end() ? std::nullopt : it->second->link_local();
    }
    void deregistered(const BindingUpdateListEntry& e) override {
        if (auto it = links_.find(e.interface); it != links_.end()) {
            it->second->remove_station(e.mac);
        }
    }

private:
    dataplane::Dataplane& dp_;
    AccessLinks& links_;
    const netlink::LinkMonitor& carrier_;
    std::set<std::uint32_t> unanswered_;   // WAN ifindexes whose LMA stopped answering heartbeats
    std::set<std::pair<std::string, Ipv4Address>> routers_;   // added by us, removed at exit
    std::map<std::string, std::uint32_t> ifindex_;
};

// Octets the tunnel adds to an MN's packet (RFC 5845 Figures 5 and 7): the outer IP header,
// then GRE with a key, or UDP + TLV header + GRE with a key. What the access link advertises as
// the MN's MTU is the WAN link's less this, so the MN's packets fit without fragmentation.
unsigned tunnel_overhead(const MagConfig& cfg) {
    const unsigned outer = is_ipv4(cfg.lma) ? 20 : 40;
    if (cfg.gre == GreMode::Off) {
        return outer + (cfg.force_udp ? 8 : 0);
    }
    if (cfg.gre == GreMode::OnRequest) {
        return outer + 8;   // GRE with a key after a 163, else IP-in-IP (or UDP with F): the larger
    }
    return outer + 8 + (cfg.tlv_header ? 8 + 4 : 0);
}

const char* state_name(BindingUpdateListEntry::State s) {
    switch (s) {
    case BindingUpdateListEntry::State::Registering: return "registering";
    case BindingUpdateListEntry::State::Registered: return "registered";
    case BindingUpdateListEntry::State::Deregistering: return "deregistering";
    case BindingUpdateListEntry::State::Failed: return "failed";
    }
    return "?";
}

} // namespace

namespace {

nlohmann::json binding_view(const MobileAccessGateway& mag, const std::string& id, const BindingUpdateListEntry& e,
                            Clock::time_point now) {
    nlohmann::json b{{"mn", id},
                     {"mac", e.mac.to_string()},
                     {"interface", e.interface},
                     {"lma", to_string(mag.config().lma)},
                     {"state", state_name(e.state)},
                     {"status", wire::status_name(e.last_status)},
                     {"lifetime", e.lifetime.count()},
                     {"gre", e.gre},
                     {"tlv", e.tlv_header},
                     {"session", e.session_id}};
    b["remaining"] = e.state == BindingUpdateListEntry::State::Registered
                         ? nlohmann::json(std::chrono::duration_cast<std::chrono::seconds>(e.expires - now).count())
                         : nlohmann::json();
    b["key_downlink"] = control::json_or_null(e.key_downlink);
    b["key_uplink"] = control::json_or_null(e.key_uplink);
    b["hnp"] = control::json_or_null(e.hnp);
    b["hoa"] = control::json_or_null(e.ipv4_hoa);
    b["hoa_prefix_length"] = e.ipv4_hoa ? nlohmann::json(e.ipv4_prefix_length) : nlohmann::json();
    b["ipv4_router"] = control::json_or_null(e.ipv4_router);
    b["multipath"] = mag.config().multipath() && !mag.multipath_disabled(id);
    if (mag.config().multipath()) {
        // RFC 8278: every path's registration (the first path's is also the row above).
        nlohmann::json paths = nlohmann::json::array();
        std::vector<const BindingUpdateListEntry*> all{&e};
        for (const auto& x : e.paths) {
            all.push_back(&x);
        }
        for (const auto* x : all) {
            const auto& wan = mag.config().wans[x->path];
            bool up = false;
            for (const auto& sp : e.session.paths) {
                up = up || (e.session_installed && x->in_dataplane && sp.bid == wan.bid && sp.up);
            }
            paths.push_back({{"bid", wan.bid},
                             {"label", wan.label},
                             {"label_name", mag.config().steering.label_name(wan.label)},
                             {"interface", wan.interface},
                             {"address", to_string(wan.address)},
                             {"lma", to_string(wan.lma)},
                             {"state", state_name(x->state)},
                             {"status", wire::status_name(x->last_status)},
                             {"up", up},
                             {"key_downlink", control::json_or_null(x->key_downlink)},
                             {"key_uplink", control::json_or_null(x->key_uplink)}});
        }
        b["paths"] = paths;
    }
    return b;
}

} // namespace

nlohmann::json bindings_view(const MobileAccessGateway& mag, Clock::time_point now, const control::PageRequest& page,
                             const std::optional<std::string>& mn) {
    return control::mn_page(mag.entries(), page, mn,
                            [&](const std::string& id, const auto& e) { return binding_view(mag, id, e, now); });
}

namespace {

// The access links of the configuration, each advertising the WAN MTU less the tunnel's overhead
// (RFC 4861 §4.6.4 MTU option) so that the MN's packets fit without fragmentation.
AccessLinks open_access_links(const MagConfig& cfg) {
    unsigned wan_mtu = 0;
    for (const auto& iface : cfg.interfaces) {
        if (iface.kind == dataplane::InterfaceKind::Tunnel) {
            unsigned m = netlink::query_interface(iface.name).mtu;
            wan_mtu = wan_mtu ? std::min(wan_mtu, m) : m;
        }
    }
    AccessLinks links;
    for (const auto& iface : cfg.interfaces) {
        if (iface.kind == dataplane::InterfaceKind::Access) {
            access::AccessLinkOptions lo;
            if (wan_mtu > tunnel_overhead(cfg) + 1280) {
                lo.advertised_mtu = wan_mtu - tunnel_overhead(cfg);
            }
            links[iface.name] = std::make_unique<access::AccessLink>(iface.name, lo);
        }
    }
    return links;
}

// The running MAG: its logic, data plane, access links, socket and the event loop's handlers.
class MagDaemon {
public:
    MagDaemon(const MagRunOptions& options, UniqueFd signals)
        : options_(options), signals_(std::move(signals)), cfg_(agent::with_log_level(load_mag_config(options.config_file))),
          agent_dp_(cfg_.instance, dataplane::Role::Mag, cfg_.limits, cfg_.dataplane, cfg_.interfaces, cfg_.signaling_interfaces,
                    options.keep_dataplane),
          links_(open_access_links(cfg_)), sink_(*agent_dp_, links_, carrier_), mag_(cfg_, sink_),
          sock_(is_ipv4(cfg_.lma) ? transport::SignalingSocket::open_ipv4_udp() : transport::SignalingSocket::open_ipv6()),
          events_(agent_dp_->maps(), [this](const xpmip_event& ev) { on_event(ev); }),
          ctl_(control::socket_path(cfg_.instance)) {
        agent::serve_metrics(metrics_, cfg_.metrics, agent_dp_->maps());
        // RFC 8278 §3.2 routing rules: one policy for every multipath session.
        agent_dp_->sessions().set_policy(config::kSteeringPolicyId, cfg_.steering.policy);
        agent::log_steering(cfg_.steering);
        for (auto& [name, link] : links_) {
            link->on_unknown_station = [this, ifname = name](const MacAddress& mac) { station_seen(mac, ifname); };
        }
        restore_bindings();
        for (const auto& mn : cfg_.mobile_nodes) {
            if (!mn.dynamic) {
                send(mag_.attach(mn.id, Clock::now()));   // (nothing for one the journal brought back)
            }
        }
    }

    int run() {
        agent::EventLoop loop;
        agent::watch_agent(loop, signals_.get(), ctl_, metrics_, carrier_,
                           {.reload = [this] { reload(); },
                            .shutdown = [this](int signo) { return shutdown(signo); },
                            .control = [this](const nlohmann::json& req) { return control(req); },
                            .link_changed = [this] { mag_.on_link_change(); },
                            .publish_metrics = [this] { publish_metrics(Clock::now()); }});
        agent_dp_.watch_next_hops(loop);
        loop.deadline("binding update list timers", [this] { return mag_.next_deadline(); },
                      [this] { send(mag_.on_timer(Clock::now())); });
        loop.deadline("heartbeats", [this] { return heartbeat_.next_deadline(); },
                      [this] { on_heartbeat_events(heartbeat_.on_timer(Clock::now())); });
        loop.watch("signaling socket", sock_.fd(), [this] { receive(); });
        loop.watch("station events", events_.fd(), [this] { events_.consume(); });
        for (auto& [name, link] : links_) {
            loop.watch("access link " + name, link->fd(), [&l = *link] { l.handle_readable(); });
        }
        loop.after_wakeup("access link timers", [this] { return access_link_ticks(); });
        loop.after_wakeup("inactivity", [this] { return detach_idle(Clock::now()); });
        loop.after_wakeup("shutdown", [this, &loop] { return finish_shutdown(loop); });
        loop.after_wakeup("journal", [this] {
            if (journal_) {
                journal_->tend(mag_.entries());   // (changes without a PBU: a PBA, an entry gone)
            }
            return std::chrono::milliseconds(1000);
        });
        spdlog::info("MAG '{}' up: LMA {}, {} mobile node(s)", cfg_.instance, to_string(cfg_.lma),
                     cfg_.mobile_nodes.size());
        agent::notify_systemd("READY=1", fmt::format("MAG '{}' up", cfg_.instance));
        loop.run();
        return 0;
    }

private:
    // Issue 17: the Binding Update List of the previous run back from the journal, the data plane
    // (pinned: a kill -9 left it forwarding) made to match it, every MN registered again at once.
    void restore_bindings() {
        BulRecovery recovered;
        if (cfg_.journal) {
            journal_ = std::make_unique<BulJournal>(cfg_.state_directory);
            recovered = journal_->take_recovery();
            for (const auto& loss : recovered.losses) {
                spdlog::error("binding update list journal: {}", loss);
            }
            mag_.attach_journal(journal_.get());
        }
        const std::size_t journaled = recovered.entries.size();
        auto r = mag_.restore(std::move(recovered.entries), Clock::now());
        if (journal_) {
            spdlog::info("binding update list journal {}: {} record(s) read, {} mobile node(s) restored, {} dropped "
                         "(generation {})", cfg_.state_directory, recovered.records, r.bindings,
                         journaled - r.bindings, journal_->log().generation());
        } else {
            spdlog::warn("journal: false: the binding update list does not survive a restart");
        }
        spdlog::info("data plane: {} session(s) written as journaled, {} orphan(s) removed", r.sessions_written,
                     r.orphans_removed);
        send(r.pbus);
    }

    void reload() {
        try {
            auto fresh = load_mag_config(options_.config_file);
            agent_dp_->sessions().set_policy(config::kSteeringPolicyId, fresh.steering.policy);
            send(mag_.reload(std::move(fresh), Clock::now()));
            spdlog::set_level(spdlog::level::from_str(mag_.config().log_level));
            spdlog::info("configuration reloaded from {}", options_.config_file);
        } catch (const std::exception& e) {
            spdlog::error("reload refused, the running configuration stays: {}", e.what());
        }
    }

    // SIGTERM: every MN de-registered, and the loop runs on until every de-registration is
    // answered or timers.shutdown_timeout has passed (issue 17: one lost PBU must not leave a
    // binding behind at the LMA).
    bool shutdown(int signo) {
        const auto timeout = mag_.config().timers.shutdown_timeout;
        spdlog::info("signal {}: de-registering {} mobile node(s), waiting up to {} ms for the LMA", signo,
                     mag_.entries().size(), timeout.count());
        send(mag_.shutdown(Clock::now()));
        shutdown_deadline_ = Clock::now() + timeout;
        return timeout.count() == 0 || mag_.deregistrations_outstanding() == 0;
    }

    // While shutting down, after every wake-up: done once nothing is outstanding or time is up.
    std::chrono::milliseconds finish_shutdown(agent::EventLoop& loop) {
        if (!shutdown_deadline_) {
            return std::chrono::milliseconds(60000);
        }
        const auto left = mag_.deregistrations_outstanding();
        if (left == 0 || Clock::now() >= *shutdown_deadline_) {
            if (left > 0) {
                spdlog::warn("shutdown: {} de-registration(s) unanswered after {} ms: the LMA expires them by "
                             "their lifetime", left, mag_.config().timers.shutdown_timeout.count());
            } else {
                spdlog::info("shutdown: every de-registration answered");
            }
            loop.stop();
            return std::chrono::milliseconds(0);
        }
        return std::chrono::duration_cast<std::chrono::milliseconds>(*shutdown_deadline_ - Clock::now()) +
               std::chrono::milliseconds(1);
    }

    nlohmann::json control(const nlohmann::json& req) {
        const auto cmd = req.value("command", "");
        if (cmd == "show") {
            const auto what = req.value("what", "");
            const auto page = control::page_request(req);
            nlohmann::json answer;
            if (what == "bindings") {
                std::optional<std::string> mn;
                if (req.contains("mn")) {
                    mn = req["mn"].get<std::string>();
                }
                answer = bindings_view(mag_, Clock::now(), page, mn);
            } else if (what == "peers") {
                answer = peers_view();
            } else {
                answer = control::show_from_dataplane(what, agent_dp_->maps(), agent_dp_->sessions(), page);
            }
            answer["role"] = "mag";
            return answer;
        }
        if (cmd == "attach" || cmd == "detach") {
            const auto mn = req.value("mn", "");
            if (!mag_.config().mobile_node(mn)) {
                throw control::ControlError(fmt::format("mobile node '{}' is not in {}", mn, options_.config_file));
            }
            send(cmd == "attach" ? mag_.attach(mn, Clock::now()) : mag_.detach(mn, Clock::now()));
            return {{"result", fmt::format("{} {}", cmd == "attach" ? "attaching" : "detached", mn)}};
        }
        throw control::ControlError(fmt::format("unknown command '{}' (show, attach, detach)", cmd));
    }

    // The bindings gauge by state, LMA and encapsulation: a MAG's list is counted afresh, at most
    // every 5 s (a MAG serves far fewer MNs than an LMA; 100 k entries cost a few ms).
    void publish_metrics(Clock::time_point now) {
        if (now - last_publish_ < std::chrono::seconds(5)) {
            return;
        }
        last_publish_ = now;
        std::map<control::BindingClass, std::int64_t> counts;
        for (auto& [cls, n] : published_) {
            counts[cls] = 0;   // classes that became empty go to 0
        }
        const std::string lma = to_string(mag_.config().lma);
        for (const auto& [id, e] : mag_.entries()) {
            ++counts[control::BindingClass{state_name(e.state), "", lma, dataplane::to_string(e.session.encap)}];
        }
        for (const auto& [cls, n] : counts) {
            metrics_.set_bindings(cls, n);
        }
        published_ = std::move(counts);
    }

    void receive() {
        agent::receive_messages(sock_, metrics_, signaling_, [this](const transport::Datagram& d, wire::MobilityMessage& m) {
            if (auto* pba = std::get_if<wire::ProxyBindingAcknowledgement>(&m)) {
                metrics_.pba(to_string(d.src), static_cast<wire::Status>(pba->status));
                last_pba_ = Clock::now();
                send(mag_.on_pba(IncomingPba{d.transport, d.src, *pba}, Clock::now()));
            } else if (auto* hb = std::get_if<wire::Heartbeat>(&m); hb && !hb->response()) {
                answer_heartbeat(d, *hb);
            } else if (hb) {
                std::vector<HeartbeatEvent> events;
                if (!heartbeat_.on_message(d.src, *hb, Clock::now(), events)) {
                    spdlog::debug("heartbeat seq={} R={} from {}: no request of ours outstanding, ignored",
                                  hb->sequence, hb->response() ? 1 : 0, to_string(d.src));
                }
                on_heartbeat_events(events);
            } else if (auto* bri = std::get_if<wire::BindingRevocationIndication>(&m)) {
                answer_bri(d, *bri);
            } else if (auto* be = std::get_if<wire::BindingError>(&m)) {
                // (RFC 6275 §9.2: with a heartbeat of ours outstanding, RFC 5847 it does not do)
                on_heartbeat_events(agent::on_binding_error(metrics_, d, *be, heartbeat_));
            } else {
                // (a PBU, or a BRA: this MAG sends no BRI)
                spdlog::warn("MH type {} from {}: a MAG expects none, dropped", wire::mh_type_of(m), to_string(d.src));
            }
        });
    }

    // `show peers`: our LMA, with the addresses our WAN paths register with.
    nlohmann::json peers_view() {
        const auto now = Clock::now();
        std::vector<IpAddress> addresses;
        std::map<int, std::uint64_t> statuses;
        for (const auto& w : cfg_.wans) {
            if (std::find(addresses.begin(), addresses.end(), w.lma) == addresses.end()) {
                addresses.push_back(w.lma);
                for (const auto& [code, n] : metrics_.pba_counts(to_string(w.lma))) {
                    statuses[code] += n;
                }
            }
        }
        std::int64_t registered = 0;
        for (const auto& [id, e] : mag_.entries()) {
            registered += e.state == BindingUpdateListEntry::State::Registered ? 1 : 0;
        }
        nlohmann::json out = nlohmann::json::array();
        out.push_back(agent::peer_view("lma", addresses, registered, last_pba_, heartbeat_.view(now), statuses, now));
        return {{"result", out}, {"next", nullptr}};
    }

    // RFC 5846 §9.1, §6.1.2: our LMA's BRI is answered at once, the way it came; the MNs it
    // revoked are gone from the data plane, the access links and the journal by then.
    void answer_bri(const transport::Datagram& d, const wire::BindingRevocationIndication& bri) {
        const auto bra = mag_.on_bri(d.src, bri, Clock::now());
        if (!bra) {
            return;
        }
        if (journal_) {
            journal_->tend(mag_.entries());   // (the revoked MNs' records gone before the answer)
        }
        try {
            sock_.send(wire::encode(*bra), d.dst, d.src, d.src_port);
        } catch (const std::exception& e) {
            spdlog::error("BRA to {}: {}", to_string(d.src), e.what());
        }
    }

    // RFC 5847 §3.1: a request of our LMA is answered at once with our Restart Counter (§6.2:
    // an LMA seeing it change lets go the bindings we do not register again).
    void answer_heartbeat(const transport::Datagram& d, const wire::Heartbeat& hb) {
        if (!mag_.config().is_lma_address(d.src)) {
            spdlog::debug("heartbeat seq={} from {}: not our LMA, ignored", hb.sequence, to_string(d.src));
            return;
        }
        try {
            sock_.send(wire::encode(agent::heartbeat_response(hb, restart_counter_)), d.dst, d.src, d.src_port);
            spdlog::debug("heartbeat of our LMA answered: seq={} from {}, restart counter {}", hb.sequence,
                          to_string(d.src), restart_counter_);
        } catch (const std::exception& e) {
            spdlog::error("heartbeat to {}: {}", to_string(d.src), e.what());
        }
    }

    // RFC 5847: requests out, paths down or up as their LMA stops or resumes answering, and a
    // restarted LMA's bindings registered again at once.
    void on_heartbeat_events(const std::vector<HeartbeatEvent>& events) {
        bool links = false;
        for (const auto& ev : events) {
            const WanPath& wan = cfg_.wans.at(ev.path);
            switch (ev.kind) {
            case HeartbeatEvent::Kind::Send:
                try {
                    sock_.send(wire::encode(ev.message), wan.address, wan.lma);
                } catch (const std::exception& e) {
                    spdlog::error("heartbeat to {}: {}", to_string(wan.lma), e.what());
                }
                break;
            case HeartbeatEvent::Kind::PeerDown:
            case HeartbeatEvent::Kind::PeerUp:
                sink_.set_peer_answers(sink_.ifindex(wan.interface), ev.kind == HeartbeatEvent::Kind::PeerUp);
                links = true;
                break;
            case HeartbeatEvent::Kind::PeerRestarted:
                send(mag_.on_lma_restart(wan.lma, Clock::now()));
                break;
            }
        }
        if (links) {
            mag_.on_link_change();
        }
    }

    void send(const std::vector<OutgoingPbu>& pbus) {
        if (journal_ && !pbus.empty()) {
            journal_->tend(mag_.entries());   // what the PBUs say reaches the journal before they leave
        }
        for (const auto& p : pbus) {
            metrics_.pbu(to_string(p.dst));
            try {
                sock_.send(wire::encode(p.pbu), p.src, p.dst);
            } catch (const std::exception& e) {
                spdlog::error("PBU to {}: {}", to_string(p.dst), e.what());
            }
        }
    }

    // Dynamic attach: the access XDP program reports frames from MACs without a session, the access
    // link their DHCP DISCOVERs and Router Solicitations (each at most once per MAC per second);
    // configured dynamic MNs are registered, other MACs logged (once a minute) and ignored.
    void on_event(const xpmip_event& ev) {
        MacAddress mac;
        std::memcpy(mac.bytes.data(), ev.mac, 6);
        station_seen(mac, netlink::interface_name(static_cast<int>(ev.ifindex)));
    }

    void station_seen(const MacAddress& mac, const std::string& where) {
        const MobileNodeConfig* mn = mag_.config().mobile_node_by_mac(mac);
        if (!mn || !mn->dynamic) {
            auto& last = ignored_[mac.to_string()];
            if (last == Clock::time_point{} || Clock::now() - last > std::chrono::seconds(60)) {
                spdlog::info("unknown station {} on {}: ignored", mac.to_string(), where);
                last = Clock::now();
            }
            return;
        }
        send(mag_.attach(mn->id, Clock::now()));
    }

    std::chrono::milliseconds access_link_ticks() {
        std::chrono::milliseconds wait{1000};
        for (auto& [name, link] : links_) {
            wait = std::min(wait, std::max(link->tick(), std::chrono::milliseconds(1)));
        }
        return wait;
    }

    // Inactivity: an MN whose uplink counter has not moved for inactivity_timeout is detached.
    std::chrono::milliseconds detach_idle(Clock::time_point now) {
        const auto idle = mag_.config().timers.inactivity_timeout;
        if (idle.count() == 0 || now - last_sweep_ < std::chrono::seconds(1)) {
            return std::chrono::milliseconds(1000);
        }
        last_sweep_ = now;
        std::vector<std::string> idle_mns;
        for (const auto& [id, e] : mag_.entries()) {
            if (!e.in_dataplane) {
                activity_.erase(id);
                continue;
            }
            auto c = agent_dp_->sessions().counters(e.session_id);
            auto [it, fresh] = activity_.try_emplace(id, Activity{c.uplink.packets, now});
            if (fresh || c.uplink.packets != it->second.packets) {
                it->second = Activity{c.uplink.packets, now};
            } else if (now - it->second.since >= idle) {
                idle_mns.push_back(id);
            }
        }
        for (const auto& id : idle_mns) {
            spdlog::info("{}: no uplink traffic for {} s: detaching", id, idle.count());
            activity_.erase(id);
            send(mag_.detach(id, now));
        }
        return std::chrono::milliseconds(1000);
    }

    struct Activity {
        std::uint64_t packets = 0;
        Clock::time_point since;
    };

    const MagRunOptions& options_;
    UniqueFd signals_;
    MagConfig cfg_;
    agent::AgentDataplane agent_dp_;
    AccessLinks links_;
    netlink::LinkMonitor carrier_;
    DataplaneSink sink_;
    MobileAccessGateway mag_;
    transport::SignalingSocket sock_;
    agent::SignalingInterfaces signaling_{cfg_.signaling_interfaces};
    HeartbeatMonitor heartbeat_{heartbeat_peers(cfg_), cfg_.timers.heartbeat_interval,
                                cfg_.timers.missing_heartbeats_allowed};
    control::AgentMetrics metrics_{"mag"};   // after the data plane: its threads read the maps
    std::map<control::BindingClass, std::int64_t> published_;
    Clock::time_point last_publish_{};
    dataplane::EventReader events_;
    control::ControlServer ctl_;
    std::map<std::string, Clock::time_point> ignored_;
    std::map<std::string, Activity> activity_;
    Clock::time_point last_sweep_ = Clock::now();
    std::optional<Clock::time_point> shutdown_deadline_;
    std::unique_ptr<BulJournal> journal_;
    std::optional<Clock::time_point> last_pba_;   // (`show peers`)
    std::uint32_t restart_counter_ = agent::next_restart_counter(cfg_.state_directory);
};

} // namespace

int run_mag(const MagRunOptions& options) {
    // Signals are blocked from the start: a SIGTERM while the data plane loads is then handled by
    // the loop (clean unload), not by the default action (pins left behind).
    UniqueFd signals = agent::signal_fd();
    return MagDaemon(options, std::move(signals)).run();
}

} // namespace xpmip::mag
