#include "mag/mag.hpp"

#include "mag/bul_journal.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace xpmip::mag {

using namespace xpmip::wire;
using State = BindingUpdateListEntry::State;

namespace {

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

// The LMA does not (or no longer) know the addresses the MN holds (RFC 5213 §5.3.1: 155;
// RFC 5844 §3.2.2: 171).
bool refuses_held_addresses(Status status) {
    return status == Status::NotAuthorizedForHomeNetworkPrefix || status == Status::NotAuthorizedForIpv4HomeAddress;
}

} // namespace

MobileAccessGateway::MobileAccessGateway(MagConfig config, MagSink& sink, std::function<std::uint64_t()> wall_timestamp)
    : config_(std::move(config)),
      sink_(sink),
      wall_timestamp_(wall_timestamp ? std::move(wall_timestamp) : std::function<std::uint64_t()>(timestamp_now)),
      session_ids_(1, std::max<std::uint32_t>(config_.limits.sessions, 1), Clock::duration::zero()) {}

std::uint32_t MobileAccessGateway::allocate_downlink_key() {
    // RFC 5845 §3.1: the MAG assigns downlink keys; unique among this MAG's sessions, never 0.
    // An MN's first path has its session id as its key (the data plane finds the session by the
    // key it arrives with, README "Data plane at scale"); other paths' keys lie above the ids.
    const std::uint32_t first = config_.limits.sessions + 1;
    for (;;) {
        std::uint32_t k = std::max(next_key_++, first);
        if (next_key_ == 0) {
            next_key_ = first;
        }
        if (k != 0 && keys_in_use_.insert(k).second) {
            return k;
        }
    }
}

std::uint32_t MobileAccessGateway::downlink_key_for(BindingUpdateListEntry& e) {
    return &e == &primary(e) ? e.session_id : allocate_downlink_key();
}

void MobileAccessGateway::forget(std::map<std::string, BindingUpdateListEntry>::iterator it) {
    if (it == bul_.end()) {
        return;
    }
    release_key(it->second);
    session_ids_.release(it->second.session_id, Clock::time_point{});
    if (journal_ && it->second.journaled) {
        journal_->erase(it->first);
    }
    bul_.erase(it);
}

void MobileAccessGateway::journal(const std::string& mn_id) {
    auto it = bul_.find(mn_id);
    if (!journal_ || it == bul_.end()) {
        return;
    }
    BindingUpdateListEntry& p = it->second;
    std::size_t h = std::hash<std::string>{}(encode_bul_entry(p, false));
    h = h ? h : 1;   // (0: never journaled)
    if (h != p.journaled) {
        journal_->put(p);
        p.journaled = h;
    }
}

bool MobileAccessGateway::include_gre_option(const BindingUpdateListEntry& e) const {
    // RFC 5845 §4.2: not toward an LMA that showed it does not support the option, not again
    // for a session the LMA answered with GRE KEY OPTION NOT REQUIRED.
    const bool offered = config_.gre != GreMode::Off && config_.gre != GreMode::OnRequest;
    return (offered || e.gre_forced) && lma_supports_gre_ && e.gre_for_session;
}

bool MobileAccessGateway::rate_limited(BindingUpdateListEntry& e, Clock::time_point now) {
    auto& sent = recent_sends_[e.mn_id];
    while (!sent.empty() && now - sent.front() >= std::chrono::seconds(1)) {
        sent.pop_front();
    }
    return sent.size() >= config_.timers.max_pbu_per_second;
}

// RFC 5213 §6.9.1.5 (the PBU the MAG sends), RFC 5844 §3.1 over IPv4, RFC 5845 §4.1 (the GRE Key
// option), RFC 8278 §4.4 (options 63 and 64 on every path).
OutgoingPbu MobileAccessGateway::build_pbu(BindingUpdateListEntry& e, bool deregistration, Clock::time_point) {
    const WanPath& wan = config_.wans.at(e.path);
    OutgoingPbu out;
    out.transport = is_ipv4(wan.lma) ? Transport::Ipv4Udp : Transport::Ipv6;
    out.src = wan.address;
    out.dst = wan.lma;
    ProxyBindingUpdate& pbu = out.pbu;
    // RFC 6275 §11.7.1: a binding's PBUs carry increasing sequence numbers. Each MN counts its
    // own, for all its paths (RFC 8278), so that no two of its outstanding PBUs share one; a
    // counter shared by every MN would move an MN's numbers by what the others sent, past half
    // the 16-bit space, where the LMA takes them as old. A new MN starts from the shared one.
    BindingUpdateListEntry& mn = primary(e);
    mn.mn_sequence = mn.sequenced ? static_cast<std::uint16_t>(mn.mn_sequence + 1) : next_sequence_++;
    mn.sequenced = true;
    e.sequence = mn.mn_sequence;
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
    e.tlv_requested = pbu.has(bu_flag::kTlvHeader);
    add_mobile_node_options(e, wan, pbu);
    if (udp) {
        pbu.options.add(Ipv4CareOfAddressOption{std::get<Ipv4Address>(out.src)});
    }
    if (gre_option) {
        add_gre_key_option(e, pbu);
    }
    add_multipath_options(e, wan, pbu);
    log_pbu(e, out);
    return out;
}

