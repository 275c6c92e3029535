// The LMA's registration (RFC 5213 §5.3) as a pipeline of named steps over one Registration
// (registration.hpp). process() reads as the RFC: authorize, check freshness, de-register or
// decide the handoff, check and assign addresses, negotiate GRE, take keys and ids into one
// Reservation, write the data plane, commit the entry, answer. The PBAs are built in pba.cpp,
// lifetimes and deletion are in lma_timers.cpp.
#include "lma/lma.hpp"

#include "dataplane/session_table.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace xpmip::lma {

using namespace xpmip::wire;

namespace {

constexpr std::uint32_t kMaxSessionId = 0xffffffffu;

// RFC 6275 §9.5.1: sequence numbers compare modulo 2^16.
bool sequence_newer(std::uint16_t seq, std::uint16_t last) {
    auto d = static_cast<std::uint16_t>(seq - last);
    return d != 0 && d < 0x8000;
}

bool is_requested_prefix(const HomeNetworkPrefixOption& o) {
    return o.prefix_length != 0 || !o.prefix.is_unspecified();
}

} // namespace

PbuOptions PbuOptions::of(const ProxyBindingUpdate& pbu, bool multipath_enabled) {
    PbuOptions o;
    o.mn_id = pbu.options.find<MobileNodeIdentifierOption>();
    o.hi = pbu.options.find<HandoffIndicatorOption>();
    o.att = pbu.options.find<AccessTechnologyTypeOption>();
    o.timestamp = pbu.options.find<TimestampOption>();
    o.ipv4_request = pbu.options.find<Ipv4HomeAddressRequestOption>();
    o.gre = pbu.options.find<GreKeyOption>();
    o.mn_link_layer = pbu.options.find<MobileNodeLinkLayerIdOption>();
    o.link_local = pbu.options.find<LinkLocalAddressOption>();
    o.ipv4_coa = pbu.options.find<Ipv4CareOfAddressOption>();
    o.hnps = pbu.options.all<HomeNetworkPrefixOption>();
    if (multipath_enabled) {
        o.multipath = pbu.options.find<MagMultipathBindingOption>();
        o.mag_identifier = pbu.options.find<MagIdentifierOption>();
    }
    return o;
}

LocalMobilityAnchor::LocalMobilityAnchor(LmaConfig config, SessionSink& sink,
                                         std::function<std::uint64_t()> wall_timestamp)
    : config_(std::move(config)),
      sink_(sink),
      wall_timestamp_(wall_timestamp ? std::move(wall_timestamp) : std::function<std::uint64_t()>(timestamp_now)),
      // A session id is the index of its data plane slot and our uplink key of its single binding
      // (the data plane finds the session by the key it arrives with, README "Data plane at
      // scale"); RFC 5845 §3.3 keys are unique per LMA, never 0, not reused until
      // MinDelayBeforeBCEDelete - so neither are ids.
      session_ids_(1, std::max<std::uint32_t>(config_.limits.sessions, 1), config_.timers.min_delay_before_bce_delete),
      // The keys of multipath bindings (RFC 8278: each binding its own), above the ids.
      uplink_keys_(std::uint64_t{config_.limits.sessions} + 1, kMaxSessionId, config_.timers.min_delay_before_bce_delete) {
    for (const auto& r : config_.realms) {
        if (r.ipv4_pool) {
            ipv4_pools_[r.id] = std::make_unique<Ipv4Pool>(*r.ipv4_pool, r.ipv4_default_router,
                                                           config_.timers.min_delay_before_bce_delete);
        }
        if (r.ipv6_pool) {
            ipv6_pools_[r.id] = std::make_unique<Ipv6PrefixPool>(*r.ipv6_pool, r.hnp_length,
                                                                 config_.timers.min_delay_before_bce_delete);
        }
    }
    reserve_static_addresses(config_);
    open_subscriber_store();
}

void LocalMobilityAnchor::open_subscriber_store() {
    if (!config_.subscriber_store) {
        return;
    }
    subscribers_ = std::make_unique<SubscriberStore>(*config_.subscriber_store);
    // The store's static addresses are never handed out from a pool: each pool asks the store
    // about an address as it reaches it (no scan of a million profiles at start or on change).
    const SubscriberStore* store = subscribers_.get();
    for (auto& [realm, pool] : ipv4_pools_) {
        pool->set_static_check([store, realm = realm](const Ipv4Address& a) { return store->holds_static(realm, a); });
    }
    for (auto& [realm, pool] : ipv6_pools_) {
        pool->set_static_check([store, realm = realm](const Ipv6Prefix& p) { return store->holds_static(realm, p); });
    }
    spdlog::info("subscriber store {}: {} subscribers", store->path(), store->size());
}

