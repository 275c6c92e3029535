// Restart without losing a binding (issue 17): the journal's entries back into the Binding
// Cache, the data plane made to match it, and every later change journaled.
#include "lma/lma.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <set>

namespace xpmip::lma {

RestoreReport LocalMobilityAnchor::restore(std::vector<JournalRecord> records, Clock::time_point now) {
    RestoreReport report;
    for (auto& rec : records) {
        if (auto why = adopt(rec, now)) {
            spdlog::warn("journal: binding of {} (session {}) not restored: {}", rec.mn_id, rec.entry.session_id, *why);
            ++report.dropped;
            journal_erase(rec.mn_id);   // (the journal drops it too)
        } else {
            ++report.bindings;
        }
    }
    reconcile_dataplane(report);
    return report;
}

// One entry back, with what it holds reserved again: its session id, its bindings' own keys
// (RFC 5845 §3.3: unique per LMA), its prefix and address (unless static: reserved already).
std::optional<std::string> LocalMobilityAnchor::adopt(JournalRecord& rec, Clock::time_point now) {
    BindingCacheEntry& e = rec.entry;
    MobileNodeProfile stored;
    const MobileNodeProfile* profile = profile_of(rec.mn_id, stored);
    if (!profile) {
        return "the MN is no longer authorized (mobile_nodes, subscriber store, mobile_node_domains)";
    }
    if (profile->realm != e.realm) {
        return fmt::format("its realm is {} now, {} in the journal", profile->realm, e.realm);
    }
    if (!config_.peer_by_address(e.proxy_coa)) {
        return fmt::format("its MAG {} is no longer a configured peer", to_string(e.proxy_coa));
    }
    if (cache_.find(rec.mn_id)) {
        return "journaled twice";
    }
    // Each resource taken is given back if a later one cannot be.
    std::vector<std::function<void()>> undo;
    auto refuse = [&](std::string why) {
        for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
            (*it)();
        }
        return std::optional<std::string>(std::move(why));
    };
    if (!session_ids_.reserve(e.session_id)) {
        return refuse(fmt::format("session id {} is out of range (limits.sessions {}) or taken", e.session_id,
                                  config_.limits.sessions));
    }
    undo.emplace_back([this, sid = e.session_id] { session_ids_.release_now(sid); });
    for (const auto& [bid, b] : bindings_of(e)) {
        if (b.key_uplink && *b.key_uplink > config_.limits.sessions) {
            if (!uplink_keys_.reserve(*b.key_uplink)) {
                return refuse(fmt::format("binding {}: uplink key {} is out of range or taken", bid, *b.key_uplink));
            }
            undo.emplace_back([this, k = *b.key_uplink] { uplink_keys_.release_now(k); });
        }
    }
    if (e.hnp && profile->home_network_prefix != e.hnp) {
        auto* pool = pool_of(ipv6_pools_, e.realm);
        if (!pool || !pool->reserve(*e.hnp)) {
            return refuse(fmt::format("home network prefix {} is outside realm {}'s pool or taken", e.hnp->to_string(),
                                      e.realm));
        }
        undo.emplace_back([pool, p = *e.hnp] { pool->release_now(p); });
    }
    if (e.ipv4_hoa && profile->ipv4_home_address != e.ipv4_hoa) {
        auto* pool = pool_of(ipv4_pools_, e.realm);
        if (!pool || !pool->reserve(*e.ipv4_hoa)) {
            return refuse(fmt::format("IPv4 home address {} is outside realm {}'s pool or taken",
                                      e.ipv4_hoa->to_string(), e.realm));
        }
    }
    // The journal keeps no times: a full lifetime from the restart (the MAG refreshes within it),
    // or the de-registration hold again (RFC 5213 §5.3.5).
    e.expires = now + (e.deregistered ? std::chrono::duration_cast<Clock::duration>(config_.timers.min_delay_before_bce_delete)
                                      : std::chrono::duration_cast<Clock::duration>(e.lifetime));
    if (e.multipath) {
        for (auto& [bid, b] : e.multipath->bindings) {
            b.expires = now + e.lifetime;
        }
    }
    e.peer = cache_.peer_id(rec.peer);
    cache_.insert(rec.mn_id, std::move(e));
    touch(rec.mn_id);
    return std::nullopt;
}

// The data plane as the cache says: what a kill -9 left is adopted when it is what was
// journaled; what the cache has no binding for is removed (it would hold keys, addresses and
// map slots for nobody); what is missing (an unload, a crash between the write and the journal)
// is written.
void LocalMobilityAnchor::reconcile_dataplane(RestoreReport& report) {
    std::set<std::uint32_t> wanted;
    for (auto& [id, e] : cache_.entries()) {
        if (e.in_dataplane) {
            wanted.insert(e.session_id);
        }
    }
    std::map<std::uint32_t, dataplane::SessionConfig> held;
    for (auto& s : sink_.held_sessions()) {
        const auto sid = s.id;
        held.emplace(sid, std::move(s));
    }
    for (const auto& [sid, s] : held) {
        if (!wanted.contains(sid)) {
            try {
                sink_.remove(sid);
                ++report.orphans_removed;
            } catch (const std::exception& ex) {
                spdlog::error("restart: removing session {}, which no binding owns, failed: {}", sid, ex.what());
            }
        }
    }
    for (auto& [id, e] : cache_.entries()) {
        if (!e.in_dataplane) {
            continue;
        }
        try {
            if (e.multipath) {
                follow_links(e);   // the links' carrier now
            }
            const auto want = dataplane_session(e);
            auto it = held.find(e.session_id);
            if (it != held.end() && it->second == want) {
                ++report.sessions_kept;
                continue;
            }
            sink_.upsert(want);
            ++report.sessions_written;
        } catch (const std::exception& ex) {
            // The binding stays (its MAG's refresh writes it again); forwarding waits for that.
            spdlog::error("restart: session {} for {}: writing it failed: {}", e.session_id, id, ex.what());
            e.in_dataplane = false;
        }
    }
}

void LocalMobilityAnchor::journal_change(const BindingCacheEntry& e) {
    if (journal_) {
        journal_->put(*e.key, cache_.peer_name(e), e);
    }
}

void LocalMobilityAnchor::journal_erase(const std::string& mn_id) {
    if (journal_) {
        journal_->erase(mn_id);
    }
}

} // namespace xpmip::lma
