// RFC 6602 at the LMA: bindings join their MAG's bulk binding update group when the MAG asks
// (§5.2.2), and one PBU naming the group refreshes all of them (§5.2.3).
#include "lma/lma.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace xpmip::lma {

using namespace wire;

const MobileNodeGroupIdentifierOption* LocalMobilityAnchor::bulk_group_option(const ProxyBindingUpdate& pbu) {
    for (const auto& o : pbu.options.items) {
        const auto* g = std::get_if<MobileNodeGroupIdentifierOption>(&o);
        if (g && g->subtype == kMngSubtypeBulkBindingUpdateGroup) {
            return g;
        }
    }
    return nullptr;
}

// §5.2.3: "(B) flag ... set to a value of (0) and a Mobile Node Group Identifier option present
// ... with sub-type value of (1)": a bulk binding update request.
bool LocalMobilityAnchor::is_bulk_pbu(const ProxyBindingUpdate& pbu) {
    return !pbu.has(bu_flag::kBulk) && bulk_group_option(pbu) != nullptr;
}

// §5.2.3, step by step: the MAG authorized, no individual session identifier, its timestamp
// fresh, the group known for that MAG; then every binding of it refreshed (or, lifetime 0,
// de-registered: RFC 6602 defines no bulk de-registration; README "Bulk re-registration").
std::vector<OutgoingPba> LocalMobilityAnchor::bulk_update(const IncomingPbu& in, Clock::time_point now) {
    const auto& group = *bulk_group_option(in.pbu);
    OutgoingPba out{in.transport, in.dst, in.src, in.src_port, {}};
    ProxyBindingAcknowledgement& pba = out.pba;
    pba.sequence = in.pbu.sequence;
    pba.options.add(group);   // §5.2.3: the identifier copied
    const auto* ts = in.pbu.options.find<TimestampOption>();
    const auto answer = [&](Status s, const std::string& why) {
        pba.status = static_cast<std::uint8_t>(s);
        if (ts) {
            pba.options.add(s == Status::TimestampMismatch ? TimestampOption{wall_timestamp_()} : *ts);
        }
        spdlog::log(is_success(s) ? spdlog::level::info : spdlog::level::warn,
                    "bulk PBU group={} mag={} seq={} lifetime={}s -> PBA status={}({}){}", group.group,
                    to_string(in.src), in.pbu.sequence, in.pbu.lifetime_seconds().count(), status_name(s),
                    static_cast<unsigned>(s), why);
        return std::vector<OutgoingPba>{out};
    };
    const MagPeer* peer = config_.peer_by_address(in.src);
    if (!peer) {
        return answer(Status::MagNotAuthorizedForProxyReg, ": not a configured MAG");
    }
    // §5.2.3: "MUST NOT include any individual session identifiers" (MN-ID, HNP, IPv4 HoA
    // Request, GRE Key): 175.
    const auto& o = in.pbu.options;
    if (o.find<MobileNodeIdentifierOption>() || o.find<HomeNetworkPrefixOption>() ||
        o.find<Ipv4HomeAddressRequestOption>() || o.find<GreKeyOption>()) {
        return answer(Status::InvalidMobileNodeGroupIdentifier,
                      ": a bulk PBU carrying an individual session identifier (MN-ID, HNP, IPv4 HoA Request or "
                      "GRE Key)");
    }
    if (ts) {
        const std::uint64_t ours = wall_timestamp_();
        const std::uint64_t diff = ts->value > ours ? ts->value - ours : ours - ts->value;
        if (diff > static_cast<std::uint64_t>(config_.timers.timestamp_validity_window.count()) * 65536 / 1000) {
            return answer(Status::TimestampMismatch, "");
        }
    }
    auto it = bulk_groups_.find({cache_.peer_id(peer->name), group.group});
    if (it == bulk_groups_.end() || it->second.members.empty()) {
        return answer(Status::InvalidMobileNodeGroupIdentifier,
                      fmt::format(": MAG '{}' has no group {} here", peer->name, group.group));
    }
    const std::vector<const std::string*> members(it->second.members.begin(), it->second.members.end());
    const auto granted = std::min(in.pbu.lifetime_seconds(), config_.timers.max_lifetime);
    for (const std::string* id : members) {
        BindingCacheEntry& e = *cache_.find(*id);
        if (granted.count() == 0) {
            leave_bulk_group(e);
            deregister(e, now);
        } else {
            e.lifetime = granted;
            e.expires = now + granted;
        }
        touch(*id);
    }
    pba.lifetime = static_cast<std::uint16_t>(granted.count() / kLifetimeUnitSeconds);
    return answer(Status::Accepted, fmt::format(": {} binding(s) {}", members.size(),
                                                granted.count() ? "refreshed" : "de-registered"));
}

// §5.2.2: a registration with B and the group option joins that group (a multipath session
// does not: its bindings are refreshed one by one); one without B leaves any group it was in.
void LocalMobilityAnchor::follow_bulk_request(const Registration& r, BindingCacheEntry& e) {
    const auto* group = bulk_group_option(r.pbu);
    const bool join = config_.bulk_registration && r.pbu.has(bu_flag::kBulk) && group && !e.multipath;
    if (e.bulk_group != 0 && (!join || e.bulk_group != group->group)) {
        leave_bulk_group(e);
    }
    if (!join || e.bulk_group != 0) {
        return;
    }
    BulkGroup& g = bulk_groups_[{e.peer, group->group}];
    if (g.lma_group == 0) {
        g.lma_group = next_lma_group_++;
    }
    g.members.insert(e.key);
    e.bulk_group = group->group;
}

// §5.2.2: de-registered or revoked, a session "MUST also be removed from the bulk binding
// update group".
void LocalMobilityAnchor::leave_bulk_group(BindingCacheEntry& e) {
    if (e.bulk_group == 0) {
        return;
    }
    auto it = bulk_groups_.find({e.peer, e.bulk_group});
    if (it != bulk_groups_.end()) {
        it->second.members.erase(e.key);
        if (it->second.members.empty()) {
            bulk_groups_.erase(it);
        }
    }
    e.bulk_group = 0;
}

// §5.2.2: B set and our group's id in the PBA when the binding joined; B clear otherwise.
void LocalMobilityAnchor::add_bulk_answer(const BindingCacheEntry& e, ProxyBindingAcknowledgement& pba) const {
    if (e.bulk_group == 0) {
        return;
    }
    pba.flags |= ba_flag::kBulk;
    pba.options.add(MobileNodeGroupIdentifierOption{kMngSubtypeBulkBindingUpdateGroup,
                                                    bulk_groups_.at({e.peer, e.bulk_group}).lma_group});
}

} // namespace xpmip::lma