const MobileNodeProfile* LocalMobilityAnchor::profile_of(const std::string& id, MobileNodeProfile& storage) const {
    if (const auto* listed = config_.listed_mobile_node(id)) {
        return listed;
    }
    if (subscribers_) {
        try {
            if (subscribers_->find(id, storage)) {
                return &storage;
            }
        } catch (const std::exception& ex) {
            // A store that cannot answer authorizes nobody through it; the log says why.
            spdlog::error("mobile node {}: {}", id, ex.what());
            return nullptr;
        }
    }
    return config_.domain_mobile_node(id);
}

void LocalMobilityAnchor::release_uplink_key(std::uint32_t key, Clock::time_point now) {
    // A key at or below the session limit is a session's id: it goes with the session.
    if (key > config_.limits.sessions) {
        uplink_keys_.release(key, now);
    }
}

// RFC 5213 §5.3.5 for one binding of several (RFC 8278): its key rests with the MN for
// MinDelayBeforeBCEDelete, so that the binding registering again keeps it (RFC 5845 §3.3).
void LocalMobilityAnchor::hold_uplink_key(BindingCacheEntry& e, std::uint8_t bid, std::uint32_t key,
                                          Clock::time_point now) {
    auto& held = e.multipath->held_keys;
    if (auto old = held.find(bid); old != held.end() && old->second.key != key) {
        release_uplink_key(old->second.key, now);
    }
    held[bid] = MultipathState::HeldKey{key, now + config_.timers.min_delay_before_bce_delete};
}

std::optional<std::uint32_t> LocalMobilityAnchor::take_held_uplink_key(BindingCacheEntry& e, std::uint8_t bid) {
    if (!e.multipath) {
        return std::nullopt;
    }
    auto it = e.multipath->held_keys.find(bid);
    if (it == e.multipath->held_keys.end()) {
        return std::nullopt;
    }
    const auto key = it->second.key;
    e.multipath->held_keys.erase(it);
    return key;
}

// Held keys whose hold has ended go back to the pool (all of them when the entry goes).
void LocalMobilityAnchor::release_held_keys(BindingCacheEntry& e, Clock::time_point now, bool all) {
    if (!e.multipath) {
        return;
    }
    auto& held = e.multipath->held_keys;
    for (auto it = held.begin(); it != held.end();) {
        if (all || it->second.until <= now) {
            release_uplink_key(it->second.key, now);
            it = held.erase(it);
        } else {
            ++it;
        }
    }
}

void LocalMobilityAnchor::reserve_static_addresses(const LmaConfig& config) {
    // Static addresses belong to their MN for good: the pools never hand them out.
    for (const auto& m : config.mobile_nodes) {
        if (auto* v4 = pool_of(ipv4_pools_, m.realm); v4 && m.ipv4_home_address) {
            v4->reserve(*m.ipv4_home_address);
        }
        if (auto* v6 = pool_of(ipv6_pools_, m.realm); v6 && m.home_network_prefix) {
            v6->reserve(*m.home_network_prefix);
        }
    }
}

void LocalMobilityAnchor::reload(LmaConfig config) {
    // Pools, interfaces and addresses stay as they were loaded: changing them under live
    // bindings would strand addresses. Policy, peers, MNs and timers take effect now.
    config.realms = config_.realms;
    config.interfaces = config_.interfaces;
    config.addresses = config_.addresses;
    config.instance = config_.instance;
    config.limits = config_.limits;
    config.subscriber_store = config_.subscriber_store;   // the open store stays (a restart moves it)
    reserve_static_addresses(config);
    config_ = std::move(config);
}

std::vector<OutgoingPba> LocalMobilityAnchor::on_pbu(const IncomingPbu& in, Clock::time_point now) {
    auto replies = process(in, now, false);
    touch_for(in);   // whatever the PBU did to its MN's entry, the deadline index follows
    return replies;
}

