// Restart without losing a binding (issue 17), at the MAG: the Binding Update List journal's
// entries back, the data plane made to match them, and every MN registered again at once with
// the keys and addresses it had.
#include "mag/mag.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

namespace xpmip::mag {

namespace {

using State = BindingUpdateListEntry::State;

// PBUs sent by an entry after its last journaled record (plain refreshes are not journaled) are
// at most this many: its numbers go on from past them (RFC 6275 §11.7.1: increasing).
constexpr std::uint16_t kSequenceMargin = 256;

} // namespace

MagRestoreReport MobileAccessGateway::restore(std::vector<BindingUpdateListEntry> entries, Clock::time_point now) {
    MagRestoreReport report;
    std::vector<std::string> restored;
    for (auto& e : entries) {
        std::string id = e.mn_id;
        if (auto why = adopt(e, now)) {
            spdlog::warn("journal: {} (session {}) not restored: {}", id, e.session_id, *why);
            ++report.dropped;
            if (journal_) {
                journal_->erase(id);   // (the journal drops it too)
            }
        } else {
            ++report.bindings;
            restored.push_back(std::move(id));
        }
    }
    reconcile_dataplane(report);
    // Registered again at once (its lifetime at the LMA has run on meanwhile), de-registrations
    // and registrations under way go on: every one sent now.
    for (const auto& id : restored) {
        BindingUpdateListEntry& p = bul_.at(id);
        if (p.state == State::Registered) {
            sink_.registered(p);   // (the access link serves its addresses again)
        }
        for (auto* x : all_paths(p)) {
            if (x->state == State::Failed) {
                continue;   // (a path whose registration had failed stays as it was)
            }
            auto more = send(*x, x->state == State::Deregistering, now);
            report.pbus.insert(report.pbus.end(), more.begin(), more.end());
        }
        journal(id);   // (the sequence numbers moved on: recorded, so that the next restart goes on from them)
    }
    return report;
}

// One entry back, with its session id and its other paths' downlink keys reserved again.
std::optional<std::string> MobileAccessGateway::adopt(BindingUpdateListEntry& e, Clock::time_point now) {
    const MobileNodeConfig* mn = config_.mobile_node(e.mn_id);
    if (!mn) {
        return std::string("it is no longer configured (mobile_nodes)");
    }
    if (mn->interface != e.interface || mn->mac != e.mac) {
        return fmt::format("it is configured on {} with MAC {} now, {} with {} in the journal", mn->interface,
                           mn->mac.to_string(), e.interface, e.mac.to_string());
    }
    if (e.state == State::Failed) {
        return std::string("its registration had failed");
    }
    if (bul_.count(e.mn_id)) {
        return std::string("journaled twice");
    }
    std::vector<BindingUpdateListEntry*> regs{&e};
    for (auto& x : e.paths) {
        regs.push_back(&x);
    }
    for (const auto* x : regs) {
        if (x->path >= config_.wans.size()) {
            return fmt::format("path {} is not configured (wan)", x->path);
        }
    }
    if (!session_ids_.reserve(e.session_id)) {
        return fmt::format("session id {} is out of range (limits.sessions {}) or taken", e.session_id,
                           config_.limits.sessions);
    }
    std::vector<std::uint32_t> keys;
    for (const auto& x : e.paths) {
        if (x.key_downlink && !keys_in_use_.insert(*x.key_downlink).second) {
            for (auto k : keys) {
                keys_in_use_.erase(k);
            }
            session_ids_.release_now(e.session_id);
            return fmt::format("path {}: downlink key {} is taken", x.path, *x.key_downlink);
        }
        if (x.key_downlink) {
            keys.push_back(*x.key_downlink);
        }
    }
    e.mn_sequence = static_cast<std::uint16_t>(e.mn_sequence + kSequenceMargin);
    for (auto* x : regs) {
        x->refreshing = x->state == State::Registered;
        x->attempts = 0;
        x->backoff = config_.timers.initial_retransmit;
        x->next_send = now;
        x->expires = now + x->lifetime;   // (until the answer to the refresh sent now says more)
    }
    e.journaled = 0;
    const std::string id = e.mn_id;
    bul_.emplace(id, std::move(e));
    return std::nullopt;
}

// The data plane as the restored entries say (a kill -9 left it forwarding: an equal session is
// written over in place, which loses nothing), and the sessions of no entry removed.
void MobileAccessGateway::reconcile_dataplane(MagRestoreReport& report) {
    std::set<std::uint32_t> owned;
    for (auto& [id, p] : bul_) {
        owned.insert(p.session_id);
        if (!p.session_installed) {
            continue;
        }
        try {
            refresh_session(p);
            ++report.sessions_written;
        } catch (const std::exception& ex) {
            spdlog::error("journal: session {} of {}: the data plane refused it: {}", p.session_id, id, ex.what());
        }
    }
    for (auto sid : sink_.held_sessions()) {
        if (owned.count(sid)) {
            continue;
        }
        try {
            sink_.remove(sid);
            ++report.orphans_removed;
        } catch (const std::exception& ex) {
            spdlog::error("session {}: removing the orphan failed: {}", sid, ex.what());
        }
    }
}

} // namespace xpmip::mag
