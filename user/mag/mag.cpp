#include "mag/mag.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace xpmip::mag {

using namespace xpmip::wire;
using State = BindingUpdateListEntry::State;

namespace {

std::string gre_text(const GreKeyOption* o) {
    if (!o) {
        return "none";
    }
    return o->key ? fmt::format("key:{}", *o->key) : "no-key";
}

// Rejections a retransmission can cure: the LMA was short of something, or our clock or
// sequence numbers were off. The rest (authorization, missing options...) need an operator.
bool worth_retrying(std::uint8_t status) {
    switch (static_cast<Status>(status)) {
    case Status::ReasonUnspecified:
    case Status::InsufficientResources:
    case Status::SequenceNumberOutOfWindow:
    case Status::TimestampMismatch:
    case Status::TimestampLowerThanPrevAccepted:
        return true;
    default:
        return false;
    }
}

} // namespace

MobileAccessGateway::MobileAccessGateway(MagConfig config, MagSink& sink, std::function<std::uint64_t()> wall_timestamp)
    : config_(std::move(config)),
      sink_(sink),
      wall_timestamp_(wall_timestamp ? std::move(wall_timestamp) : std::function<std::uint64_t()>(timestamp_now)) {}

std::uint32_t MobileAccessGateway::allocate_downlink_key() {
    // RFC 5845 §3.1: the MAG assigns downlink keys; unique among this MAG's sessions, never 0.
    for (;;) {
        std::uint32_t k = next_key_++;
        if (next_key_ == 0) {
            next_key_ = 1;
        }
        if (k != 0 && keys_in_use_.insert(k).second) {
            return k;
        }
    }
}

bool MobileAccessGateway::include_gre_option(const BindingUpdateListEntry& e) const {
    // RFC 5845 §4.2: not toward an LMA that showed it does not support the option, not again
    // for a session the LMA answered with GRE KEY OPTION NOT REQUIRED.
    return (config_.gre != GreMode::Off || e.gre_forced) && lma_supports_gre_ && e.gre_for_session;
}

bool MobileAccessGateway::rate_limited(BindingUpdateListEntry& e, Clock::time_point now) {
    auto& sent = recent_sends_[e.mn_id];
    while (!sent.empty() && now - sent.front() >= std::chrono::seconds(1)) {
        sent.pop_front();
    }
    return sent.size() >= config_.timers.max_pbu_per_second;
}