std::vector<OutgoingPba> LocalMobilityAnchor::process(const IncomingPbu& in, Clock::time_point now, bool replay) {
    Registration r{.in = in, .pbu = in.pbu, .now = now, .replay = replay,
                   .opt = PbuOptions::of(in.pbu, config_.multipath), .dereg = in.pbu.lifetime == 0};
    if (!config_.is_own_address(in.dst)) {
        spdlog::warn("PBU from {} to {}, which is not one of our addresses: ignored", to_string(in.src),
                     to_string(in.dst));
        return {};
    }
    if (is_bulk_pbu(in.pbu)) {
        return bulk_update(in, now);   // RFC 6602 §5.2.3: a group, not one MN
    }
    if (auto s = authorize(r)) {
        return {reject(r, *s)};
    }
    if (auto s = check_multipath_request(r)) {
        return {reject(r, *s)};
    }
    find_binding(r);
    if (auto s = check_freshness(r)) {
        return {reject(r, *s)};
    }
    if (r.dereg) {
        return deregistration(r);
    }
    r.handoff = is_handoff(r);
    if (wait_for_previous_mag(r)) {
        return {};
    }
    return register_binding(r);
}

std::vector<OutgoingPba> LocalMobilityAnchor::register_binding(Registration& r) {
    r.realm = config_.realm(r.profile->realm);
    r.policy = effective_policy({&config_.policy, &r.realm->policy, &r.peer->policy, &r.profile->policy});
    for (auto step : {&LocalMobilityAnchor::check_addresses, &LocalMobilityAnchor::check_udp_encapsulation,
                      &LocalMobilityAnchor::negotiate_gre}) {
        if (auto s = (this->*step)(r)) {
            return {reject(r, *s)};
        }
    }
    r.next = r.entry ? *r.entry : BindingCacheEntry{};
    r.next.realm = r.profile->realm;
    Reservation res(session_ids_, uplink_keys_, pool_of(ipv6_pools_, r.profile->realm),
                    pool_of(ipv4_pools_, r.profile->realm), r.now);
    if (auto s = assign_addresses(r, res)) {
        return {reject(r, *s)};
    }
    replace_bindings(r);
    if (auto s = assign_session_id(r, res)) {
        return {reject(r, *s)};
    }
    if (auto s = assign_uplink_key(r, res)) {
        return {reject(r, *s)};
    }
    build_session(r);
    if (auto s = add_multipath_binding(r)) {
        return {reject(r, *s)};
    }
    if (auto s = write_session(r)) {
        return {reject(r, *s)};
    }
    res.commit();
    for (auto k : r.dropped_keys) {
        release_uplink_key(k, r.now);   // RFC 5845 §3.3: rests MinDelayBeforeBCEDelete
    }
    return {accept(r, commit_entry(r))};
}

// RFC 5213 §5.3.1 steps 2-4 and the options every registration needs (§5.3.1, RFC 5844 §3.2.2).
Rejection LocalMobilityAnchor::authorize(Registration& r) const {
    r.peer = config_.peer_by_address(r.in.src);
    if (!r.peer) {
        return Status::MagNotAuthorizedForProxyReg;
    }
    if (!r.opt.mn_id) {
        return Status::MissingMnIdentifierOption;
    }
    r.id = mn_key(*r.opt.mn_id);
    r.profile = profile_of(r.id, r.stored_profile);
    if (!r.profile) {
        return Status::NotLmaForThisMobileNode;
    }
    if (r.dereg) {
        return std::nullopt;
    }
    if (r.opt.hnps.empty() && !r.opt.ipv4_request) {
        return Status::MissingHomeNetworkPrefixOption;
    }
    if (!r.opt.hi) {
        return Status::MissingHandoffIndicatorOption;
    }
    if (!r.opt.att) {
        return Status::MissingAccessTechTypeOption;
    }
    return std::nullopt;
}

// RFC 8278 §4.4: the MAG Identifier comes with option 63, and the MN must be allowed multipath.
Rejection LocalMobilityAnchor::check_multipath_request(const Registration& r) const {
    if (!r.multipath()) {
        return std::nullopt;
    }
    if (!r.opt.mag_identifier) {
        spdlog::warn("PBU mn={} from {}: MAG Multipath-Binding option without the MAG Identifier option "
                     "(RFC 8278 §4.4)", r.id, to_string(r.in.src));
        return Status::CannotSupportMultipathBinding;
    }
    if (!r.profile->multipath) {
        spdlog::warn("PBU mn={} from {}: not authorized for multipath binding", r.id, to_string(r.in.src));
        return Status::CannotSupportMultipathBinding;
    }
    return std::nullopt;
}

void LocalMobilityAnchor::find_binding(Registration& r) {
    r.entry = cache_.find(r.id);
    if (r.multipath() && r.entry && r.entry->multipath) {
        auto& bindings = r.entry->multipath->bindings;
        auto it = bindings.find(r.opt.multipath->binding_id);
        r.binding = it == bindings.end() ? nullptr : &it->second;
    }
}

