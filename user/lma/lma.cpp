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
    auto replies = process(in, now, false);
    touch_for(in);   // whatever the PBU did to its MN's entry, the deadline index follows
    return replies;
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
    // RFC 8278 §4.4: a legacy LMA skips options 63 and 64; `lma.multipath: false` acts like one.
    const auto* mmb = config_.multipath ? pbu.options.find<MagMultipathBindingOption>() : nullptr;
    const auto* mag_ident = config_.multipath ? pbu.options.find<MagIdentifierOption>() : nullptr;

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
        // RFC 8278 §4.4 (for 180; any rejection of a multipath request, so that the MAG can tell
        // which binding it concerns): both options echoed.
        if (mmb) {
            pba.options.add(*mmb);
        }
        if (mmb && mag_ident) {
            pba.options.add(*mag_ident);
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

    if (mmb && !mag_ident) {
        // §4.4: "the MAG Identifier option MUST also be present".
        spdlog::warn("PBU mn={} from {}: MAG Multipath-Binding option without the MAG Identifier option "
                     "(RFC 8278 §4.4)", id, to_string(in.src));
        return reject(Status::CannotSupportMultipathBinding);
    }
    if (mmb && !profile->multipath) {
        spdlog::warn("PBU mn={} from {}: not authorized for multipath binding", id, to_string(in.src));
        return reject(Status::CannotSupportMultipathBinding);
    }
    if (mmb && dereg && mmb->overwrite) {
        // §4.1: "This flag MUST be set to a value of (0), in de-registration requests."
        spdlog::warn("PBU mn={} from {}: de-registration with the O flag set (RFC 8278 §4.1): O ignored", id,
                     to_string(in.src));
    }

    BindingCacheEntry* e = cache_.find(id);
    // The binding this PBU is about, when the session is multipath and has it.
    MultipathBinding* mb = nullptr;
    if (mmb && e && e->multipath) {
        auto it = e->bindings.find(mmb->binding_id);
        mb = it == e->bindings.end() ? nullptr : &it->second;
    }
    // Replay protection per binding in a multipath session (each path's PBUs race the others).
    const std::optional<std::uint64_t> last_ts = mmb && e && e->multipath ? (mb ? mb->last_timestamp : std::nullopt)
                                                 : e ? e->last_timestamp : std::nullopt;
    const bool same_sender = mmb && e && e->multipath ? (mb && mb->proxy_coa == in.src) : (e && e->proxy_coa == in.src);
    const std::uint16_t last_seq = mmb && e && e->multipath ? (mb ? mb->last_sequence : 0) : (e ? e->last_sequence : 0);

    // RFC 5213 §5.5: timestamps when the PBU carries one, else sequence numbers. A deferred
    // PBU was checked when it arrived; the previous MAG's de-registration it waited for is
    // newer than it, which must not make it "lower than the last accepted".
    if (ts && !replay) {
        if (last_ts && ts->value <= *last_ts) {
            return reject(Status::TimestampLowerThanPrevAccepted, e);
        }
        const std::uint64_t ours = wall_timestamp_();
        const std::uint64_t diff = ts->value > ours ? ts->value - ours : ours - ts->value;
        // 48.16 fixed point: 65536 units per second.
        const auto window = static_cast<std::uint64_t>(config_.timers.timestamp_validity_window.count()) * 65536 / 1000;
        if (diff > window) {
            return reject(Status::TimestampMismatch, e);
        }
    } else if (!ts && !replay && same_sender && !sequence_newer(pbu.sequence, last_seq)) {
        // Sequence numbers are per MAG: a MAG that takes the MN over cannot know the previous
        // MAG's (RFC 5213 §5.5 prefers timestamps for that reason), so only the same MAG's
        // older numbers are refused.
        pba.sequence = last_seq;   // RFC 6275 §6.1.8: the last accepted sequence number
        return reject(Status::SequenceNumberOutOfWindow, e);
    }

    // De-registration (RFC 5213 §5.3.5).
    if (dereg && mmb && e && e->multipath) {
        // RFC 8278: the de-registration of one Binding-Id leaves the MN's other bindings.
        pba.status = st(Status::Accepted);
        echo_options(false);
        for (const auto& h : hnps) {
            pba.options.add(h);
        }
        pba.options.add(*mmb);
        if (e->deregistered || !mb) {
            spdlog::info("de-registration of {} binding {} from {}: no such binding", id, mmb->binding_id,
                         to_string(in.src));
        } else if (e->mag_id != mag_ident->identifier) {
            spdlog::info("de-registration of {} binding {} from MAG '{}' after its handoff to '{}': binding kept", id,
                         mmb->binding_id, mag_ident->identifier, e->mag_id);
        } else if (e->bindings.size() == 1) {
            mb->last_sequence = pbu.sequence;
            deregister(*e, now);   // the last one: the session goes (held MinDelayBeforeBCEDelete)
        } else {
            const MultipathBinding gone = *mb;
            e->bindings.erase(mmb->binding_id);
            e->expires = bindings_expiry(*e);
            rewrite_paths(*e);
            if (gone.key_uplink) {
                uplink_keys_.release(*gone.key_uplink, now);
            }
            spdlog::info("binding {} of {} ({} label {}) de-registered; {} binding(s) left", gone.bid, id,
                         to_string(gone.proxy_coa), config_.steering.label_name(gone.label), e->bindings.size());
        }
        log_exchange(in, out, e);
        replies.push_back(out);
        return replies;
    }
    if (dereg) {
        pba.status = st(Status::Accepted);
        echo_options(false);
        for (const auto& h : hnps) {
            pba.options.add(h);
        }
        if (mmb) {
            pba.options.add(*mmb);
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

    // A multipath session belongs to one MAG (its Identifier): another proxy CoA of that MAG
    // adds a binding, another MAG takes the session over.
    const bool handoff = e && !e->deregistered &&
                         (mmb && e->multipath ? e->mag_id != mag_ident->identifier : e->proxy_coa != in.src);
    // RFC 5213 §5.4.1.3: with the handoff state unknown (HI 4) while the previous MAG's binding
    // is up, wait up to MaxDelayBeforeNewBCEAssign for its de-registration. Our binding cache
    // keeps one mobility session per MN, so when the wait ends the registration moves the
    // session to the new MAG either way.
    if (handoff && !mmb && hi->value == static_cast<std::uint8_t>(HandoffIndicator::Unknown) && !replay &&
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
    // RFC 8278: this PBU's binding; the bindings it replaces (O flag, a handoff to another MAG,
    // the single binding of a session becoming multipath, or the reverse), released once the
    // registration holds.
    MultipathBinding nb = mb && !handoff ? *mb : MultipathBinding{};
    std::vector<std::uint32_t> drop_keys;
    // Every binding but `keep` goes, its uplink key with it.
    auto drop_bindings = [&](std::optional<std::uint8_t> keep) {
        for (auto it = ne.bindings.begin(); it != ne.bindings.end();) {
            if (it->first == keep) {
                ++it;
                continue;
            }
            if (it->second.key_uplink) {
                drop_keys.push_back(*it->second.key_uplink);
            }
            it = ne.bindings.erase(it);
        }
    };
    if (mmb) {
        if (!ne.multipath || handoff || ne.deregistered) {
            // A session starting over: nothing of the old bindings but this one's own keys
            // (a de-registered MN coming back through the same binding keeps them, §3.3).
            if (ne.key_uplink) {
                drop_keys.push_back(*ne.key_uplink);
                ne.key_uplink.reset();
            }
            drop_bindings(mb && !handoff ? std::optional(mb->bid) : std::nullopt);
        } else if (mmb->overwrite) {
            drop_bindings(mmb->binding_id);
        }
    } else if (ne.multipath) {
        drop_bindings(std::nullopt);
        ne.multipath = false;
    }
    // §3.3: the uplink key stays the same for the life of the mobility session (of the binding,
    // with several: RFC 5845 keys apply to one binding).
    std::optional<std::uint32_t>& key_slot = mmb ? nb.key_uplink : ne.key_uplink;
    if (d.gre && d.keyed) {
        if (!key_slot) {
            auto k = uplink_keys_.allocate(now);
            if (!k) {
                roll_back();
                return reject(Status::InsufficientResources, e);
            }
            key_slot = taken.key = static_cast<std::uint32_t>(*k);
        }
    } else if (key_slot) {
        drop_keys.push_back(*key_slot);   // no keys any more: released once this registration holds
        key_slot.reset();
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
        path.key_uplink = *key_slot;
    }
    s.paths = {path};
    const auto granted = std::min<std::chrono::seconds>(pbu.lifetime_seconds(), config_.timers.max_lifetime);
    if (mmb) {
        nb.bid = mmb->binding_id;
        nb.label = mmb->if_label;
        nb.if_att = mmb->if_att;
        nb.proxy_coa = in.src;
        nb.lma_address = in.dst;
        nb.ifindex = in.ifindex;
        nb.expires = now + granted;
        nb.last_sequence = pbu.sequence;
        if (ts) {
            nb.last_timestamp = ts->value;
        }
        nb.gre = d.gre;
        nb.key_downlink = d.keyed ? gre_opt->key : std::nullopt;
        nb.tlv_header = d.tlv;
        nb.encap = s.encap;
        // One data plane session carries one encapsulation: a binding that would need another
        // than the MN's other bindings cannot join them (unless it replaces them).
        for (const auto& [bid, b] : ne.bindings) {
            if (bid != nb.bid && (b.encap != nb.encap || b.key_uplink.has_value() != nb.key_uplink.has_value())) {
                spdlog::warn("PBU mn={} binding {}: encapsulation {}{} differs from binding {}'s {}{}: one session "
                             "has one encapsulation", id, nb.bid, dataplane::to_string(nb.encap),
                             nb.key_uplink ? " keyed" : "", bid, dataplane::to_string(b.encap),
                             b.key_uplink ? " keyed" : "");
                roll_back();
                return reject(Status::CannotSupportMultipathBinding, e);
            }
        }
        if (mmb->bulk_reregistration) {
            // §4.1 B: "update the binding lifetime of all the mobile node's bindings".
            for (auto& [bid, b] : ne.bindings) {
                b.expires = now + granted;
            }
        }
        ne.bindings[nb.bid] = nb;
        ne.multipath = true;
        ne.mag_id = mag_ident->identifier;
    }
    try {
        s.mn_ifindex = sink_.realm_ifindex(profile->realm);
        if (mmb) {
            s = multipath_session(ne, s);
        }
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
    for (auto k : drop_keys) {
        uplink_keys_.release(k, now);
    }

    // Commit the entry.
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
    // A multipath session lasts as long as its last binding.
    ne.expires = ne.multipath ? bindings_expiry(ne) : now + granted;
    ne.last_sequence = pbu.sequence;
    if (ts) {
        ne.last_timestamp = ts->value;
    }
    ne.deregistered = false;
    ne.gre = d.gre;
    ne.key_downlink = d.keyed && !mmb ? gre_opt->key : std::nullopt;
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
        pba.options.add(GreKeyOption{d.keyed ? (mmb ? entry.bindings.at(mmb->binding_id).key_uplink : entry.key_uplink)
                                             : std::nullopt});
    }
    if (force_udp) {
        pba.options.add(NatDetectionOption{true, kNatKeepaliveSeconds});
    }
    if (mmb) {
        // §4.4: "the LMA MUST include the Multipath Binding Option ..., without the MAG NAI
        // Option". (The last paragraph's SHOULD echo both contradicts it; the MUST wins here.)
        pba.options.add(*mmb);
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
    for (const auto& [bid, b] : e.bindings) {
        if (b.key_uplink) {
            uplink_keys_.release(*b.key_uplink, now);
        }
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
    // Only the entries whose deadline has come (the index, not a walk of the whole cache).
    std::vector<std::string> due_ids;
    for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now; ++it) {
        due_ids.push_back(it->second);
    }
    // RFC 8278: a binding of a multipath session expires on its own; the session when the last
    // does (below, as any session).
    for (const auto& id : due_ids) {
        BindingCacheEntry& e = *cache_.find(id);
        if (!e.multipath || e.deregistered || e.expires <= now || e.bindings.empty()) {
            continue;
        }
        if (std::all_of(e.bindings.begin(), e.bindings.end(), [&](const auto& kv) { return kv.second.expires <= now; })) {
            e.expires = now;
            continue;
        }
        for (auto it = e.bindings.begin(); it != e.bindings.end();) {
            if (it->second.expires <= now) {
                spdlog::info("binding {} of {} ({} label {}) expired", it->first, id, to_string(it->second.proxy_coa),
                             config_.steering.label_name(it->second.label));
                if (it->second.key_uplink) {
                    uplink_keys_.release(*it->second.key_uplink, now);
                }
                it = e.bindings.erase(it);
            } else {
                ++it;
            }
        }
        e.expires = bindings_expiry(e);
        rewrite_paths(e);
    }
    for (const auto& id : due_ids) {
        const BindingCacheEntry& e = *cache_.find(id);
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
        return e.delete_at;
    }
    Clock::time_point t = e.expires;
    for (const auto& [bid, b] : e.bindings) {
        t = std::min(t, b.expires);
    }
    return t;
}

void LocalMobilityAnchor::touch(const std::string& mn_id) {
    if (auto it = deadline_of_.find(mn_id); it != deadline_of_.end()) {
        deadlines_.erase({it->second, mn_id});
        deadline_of_.erase(it);
    }
    if (const BindingCacheEntry* e = cache_.find(mn_id)) {
        const auto t = entry_deadline(*e);
        deadlines_.emplace(t, mn_id);
        deadline_of_.emplace(mn_id, t);
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
    std::optional<Clock::time_point> next;
    if (!deadlines_.empty()) {
        next = deadlines_.begin()->first;
    }
    for (const auto& [id, d] : deferred_) {   // handoffs waiting for HI 4: few, and short-lived
        if (!next || d.deadline < *next) {
            next = d.deadline;
        }
    }
    return next;
}

Clock::time_point LocalMobilityAnchor::bindings_expiry(const BindingCacheEntry& e) {
    Clock::time_point last{};
    for (const auto& [bid, b] : e.bindings) {
        last = std::max(last, b.expires);
    }
    return last;
}

dataplane::SessionConfig LocalMobilityAnchor::multipath_session(const BindingCacheEntry& e,
                                                               dataplane::SessionConfig base) {
    base.paths.clear();
    for (const auto& [bid, b] : e.bindings) {   // by Binding-Id: the same order at both ends
        dataplane::PathConfig p;
        p.local = b.lma_address;
        p.remote = b.proxy_coa;
        if (b.key_uplink && b.key_downlink) {
            p.key_downlink = *b.key_downlink;
            p.key_uplink = *b.key_uplink;
        }
        p.label = b.label;
        p.bid = b.bid;
        p.weight = config_.steering.weight(b.label);
        p.up = b.ifindex == 0 || sink_.link_up(b.ifindex);
        base.paths.push_back(p);
    }
    base.policy = config_.steering.policy.rules.empty() ? 0 : config::kSteeringPolicyId;
    return base;
}

void LocalMobilityAnchor::rewrite_paths(BindingCacheEntry& e) {
    if (!e.multipath || !e.in_dataplane) {
        return;
    }
    try {
        auto s = multipath_session(e, e.session);
        if (s != e.session) {
            sink_.upsert(s);
            e.session = s;
        }
    } catch (const std::exception& ex) {
        spdlog::error("session {} for {}: updating its paths failed: {}", e.session_id, e.mn_id, ex.what());
    }
}

void LocalMobilityAnchor::on_link_change() {
    for (auto& [id, e] : cache_.entries()) {
        rewrite_paths(e);
    }
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
    std::string multipath;
    if (const auto* m = in.pbu.options.find<MagMultipathBindingOption>(); m && config_.multipath) {
        multipath = fmt::format(" bid={} label={}{}{}", m->binding_id, config_.steering.label_name(m->if_label),
                                m->bulk_reregistration ? " B" : "", m->overwrite ? " O" : "");
    }
    auto line = fmt::format(
        "PBU mn={} mag={}{}{} seq={} lifetime={}s hi={} gre={} T={} -> PBA status={}({}) seq={} lifetime={}s gre={} T={}{}",
        mn_id ? mn_key(*mn_id) : "-", to_string(in.src),
        in.transport == Transport::Ipv4Udp ? fmt::format(":{}", in.src_port) : "", multipath, in.pbu.sequence,
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