// The MN and its attachment (RFC 5213 §6.9.1.5), the addresses it asks for (RFC 5213 §6.9.1.1:
// all zeroes asks for a prefix, later PBUs name the one held; RFC 5844 §3.1.1 likewise for IPv4).
void MobileAccessGateway::add_mobile_node_options(BindingUpdateListEntry& e, const WanPath& wan,
                                                  ProxyBindingUpdate& pbu) {
    const MobileNodeConfig* mn = config_.mobile_node(e.mn_id);
    pbu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, e.mn_id});
    if (mn && mn->ipv6) {
        pbu.options.add(e.hnp ? HomeNetworkPrefixOption{e.hnp->length, e.hnp->address} : HomeNetworkPrefixOption{});
    }
    const bool known = e.hnp || e.ipv4_hoa;
    pbu.options.add(HandoffIndicatorOption{static_cast<std::uint8_t>(
        known ? HandoffIndicator::Unchanged : HandoffIndicator::NewInterface)});
    pbu.options.add(AccessTechnologyTypeOption{wan.access_technology});
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
}

// RFC 5845 §3.1: with a downlink key the MAG assigns (unique here, never 0), or without one.
void MobileAccessGateway::add_gre_key_option(BindingUpdateListEntry& e, ProxyBindingUpdate& pbu) {
    const bool keys = config_.gre == GreMode::Keys || e.gre_forced;
    if (keys && !e.key_downlink) {
        e.key_downlink = downlink_key_for(e);
    }
    pbu.options.add(GreKeyOption{keys ? e.key_downlink : std::nullopt});
}

// RFC 8278 §4.4: "MUST include the MAG Multipath Binding Option ... in each of the PBU messages that
// it sends through the different WAN interfaces", and the MAG Identifier.
void MobileAccessGateway::add_multipath_options(BindingUpdateListEntry& e, const WanPath& wan,
                                                ProxyBindingUpdate& pbu) {
    e.multipath_sent = multipath_for(e);
    if (!e.multipath_sent) {
        return;
    }
    MagMultipathBindingOption mmb;
    mmb.if_att = wan.access_technology;
    mmb.if_label = wan.label;
    mmb.binding_id = wan.bid;
    pbu.options.add(mmb);
    pbu.options.add(MagIdentifierOption{kMnIdSubtypeNai, config_.identifier});
}