// RFC 5213 §5.5: timestamps when the PBU carries one, else sequence numbers. A deferred PBU was
// checked when it arrived; the previous MAG's de-registration it waited for is newer than it,
// which must not make it "lower than the last accepted". With RFC 8278 each binding has its own
// (each path's PBUs race the others').
Rejection LocalMobilityAnchor::check_freshness(Registration& r) const {
    if (r.replay) {
        return std::nullopt;
    }
    const BindingCacheEntry* e = r.entry;
    const bool per_binding = r.multipath() && e && e->multipath;
    const MultipathBinding* b = r.binding;
    if (const auto* ts = r.opt.timestamp) {
        const auto last = per_binding ? (b ? b->last_timestamp : std::nullopt) : e ? e->last_timestamp : std::nullopt;
        if (last && ts->value <= *last) {
            return Status::TimestampLowerThanPrevAccepted;
        }
        const std::uint64_t ours = wall_timestamp_();
        const std::uint64_t diff = ts->value > ours ? ts->value - ours : ours - ts->value;
        // 48.16 fixed point: 65536 units per second.
        const auto window = static_cast<std::uint64_t>(config_.timers.timestamp_validity_window.count()) * 65536 / 1000;
        return diff > window ? Rejection(Status::TimestampMismatch) : std::nullopt;
    }
    // Sequence numbers are per MAG: a MAG that takes the MN over cannot know the previous MAG's
    // (RFC 5213 §5.5 prefers timestamps for that reason), so only the same MAG's older numbers
    // are refused.
    const bool same_sender = per_binding ? (b && b->proxy_coa == r.in.src) : (e && e->proxy_coa == r.in.src);
    const std::uint16_t last = per_binding ? (b ? b->last_sequence : 0) : (e ? e->last_sequence : 0);
    if (same_sender && !sequence_newer(r.pbu.sequence, last)) {
        r.last_accepted_sequence = last;   // RFC 6275 §6.1.8: the PBA carries it
        return Status::SequenceNumberOutOfWindow;
    }
    return std::nullopt;
}

// RFC 5213 §5.4.1: another MAG registers the MN. A multipath session belongs to one MAG (its
// Identifier): another proxy CoA of that MAG adds a binding.
bool LocalMobilityAnchor::is_handoff(const Registration& r) const {
    const BindingCacheEntry* e = r.entry;
    if (!e || e->deregistered) {
        return false;
    }
    return r.multipath() && e->multipath ? e->multipath->mag_id != r.opt.mag_identifier->identifier : e->proxy_coa != r.in.src;
}

// RFC 5213 §5.4.1.3: with the handoff state unknown (HI 4) while the previous MAG's binding is
// up, wait up to MaxDelayBeforeNewBCEAssign for its de-registration. Our binding cache keeps one
// mobility session per MN, so when the wait ends the registration moves it to the new MAG anyway.
bool LocalMobilityAnchor::wait_for_previous_mag(const Registration& r) {
    const auto wait = config_.timers.max_delay_before_new_bce_assign;
    if (!r.handoff || r.multipath() || r.replay || wait.count() == 0 ||
        r.opt.hi->value != static_cast<std::uint8_t>(HandoffIndicator::Unknown)) {
        return false;
    }
    auto [it, fresh] = deferred_.try_emplace(r.id, Deferred{r.in, r.now + wait});
    if (!fresh) {
        it->second.in = r.in;   // a retransmission replaces the waiting PBU, the deadline stays
    }
    spdlog::info("PBU mn={} mag={} seq={} hi=4 while bound to {}: waiting up to {} ms for its de-registration", r.id,
                 to_string(r.in.src), r.pbu.sequence, to_string(r.entry->proxy_coa), wait.count());
    return true;
}

