#include "lma/lma.hpp"

#include "dataplane/session_table.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace xpmip::lma {

using namespace xpmip::wire;

namespace {

constexpr std::uint32_t kMaxSessionId = 0xffffffffu;
constexpr std::uint32_t kNatKeepaliveSeconds = 110;   // RFC 5555 §4.2.2 NATKATIMEOUT default

std::uint8_t st(Status s) {
    return static_cast<std::uint8_t>(s);
}

// The Binding Cache is keyed by the MN-ID; NAIs as they are, other subtypes (RFC 7330) as hex.
std::string mn_key(const MobileNodeIdentifierOption& o) {
    if (o.subtype == kMnIdSubtypeNai) {
        return o.identifier;
    }
    std::string out = fmt::format("subtype{}:", o.subtype);
    for (unsigned char c : o.identifier) {
        out += fmt::format("{:02x}", c);
    }
    return out;
}

// RFC 6275 §9.5.1: sequence numbers compare modulo 2^16.
bool sequence_newer(std::uint16_t seq, std::uint16_t last) {
    auto d = static_cast<std::uint16_t>(seq - last);
    return d != 0 && d < 0x8000;
}

bool is_requested_prefix(const HomeNetworkPrefixOption& o) {
    return o.prefix_length != 0 || !o.prefix.is_unspecified();
}

std::string gre_text(const GreKeyOption* o) {
    if (!o) {
        return "none";
    }
    return o->key ? fmt::format("key:{}", *o->key) : "no-key";
}

} // namespace

// RFC 5845 §3 and §7.3 on the LMA side, for one registration.
struct LocalMobilityAnchor::Decision {
    bool reject = false;
    Status status = Status::Accepted;
    bool gre = false;
    bool keyed = false;
    bool include_option = false;
    bool tlv = false;
};

