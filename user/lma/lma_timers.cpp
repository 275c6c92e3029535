// The LMA's timers (RFC 5213 §5.3.3 lifetime expiry, §5.3.5 MinDelayBeforeBCEDelete, §5.4.1.3
// MaxDelayBeforeNewBCEAssign) and the deadline index that tells the daemon when to call on_timer;
// and the multipath sessions' paths as their bindings and links change (RFC 8278).
#include "lma/lma.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace xpmip::lma {

using namespace xpmip::wire;

void LocalMobilityAnchor::deregister(BindingCacheEntry& e, Clock::time_point now) {
    // RFC 5213 §5.3.5: keep the entry MinDelayBeforeBCEDelete (a new MAG may take it over with
    // the same prefixes and keys), but forwarding to the MAG the MN has left stops now.
    if (e.in_dataplane) {
        try {
            sink_.remove(e.session_id);
        } catch (const std::exception& ex) {
            spdlog::error("session {} for {}: removing it from the data plane failed: {}", e.session_id, *e.key,
                          ex.what());
        }
        e.in_dataplane = false;
    }
    leave_bulk_group(e);   // RFC 6602 §5.2.2
    e.deregistered = true;
    e.expires = now + config_.timers.min_delay_before_bce_delete;   // the entry's end now
    journal_change(e);
}

void LocalMobilityAnchor::release_resources(const BindingCacheEntry& e, Clock::time_point now) {
    MobileNodeProfile stored;
    const MobileNodeProfile* profile = profile_of(*e.key, stored);
    if (auto* v6 = pool_of(ipv6_pools_, e.realm); v6 && e.hnp && !(profile && profile->home_network_prefix == e.hnp)) {
        v6->release(*e.hnp, now);
    }
    if (auto* v4 = pool_of(ipv4_pools_, e.realm); v4 && e.ipv4_hoa && !(profile && profile->ipv4_home_address == e.ipv4_hoa)) {
        v4->release(*e.ipv4_hoa, now);
    }
    if (e.key_uplink) {
        release_uplink_key(*e.key_uplink, now);
    }
    for (const auto& [bid, b] : bindings_of(e)) {
        if (b.key_uplink) {
            release_uplink_key(*b.key_uplink, now);
        }
    }
    if (e.multipath) {
        for (const auto& [bid, h] : e.multipath->held_keys) {
            release_uplink_key(h.key, now);
        }
    }
    session_ids_.release(e.session_id, now);   // it may have been the session's key: it rests too
}

void LocalMobilityAnchor::delete_entry(const std::string& mn_id, Clock::time_point now) {
    BindingCacheEntry* e = cache_.find(mn_id);
    if (!e) {
        return;
    }
    if (e->in_dataplane) {
        try {
            sink_.remove(e->session_id);
        } catch (const std::exception& ex) {
            spdlog::error("session {} for {}: removing it from the data plane failed: {}", e->session_id, mn_id,
                          ex.what());
        }
    }
    leave_bulk_group(*e);
    release_resources(*e, now);
    journal_erase(mn_id);
    cache_.erase(mn_id);
}

// RFC 8278: a binding of a multipath session expires on its own; the session when the last does
// (in on_timer, as any session).
void LocalMobilityAnchor::expire_multipath_bindings(const std::vector<std::string>& due, Clock::time_point now) {
    for (const auto& id : due) {
        BindingCacheEntry& e = *cache_.find(id);
        release_held_keys(e, now, false);
        if (!e.multipath || e.deregistered || e.expires <= now || e.multipath->bindings.empty()) {
            continue;
        }
        auto& bindings = e.multipath->bindings;
        if (std::all_of(bindings.begin(), bindings.end(), [&](const auto& kv) { return kv.second.expires <= now; })) {
            e.expires = now;
            continue;
        }
        bool changed = false;
        for (auto it = bindings.begin(); it != bindings.end();) {
            if (it->second.expires <= now) {
                spdlog::info("binding {} of {} ({} label {}) expired", it->first, id, to_string(it->second.proxy_coa),
                             config_.steering.label_name(it->second.label));
                if (it->second.key_uplink) {
                    release_uplink_key(*it->second.key_uplink, now);
                }
                it = bindings.erase(it);
                changed = true;
            } else {
                ++it;
            }
        }
        e.expires = bindings_expiry(e);
        rewrite_paths(e, changed);
        if (changed) {
            journal_change(e);
        }
    }
}