// RFC 5213 §5.3.1 steps 7-8 (the MN's IPv6 service and its prefix), RFC 5844 §3.2.2 (IPv4).
Rejection LocalMobilityAnchor::check_addresses(Registration& r) const {
    AddressRequest& a = r.addresses;
    for (const auto& h : r.opt.hnps) {
        if (is_requested_prefix(h)) {
            a.requested.push_back(h);
        }
    }
    a.serve6 = !r.opt.hnps.empty();
    a.serve4 = r.opt.ipv4_request != nullptr;
    if (a.serve6 && !r.profile->ipv6) {
        if (!(a.serve4 && r.profile->ipv4)) {
            return Status::NotAuthorizedForIpv6MobilityService;
        }
        a.serve6 = false;
    }
    if (a.serve4 && !r.profile->ipv4) {
        if (!a.serve6) {
            return Status::NotAuthorizedForIpv4MobilityService;
        }
        a.serve4 = false;
        a.ipv4_prohibited = true;
    }
    const BindingCacheEntry* e = r.entry;
    if (a.serve6 && !a.requested.empty()) {
        const Ipv6Prefix want{a.requested.front().prefix, a.requested.front().prefix_length};
        if (e && e->hnp) {
            if (a.requested.size() != 1 || want != *e->hnp) {
                return Status::BcePbuPrefixSetDoNotMatch;
            }
        } else if (a.requested.size() != 1 || !r.profile->home_network_prefix || want != *r.profile->home_network_prefix) {
            return Status::NotAuthorizedForHomeNetworkPrefix;
        }
    }
    if (a.serve4 && !r.opt.ipv4_request->address.is_unspecified()) {
        const Ipv4Address want = r.opt.ipv4_request->address;
        const bool ok = (e && e->ipv4_hoa) ? want == *e->ipv4_hoa
                                           : r.profile->ipv4_home_address && want == *r.profile->ipv4_home_address;
        if (!ok) {
            return Status::NotAuthorizedForIpv4HomeAddress;
        }
    }
    return std::nullopt;
}

// RFC 5844 §3.1.3 F flag: UDP encapsulation forced by the MAG (NAT on the path), if policy allows.
Rejection LocalMobilityAnchor::check_udp_encapsulation(Registration& r) const {
    r.udp_transport = r.in.transport == Transport::Ipv4Udp;
    r.force_udp = r.udp_transport && r.pbu.has(bu_flag::kForceUdp);
    return r.force_udp && !r.policy.udp ? Rejection(Status::AdministrativelyProhibited) : std::nullopt;
}

// RFC 5845 §5.2 (the GRE Key option against policy) and §7.3 (the T flag).
Rejection LocalMobilityAnchor::negotiate_gre(Registration& r) const {
    GreDecision& d = r.gre;
    const GreKeyOption* opt = r.opt.gre;
    const GrePolicy policy = r.policy.gre;
    if (policy == GrePolicy::Unsupported) {
        return std::nullopt;   // like an LMA without RFC 5845: the option skipped as unknown, T never set
    }
    if (!opt) {
        // §3.1/§5.1: no option while policy needs GRE -> 163; §3.3: a handoff without the option
        // on a GRE entry is accepted without GRE unless policy needs it.
        const bool needed = policy == GrePolicy::GreRequired || policy == GrePolicy::KeysRequired;
        return needed ? Rejection(Status::GreKeyOptionRequired) : std::nullopt;
    }
    if (policy == GrePolicy::NotRequired) {
        d.status = Status::GreKeyOptionNotRequired;   // §5.1: success, no option
        return std::nullopt;
    }
    if (policy == GrePolicy::KeysRequired && !opt->key) {
        return Status::GreKeyOptionRequired;   // keys are what policy needs
    }
    d.gre = true;
    d.keyed = opt->key.has_value();
    d.include_option = true;
    // §7.3: T in the PBA only if it was in the PBU and the TLV format is supported; GRE with T but
    // no TLV support -> 3 and T clear. The TLV format only exists over IPv4/UDP.
    if (r.pbu.has(bu_flag::kTlvHeader) && r.udp_transport) {
        if (r.policy.tlv_header) {
            d.tlv = true;
        } else {
            d.status = Status::GreTunnelingButTlvHeaderNotSupported;
        }
    }
    return std::nullopt;
}

// RFC 5213 §5.3 (the home network prefix), RFC 5844 §3.3 (the IPv4 home address): the MN's
// static ones, or from its realm's pools, unless the entry has them already.
Rejection LocalMobilityAnchor::assign_addresses(Registration& r, Reservation& res) {
    BindingCacheEntry& ne = r.next;
    if (r.addresses.serve6 && !ne.hnp) {
        ne.hnp = r.profile->home_network_prefix ? r.profile->home_network_prefix : res.prefix();
        if (!ne.hnp) {
            spdlog::warn("realm {}: IPv6 prefix pool exhausted", r.profile->realm);
            return Status::InsufficientResources;
        }
    }
    if (r.addresses.serve4 && !ne.ipv4_hoa) {
        ne.ipv4_hoa = r.profile->ipv4_home_address ? r.profile->ipv4_home_address : res.address();
        if (!ne.ipv4_hoa) {
            spdlog::warn("realm {}: IPv4 pool exhausted", r.profile->realm);
            return Status::InsufficientResources;
        }
    }
    return std::nullopt;
}