OutgoingPbu MobileAccessGateway::build_pbu(BindingUpdateListEntry& e, bool deregistration, Clock::time_point) {
    const MobileNodeConfig* mn = config_.mobile_node(e.mn_id);
    OutgoingPbu out;
    out.transport = is_ipv4(config_.lma) ? Transport::Ipv4Udp : Transport::Ipv6;
    out.src = config_.proxy_coa();
    out.dst = config_.lma;
    ProxyBindingUpdate& pbu = out.pbu;
    e.sequence = next_sequence_++;
    pbu.sequence = e.sequence;
    pbu.lifetime = deregistration ? 0 : static_cast<std::uint16_t>(config_.timers.lifetime.count() / kLifetimeUnitSeconds);
    const bool udp = out.transport == Transport::Ipv4Udp;
    const bool gre_option = !deregistration && include_gre_option(e);
    if (udp && config_.force_udp) {
        pbu.flags |= bu_flag::kForceUdp;   // RFC 5844 §3.1.3
    }
    if (udp && gre_option && config_.tlv_header) {
        pbu.flags |= bu_flag::kTlvHeader;   // RFC 5845 §7.3: GRE in UDP needs the TLV header
    }
    pbu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, e.mn_id});
    if (mn && mn->ipv6) {
        // RFC 5213 §6.9.1.1: all zeroes asks for a prefix; later PBUs name the one we hold.
        pbu.options.add(e.hnp ? HomeNetworkPrefixOption{e.hnp->length, e.hnp->address} : HomeNetworkPrefixOption{});
    }
    const bool known = e.hnp || e.ipv4_hoa;
    pbu.options.add(HandoffIndicatorOption{static_cast<std::uint8_t>(
        known ? HandoffIndicator::Unchanged : HandoffIndicator::NewInterface)});
    pbu.options.add(AccessTechnologyTypeOption{config_.access_technology});
    pbu.options.add(MobileNodeLinkLayerIdOption{std::vector<std::uint8_t>(e.mac.bytes.begin(), e.mac.bytes.end())});
    if (auto ll = sink_.link_local(e.interface)) {
        pbu.options.add(LinkLocalAddressOption{*ll});   // RFC 5213 §8.7: ours on the MN's link
    }
    if (config_.timestamps) {
        pbu.options.add(TimestampOption{wall_timestamp_()});
    }
    if (mn && mn->ipv4) {
        pbu.options.add(Ipv4HomeAddressRequestOption{e.ipv4_hoa ? e.ipv4_prefix_length : std::uint8_t{0},
                                                     e.ipv4_hoa.value_or(Ipv4Address{})});
    }
    if (udp) {
        pbu.options.add(Ipv4CareOfAddressOption{std::get<Ipv4Address>(out.src)});
    }
    if (gre_option) {
        const bool keys = config_.gre == GreMode::Keys || e.gre_forced;
        if (keys && !e.key_downlink) {
            e.key_downlink = allocate_downlink_key();
        }
        pbu.options.add(GreKeyOption{keys ? e.key_downlink : std::nullopt});
    }
    spdlog::info("PBU mn={} lma={} seq={} lifetime={}s hi={} gre={} T={} F={}{}", e.mn_id, to_string(out.dst),
                 pbu.sequence, pbu.lifetime_seconds().count(), known ? 5 : 1,
                 gre_text(pbu.options.find<GreKeyOption>()), pbu.has(bu_flag::kTlvHeader) ? 1 : 0,
                 pbu.has(bu_flag::kForceUdp) ? 1 : 0,
                 e.attempts > 0 ? fmt::format(" (attempt {})", e.attempts + 1) : "");
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::send(BindingUpdateListEntry& e, bool deregistration, Clock::time_point now) {
    if (rate_limited(e, now)) {
        // RFC 6275 §11.8 MAX_UPDATE_RATE: wait until the oldest of the last sends is a second old.
        e.next_send = recent_sends_[e.mn_id].front() + std::chrono::seconds(1);
        return {};
    }
    std::vector<OutgoingPbu> out{build_pbu(e, deregistration, now)};
    recent_sends_[e.mn_id].push_back(now);
    ++e.attempts;
    e.next_send = now + e.backoff;
    e.backoff = std::min(e.backoff * 2, config_.timers.max_retransmit);
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::attach(const std::string& mn_id, Clock::time_point now) {
    const MobileNodeConfig* mn = config_.mobile_node(mn_id);
    if (!mn) {
        throw std::invalid_argument(fmt::format("mobile node '{}' is not configured", mn_id));
    }
    auto it = bul_.find(mn_id);
    if (it != bul_.end() && (it->second.state == State::Registering || it->second.state == State::Registered)) {
        return {};
    }
    if (it != bul_.end()) {
        if (it->second.key_downlink) {
            keys_in_use_.erase(*it->second.key_downlink);
        }
        bul_.erase(it);
    }
    BindingUpdateListEntry e;
    e.mn_id = mn_id;
    e.mac = mn->mac;
    e.interface = mn->interface;
    e.state = State::Registering;
    e.backoff = config_.timers.initial_retransmit;
    e.session_id = next_session_++;
    auto& ref = bul_.emplace(mn_id, std::move(e)).first->second;
    spdlog::info("mobile node {} ({}) attached on {}", mn_id, mn->mac.to_string(), mn->interface);
    return send(ref, false, now);
}

void MobileAccessGateway::install(BindingUpdateListEntry& e) {
    dataplane::SessionConfig s;
    s.id = e.session_id;
    if (e.gre) {
        s.encap = e.tlv_header ? dataplane::Encapsulation::UdpTlvGre : dataplane::Encapsulation::Gre;
        s.gre_keys = e.key_downlink && e.key_uplink;
    } else {
        s.encap = e.udp ? dataplane::Encapsulation::Udp : dataplane::Encapsulation::IpInIp;
    }
    for (const auto& i : config_.interfaces) {
        if (i.name == e.interface) {
            s.realm = i.realm;
        }
    }
    if (const MobileNodeConfig* mn = config_.mobile_node(e.mn_id); mn && mn->realm) {
        s.realm = *mn->realm;
    }
    s.hnp = e.hnp;
    if (e.ipv4_hoa) {
        s.hoa = Ipv4Prefix{*e.ipv4_hoa, 32};
    }
    s.mn_mac = e.mac;
    s.mn_ifindex = sink_.ifindex(e.interface);
    dataplane::PathConfig p;
    p.local = config_.proxy_coa();
    p.remote = config_.lma;
    if (s.gre_keys) {
        p.key_downlink = *e.key_downlink;
        p.key_uplink = *e.key_uplink;
    }
    s.paths = {p};
    if (!(e.in_dataplane && e.session == s)) {
        sink_.upsert(s);
    }
    e.session = s;
    e.in_dataplane = true;
}

void MobileAccessGateway::uninstall(BindingUpdateListEntry& e) {
    if (!e.in_dataplane) {
        return;
    }
    try {
        sink_.remove(e.session_id);
    } catch (const std::exception& ex) {
        spdlog::error("session {} of {}: removing it from the data plane failed: {}", e.session_id, e.mn_id, ex.what());
    }
    e.in_dataplane = false;
    sink_.deregistered(e);
}

std::vector<OutgoingPbu> MobileAccessGateway::detach(const std::string& mn_id, Clock::time_point now) {
    auto it = bul_.find(mn_id);
    if (it == bul_.end()) {
        return {};
    }
    BindingUpdateListEntry& e = it->second;
    uninstall(e);
    spdlog::info("mobile node {} detached", mn_id);
    if (e.state == State::Failed || e.state == State::Deregistering) {
        if (e.key_downlink) {
            keys_in_use_.erase(*e.key_downlink);
        }
        bul_.erase(it);
        return {};
    }
    e.state = State::Deregistering;
    e.refreshing = false;
    e.attempts = 0;
    e.backoff = config_.timers.initial_retransmit;
    return send(e, true, now);
}

std::vector<OutgoingPbu> MobileAccessGateway::on_pba(const IncomingPba& in, Clock::time_point now) {
    const ProxyBindingAcknowledgement& pba = in.pba;
    if (in.src != config_.lma) {
        spdlog::warn("PBA from {}, which is not our LMA {}: dropped", to_string(in.src), to_string(config_.lma));
        return {};
    }
    // The PBA names the MN (RFC 5213 §5.3.6); 135 carries the LMA's last accepted sequence
    // number instead of ours, every other status our PBU's.
    BindingUpdateListEntry* e = nullptr;
    if (const auto* id = pba.options.find<MobileNodeIdentifierOption>()) {
        auto it = bul_.find(id->identifier);
        if (it != bul_.end()) {
            e = &it->second;
        }
    } else {
        for (auto& [k, v] : bul_) {
            if (v.sequence == pba.sequence) {
                e = &v;
            }
        }
    }
    if (!e || (pba.status != static_cast<std::uint8_t>(Status::SequenceNumberOutOfWindow) && pba.sequence != e->sequence)) {
        spdlog::warn("PBA seq={} status={}({}) matches no outstanding PBU: dropped", pba.sequence,
                     status_name(pba.status), pba.status);
        return {};
    }
    const auto* gre = pba.options.find<GreKeyOption>();
    spdlog::log(pba.accepted() ? spdlog::level::info : spdlog::level::warn,
                "PBA mn={} lma={} seq={} status={}({}) lifetime={}s gre={} T={}", e->mn_id, to_string(in.src),
                pba.sequence, status_name(pba.status), pba.status, pba.lifetime_seconds().count(), gre_text(gre),
                pba.has(ba_flag::kTlvHeader) ? 1 : 0);
    e->last_status = pba.status;

    if (e->state == State::Deregistering) {
        if (e->key_downlink) {
            keys_in_use_.erase(*e->key_downlink);
        }
        bul_.erase(e->mn_id);
        return {};
    }

    if (!pba.accepted()) {
        const auto status = static_cast<Status>(pba.status);
        if (status == Status::GreKeyOptionRequired) {
            if (config_.gre == GreMode::Off) {
                // RFC 5845 §4.2: GRE is off here - log it and raise an alarm.
                ++gre_alarms_;
                spdlog::error("ALARM: the LMA requires GRE keys for {} but GRE is disabled on this MAG "
                              "(mag.gre: off): registration stopped", e->mn_id);
                uninstall(*e);
                e->state = State::Failed;
                return {};
            }
            // §4.2: resend with the option (with a key: 163 also answers a key-less option).
            lma_supports_gre_ = true;
            e->gre_for_session = true;
            e->gre_forced = true;
            return send(*e, false, now);
        }
        if (status == Status::SequenceNumberOutOfWindow) {
            next_sequence_ = static_cast<std::uint16_t>(pba.sequence + 1);   // RFC 6275 §11.7.1
            return send(*e, false, now);
        }
        if (worth_retrying(pba.status)) {
            return {};   // the retransmission timer sends again with back-off
        }
        spdlog::error("registration of {} rejected with {}({}): not retried", e->mn_id, status_name(pba.status),
                      pba.status);
        uninstall(*e);
        e->state = State::Failed;
        return {};
    }

    // Accepted. RFC 5845 §4.2: what the GRE Key option (or its absence) says.
    const bool asked_gre = include_gre_option(*e);
    if (static_cast<Status>(pba.status) == Status::GreKeyOptionNotRequired) {
        e->gre = false;
        e->gre_for_session = false;   // MUST NOT include it again for this session
        e->key_uplink.reset();
    } else if (gre) {
        e->gre = true;
        if (gre->key) {
            if (e->key_uplink && *e->key_uplink != *gre->key) {
                spdlog::warn("{}: the LMA changed the uplink key {} -> {} (LMA restart?): using the new one", e->mn_id,
                             *e->key_uplink, *gre->key);
            }
            e->key_uplink = gre->key;
        } else {
            e->key_uplink.reset();   // GRE encapsulation mode only
        }
    } else {
        e->gre = false;
        e->key_uplink.reset();
        if (asked_gre) {
            // A success without the option: the LMA does not support RFC 5845; stop asking it.
            lma_supports_gre_ = false;
            spdlog::warn("LMA {} accepted {} without the GRE Key option: it does not support GRE keys; "
                         "not asking again", to_string(config_.lma), e->mn_id);
        }
    }
    // §7.3: T with the option -> UDP/TLV/GRE; status 3 -> GRE without UDP.
    e->tlv_header = e->gre && gre && pba.has(ba_flag::kTlvHeader) &&
                    static_cast<Status>(pba.status) != Status::GreTunnelingButTlvHeaderNotSupported;
    e->udp = !e->gre && config_.force_udp && is_ipv4(config_.lma);
    if (const auto* h = pba.options.find<HomeNetworkPrefixOption>()) {
        e->hnp = Ipv6Prefix{h->prefix, h->prefix_length};
    }
    if (const auto* r = pba.options.find<Ipv4HomeAddressReplyOption>()) {
        if (r->status == ipv4_hoa_status::kSuccess) {
            e->ipv4_hoa = r->address;
            e->ipv4_prefix_length = r->prefix_length;
        }
    }
    if (const auto* r = pba.options.find<Ipv4DefaultRouterAddressOption>()) {
        e->ipv4_router = r->address;
    }
    e->lifetime = pba.lifetime_seconds();
    if (e->lifetime.count() == 0 || (!e->hnp && !e->ipv4_hoa)) {
        spdlog::error("{}: accepted without a lifetime or an address: registration stopped", e->mn_id);
        uninstall(*e);
        e->state = State::Failed;
        return {};
    }
    e->expires = now + e->lifetime;
    try {
        install(*e);
    } catch (const std::exception& ex) {
        spdlog::error("{}: the data plane refused the session: {}: de-registering", e->mn_id, ex.what());
        e->state = State::Deregistering;
        e->attempts = 0;
        e->backoff = config_.timers.initial_retransmit;
        return send(*e, true, now);
    }
    const bool first = e->state != State::Registered;
    e->state = State::Registered;
    e->refreshing = false;
    e->attempts = 0;
    e->backoff = config_.timers.initial_retransmit;
    e->next_send = now + std::chrono::duration_cast<Clock::duration>(e->lifetime * config_.timers.refresh_at);
    if (first) {
        sink_.registered(*e);
    }
    return {};
}

std::vector<OutgoingPbu> MobileAccessGateway::reload(MagConfig config, Clock::time_point now) {
    if (config.lma != config_.lma || config.addresses != config_.addresses || config.instance != config_.instance) {
        spdlog::warn("reload: the LMA, the MAG's addresses and the instance change only with a restart");
    }
    config.lma = config_.lma;
    config.addresses = config_.addresses;
    config.interfaces = config_.interfaces;
    config.instance = config_.instance;
    config.limits = config_.limits;
    std::vector<std::string> gone;
    for (const auto& [id, e] : bul_) {
        const MobileNodeConfig* mn = config.mobile_node(id);
        if (!mn || mn->mac != e.mac || mn->interface != e.interface) {
            gone.push_back(id);
        }
    }
    std::vector<OutgoingPbu> out;
    for (const auto& id : gone) {
        auto more = detach(id, now);
        out.insert(out.end(), more.begin(), more.end());
    }
    config_ = std::move(config);
    for (const auto& mn : config_.mobile_nodes) {
        if (!mn.dynamic && !bul_.count(mn.id)) {
            auto more = attach(mn.id, now);
            out.insert(out.end(), more.begin(), more.end());
        }
    }
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::on_timer(Clock::time_point now) {
    std::vector<OutgoingPbu> out;
    std::vector<std::string> gone;
    for (auto& [id, e] : bul_) {
        std::vector<OutgoingPbu> more;
        switch (e.state) {
        case State::Registering:
            if (e.next_send <= now) {
                more = send(e, false, now);
            }
            break;
        case State::Registered:
            if (e.expires <= now) {
                // No refresh made it in time: forwarding stops, registration starts over.
                spdlog::warn("binding of {} expired without a refresh", id);
                uninstall(e);
                e.state = State::Registering;
                e.refreshing = false;
                e.backoff = config_.timers.initial_retransmit;
                more = send(e, false, now);
            } else if (e.next_send <= now) {
                if (!e.refreshing) {
                    e.refreshing = true;
                    e.attempts = 0;
                    e.backoff = config_.timers.initial_retransmit;
                }
                more = send(e, false, now);
            }
            break;
        case State::Deregistering:
            if (e.next_send <= now) {
                if (e.attempts >= config_.timers.deregistration_attempts) {
                    spdlog::warn("de-registration of {} unanswered after {} attempts: dropped", id, e.attempts);
                    gone.push_back(id);
                } else {
                    more = send(e, true, now);
                }
            }
            break;
        case State::Failed:
            break;
        }
        out.insert(out.end(), more.begin(), more.end());
    }
    for (const auto& id : gone) {
        if (bul_[id].key_downlink) {
            keys_in_use_.erase(*bul_[id].key_downlink);
        }
        bul_.erase(id);
    }
    return out;
}

std::optional<Clock::time_point> MobileAccessGateway::next_deadline() const {
    std::optional<Clock::time_point> next;
    for (const auto& [id, e] : bul_) {
        if (e.state == State::Failed) {
            continue;
        }
        auto t = e.next_send;
        if (e.state == State::Registered) {
            t = std::min(t, e.expires);
        }
        if (!next || t < *next) {
            next = t;
        }
    }
    return next;
}

} // namespace xpmip::mag