std::vector<OutgoingPba> LocalMobilityAnchor::on_timer(Clock::time_point now) {
    std::vector<OutgoingPba> replies;
    std::vector<std::string> expired, deleted;
    // Only the entries whose deadline has come (the index, not a walk of the whole cache).
    const std::vector<std::string> due_ids = cache_.due(now);
    expire_multipath_bindings(due_ids, now);
    for (const auto& id : due_ids) {
        const BindingCacheEntry& e = *cache_.find(id);
        if (!e.deregistered && e.expires <= now) {
            expired.push_back(id);
        } else if (e.deregistered && e.expires <= now) {
            deleted.push_back(id);
        }
    }
    for (const auto& id : expired) {
        spdlog::info("binding of {} expired (lifetime {} s): session {} removed", id,
                     cache_.find(id)->lifetime.count(), cache_.find(id)->session_id);
        delete_entry(id, now);
    }
    for (const auto& id : deleted) {
        spdlog::info("binding of {} deleted {} ms after its de-registration", id,
                     config_.timers.min_delay_before_bce_delete.count());
        delete_entry(id, now);
    }
    for (const auto& id : due_ids) {
        touch(id);
    }
    std::vector<IncomingPbu> due;
    for (auto it = deferred_.begin(); it != deferred_.end();) {
        if (it->second.deadline <= now) {
            due.push_back(std::move(it->second.in));
            it = deferred_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& in : due) {
        auto more = process(in, now, true);
        replies.insert(replies.end(), more.begin(), more.end());
        touch_for(in);
    }
    return replies;
}

Clock::time_point LocalMobilityAnchor::entry_deadline(const BindingCacheEntry& e) {
    if (e.deregistered) {
        return e.expires;
    }
    Clock::time_point t = e.expires;
    for (const auto& [bid, b] : bindings_of(e)) {
        t = std::min(t, b.expires);
    }
    if (e.multipath) {
        for (const auto& [bid, h] : e.multipath->held_keys) {
            t = std::min(t, h.until);
        }
    }
    return t;
}

void LocalMobilityAnchor::touch(const std::string& mn_id) {
    if (BindingCacheEntry* e = cache_.find(mn_id)) {
        cache_.recount(*e);   // its state may have changed (metrics)
        cache_.schedule(*e, entry_deadline(*e));
    }
}

void LocalMobilityAnchor::touch_for(const IncomingPbu& in) {
    if (const auto* id = in.pbu.options.find<MobileNodeIdentifierOption>()) {
        touch(mn_key(*id));
    }
}

std::optional<Clock::time_point> LocalMobilityAnchor::next_deadline() const {
    // Asked before every poll(): the earliest of the index, not a walk of every binding
    // (at a million bindings that walk cost 80 ms per wake-up, bench/README.md).
    std::optional<Clock::time_point> next = cache_.earliest();
    for (const auto& [id, d] : deferred_) {   // handoffs waiting for HI 4: few, and short-lived
        if (!next || d.deadline < *next) {
            next = d.deadline;
        }
    }
    return next;
}

Clock::time_point LocalMobilityAnchor::bindings_expiry(const BindingCacheEntry& e) {
    Clock::time_point last{};
    for (const auto& [bid, b] : bindings_of(e)) {
        last = std::max(last, b.expires);
    }
    return last;
}

namespace {

// A path between our address and the MAG's, with its keys when it has both (RFC 5845 §5.1).
dataplane::PathConfig path_between(const IpAddress& lma, const IpAddress& mag, const std::optional<std::uint32_t>& down,
                                   const std::optional<std::uint32_t>& up) {
    dataplane::PathConfig p;
    p.local = lma;
    p.remote = mag;
    if (down && up) {
        p.key_downlink = *down;
        p.key_uplink = *up;
    }
    return p;
}

} // namespace

dataplane::SessionConfig LocalMobilityAnchor::dataplane_session(const BindingCacheEntry& e) const {
    dataplane::SessionConfig s;
    s.id = e.session_id;
    s.encap = e.encap;
    s.gre_keys = e.gre_keys;
    s.realm = e.realm;
    if (e.serves_hnp) {
        s.hnp = e.hnp;
    }
    if (e.serves_hoa && e.ipv4_hoa) {
        s.hoa = Ipv4Prefix{*e.ipv4_hoa, 32};
    }
    s.mn_ifindex = sink_.realm_ifindex(e.realm);
    if (!e.multipath) {
        s.paths = {path_between(e.lma_address, e.proxy_coa, e.key_downlink, e.key_uplink)};
        return s;
    }
    for (const auto& [bid, b] : e.multipath->bindings) {   // by Binding-Id: the same order at both ends
        dataplane::PathConfig p = path_between(b.lma_address, b.proxy_coa, b.key_downlink, b.key_uplink);
        p.label = b.label;
        p.bid = b.bid;
        p.weight = b.weight;
        p.up = b.path_up;
        s.paths.push_back(p);
    }
    s.policy = e.policy;
    return s;
}

bool LocalMobilityAnchor::dataplane_holds(const BindingCacheEntry* e, const dataplane::SessionConfig& s) const {
    if (!e || !e->in_dataplane) {
        return false;
    }
    try {
        return dataplane_session(*e) == s;
    } catch (const std::exception&) {
        return false;   // (its realm gone from the configuration: write it again)
    }
}

std::uint8_t LocalMobilityAnchor::steering_policy_id() const {
    return config_.steering.policy.rules.empty() ? 0 : config::kSteeringPolicyId;
}

bool LocalMobilityAnchor::links_moved(const BindingCacheEntry& e) const {
    return e.policy != steering_policy_id() ||
           std::any_of(e.multipath->bindings.begin(), e.multipath->bindings.end(), [&](const auto& kv) {
               const MultipathBinding& b = kv.second;
               return b.path_up != link_carries(b) || b.weight != config_.steering.weight(b.label);
           });
}

void LocalMobilityAnchor::follow_links(BindingCacheEntry& e) const {
    for (auto& [bid, b] : e.multipath->bindings) {
        b.path_up = link_carries(b);
        b.weight = config_.steering.weight(b.label);
    }
    e.policy = steering_policy_id();
}

bool LocalMobilityAnchor::link_carries(const MultipathBinding& b) const {
    return (b.ifindex == 0 || sink_.link_up(b.ifindex)) && sink_.peer_answers(b.proxy_coa);
}

std::size_t LocalMobilityAnchor::on_mag_restart(const IpAddress& mag, Clock::time_point restarted_after,
                                                Clock::time_point now) {
    const Clock::time_point until = now + config_.timers.mag_restart_grace;
    // Registered (or refreshed) at or before the restart: `expires` less the lifetime granted.
    auto stale = [&](Clock::time_point expires, std::chrono::seconds lifetime) {
        return expires - lifetime <= restarted_after && expires > until;
    };
    std::vector<std::string> ids;
    for (const auto& [id, e] : cache_.entries()) {
        if (e.deregistered) {
            continue;
        }
        bool mine = !e.multipath && e.proxy_coa == mag && stale(e.expires, e.lifetime);
        for (const auto& [bid, b] : bindings_of(e)) {
            mine = mine || (b.proxy_coa == mag && stale(b.expires, e.lifetime));
        }
        if (mine) {
            ids.push_back(id);
        }
    }
    for (const auto& id : ids) {
        BindingCacheEntry& e = *cache_.find(id);
        if (e.multipath) {
            for (auto& [bid, b] : e.multipath->bindings) {
                if (b.proxy_coa == mag && stale(b.expires, e.lifetime)) {
                    b.expires = until;
                }
            }
            e.expires = bindings_expiry(e);
        } else {
            e.expires = until;
        }
        touch(id);
    }
    if (!ids.empty()) {
        spdlog::warn("MAG {} restarted: {} binding(s) it has not registered again since go in {} ms unless it does",
                     to_string(mag), ids.size(), config_.timers.mag_restart_grace.count());
    }
    return ids.size();
}

void LocalMobilityAnchor::rewrite_paths(BindingCacheEntry& e, bool bindings_changed) {
    if (!e.multipath || !e.in_dataplane || (!bindings_changed && !links_moved(e))) {
        return;
    }
    const MultipathState before = *e.multipath;
    const std::uint8_t policy_before = e.policy;
    follow_links(e);
    try {
        sink_.upsert(dataplane_session(e));
        journal_change(e);
    } catch (const std::exception& ex) {
        *e.multipath = before;   // what the data plane still holds
        e.policy = policy_before;
        spdlog::error("session {} for {}: updating its paths failed: {}", e.session_id, *e.key, ex.what());
    }
}

void LocalMobilityAnchor::on_link_change() {
    for (auto& [id, e] : cache_.entries()) {
        rewrite_paths(e, false);
    }
}

} // namespace xpmip::lma