LocalMobilityAnchor::LocalMobilityAnchor(LmaConfig config, SessionSink& sink,
                                         std::function<std::uint64_t()> wall_timestamp)
    : config_(std::move(config)),
      sink_(sink),
      wall_timestamp_(wall_timestamp ? std::move(wall_timestamp) : std::function<std::uint64_t()>(timestamp_now)),
      session_ids_(1, kMaxSessionId, Clock::duration::zero()),
      // RFC 5845 §3.3 keys: unique per LMA, never 0, not reused until MinDelayBeforeBCEDelete.
      uplink_keys_(1, 0xffffffffu, config_.timers.min_delay_before_bce_delete) {
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
    // Static addresses belong to their MN for good: the pools never hand them out.
    for (const auto& m : config_.mobile_nodes) {
        if (m.ipv4_home_address && ipv4_pools_.count(m.realm)) {
            ipv4_pools_[m.realm]->reserve(*m.ipv4_home_address);
        }
        if (m.home_network_prefix && ipv6_pools_.count(m.realm)) {
            ipv6_pools_[m.realm]->reserve(*m.home_network_prefix);
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
    for (const auto& m : config.mobile_nodes) {
        if (m.ipv4_home_address && ipv4_pools_.count(m.realm)) {
            ipv4_pools_[m.realm]->reserve(*m.ipv4_home_address);
        }
        if (m.home_network_prefix && ipv6_pools_.count(m.realm)) {
            ipv6_pools_[m.realm]->reserve(*m.home_network_prefix);
        }
    }
    config_ = std::move(config);
}

std::vector<OutgoingPba> LocalMobilityAnchor::on_pbu(const IncomingPbu& in, Clock::time_point now) {
    return process(in, now, false);
}

std::vector<OutgoingPba> LocalMobilityAnchor::process(const IncomingPbu& in, Clock::time_point now, bool replay) {
    const ProxyBindingUpdate& pbu = in.pbu;
    std::vector<OutgoingPba> replies;
    OutgoingPba out{in.transport, in.dst, in.src, in.src_port, {}};
    ProxyBindingAcknowledgement& pba = out.pba;
    pba.sequence = pbu.sequence;
    pba.flags = ba_flag::kProxy;
    pba.lifetime = 0;

    const auto* mn_id = pbu.options.find<MobileNodeIdentifierOption>();
    const auto* hi = pbu.options.find<HandoffIndicatorOption>();
    const auto* att = pbu.options.find<AccessTechnologyTypeOption>();
    const auto* ts = pbu.options.find<TimestampOption>();
    const auto* v4req = pbu.options.find<Ipv4HomeAddressRequestOption>();
    const auto* gre_opt = pbu.options.find<GreKeyOption>();
    const auto* mn_ll = pbu.options.find<MobileNodeLinkLayerIdOption>();
    const auto* link_local = pbu.options.find<LinkLocalAddressOption>();
    const auto* v4coa = pbu.options.find<Ipv4CareOfAddressOption>();
    const auto hnps = pbu.options.all<HomeNetworkPrefixOption>();
    const bool dereg = pbu.lifetime == 0;

    // Options every PBA carries back (RFC 5213 §5.3.6, RFC 5844 §3.2.3): the MN-ID, HI, ATT,
    // MN link-layer ID and link-local address as received; the Timestamp as received except in
    // the two timestamp rejections, which carry ours (RFC 5213 §5.5).
    auto echo_options = [&](bool our_timestamp) {
        if (mn_id) {
            pba.options.add(*mn_id);
        }
        if (hi) {
            pba.options.add(*hi);
        }
        if (att) {
            pba.options.add(*att);
        }
        if (mn_ll) {
            pba.options.add(*mn_ll);
        }
        if (link_local) {
            pba.options.add(*link_local);
        }
        if (our_timestamp) {
            pba.options.add(TimestampOption{wall_timestamp_()});
        } else if (ts) {
            pba.options.add(*ts);
        }
    };
    auto reject = [&](Status status, const BindingCacheEntry* e = nullptr) {
        pba.status = st(status);
        pba.lifetime = 0;
        const bool our_ts = status == Status::TimestampMismatch || status == Status::TimestampLowerThanPrevAccepted;
        echo_options(our_ts);
        for (const auto& h : hnps) {
            pba.options.add(h);
        }
        log_exchange(in, out, e);
        replies.push_back(out);
        return replies;
    };

    if (!config_.is_own_address(in.dst)) {
        spdlog::warn("PBU from {} to {}, which is not one of our addresses: ignored", to_string(in.src),
                     to_string(in.dst));
        return replies;
    }
    const MagPeer* peer = config_.peer_by_address(in.src);
    if (!peer) {
        return reject(Status::MagNotAuthorizedForProxyReg);   // RFC 5213 §5.3.1 step 2
    }
    if (!mn_id) {
        return reject(Status::MissingMnIdentifierOption);     // RFC 5213 §5.3.1 step 4
    }
    const std::string id = mn_key(*mn_id);
    const MobileNodeProfile* profile = config_.mobile_node(id);
    if (!profile) {
        return reject(Status::NotLmaForThisMobileNode);
    }
    if (!dereg) {
        if (hnps.empty() && !v4req) {
            return reject(Status::MissingHomeNetworkPrefixOption);   // RFC 5213 §5.3.1, RFC 5844 §3.2.2
        }
        if (!hi) {
            return reject(Status::MissingHandoffIndicatorOption);
        }
        if (!att) {
            return reject(Status::MissingAccessTechTypeOption);
        }
    }

    BindingCacheEntry* e = cache_.find(id);

    // RFC 5213 §5.5: timestamps when the PBU carries one, else sequence numbers. A deferred
    // PBU was checked when it arrived; the previous MAG's de-registration it waited for is
    // newer than it, which must not make it "lower than the last accepted".
    if (ts && !replay) {
        if (e && e->last_timestamp && ts->value <= *e->last_timestamp) {
            return reject(Status::TimestampLowerThanPrevAccepted, e);
        }
        const std::uint64_t ours = wall_timestamp_();
        const std::uint64_t diff = ts->value > ours ? ts->value - ours : ours - ts->value;
        // 48.16 fixed point: 65536 units per second.
        const auto window = static_cast<std::uint64_t>(config_.timers.timestamp_validity_window.count()) * 65536 / 1000;
        if (diff > window) {
            return reject(Status::TimestampMismatch, e);
        }
    } else if (!ts && !replay && e && e->proxy_coa == in.src && !sequence_newer(pbu.sequence, e->last_sequence)) {
        // Sequence numbers are per MAG: a MAG that takes the MN over cannot know the previous
        // MAG's (RFC 5213 §5.5 prefers timestamps for that reason), so only the same MAG's
        // older numbers are refused.
        pba.sequence = e->last_sequence;   // RFC 6275 §6.1.8: the last accepted sequence number
        return reject(Status::SequenceNumberOutOfWindow, e);
    }

    // De-registration (RFC 5213 §5.3.5).
    if (dereg) {
        pba.status = st(Status::Accepted);
        echo_options(false);
        for (const auto& h : hnps) {
            pba.options.add(h);
        }
        if (e && e->proxy_coa == in.src && !e->deregistered) {
            e->last_sequence = pbu.sequence;
            if (ts) {
                e->last_timestamp = ts->value;
            }
            deregister(*e, now);
        } else if (e && e->proxy_coa != in.src) {
            // A MAG the MN has left de-registers after the new one registered: the binding is
            // the new MAG's now and stays.
            spdlog::info("de-registration of {} from {} after its handoff to {}: binding kept", id,
                         to_string(in.src), to_string(e->proxy_coa));
        }
        log_exchange(in, out, e);
        replies.push_back(out);
        // A handoff waiting for exactly this (HI 4) goes ahead now.
        auto d = deferred_.find(id);
        if (d != deferred_.end() && e && e->deregistered) {
            IncomingPbu waiting = std::move(d->second.in);
            deferred_.erase(d);
            auto more = process(waiting, now, true);
            replies.insert(replies.end(), more.begin(), more.end());
        }
        return replies;
    }

    const bool handoff = e && !e->deregistered && e->proxy_coa != in.src;
    // RFC 5213 §5.4.1.3: with the handoff state unknown (HI 4) while the previous MAG's binding
    // is up, wait up to MaxDelayBeforeNewBCEAssign for its de-registration. Our binding cache
    // keeps one mobility session per MN, so when the wait ends the registration moves the
    // session to the new MAG either way.
    if (handoff && hi->value == static_cast<std::uint8_t>(HandoffIndicator::Unknown) && !replay &&
        config_.timers.max_delay_before_new_bce_assign.count() > 0) {
        auto [it, fresh] = deferred_.try_emplace(id, Deferred{in, now + config_.timers.max_delay_before_new_bce_assign});
        if (!fresh) {
            it->second.in = in;   // a retransmission replaces the waiting PBU, the deadline stays
        }
        spdlog::info("PBU mn={} mag={} seq={} hi=4 while bound to {}: waiting up to {} ms for its de-registration",
                     id, to_string(in.src), pbu.sequence, to_string(e->proxy_coa),
                     config_.timers.max_delay_before_new_bce_assign.count());
        return replies;
    }

    const Realm* realm = config_.realm(profile->realm);
    const EffectivePolicy policy = effective_policy({&config_.policy, &realm->policy, &peer->policy, &profile->policy});

    // Addresses the MN may have (RFC 5213 §5.3.1 step 7-8, RFC 5844 §3.2.2).
    std::vector<HomeNetworkPrefixOption> requested;
    for (const auto& h : hnps) {
        if (is_requested_prefix(h)) {
            requested.push_back(h);
        }
    }
    bool serve6 = !hnps.empty();
    bool serve4 = v4req != nullptr;
    bool ipv4_prohibited = false;
    if (serve6 && !profile->ipv6) {
        if (!(serve4 && profile->ipv4)) {
            return reject(Status::NotAuthorizedForIpv6MobilityService, e);
        }
        serve6 = false;
    }
    if (serve4 && !profile->ipv4) {
        if (!serve6) {
            return reject(Status::NotAuthorizedForIpv4MobilityService, e);
        }
        serve4 = false;
        ipv4_prohibited = true;   // IPv6 goes ahead; the IPv4 HoA Reply says no (RFC 5844 §3.3.2)
    }
    if (serve6 && !requested.empty()) {
        const Ipv6Prefix want{requested.front().prefix, requested.front().prefix_length};
        if (e && e->hnp) {
            if (requested.size() != 1 || want != *e->hnp) {
                return reject(Status::BcePbuPrefixSetDoNotMatch, e);
            }
        } else if (requested.size() != 1 || !profile->home_network_prefix || want != *profile->home_network_prefix) {
            return reject(Status::NotAuthorizedForHomeNetworkPrefix, e);
        }
    }
    if (serve4 && !v4req->address.is_unspecified()) {
        const Ipv4Address want = v4req->address;
        const bool ok = (e && e->ipv4_hoa) ? want == *e->ipv4_hoa
                                           : profile->ipv4_home_address && want == *profile->ipv4_home_address;
        if (!ok) {
            return reject(Status::NotAuthorizedForIpv4HomeAddress, e);
        }
    }

    // RFC 5844 §3.1.3 F flag: UDP encapsulation forced by the MAG (NAT on the path).
    const bool udp_transport = in.transport == Transport::Ipv4Udp;
    const bool force_udp = udp_transport && pbu.has(bu_flag::kForceUdp);
    if (force_udp && !policy.udp) {
        return reject(Status::AdministrativelyProhibited, e);
    }

    // RFC 5845 GRE negotiation.
    Decision d;
    if (policy.gre == GrePolicy::Unsupported) {
        // Like an LMA without RFC 5845: the option is skipped as unknown, T never set.
    } else if (!gre_opt) {
        // §3.1/§5.1: no option while policy needs GRE -> 163; §3.3: a handoff without the
        // option on a GRE entry is accepted without GRE unless policy needs it.
        if (policy.gre == GrePolicy::GreRequired || policy.gre == GrePolicy::KeysRequired) {
            return reject(Status::GreKeyOptionRequired, e);
        }
    } else if (policy.gre == GrePolicy::NotRequired) {
        d.status = Status::GreKeyOptionNotRequired;   // §5.1: success, no option
    } else if (policy.gre == GrePolicy::KeysRequired && !gre_opt->key) {
        return reject(Status::GreKeyOptionRequired, e);   // keys are what policy needs
    } else {
        d.gre = true;
        d.keyed = gre_opt->key.has_value();
        d.include_option = true;
        // §7.3: T in the PBA only if it was in the PBU and the TLV format is supported; GRE
        // with T but no TLV support -> 3 and T clear. The TLV format only exists over IPv4/UDP.
        if (pbu.has(bu_flag::kTlvHeader) && udp_transport) {
            if (policy.tlv_header) {
                d.tlv = true;
            } else {
                d.status = Status::GreTunnelingButTlvHeaderNotSupported;
            }
        }
    }

    // Resources: what this registration needs and the entry does not have yet. Anything newly
    // taken is given back at once if the registration fails below.
    BindingCacheEntry ne = e ? *e : BindingCacheEntry{};
    struct Taken {
        std::optional<Ipv6Prefix> hnp;
        std::optional<Ipv4Address> hoa;
        std::optional<std::uint32_t> key;
        std::optional<std::uint32_t> session;
    } taken;
    auto roll_back = [&]() {
        if (taken.hnp && ipv6_pools_.count(profile->realm)) {
            ipv6_pools_[profile->realm]->release_now(*taken.hnp);
        }
        if (taken.hoa && ipv4_pools_.count(profile->realm)) {
            ipv4_pools_[profile->realm]->release_now(*taken.hoa);
        }
        if (taken.key) {
            uplink_keys_.release_now(*taken.key);
        }
        if (taken.session) {
            session_ids_.release_now(*taken.session);
        }
    };
    ne.mn_id = id;
    ne.realm = profile->realm;
    if (serve6 && !ne.hnp) {
        if (profile->home_network_prefix) {
            ne.hnp = profile->home_network_prefix;
        } else if (auto p = ipv6_pools_.count(profile->realm) ? ipv6_pools_[profile->realm]->allocate(now)
                                                               : std::nullopt) {
            ne.hnp = taken.hnp = p;
        } else {
            spdlog::warn("realm {}: IPv6 prefix pool exhausted", profile->realm);
            roll_back();
            return reject(Status::InsufficientResources, e);
        }
    }
    if (serve4 && !ne.ipv4_hoa) {
        if (profile->ipv4_home_address) {
            ne.ipv4_hoa = profile->ipv4_home_address;
        } else if (auto a = ipv4_pools_.count(profile->realm) ? ipv4_pools_[profile->realm]->allocate(now)
                                                               : std::nullopt) {
            ne.ipv4_hoa = taken.hoa = a;
        } else {
            spdlog::warn("realm {}: IPv4 pool exhausted", profile->realm);
            roll_back();
            return reject(Status::InsufficientResources, e);
        }
    }
    // §3.3: the uplink key stays the same for the life of the mobility session.
    std::optional<std::uint32_t> drop_key;
    if (d.gre && d.keyed) {
        if (!ne.key_uplink) {
            auto k = uplink_keys_.allocate(now);
            if (!k) {
                roll_back();
                return reject(Status::InsufficientResources, e);
            }
            ne.key_uplink = taken.key = static_cast<std::uint32_t>(*k);
        }
    } else if (ne.key_uplink) {
        drop_key = ne.key_uplink;   // no keys any more: released once this registration holds
        ne.key_uplink.reset();
    }
    if (!ne.session_id) {
        auto sid = session_ids_.allocate(now);
        if (!sid) {
            roll_back();
            return reject(Status::InsufficientResources, e);
        }
        taken.session = static_cast<std::uint32_t>(*sid);
        ne.session_id = *taken.session;
    }

    // The data plane session (RFC 5845 §5.1: the downlink key in every packet to the MN).
    dataplane::SessionConfig s;
    s.id = ne.session_id;
    s.realm = profile->realm;
    if (serve6 || (ne.hnp && !serve4)) {
        s.hnp = ne.hnp;
    }
    if (serve4 && ne.ipv4_hoa) {
        s.hoa = Ipv4Prefix{*ne.ipv4_hoa, 32};
    }
    if (d.gre) {
        s.encap = (udp_transport && d.tlv) ? dataplane::Encapsulation::UdpTlvGre : dataplane::Encapsulation::Gre;
        s.gre_keys = d.keyed;
    } else {
        s.encap = force_udp ? dataplane::Encapsulation::Udp : dataplane::Encapsulation::IpInIp;
    }
    dataplane::PathConfig path;
    path.local = in.dst;
    path.remote = in.src;
    if (d.keyed) {
        path.key_downlink = *gre_opt->key;
        path.key_uplink = *ne.key_uplink;
    }
    s.paths = {path};
    try {
        s.mn_ifindex = sink_.realm_ifindex(profile->realm);
        if (!(ne.in_dataplane && ne.session == s)) {
            sink_.upsert(s);
        }
    } catch (const dataplane::KeyConflictError& ex) {
        roll_back();
        if (ex.map() != dataplane::MapId::TunnelKeyless) {
            spdlog::error("session {} for {}: the data plane refused it: {}", s.id, id, ex.what());
            return reject(Status::InsufficientResources, e);
        }
        // RFC 5845 §5.1 "overlapping IPv4 private addressing is in use": a key-less session is
        // found by (MAG address, MN address); another realm's MN with the same address behind
        // the same MAG can only be told apart by GRE keys.
        spdlog::info("{}: {}: GRE keys are required", id, ex.what());
        return reject(Status::GreKeyOptionRequired, e);
    } catch (const std::exception& ex) {
        // RFC 5213 §5.3.1: the LMA cannot set up forwarding -> 130, nothing half-written:
        // the session table rolled back, the entry stays as it was.
        spdlog::error("session {} for {}: the data plane refused it: {}", s.id, id, ex.what());
        roll_back();
        return reject(Status::InsufficientResources, e);
    }
    if (drop_key) {
        uplink_keys_.release(*drop_key, now);
    }

    // Commit the entry.
    const auto granted = std::min<std::chrono::seconds>(pbu.lifetime_seconds(), config_.timers.max_lifetime);
    ne.peer = peer->name;
    ne.proxy_coa = in.src;
    ne.lma_address = in.dst;
    ne.transport = in.transport;
    ne.mag_port = in.src_port;
    ne.att = att->value;
    ne.handoff_indicator = hi->value;
    ne.mn_ll_id = mn_ll ? mn_ll->identifier : std::vector<std::uint8_t>{};
    ne.link_local = link_local ? std::optional(link_local->address) : std::nullopt;
    ne.lifetime = granted;
    ne.expires = now + granted;
    ne.last_sequence = pbu.sequence;
    if (ts) {
        ne.last_timestamp = ts->value;
    }
    ne.deregistered = false;
    ne.gre = d.gre;
    ne.key_downlink = d.keyed ? gre_opt->key : std::nullopt;
    ne.tlv_header = d.tlv;
    ne.force_udp = force_udp;
    ne.session = s;
    ne.in_dataplane = true;
    if (handoff) {
        spdlog::info("handoff of {} from {} to {}", id, to_string(e->proxy_coa), to_string(in.src));
    }
    BindingCacheEntry& entry = cache_.insert(std::move(ne));
    deferred_.erase(id);

    // The PBA (RFC 5213 §5.3.6, RFC 5844 §3.2.3, RFC 5845 §5.1).
    pba.status = st(d.status);
    pba.lifetime = static_cast<std::uint16_t>(granted.count() / kLifetimeUnitSeconds);
    if (d.tlv) {
        pba.flags |= ba_flag::kTlvHeader;
    }
    echo_options(false);
    if (s.hnp) {
        pba.options.add(HomeNetworkPrefixOption{s.hnp->length, s.hnp->address});
    }
    if (v4coa) {
        pba.options.add(*v4coa);
    }
    if (v4req) {
        Ipv4HomeAddressReplyOption reply;
        if (ipv4_prohibited) {
            reply.status = ipv4_hoa_status::kProhibited;
        } else {
            reply.address = *entry.ipv4_hoa;
            reply.prefix_length = realm->ipv4_pool ? realm->ipv4_pool->length : 32;
        }
        pba.options.add(reply);
        if (!ipv4_prohibited && realm->ipv4_default_router) {
            pba.options.add(Ipv4DefaultRouterAddressOption{*realm->ipv4_default_router});
        }
    }
    if (d.include_option) {
        pba.options.add(GreKeyOption{d.keyed ? entry.key_uplink : std::nullopt});
    }
    if (force_udp) {
        pba.options.add(NatDetectionOption{true, kNatKeepaliveSeconds});
    }
    log_exchange(in, out, &entry);
    replies.push_back(out);
    return replies;
}

void LocalMobilityAnchor::deregister(BindingCacheEntry& e, Clock::time_point now) {
    // RFC 5213 §5.3.5: keep the entry MinDelayBeforeBCEDelete (a new MAG may take it over with
    // the same prefixes and keys), but forwarding to the MAG the MN has left stops now.
    if (e.in_dataplane) {
        try {
            sink_.remove(e.session_id);
        } catch (const std::exception& ex) {
            spdlog::error("session {} for {}: removing it from the data plane failed: {}", e.session_id, e.mn_id,
                          ex.what());
        }
        e.in_dataplane = false;
    }
    e.deregistered = true;
    e.delete_at = now + config_.timers.min_delay_before_bce_delete;
}

void LocalMobilityAnchor::release_resources(const BindingCacheEntry& e, Clock::time_point now) {
    const MobileNodeProfile* profile = config_.mobile_node(e.mn_id);
    if (e.hnp && ipv6_pools_.count(e.realm) && !(profile && profile->home_network_prefix == e.hnp)) {
        ipv6_pools_[e.realm]->release(*e.hnp, now);
    }
    if (e.ipv4_hoa && ipv4_pools_.count(e.realm) && !(profile && profile->ipv4_home_address == e.ipv4_hoa)) {
        ipv4_pools_[e.realm]->release(*e.ipv4_hoa, now);
    }
    if (e.key_uplink) {
        uplink_keys_.release(*e.key_uplink, now);
    }
    session_ids_.release_now(e.session_id);
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
    release_resources(*e, now);
    cache_.erase(mn_id);
}

std::vector<OutgoingPba> LocalMobilityAnchor::on_timer(Clock::time_point now) {
    std::vector<OutgoingPba> replies;
    std::vector<std::string> expired, deleted;
    for (const auto& [id, e] : cache_.entries()) {
        if (!e.deregistered && e.expires <= now) {
            expired.push_back(id);
        } else if (e.deregistered && e.delete_at <= now) {
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
    }
    return replies;
}

std::optional<Clock::time_point> LocalMobilityAnchor::next_deadline() const {
    std::optional<Clock::time_point> next;
    auto consider = [&](Clock::time_point t) {
        if (!next || t < *next) {
            next = t;
        }
    };
    for (const auto& [id, e] : cache_.entries()) {
        consider(e.deregistered ? e.delete_at : e.expires);
    }
    for (const auto& [id, d] : deferred_) {
        consider(d.deadline);
    }
    return next;
}

void LocalMobilityAnchor::log_exchange(const IncomingPbu& in, const OutgoingPba& out, const BindingCacheEntry* e) const {
    const auto* mn_id = in.pbu.options.find<MobileNodeIdentifierOption>();
    const auto* hi = in.pbu.options.find<HandoffIndicatorOption>();
    const auto& pba = out.pba;
    std::string addrs;
    if (e && pba.accepted() && in.pbu.lifetime != 0) {
        if (e->hnp) {
            addrs += " hnp=" + e->hnp->to_string();
        }
        if (e->ipv4_hoa) {
            addrs += " hoa=" + e->ipv4_hoa->to_string();
        }
        addrs += fmt::format(" session={} encap={}", e->session_id, dataplane::to_string(e->session.encap));
    }
    auto line = fmt::format(
        "PBU mn={} mag={}{} seq={} lifetime={}s hi={} gre={} T={} -> PBA status={}({}) seq={} lifetime={}s gre={} T={}{}",
        mn_id ? mn_key(*mn_id) : "-", to_string(in.src),
        in.transport == Transport::Ipv4Udp ? fmt::format(":{}", in.src_port) : "", in.pbu.sequence,
        in.pbu.lifetime_seconds().count(), hi ? std::to_string(hi->value) : "-",
        gre_text(in.pbu.options.find<GreKeyOption>()), in.pbu.has(bu_flag::kTlvHeader) ? 1 : 0,
        status_name(pba.status), pba.status, pba.sequence, pba.lifetime_seconds().count(),
        gre_text(pba.options.find<GreKeyOption>()), pba.has(ba_flag::kTlvHeader) ? 1 : 0, addrs);
    if (pba.accepted()) {
        spdlog::info("{}", line);
    } else {
        spdlog::warn("{}", line);
    }
}

} // namespace xpmip::lma
