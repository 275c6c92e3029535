#include "agent/heartbeat.hpp"

#include <spdlog/spdlog.h>

namespace xpmip::agent {

wire::Heartbeat heartbeat_response(const wire::Heartbeat& request, std::uint32_t restart_counter) {
    wire::Heartbeat answer;
    answer.flags = wire::hb_flag::kResponse;
    answer.sequence = request.sequence;
    answer.options.add(wire::RestartCounterOption{restart_counter});
    return answer;
}

HeartbeatMonitor::HeartbeatMonitor(std::vector<HeartbeatPeer> peers, std::chrono::milliseconds interval,
                                   unsigned missing_allowed, std::string peer_role, bool on_first_contact)
    : role_(std::move(peer_role)), interval_(interval), missing_allowed_(std::max(missing_allowed, 1u)) {
    for (auto& p : peers) {
        by_remote_[p.remote].push_back(paths_.size());
        paths_.push_back(PathState{.peer = std::move(p), .active = !on_first_contact});
    }
}

void HeartbeatMonitor::heard(const IpAddress& remote, Clock::time_point now) {
    auto it = by_remote_.find(remote);
    if (it == by_remote_.end()) {
        return;   // (not a peer)
    }
    for (auto i : it->second) {
        PathState& p = paths_[i];
        if (!p.active) {
            p.active = true;
            p.next_send = {};   // asked at once
        } else if (!p.up && !p.probed_while_down) {
            // A peer held down speaks again: asked at once (once per down period: a PBU storm
            // is not a heartbeat storm), so that its answer says soon whether it restarted.
            p.probed_while_down = true;
            p.next_send = std::min(p.next_send, now);
        }
    }
}

// RFC 5847 §3.1: a request every HEARTBEAT_INTERVAL; the one before it unanswered is a miss.
std::vector<HeartbeatEvent> HeartbeatMonitor::on_timer(Clock::time_point now) {
    std::vector<HeartbeatEvent> out;
    if (interval_.count() == 0) {
        return out;
    }
    for (std::size_t i = 0; i < paths_.size(); ++i) {
        PathState& p = paths_[i];
        if (!p.active || now < p.next_send) {
            continue;
        }
        if (p.outstanding) {
            ++p.missed;
            // §3.1: MISSING_HEARTBEATS_ALLOWED in a row: the peer is unreachable.
            if (p.up && p.missed >= missing_allowed_) {
                p.up = false;
                p.probed_while_down = false;
                spdlog::warn("heartbeat: {} {} (from {}) missed {} heartbeat(s) in a row: path down", role_,
                             to_string(p.peer.remote), to_string(p.peer.local), p.missed);
                out.push_back({.kind = HeartbeatEvent::Kind::PeerDown, .path = i});
            }
        }
        wire::Heartbeat hb;
        hb.sequence = p.next_sequence++;
        p.outstanding = hb.sequence;
        p.next_send = now + interval_;
        out.push_back({.kind = HeartbeatEvent::Kind::Send, .path = i, .message = std::move(hb)});
    }
    return out;
}

bool HeartbeatMonitor::on_message(const IpAddress& src, const wire::Heartbeat& hb, Clock::time_point now,
                                  std::vector<HeartbeatEvent>& events) {
    if (!hb.response()) {
        return false;   // (a request: the daemon answers it)
    }
    for (std::size_t i = 0; i < paths_.size(); ++i) {
        PathState& p = paths_[i];
        if (p.peer.remote != src || p.outstanding != hb.sequence) {
            continue;
        }
        p.outstanding.reset();
        p.missed = 0;
        if (!p.up) {
            p.up = true;
            spdlog::info("heartbeat: {} {} (from {}) answers again: path up", role_, to_string(p.peer.remote),
                         to_string(p.peer.local));
            events.push_back({.kind = HeartbeatEvent::Kind::PeerUp, .path = i});
        }
        if (const auto* rc = hb.options.find<wire::RestartCounterOption>()) {
            // §6.2: a counter that changed is a restart of the peer. Only its last answer with
            // the old counter is surely of its old life: what we heard from it since (even before
            // it fell silent) may be its new life's registrations.
            if (p.restart_counter && *p.restart_counter != rc->counter) {
                spdlog::warn("heartbeat: {} {} restarted (Restart Counter {} -> {})", role_, to_string(p.peer.remote),
                             *p.restart_counter, rc->counter);
                events.push_back({.kind = HeartbeatEvent::Kind::PeerRestarted,
                                  .path = i,
                                  .counter = rc->counter,
                                  .restarted_after = p.last_answer});
            }
            p.restart_counter = rc->counter;
        }
        p.last_answer = now;
        return true;
    }
    return false;
}

bool HeartbeatMonitor::on_refused(const IpAddress& src, Clock::time_point now, std::vector<HeartbeatEvent>& events) {
    bool refused = false;
    for (std::size_t i = 0; i < paths_.size(); ++i) {
        PathState& p = paths_[i];
        if (p.peer.remote != src || !p.outstanding) {
            continue;
        }
        refused = true;
        p.outstanding.reset();
        p.missed = 0;
        p.next_send = now + kRefusedRetry;
        p.refused_until = p.next_send;
        spdlog::warn("heartbeat: {} {} answers our Heartbeat with a Binding Error (MH Type not recognized): it "
                     "does not do RFC 5847; not asked again for {} h, its path is not taken down for it",
                     role_, to_string(p.peer.remote), kRefusedRetry.count());
        if (!p.up) {
            p.up = true;
            events.push_back({.kind = HeartbeatEvent::Kind::PeerUp, .path = i});
        }
    }
    return refused;
}

std::vector<HeartbeatView> HeartbeatMonitor::view(Clock::time_point now) const {
    std::vector<HeartbeatView> out;
    for (const auto& p : paths_) {
        const char* state = interval_.count() == 0 ? "off"
                            : !p.active            ? "not asked"
                            : p.refused_until > now ? "refused"
                            : p.up                 ? "up"
                                                   : "down";
        out.push_back({p.peer.local, p.peer.remote, state, p.restart_counter, p.missed});
    }
    return out;
}

std::optional<Clock::time_point> HeartbeatMonitor::next_deadline() const {
    if (interval_.count() == 0 || paths_.empty()) {
        return std::nullopt;
    }
    std::optional<Clock::time_point> t;
    for (const auto& p : paths_) {
        if (p.active && (!t || p.next_send < *t)) {
            t = p.next_send;
        }
    }
    return t;
}

} // namespace xpmip::agent
