// RFC 5846 at the LMA: revocations it starts (§8.1), their BRAs (§6.2.2) and retransmissions
// (§6.3, §11).
#include "common/log_limit.hpp"
#include "lma/lma.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace xpmip::lma {

namespace trigger = wire::revocation_trigger;

// §8.1, §4: toward the binding's proxy CoA, from the LMA address it registered with, over its
// transport (UDP: to the port its PBUs came from).
OutgoingBri LocalMobilityAnchor::bri_toward(const BindingCacheEntry& e, wire::BindingRevocationIndication bri) const {
    return OutgoingBri{e.transport, e.lma_address, e.proxy_coa, e.mag_port, std::move(bri)};
}

std::vector<OutgoingBri> LocalMobilityAnchor::revoke(const RevocationRequest& request, Clock::time_point now) {
    using Scope = RevocationRequest::Scope;
    if (request.scope == Scope::MobileNode) {
        return revoke_mn(request.target, request.trigger.value_or(trigger::kAdministrativeReason), now);
    }
    const std::uint8_t t = request.trigger.value_or(trigger::kPerPeerPolicy);
    // §8.1: all of a peer's bindings is G with Per-Peer Policy (129 names a realm in an MN-ID).
    if (t != trigger::kPerPeerPolicy) {
        throw std::invalid_argument(fmt::format("trigger: {} ({}) does not revoke all of a peer's bindings; "
                                                "only 128 (Per-Peer Policy) does",
                                                t, wire::revocation_trigger_name(t)));
    }
    if (request.scope == Scope::Peer) {
        for (const auto& p : config_.peers) {
            if (p.name == request.target) {
                return revoke_peer(p, t, now);
            }
        }
        std::vector<std::string> names;
        for (const auto& p : config_.peers) {
            names.push_back(p.name);
        }
        throw std::invalid_argument(fmt::format("peer: '{}' is not a configured MAG (peers: {})", request.target,
                                                fmt::join(names, ", ")));
    }
    std::vector<OutgoingBri> out;
    for (const auto& p : config_.peers) {
        auto more = revoke_peer(p, t, now);
        out.insert(out.end(), more.begin(), more.end());
    }
    if (out.empty()) {
        throw std::invalid_argument("all: no binding to revoke");
    }
    return out;
}

// §8.1: P set, a per-MN trigger, the MN-ID the MN registered with and its Home Network Prefix.
std::vector<OutgoingBri> LocalMobilityAnchor::revoke_mn(const std::string& mn, std::uint8_t t, Clock::time_point now) {
    if (trigger::is_global(t)) {
        throw std::invalid_argument(fmt::format("trigger: {} ({}) is a global trigger: use --peer or --all", t,
                                                wire::revocation_trigger_name(t)));
    }
    const BindingCacheEntry* e = cache_.find(mn);
    if (!e || e->deregistered) {
        throw std::invalid_argument(fmt::format("mn: '{}' has no binding here", mn));
    }
    if (auto it = revoking_.find(mn); it != revoking_.end()) {
        throw std::invalid_argument(fmt::format("mn: the revocation of '{}' is in progress (BRI {})", mn, it->second));
    }
    wire::BindingRevocationIndication bri;
    bri.trigger = t;
    bri.options.add(wire::MobileNodeIdentifierOption{wire::kMnIdSubtypeNai, mn});
    if (e->hnp) {
        bri.options.add(wire::HomeNetworkPrefixOption{e->hnp->length, e->hnp->address});
    }
    return {start_revocation(bri_toward(*e, std::move(bri)), {mn}, now)};
}

// §8.1: "the local mobility anchor MUST set the Global (G) bit ... 'Per-Peer Policy' ... MUST NOT
// include any mobility options": one BRI to each proxy CoA of the peer that has bindings.
std::vector<OutgoingBri> LocalMobilityAnchor::revoke_peer(const MagPeer& peer, std::uint8_t t, Clock::time_point now) {
    std::map<std::tuple<IpAddress, IpAddress, int, std::uint16_t>, std::pair<const BindingCacheEntry*, std::vector<std::string>>>
        by_coa;
    for (const auto& [id, e] : cache_.entries()) {
        if (e.deregistered || cache_.peer_name(e) != peer.name || revoking_.count(id) != 0) {
            continue;
        }
        auto& slot = by_coa[{e.proxy_coa, e.lma_address, static_cast<int>(e.transport), e.mag_port}];
        slot.first = &e;
        slot.second.push_back(id);
    }
    std::vector<OutgoingBri> out;
    for (auto& [key, slot] : by_coa) {
        wire::BindingRevocationIndication bri;
        bri.trigger = t;
        bri.flags = wire::br_flag::kProxy | wire::br_flag::kGlobal;
        out.push_back(start_revocation(bri_toward(*slot.first, std::move(bri)), std::move(slot.second), now));
    }
    if (out.empty() && !cache_.entries().empty()) {
        spdlog::info("revocation: peer '{}' holds no binding", peer.name);
    }
    return out;
}