// RFC 8278 §4.4 with RFC 5845 §3.3: which bindings this PBU replaces (O flag, a handoff to
// another MAG, a single binding becoming multipath or the reverse). Their uplink keys are
// released once the registration holds.
void LocalMobilityAnchor::replace_bindings(Registration& r) {
    BindingCacheEntry& ne = r.next;
    r.next_binding = r.binding && !r.handoff ? *r.binding : MultipathBinding{};
    auto drop_all_but = [&](std::optional<std::uint8_t> keep) {
        if (!ne.multipath) {
            return;
        }
        auto& bindings = ne.multipath->bindings;
        for (auto it = bindings.begin(); it != bindings.end();) {
            if (it->first == keep) {
                ++it;
                continue;
            }
            if (it->second.key_uplink) {
                r.dropped_keys.push_back(*it->second.key_uplink);
            }
            it = bindings.erase(it);
        }
        for (auto it = ne.multipath->held_keys.begin(); it != ne.multipath->held_keys.end();) {
            if (it->first == keep) {
                ++it;
                continue;
            }
            r.dropped_keys.push_back(it->second.key);
            it = ne.multipath->held_keys.erase(it);
        }
    };
    if (r.multipath()) {
        if (!ne.multipath || r.handoff || ne.deregistered) {
            // A session starting over: nothing of the old bindings but this one's own keys (a
            // de-registered MN coming back through the same binding keeps them, §3.3).
            if (ne.key_uplink) {
                r.dropped_keys.push_back(*ne.key_uplink);
                ne.key_uplink.reset();
            }
            drop_all_but(r.binding && !r.handoff ? std::optional(r.binding->bid) : std::nullopt);
        } else if (r.opt.multipath->overwrite) {
            drop_all_but(r.opt.multipath->binding_id);
        }
    } else if (ne.multipath) {
        drop_all_but(std::nullopt);
        ne.multipath.reset();
    }
}

// RFC 5845 §3.3: the uplink key stays the same for the life of the mobility session (of the
// binding, with several: keys belong to one binding). A session's single binding has its id as
// its key; multipath bindings have keys of their own.
Rejection LocalMobilityAnchor::assign_uplink_key(Registration& r, Reservation& res) {
    auto& slot = r.uplink_key();
    if (r.gre.gre && r.gre.keyed) {
        if (!slot && r.multipath()) {
            slot = take_held_uplink_key(r.next, r.opt.multipath->binding_id);
        }
        if (!slot) {
            slot = r.multipath() ? res.uplink_key() : std::optional(r.next.session_id);
        }
        if (!slot) {
            spdlog::warn("{}: no GRE key free for another path of a multipath session", r.id);
            return Status::InsufficientResources;
        }
        return std::nullopt;
    }
    if (slot) {
        r.dropped_keys.push_back(*slot);   // no keys any more
        slot.reset();
    }
    return std::nullopt;
}

Rejection LocalMobilityAnchor::assign_session_id(Registration& r, Reservation& res) {
    if (!r.next.session_id) {
        auto sid = res.session_id();
        if (!sid) {
            // Session ids index the data plane's sessions array: limits.sessions of them, each held
            // by a binding until it is deleted (after its de-registration hold, RFC 5213 §5.3.5).
            spdlog::warn("{}: every session id is in use (limits.sessions): raise it, or wait for held "
                         "bindings to be deleted", r.id);
            return Status::InsufficientResources;
        }
        r.next.session_id = *sid;
    }
    return std::nullopt;
}

// The data plane session (RFC 5845 §5.1: the downlink key in every packet to the MN), as the
// entry's fields that dataplane_session() derives it from.
void LocalMobilityAnchor::build_session(Registration& r) {
    BindingCacheEntry& ne = r.next;
    ne.proxy_coa = r.in.src;
    ne.lma_address = r.in.dst;
    ne.serves_hnp = r.addresses.serve6 || (ne.hnp && !r.addresses.serve4);
    ne.serves_hoa = r.addresses.serve4 && ne.ipv4_hoa;
    if (r.gre.gre) {
        ne.encap = (r.udp_transport && r.gre.tlv) ? dataplane::Encapsulation::UdpTlvGre : dataplane::Encapsulation::Gre;
    } else {
        ne.encap = r.force_udp ? dataplane::Encapsulation::Udp : dataplane::Encapsulation::IpInIp;
    }
    ne.gre_keys = r.gre.gre && r.gre.keyed;
    ne.key_downlink = r.gre.keyed && !r.multipath() ? r.opt.gre->key : std::nullopt;
    r.granted = std::min<std::chrono::seconds>(r.pbu.lifetime_seconds(), config_.timers.max_lifetime);
}