void MobileAccessGateway::log_pbu(const BindingUpdateListEntry& e, const OutgoingPbu& out) const {
    const ProxyBindingUpdate& pbu = out.pbu;
    const WanPath& wan = config_.wans.at(e.path);
    const bool known = e.hnp || e.ipv4_hoa;
    spdlog::info("PBU mn={} lma={} seq={} lifetime={}s hi={} gre={} T={} F={}{}{}", e.mn_id, to_string(out.dst),
                 pbu.sequence, pbu.lifetime_seconds().count(), known ? 5 : 1,
                 gre_key_text(pbu.options.find<GreKeyOption>()), pbu.has(bu_flag::kTlvHeader) ? 1 : 0,
                 pbu.has(bu_flag::kForceUdp) ? 1 : 0,
                 e.multipath_sent ? fmt::format(" bid={} label={} via {}", wan.bid,
                                                config_.steering.label_name(wan.label), wan.interface)
                                  : "",
                 e.attempts > 0 ? fmt::format(" (attempt {})", e.attempts + 1) : "");
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
    // While shutting down, de-registrations go out every initial_retransmit until answered: the
    // daemon bounds the whole by timers.shutdown_timeout (issue 17: lossy links).
    e.backoff = shutting_down_ ? config_.timers.initial_retransmit
                               : std::min(e.backoff * 2, config_.timers.max_retransmit);
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::attach(const std::string& mn_id, Clock::time_point now) {
    const MobileNodeConfig* mn = config_.mobile_node(mn_id);
    if (!mn) {
        throw std::invalid_argument(fmt::format("mobile node '{}' is not configured", mn_id));
    }
    if (shutting_down_) {
        spdlog::info("{}: not attached, the MAG is shutting down", mn_id);
        return {};
    }
    auto it = bul_.find(mn_id);
    if (it != bul_.end() && (it->second.state == State::Registering || it->second.state == State::Registered)) {
        return {};
    }
    if (it != bul_.end()) {
        forget(it);
    }
    BindingUpdateListEntry e;
    e.mn_id = mn_id;
    e.mac = mn->mac;
    e.interface = mn->interface;
    e.state = State::Registering;
    e.backoff = config_.timers.initial_retransmit;
    const auto sid = session_ids_.allocate(now);
    if (!sid) {
        throw std::runtime_error(fmt::format("mobile node '{}': no session id left (limits.sessions {})", mn_id,
                                             config_.limits.sessions));
    }
    e.session_id = static_cast<std::uint32_t>(*sid);
    // RFC 8278 §4.4: one path first - the first WAN interface that has carrier, so that an MN
    // arriving while an access network is down registers over another.
    for (std::size_t i = 0; config_.multipath() && i < config_.wans.size(); ++i) {
        if (sink_.link_up(sink_.ifindex(config_.wans[i].interface))) {
            e.path = i;
            break;
        }
    }
    auto& ref = bul_.emplace(mn_id, std::move(e)).first->second;
    spdlog::info("mobile node {} ({}) attached on {}", mn_id, mn->mac.to_string(), mn->interface);
    auto out = send(ref, false, now);
    journal(mn_id);
    return out;
}

BindingUpdateListEntry& MobileAccessGateway::primary(BindingUpdateListEntry& e) {
    return bul_.at(e.mn_id);   // the MN's entry in the list; its other paths live in it
}

std::vector<BindingUpdateListEntry*> MobileAccessGateway::all_paths(BindingUpdateListEntry& p) {
    std::vector<BindingUpdateListEntry*> v{&p};
    for (auto& x : p.paths) {
        v.push_back(&x);
    }
    return v;
}

bool MobileAccessGateway::multipath_for(const BindingUpdateListEntry& e) const {
    return config_.multipath() && !multipath_off_.count(e.mn_id);
}

void MobileAccessGateway::release_key(BindingUpdateListEntry& e) {
    if (e.key_downlink && *e.key_downlink > config_.limits.sessions) {
        keys_in_use_.erase(*e.key_downlink);   // (a key at or below the limit is a session id)
    }
    for (auto& x : e.paths) {
        release_key(x);
    }
}

std::optional<dataplane::SessionConfig> MobileAccessGateway::session_of(BindingUpdateListEntry& p) {
    std::vector<BindingUpdateListEntry*> in;
    for (auto* x : all_paths(p)) {
        if (x->in_dataplane) {
            in.push_back(x);
        }
    }
    if (in.empty()) {
        return std::nullopt;
    }
    // One session per MN (one encapsulation: the paths negotiate alike with one LMA).
    const BindingUpdateListEntry& first = *in.front();
    dataplane::SessionConfig s;
    s.id = p.session_id;
    if (first.gre) {
        s.encap = first.tlv_header ? dataplane::Encapsulation::UdpTlvGre : dataplane::Encapsulation::Gre;
        s.gre_keys = first.key_downlink && first.key_uplink;
    } else {
        s.encap = first.udp ? dataplane::Encapsulation::Udp : dataplane::Encapsulation::IpInIp;
    }
    for (const auto& i : config_.interfaces) {
        if (i.name == p.interface) {
            s.realm = i.realm;
        }
    }
    if (const MobileNodeConfig* mn = config_.mobile_node(p.mn_id); mn && mn->realm) {
        s.realm = *mn->realm;
    }
    s.hnp = p.hnp;
    if (p.ipv4_hoa) {
        s.hoa = Ipv4Prefix{*p.ipv4_hoa, 32};
    }
    s.mn_mac = p.mac;
    s.mn_ifindex = sink_.ifindex(p.interface);
    std::sort(in.begin(), in.end(), [&](auto* a, auto* b) {
        return config_.wans[a->path].bid < config_.wans[b->path].bid;   // the LMA's order too
    });
    for (auto* x : in) {
        const WanPath& wan = config_.wans[x->path];
        dataplane::PathConfig path;
        path.local = wan.address;
        path.remote = wan.lma;
        if (s.gre_keys && x->key_downlink && x->key_uplink) {
            path.key_downlink = *x->key_downlink;
            path.key_uplink = *x->key_uplink;
        }
        if (config_.multipath()) {
            // RFC 8278: each path leaves by its own WAN interface, and is down without carrier.
            path.ifindex = sink_.ifindex(wan.interface);
            path.up = sink_.link_up(path.ifindex);
            path.label = wan.label;
            path.bid = wan.bid;
            path.weight = config_.steering.weight(wan.label);
        } else {
            // One path: down while its link has no carrier or its LMA stopped answering heartbeats
            // (RFC 5847), which the data plane counts rather than sending into nothing.
            path.up = sink_.link_up(sink_.ifindex(wan.interface));
        }
        s.paths.push_back(path);
    }
    s.policy = config_.multipath() && !config_.steering.policy.rules.empty() ? config::kSteeringPolicyId : 0;
    return s;
}

void MobileAccessGateway::refresh_session(BindingUpdateListEntry& p) {
    auto s = session_of(p);
    if (!s) {
        if (p.session_installed) {
            p.session_installed = false;
            try {
                sink_.remove(p.session_id);
            } catch (const std::exception& ex) {
                spdlog::error("session {} of {}: removing it from the data plane failed: {}", p.session_id, p.mn_id,
                              ex.what());
            }
            sink_.deregistered(p);
        }
        return;
    }
    if (!(p.session_installed && p.session == *s)) {
        sink_.upsert(*s);
    }
    p.session = *s;
    p.session_installed = true;
}

void MobileAccessGateway::install(BindingUpdateListEntry& e) {
    const bool was = e.in_dataplane;
    e.in_dataplane = true;
    try {
        refresh_session(primary(e));
    } catch (...) {
        e.in_dataplane = was;
        throw;
    }
}

void MobileAccessGateway::uninstall(BindingUpdateListEntry& e) {
    if (!e.in_dataplane) {
        return;
    }
    e.in_dataplane = false;
    try {
        refresh_session(primary(e));
    } catch (const std::exception& ex) {
        spdlog::error("session {} of {}: removing path {} failed: {}", e.session_id, e.mn_id, e.path, ex.what());
    }
}

void MobileAccessGateway::on_link_change() {
    for (auto& [id, p] : bul_) {
        if (!p.session_installed) {
            continue;
        }
        try {
            refresh_session(p);
        } catch (const std::exception& ex) {
            spdlog::error("session {} of {}: updating its paths failed: {}", p.session_id, id, ex.what());
        }
    }
}

std::vector<OutgoingPbu> MobileAccessGateway::start_other_paths(BindingUpdateListEntry& p, Clock::time_point now) {
    std::vector<OutgoingPbu> out;
    if (!multipath_for(p) || !p.paths.empty()) {
        return out;
    }
    p.paths.reserve(config_.wans.size() - 1);
    for (std::size_t i = 0; i < config_.wans.size(); ++i) {
        if (i == p.path) {
            continue;
        }
        BindingUpdateListEntry x;
        x.mn_id = p.mn_id;
        x.mac = p.mac;
        x.interface = p.interface;
        x.path = i;
        x.state = State::Registering;
        x.backoff = config_.timers.initial_retransmit;
        x.session_id = p.session_id;
        // The addresses the LMA gave over the first path: the same mobility session (RFC 8278 §3.1 step 6).
        x.hnp = p.hnp;
        x.ipv4_hoa = p.ipv4_hoa;
        x.ipv4_prefix_length = p.ipv4_prefix_length;
        x.ipv4_router = p.ipv4_router;
        x.gre_for_session = p.gre_for_session;
        x.gre_forced = p.gre_forced;
        p.paths.push_back(std::move(x));
    }
    for (auto& x : p.paths) {
        auto more = send(x, false, now);
        if (more.empty()) {
            x.next_send = now;   // rate-limited: the timer sends it
        }
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::fall_back_to_one_path(BindingUpdateListEntry& p, Clock::time_point now) {
    multipath_off_.insert(p.mn_id);
    for (auto& x : p.paths) {
        uninstall(x);
        if (x.key_downlink) {
            keys_in_use_.erase(*x.key_downlink);
        }
    }
    p.paths.clear();
    // The first path registers again without options 63/64 (its binding at the LMA, if any, becomes
    // an ordinary one).
    p.state = p.state == State::Registered ? State::Registered : State::Registering;
    p.refreshing = p.state == State::Registered;
    p.attempts = 0;
    p.backoff = config_.timers.initial_retransmit;
    return send(p, false, now);
}

std::vector<OutgoingPbu> MobileAccessGateway::detach(const std::string& mn_id, Clock::time_point now) {
    auto it = bul_.find(mn_id);
    if (it == bul_.end()) {
        return {};
    }
    BindingUpdateListEntry& e = it->second;
    for (auto* x : all_paths(e)) {
        uninstall(*x);
    }
    spdlog::info("mobile node {} detached", mn_id);
    if (e.state == State::Failed || e.state == State::Deregistering) {
        forget(it);   // (its keys, its session id and its journal record go with it)
        return {};
    }
    // Every path that may be registered is de-registered (RFC 8278: per Binding-Id); the first path's
    // answer ends the entry.
    std::vector<OutgoingPbu> out;
    for (auto* x : all_paths(e)) {
        if (x->state == State::Failed || x->state == State::Deregistering) {
            continue;
        }
        x->state = State::Deregistering;
        x->refreshing = false;
        x->attempts = 0;
        x->backoff = config_.timers.initial_retransmit;
        auto more = send(*x, true, now);
        out.insert(out.end(), more.begin(), more.end());
    }
    journal(mn_id);
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::shutdown(Clock::time_point now) {
    shutting_down_ = true;
    std::vector<std::string> ids;
    for (const auto& [id, e] : bul_) {
        ids.push_back(id);
    }
    std::vector<OutgoingPbu> out;
    for (const auto& id : ids) {
        auto more = detach(id, now);
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

std::size_t MobileAccessGateway::deregistrations_outstanding() const {
    std::size_t n = 0;
    for (const auto& [id, e] : bul_) {
        n += e.state == BindingUpdateListEntry::State::Deregistering;
        for (const auto& x : e.paths) {
            n += x.state == BindingUpdateListEntry::State::Deregistering;
        }
    }
    return n;
}

// RFC 5213 §6.9.1.2 (the MAG's PBA processing), with RFC 5845 §4.2 and §7.3 and RFC 8278 §4.4, as
// named steps.
std::vector<OutgoingPbu> MobileAccessGateway::on_pba(const IncomingPba& in, Clock::time_point now) {
    pba_mn_.clear();
    auto out = handle_pba(in, now);
    if (!pba_mn_.empty()) {
        journal(pba_mn_);
    }
    return out;
}

std::vector<OutgoingPbu> MobileAccessGateway::handle_pba(const IncomingPba& in, Clock::time_point now) {
    const ProxyBindingAcknowledgement& pba = in.pba;
    if (!config_.is_lma_address(in.src)) {
        spdlog::warn("PBA from {}, which is not our LMA {}: dropped", to_string(in.src), to_string(config_.lma));
        return {};
    }
    BindingUpdateListEntry* e = outstanding_entry(pba);
    if (!e) {
        spdlog::warn("PBA seq={} status={}({}) matches no outstanding PBU: dropped", pba.sequence,
                     status_name(pba.status), pba.status);
        return {};
    }
    pba_mn_ = e->mn_id;
    spdlog::log(pba.accepted() ? spdlog::level::info : spdlog::level::warn,
                "PBA mn={} lma={} seq={} status={}({}) lifetime={}s gre={} T={}", e->mn_id, to_string(in.src),
                pba.sequence, status_name(pba.status), pba.status, pba.lifetime_seconds().count(),
                gre_key_text(pba.options.find<GreKeyOption>()), pba.has(ba_flag::kTlvHeader) ? 1 : 0);
    e->last_status = pba.status;
    if (e->state == State::Deregistering) {
        finish_deregistration(*e);
        return {};
    }
    if (static_cast<Status>(pba.status) == Status::CannotSupportMultipathBinding) {
        // RFC 8278 §4.4: "The MAG on receiving this message SHOULD disable Multipath support for
        // the mobile node": one path, registered without the options.
        spdlog::warn("{}: the LMA cannot support a multipath binding for it (180): one path only", e->mn_id);
        return fall_back_to_one_path(primary(*e), now);
    }
    if (pba.accepted() && e->multipath_sent && !pba.options.find<MagMultipathBindingOption>()) {
        if (auto out = on_legacy_lma(*e, in, now)) {
            return *out;
        }
    }
    if (!pba.accepted()) {
        return on_rejection(*e, pba, now);
    }
    take_gre_answer(*e, pba);
    take_encapsulation(*e, in);
    take_home_network_prefix(*e, pba, in.src);
    take_ipv4_addresses(*e, pba);
    e->lifetime = pba.lifetime_seconds();
    e->reattaching = false;
    if (e->lifetime.count() == 0 || (!e->hnp && !e->ipv4_hoa)) {
        spdlog::error("{}: accepted without a lifetime or an address: registration stopped", e->mn_id);
        uninstall(*e);
        e->state = State::Failed;
        return {};
    }
    return complete_registration(*e, pba, now);
}

// The entry whose PBU the PBA answers: the PBA names the MN (RFC 5213 §5.3.6); 135 carries the
// LMA's last accepted sequence number instead of ours, every other status our PBU's. Of the MN's
// paths, the one whose PBU it answers (RFC 8278: or whose Binding-Id it echoes).
BindingUpdateListEntry* MobileAccessGateway::outstanding_entry(const ProxyBindingAcknowledgement& pba) {
    const auto* mmb = pba.options.find<MagMultipathBindingOption>();
    BindingUpdateListEntry* e = nullptr;
    if (const auto* id = pba.options.find<MobileNodeIdentifierOption>()) {
        auto it = bul_.find(id->identifier);
        if (it == bul_.end()) {
            return nullptr;
        }
        const auto paths = all_paths(it->second);
        e = &it->second;
        if (auto x = std::find_if(paths.begin(), paths.end(), [&](auto* p) { return p->sequence == pba.sequence; });
            x != paths.end()) {
            e = *x;
        } else if (mmb) {
            auto y = std::find_if(paths.begin(), paths.end(),
                                  [&](auto* p) { return config_.wans[p->path].bid == mmb->binding_id; });
            e = y != paths.end() ? *y : e;
        }
    } else {
        for (auto& [k, v] : bul_) {
            for (auto* x : all_paths(v)) {
                e = x->sequence == pba.sequence ? x : e;
            }
        }
    }
    const bool out_of_window = pba.status == static_cast<std::uint8_t>(Status::SequenceNumberOutOfWindow);
    return e && (out_of_window || pba.sequence == e->sequence) ? e : nullptr;
}

// RFC 5213 §6.9.1.2: a de-registration acknowledged ends the entry (RFC 8278: the path's).
void MobileAccessGateway::finish_deregistration(BindingUpdateListEntry& e) {
    if (&e != &primary(e)) {
        BindingUpdateListEntry& p = primary(e);
        keys_in_use_.erase(e.key_downlink.value_or(0));
        std::erase_if(p.paths, [&](const auto& x) { return &x == &e; });
        return;
    }
    forget(bul_.find(e.mn_id));
}

// RFC 8278 §4.4: a legacy LMA answers without option 63: multipath off for this MN. A path other
// than the first then replaced the MN's binding at that LMA: back to the first path.
std::optional<std::vector<OutgoingPbu>> MobileAccessGateway::on_legacy_lma(BindingUpdateListEntry& e,
                                                                            const IncomingPba& in, Clock::time_point now) {
    spdlog::warn("{}: LMA {} accepted without the MAG Multipath-Binding option (legacy LMA, RFC 8278 §4.4): "
                 "multipath disabled for it", e.mn_id, to_string(in.src));
    multipath_off_.insert(e.mn_id);
    if (&e == &primary(e)) {
        return std::nullopt;
    }
    uninstall(e);
    return fall_back_to_one_path(primary(e), now);
}

// Rejections (RFC 5213 §6.9.1.2): 163 resends with the GRE Key option (RFC 5845 §4.2), 135 takes
// the LMA's sequence number (RFC 6275 §11.7.1), what a retransmission can cure waits for it, the
// rest stop the registration.
std::vector<OutgoingPbu> MobileAccessGateway::on_rejection(BindingUpdateListEntry& e,
                                                           const ProxyBindingAcknowledgement& pba,
                                                           Clock::time_point now) {
    const auto status = static_cast<Status>(pba.status);
    if (status == Status::GreKeyOptionRequired) {
        if (config_.gre == GreMode::Off) {
            // RFC 5845 §4.2: GRE is off here - log it and raise an alarm.
            ++gre_alarms_;
            spdlog::error("ALARM: the LMA requires GRE keys for {} but GRE is disabled on this MAG (mag.gre: off): "
                          "registration stopped", e.mn_id);
            uninstall(e);
            e.state = State::Failed;
            return {};
        }
        // §4.2: resend with the option (with a key: 163 also answers a key-less option).
        lma_supports_gre_ = true;
        e.gre_for_session = true;
        e.gre_forced = true;
        return send(e, false, now);
    }
    if (status == Status::SequenceNumberOutOfWindow) {
        // The LMA's last accepted for this binding: the MN's numbers go on from past it.
        BindingUpdateListEntry& mn = primary(e);
        if (!mn.sequenced || static_cast<std::int16_t>(pba.sequence - mn.mn_sequence) > 0) {
            mn.mn_sequence = pba.sequence;
        }
        mn.sequenced = true;
        return send(e, false, now);
    }
    if (worth_retrying(pba.status)) {
        return {};   // the retransmission timer sends again with back-off
    }
    if (refuses_held_addresses(status)) {
        return reattach(e, status, now);
    }
    spdlog::error("registration of {} rejected with {}({}): not retried", e.mn_id, status_name(pba.status), pba.status);
    uninstall(e);
    e.state = State::Failed;
    return {};
}

// Issue 17: an LMA that lost the MN's binding (a restart without it, another LMA behind the same
// address) refuses the prefix or address the MN holds. The MN is not given up: registered again
// at once as a new attachment (HI 1, ::/0 and 0.0.0.0: RFC 5213 §6.9.1.1), and if that is refused
// too, the retransmission timer tries again with its back-off (RFC 6275 §11.8).
std::vector<OutgoingPbu> MobileAccessGateway::reattach(BindingUpdateListEntry& e, Status status, Clock::time_point now) {
    if (e.reattaching) {
        spdlog::warn("{}: its new attachment refused too with {}({}): trying again with back-off", e.mn_id,
                     status_name(e.last_status), e.last_status);
        return {};
    }
    spdlog::warn("{}: the LMA refused the addresses it holds with {}({}) (did the LMA lose its bindings?): "
                 "registering it again as a new attachment", e.mn_id, status_name(e.last_status),
                 static_cast<unsigned>(status));
    e.reattaching = true;
    e.hnp.reset();
    e.ipv4_hoa.reset();
    return send(e, false, now);
}

// RFC 5845 §4.2: what the GRE Key option (or its absence) in an accepting PBA says.
void MobileAccessGateway::take_gre_answer(BindingUpdateListEntry& e, const ProxyBindingAcknowledgement& pba) {
    const auto* gre = pba.options.find<GreKeyOption>();
    const bool asked_gre = include_gre_option(e);
    if (static_cast<Status>(pba.status) == Status::GreKeyOptionNotRequired) {
        e.gre = false;
        e.gre_for_session = false;   // MUST NOT include it again for this session
        e.key_uplink.reset();
        return;
    }
    e.gre = gre != nullptr;
    if (gre && gre->key && e.key_uplink && *e.key_uplink != *gre->key) {
        spdlog::warn("{}: the LMA changed the uplink key {} -> {} (LMA restart?): using the new one", e.mn_id,
                     *e.key_uplink, *gre->key);
    }
    e.key_uplink = gre ? gre->key : std::nullopt;   // an option without key: GRE encapsulation mode only
    if (!gre && asked_gre) {
        // A success without the option: the LMA does not support RFC 5845; stop asking it. (One
        // LMA: its addresses on the WAN links are one node's, RFC 8278 §3.)
        lma_supports_gre_ = false;
        spdlog::warn("LMA {} accepted {} without the GRE Key option: it does not support GRE keys; not asking again",
                     to_string(config_.wans[e.path].lma), e.mn_id);
    }
}

// RFC 5845 §7.3: T with the option -> UDP/TLV/GRE; status 3 -> GRE without UDP. §7.2: the LMA
// "MUST NOT" set T when our PBU did not: a T we did not ask for changes nothing (over IPv6 there is
// no UDP to put a TLV header in), and is logged once per LMA. RFC 5844 §3.1.3: UDP when F was
// sent and GRE is not used.
void MobileAccessGateway::take_encapsulation(BindingUpdateListEntry& e, const IncomingPba& in) {
    const ProxyBindingAcknowledgement& pba = in.pba;
    if (pba.has(ba_flag::kTlvHeader) && !e.tlv_requested) {
        log_deviation(in.src, "stray-t", fmt::format("set the T flag in a PBA for {} whose PBU did not (RFC 5845 §7.2: "
                                                     "MUST NOT); ignored, the encapsulation stays as negotiated",
                                                     e.mn_id));
    }
    e.tlv_header = e.gre && pba.options.find<GreKeyOption>() && e.tlv_requested && pba.has(ba_flag::kTlvHeader) &&
                   static_cast<Status>(pba.status) != Status::GreTunnelingButTlvHeaderNotSupported;
    e.udp = !e.gre && config_.force_udp && is_ipv4(config_.wans[e.path].lma);
}

// RFC 5844 §3.1.2: the IPv4 home address and default router the LMA assigned.
void MobileAccessGateway::take_ipv4_addresses(BindingUpdateListEntry& e, const ProxyBindingAcknowledgement& pba) {
    if (const auto* r = pba.options.find<Ipv4HomeAddressReplyOption>(); r && r->status == ipv4_hoa_status::kSuccess) {
        e.ipv4_hoa = r->address;
        e.ipv4_prefix_length = r->prefix_length;
    }
    if (const auto* r = pba.options.find<Ipv4DefaultRouterAddressOption>()) {
        e.ipv4_router = r->address;
    }
}

// The binding holds: its session goes into the data plane (or, refused, the binding is given back),
// the refresh is scheduled (RFC 5213 §6.9.1.4), and the MN's other paths follow (RFC 8278 §4.4).
std::vector<OutgoingPbu> MobileAccessGateway::complete_registration(BindingUpdateListEntry& e,
                                                                    const ProxyBindingAcknowledgement& pba,
                                                                    Clock::time_point now) {
    e.expires = now + e.lifetime;
    try {
        install(e);
    } catch (const std::exception& ex) {
        spdlog::error("{}: the data plane refused the session: {}: de-registering", e.mn_id, ex.what());
        e.state = State::Deregistering;
        e.attempts = 0;
        e.backoff = config_.timers.initial_retransmit;
        return send(e, true, now);
    }
    const bool first = e.state != State::Registered;
    e.state = State::Registered;
    e.refreshing = false;
    e.attempts = 0;
    e.backoff = config_.timers.initial_retransmit;
    e.next_send = now + std::chrono::duration_cast<Clock::duration>(e.lifetime * config_.timers.refresh_at);
    const bool lma_multipath = e.multipath_sent && pba.options.find<MagMultipathBindingOption>();
    lma_multipath_known_ = lma_multipath_known_ || lma_multipath;
    if (first && &e == &primary(e)) {
        sink_.registered(e);
        if (lma_multipath) {
            return start_other_paths(e, now);   // the LMA has shown multipath support over this path
        }
    }
    return {};
}

void MobileAccessGateway::log_deviation(const IpAddress& lma, const char* kind, const std::string& what) {
    if (deviations_logged_.insert(fmt::format("{} {}", to_string(lma), kind)).second) {
        spdlog::warn("LMA {} {} (logged once)", to_string(lma), what);
    }
}

void MobileAccessGateway::take_home_network_prefix(BindingUpdateListEntry& e, const ProxyBindingAcknowledgement& pba,
                                                   const IpAddress& lma) {
    const auto* h = pba.options.find<HomeNetworkPrefixOption>();
    if (!h) {
        return;
    }
    // RFC 5213 §6.9.1.2, §8.3: a prefix of all zeroes (or of length 0) is what a MAG sends to ask
    // for one; in a PBA it assigns nothing. Some LMAs echo it: the MN then has no IPv6 service
    // (and a ::/0 route would capture the MAG's own traffic).
    if (h->prefix_length == 0 || h->prefix.is_unspecified()) {
        log_deviation(lma, "empty-hnp", fmt::format("accepted {} with Home Network Prefix {}/{}: no prefix assigned (RFC 5213 "
                                       "§6.9.1.2), no IPv6 service for it", e.mn_id, h->prefix.to_string(),
                                       h->prefix_length));
        return;
    }
    e.hnp = Ipv6Prefix{h->prefix, h->prefix_length};
}

std::vector<OutgoingPbu> MobileAccessGateway::reload(MagConfig config, Clock::time_point now) {
    if (config.lma != config_.lma || config.addresses != config_.addresses || config.instance != config_.instance) {
        spdlog::warn("reload: the LMA, the MAG's addresses and the instance change only with a restart");
    }
    config.lma = config_.lma;
    config.addresses = config_.addresses;
    config.wans = config_.wans;             // paths, labels and Binding-Ids: with a restart too
    config.identifier = config_.identifier;
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
    std::vector<std::pair<std::string, std::size_t>> given_up;   // (MN, path) whose de-registration went unanswered
    std::vector<std::string> touched;
    for (auto& [id, p] : bul_) {
        for (auto* x : all_paths(p)) {
            std::vector<OutgoingPbu> more;
            switch (x->state) {
            case State::Registering:
                if (x->next_send <= now) {
                    more = send(*x, false, now);
                }
                break;
            case State::Registered:
                more = registered_timer(*x, now);
                break;
            case State::Deregistering:
                if (x->next_send > now) {
                    break;
                }
                if (x->attempts >= config_.timers.deregistration_attempts && !shutting_down_) {
                    spdlog::warn("de-registration of {} (path {}) unanswered after {} attempts: dropped", id, x->path,
                                 x->attempts);
                    given_up.emplace_back(id, x->path);
                } else {
                    more = send(*x, true, now);
                }
                break;
            case State::Failed:
                break;
            }
            if (!more.empty()) {
                touched.push_back(id);
            }
            out.insert(out.end(), more.begin(), more.end());
        }
    }
    for (const auto& [id, path] : given_up) {
        drop_path(id, path);
        touched.push_back(id);
    }
    for (const auto& id : touched) {
        journal(id);   // (what expired or gave up; a plain refresh changes nothing there)
    }
    return out;
}

// RFC 5213 §6.9.1.4: a binding is refreshed before it expires; one that expires without a refresh
// stops forwarding (on this path) and registration starts over.
std::vector<OutgoingPbu> MobileAccessGateway::registered_timer(BindingUpdateListEntry& e, Clock::time_point now) {
    if (e.expires <= now) {
        spdlog::warn("binding of {} (path {}) expired without a refresh", e.mn_id, e.path);
        uninstall(e);
        e.state = State::Registering;
        e.refreshing = false;
        e.backoff = config_.timers.initial_retransmit;
        return send(e, false, now);
    }
    if (e.next_send > now) {
        return {};
    }
    if (!e.refreshing) {
        e.refreshing = true;
        e.attempts = 0;
        e.backoff = config_.timers.initial_retransmit;
    }
    return send(e, false, now);
}

// The LMA at `lma` restarted (RFC 5847 §6.2 Restart Counter): every binding registered with it is
// refreshed now rather than at 80 % of its lifetime. An LMA that kept its bindings accepts them
// (same prefixes and keys); one that lost them refuses and the MN registers as new (reattach).
std::vector<OutgoingPbu> MobileAccessGateway::on_lma_restart(const IpAddress& lma, Clock::time_point now) {
    std::vector<OutgoingPbu> out;
    std::size_t refreshed = 0;
    for (auto& [id, primary_entry] : bul_) {
        for (auto* e : all_paths(primary_entry)) {
            if (e->state != State::Registered || config_.wans[e->path].lma != lma) {
                continue;
            }
            e->refreshing = true;
            e->attempts = 0;
            e->backoff = config_.timers.initial_retransmit;
            e->next_send = now;
            auto pbus = send(*e, false, now);
            out.insert(out.end(), pbus.begin(), pbus.end());
            ++refreshed;
        }
    }
    spdlog::info("LMA {} restarted: {} binding(s) registered again now", to_string(lma), refreshed);
    return out;
}

// The entry of a path that gave up: the MN's (its first path) or one of its other paths'.
void MobileAccessGateway::drop_path(const std::string& mn_id, std::size_t path) {
    auto it = bul_.find(mn_id);
    if (it == bul_.end()) {
        return;
    }
    if (it->second.path == path) {
        forget(it);
        return;
    }
    auto& paths = it->second.paths;
    for (auto x = paths.begin(); x != paths.end(); ++x) {
        if (x->path == path) {
            release_key(*x);
            paths.erase(x);
            return;
        }
    }
}

std::optional<Clock::time_point> MobileAccessGateway::next_deadline() const {
    std::optional<Clock::time_point> next;
    auto consider = [&](const BindingUpdateListEntry& e) {
        if (e.state == State::Failed) {
            return;
        }
        auto t = e.next_send;
        if (e.state == State::Registered) {
            t = std::min(t, e.expires);
        }
        if (!next || t < *next) {
            next = t;
        }
    };
    for (const auto& [id, e] : bul_) {
        consider(e);
        for (const auto& x : e.paths) {
            consider(x);
        }
    }
    return next;
}

} // namespace xpmip::mag