// §6.1: a Sequence Number no outstanding BRI has; §8.1: the BCEs "revocation in progress" and
// InitMINDelayBRIs started.
OutgoingBri LocalMobilityAnchor::start_revocation(OutgoingBri out, std::vector<std::string> mns, Clock::time_point now) {
    while (next_bri_sequence_ == 0 || revocations_.count(next_bri_sequence_) != 0) {
        ++next_bri_sequence_;
    }
    const std::uint16_t seq = next_bri_sequence_++;
    out.bri.sequence = seq;
    for (const auto& mn : mns) {
        revoking_[mn] = seq;
    }
    spdlog::info("BRI seq={} trigger={} ({}){} to {}: {} binding(s){}", seq, out.bri.trigger,
                 wire::revocation_trigger_name(out.bri.trigger), out.bri.has(wire::br_flag::kGlobal) ? " G" : "",
                 to_string(out.dst), mns.size(), mns.size() == 1 ? " of " + mns.front() : "");
    PendingRevocation p{out, std::move(mns), 0, config_.timers.bri_initial_delay, now + config_.timers.bri_initial_delay};
    revocations_.emplace(seq, std::move(p));
    return out;
}

// §6.2.2: success removes the bindings "and all associated resources"; what else is local policy.
bool LocalMobilityAnchor::on_bra(const IpAddress& src, const wire::BindingRevocationAcknowledgement& bra,
                                 Clock::time_point now) {
    auto it = revocations_.find(bra.sequence);
    if (it == revocations_.end() || it->second.out.dst != src) {
        std::uint64_t suppressed = 0;
        if (signaling_log_limiter().admit(to_string(src), "unexpected BRA", now, &suppressed)) {
            spdlog::warn("BRA seq={} status={} from {}: no BRI of ours outstanding with that sequence number to it, "
                         "dropped{}", bra.sequence, bra.status, to_string(src),
                         suppressed ? fmt::format(" ({} more like it suppressed)", suppressed) : "");
        }
        return false;
    }
    const bool keep = bra.status == wire::bra_status::kRevocationFailedMnIsAttached;
    const auto outcome = finish_revocation(it->second, keep, now);
    const auto level = bra.accepted() ? spdlog::level::info : spdlog::level::warn;
    spdlog::log(level, "BRA seq={} status={} ({}) from {}: {} binding(s) removed{}", bra.sequence, bra.status,
                wire::bra_status_name(bra.status), to_string(src), outcome.removed,
                outcome.kept ? fmt::format(", {} kept (the MAG says the MN is attached)", outcome.kept) : "");
    revocations_.erase(it);
    return true;
}

// §6.3: retransmit with the wait doubled up to MAX_BRACK_TIMEOUT, BRIMaxRetriesNumber times;
// then "the initiator SHOULD clean up all resources associated with this mobile node binding".
std::vector<OutgoingBri> LocalMobilityAnchor::on_revocation_timer(Clock::time_point now) {
    std::vector<OutgoingBri> out;
    for (auto it = revocations_.begin(); it != revocations_.end();) {
        PendingRevocation& p = it->second;
        if (p.next > now) {
            ++it;
            continue;
        }
        if (p.retransmissions < config_.timers.bri_max_retries) {
            ++p.retransmissions;
            p.timeout = std::min(p.timeout * 2, config_.timers.bri_max_timeout);
            p.next = now + p.timeout;
            out.push_back(p.out);
            ++it;
            continue;
        }
        const auto outcome = finish_revocation(p, false, now);
        spdlog::warn("BRI seq={} to {}: no BRA after {} retransmission(s): {} binding(s) removed all the same",
                     it->first, to_string(p.out.dst), p.retransmissions, outcome.removed);
        it = revocations_.erase(it);
    }
    return out;
}

std::optional<Clock::time_point> LocalMobilityAnchor::next_revocation_deadline() const {
    std::optional<Clock::time_point> t;
    for (const auto& [seq, p] : revocations_) {
        if (!t || p.next < *t) {
            t = p.next;
        }
    }
    return t;
}

std::vector<OutgoingBri> LocalMobilityAnchor::revoke_unauthorized(Clock::time_point now) {
    std::vector<std::string> gone;
    MobileNodeProfile storage;
    for (const auto& [id, e] : cache_.entries()) {
        if (e.deregistered || revoking_.count(id) != 0) {
            continue;
        }
        const std::string& peer = cache_.peer_name(e);
        const bool peer_known = std::any_of(config_.peers.begin(), config_.peers.end(),
                                            [&](const MagPeer& p) { return p.name == peer; });
        if (!peer_known || !profile_of(id, storage)) {
            gone.push_back(id);
        }
    }
    std::vector<OutgoingBri> out;
    for (const auto& id : gone) {
        spdlog::info("{}: no longer authorized by the configuration: its binding is revoked", id);
        auto more = revoke_mn(id, trigger::kAdministrativeReason, now);
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

// The MNs of `p` still in its revocation (a PBU accepted meanwhile took one out) go, or stay.
RevocationOutcome LocalMobilityAnchor::finish_revocation(const PendingRevocation& p, bool keep, Clock::time_point now) {
    RevocationOutcome outcome;
    for (const auto& mn : p.mns) {
        auto it = revoking_.find(mn);
        if (it == revoking_.end() || it->second != p.out.bri.sequence) {
            continue;
        }
        revoking_.erase(it);
        if (keep) {
            ++outcome.kept;
        } else if (cache_.find(mn)) {
            delete_entry(mn, now);
            ++outcome.removed;
        }
    }
    return outcome;
}

void LocalMobilityAnchor::forget_revocation_of(const std::string& mn_id) {
    if (!revoking_.empty()) {
        revoking_.erase(mn_id);
    }
}

} // namespace xpmip::lma