// RFC 8278 §4.4: this PBU's binding joins the MN's others (one session, one encapsulation).
Rejection LocalMobilityAnchor::add_multipath_binding(Registration& r) {
    if (!r.multipath()) {
        return std::nullopt;
    }
    const auto& mmb = *r.opt.multipath;
    MultipathState& mp = r.next.multipath.get_or_emplace();
    MultipathBinding& nb = r.next_binding;
    nb.bid = mmb.binding_id;
    nb.label = mmb.if_label;
    nb.if_att = mmb.if_att;
    nb.proxy_coa = r.in.src;
    nb.lma_address = r.in.dst;
    nb.ifindex = r.in.ifindex;
    nb.expires = r.now + r.granted;
    nb.last_sequence = r.pbu.sequence;
    if (r.opt.timestamp) {
        nb.last_timestamp = r.opt.timestamp->value;
    }
    nb.gre = r.gre.gre;
    nb.key_downlink = r.gre.keyed ? r.opt.gre->key : std::nullopt;
    nb.tlv_header = r.gre.tlv;
    nb.encap = r.next.encap;
    for (const auto& [bid, b] : mp.bindings) {
        if (bid != nb.bid && (b.encap != nb.encap || b.key_uplink.has_value() != nb.key_uplink.has_value())) {
            spdlog::warn("PBU mn={} binding {}: encapsulation {}{} differs from binding {}'s {}{}: one session has one "
                         "encapsulation", r.id, nb.bid, dataplane::to_string(nb.encap), nb.key_uplink ? " keyed" : "",
                         bid, dataplane::to_string(b.encap), b.key_uplink ? " keyed" : "");
            return Status::CannotSupportMultipathBinding;
        }
    }
    if (mmb.bulk_reregistration) {
        // §4.1 B: "update the binding lifetime of all the mobile node's bindings".
        for (auto& [bid, b] : mp.bindings) {
            b.expires = r.now + r.granted;
        }
    }
    mp.bindings[nb.bid] = nb;
    mp.mag_id = r.opt.mag_identifier->identifier;
    return std::nullopt;
}

// Forwarding before the PBA (RFC 5213 §5.3.1: an LMA that cannot set it up answers 130). The
// session table writes all or nothing; the entry stays as it was on failure.
Rejection LocalMobilityAnchor::write_session(Registration& r) {
    std::uint32_t sid = r.next.session_id;
    try {
        if (r.multipath()) {
            follow_links(r.next);
        }
        const dataplane::SessionConfig s = dataplane_session(r.next);
        if (!dataplane_holds(r.entry, s)) {   // a plain refresh changes nothing there
            sink_.upsert(s);
        }
        return std::nullopt;
    } catch (const dataplane::KeyConflictError& ex) {
        if (ex.map() != dataplane::MapId::TunnelKeyless) {
            spdlog::error("session {} for {}: the data plane refused it: {}", sid, r.id, ex.what());
            return Status::InsufficientResources;
        }
        // RFC 5845 §5.1 "overlapping IPv4 private addressing is in use": a key-less session is
        // found by (MAG address, MN address); another realm's MN with the same address behind the
        // same MAG can only be told apart by GRE keys.
        spdlog::info("{}: {}: GRE keys are required", r.id, ex.what());
        return Status::GreKeyOptionRequired;
    } catch (const std::exception& ex) {
        spdlog::error("session {} for {}: the data plane refused it: {}", sid, r.id, ex.what());
        return Status::InsufficientResources;
    }
}

// The Binding Cache entry (RFC 5213 §5.1, RFC 5844 §3.2.1, RFC 5845 §5.1) as registered.
BindingCacheEntry& LocalMobilityAnchor::commit_entry(Registration& r) {
    BindingCacheEntry& ne = r.next;
    ne.peer = cache_.peer_id(r.peer->name);
    ne.transport = r.in.transport;
    ne.mag_port = r.in.src_port;
    ne.att = r.opt.att->value;
    ne.handoff_indicator = r.opt.hi->value;
    if (r.opt.mn_link_layer) {
        const auto& id = r.opt.mn_link_layer->identifier;
        ne.mn_ll_id.assign(id.begin(), id.end());
    } else {
        ne.mn_ll_id.clear();
    }
    ne.link_local = r.opt.link_local ? std::optional(r.opt.link_local->address) : std::nullopt;
    ne.lifetime = r.granted;
    // A multipath session lasts as long as its last binding.
    ne.expires = ne.multipath ? bindings_expiry(ne) : r.now + r.granted;
    ne.last_sequence = r.pbu.sequence;
    if (r.opt.timestamp) {
        ne.last_timestamp = r.opt.timestamp->value;
    }
    ne.deregistered = false;
    ne.gre = r.gre.gre;
    ne.tlv_header = r.gre.tlv;
    ne.force_udp = r.force_udp;
    ne.in_dataplane = true;
    if (r.handoff) {
        spdlog::info("handoff of {} from {} to {}", r.id, to_string(r.entry->proxy_coa), to_string(r.in.src));
    }
    // Journaled unless it is a plain refresh (the same entry but for sequence and timestamp).
    const bool journal = journal_ && (!r.entry || encode_entry(r.id, cache_.peer_name(*r.entry), *r.entry, false) !=
                                                      encode_entry(r.id, cache_.peer_name(ne), ne, false));
    if (r.entry) {
        leave_bulk_group(*r.entry);   // (rejoined below as this PBU asks: §5.2.2)
    }
    ne.bulk_group = 0;
    BindingCacheEntry& entry = cache_.insert(r.id, std::move(ne));
    follow_bulk_request(r, entry);
    if (journal) {
        journal_change(entry);
    }
    deferred_.erase(r.id);
    forget_revocation_of(r.id);   // RFC 5846 §8.1: a PBU accepted meanwhile ends "revocation in progress"
    return entry;
}

// RFC 5213 §5.3.5. Accepted in every case: a de-registration of nothing leaves nothing to undo.
std::vector<OutgoingPba> LocalMobilityAnchor::deregistration(Registration& r) {
    if (r.multipath() && r.entry && r.entry->multipath) {
        deregister_one_binding(r);
        return {accept_deregistration(r)};
    }
    deregister_session(r);
    std::vector<OutgoingPba> replies{accept_deregistration(r)};
    // A handoff waiting for exactly this (HI 4) goes ahead now.
    auto more = resume_deferred_handoff(r.id, r.now);
    replies.insert(replies.end(), more.begin(), more.end());
    return replies;
}

// RFC 8278: the de-registration of one Binding-Id leaves the MN's other bindings.
void LocalMobilityAnchor::deregister_one_binding(Registration& r) {
    BindingCacheEntry& e = *r.entry;
    const auto bid = r.opt.multipath->binding_id;
    if (e.deregistered || !r.binding) {
        spdlog::info("de-registration of {} binding {} from {}: no such binding", r.id, bid, to_string(r.in.src));
    } else if (e.multipath->mag_id != r.opt.mag_identifier->identifier) {
        spdlog::info("de-registration of {} binding {} from MAG '{}' after its handoff to '{}': binding kept", r.id,
                     bid, r.opt.mag_identifier->identifier, e.multipath->mag_id);
    } else if (e.multipath->bindings.size() == 1) {
        r.binding->last_sequence = r.pbu.sequence;
        deregister(e, r.now);   // the last one: the session goes (held MinDelayBeforeBCEDelete)
    } else {
        const MultipathBinding gone = *r.binding;
        r.binding = nullptr;
        e.multipath->bindings.erase(bid);
        e.expires = bindings_expiry(e);
        rewrite_paths(e, true);
        journal_change(e);
        if (gone.key_uplink) {
            hold_uplink_key(e, bid, *gone.key_uplink, r.now);
        }
        spdlog::info("binding {} of {} ({} label {}) de-registered; {} binding(s) left", gone.bid, r.id,
                     to_string(gone.proxy_coa), config_.steering.label_name(gone.label), e.multipath->bindings.size());
    }
}

void LocalMobilityAnchor::deregister_session(Registration& r) {
    BindingCacheEntry* e = r.entry;
    if (e && e->proxy_coa == r.in.src && !e->deregistered) {
        e->last_sequence = r.pbu.sequence;
        if (r.opt.timestamp) {
            e->last_timestamp = r.opt.timestamp->value;
        }
        deregister(*e, r.now);
    } else if (e && e->proxy_coa != r.in.src) {
        // A MAG the MN has left de-registers after the new one registered: the binding is the new
        // MAG's now and stays.
        spdlog::info("de-registration of {} from {} after its handoff to {}: binding kept", r.id, to_string(r.in.src),
                     to_string(e->proxy_coa));
    }
}

std::vector<OutgoingPba> LocalMobilityAnchor::resume_deferred_handoff(const std::string& mn_id, Clock::time_point now) {
    auto d = deferred_.find(mn_id);
    const BindingCacheEntry* e = cache_.find(mn_id);
    if (d == deferred_.end() || !e || !e->deregistered) {
        return {};
    }
    IncomingPbu waiting = std::move(d->second.in);
    deferred_.erase(d);
    return process(waiting, now, true);
}

} // namespace xpmip::lma
