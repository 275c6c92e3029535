// The LMA's Proxy Binding Acknowledgements (RFC 5213 §5.3.6, RFC 5844 §3.2.3, RFC 5845 §5.1,
// RFC 8278 §4.4) and the one log line per exchange.
#include "lma/lma.hpp"

#include "common/log_limit.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace xpmip::lma {

using namespace xpmip::wire;

namespace {

constexpr std::uint32_t kNatKeepaliveSeconds = 110;   // RFC 5555 §4.2.2 NATKATIMEOUT default

} // namespace

// A PBA goes back the way the PBU came (for UDP, from 5436 to its source port), P set.
OutgoingPba LocalMobilityAnchor::reply_to(const Registration& r) const {
    OutgoingPba out{r.in.transport, r.in.dst, r.in.src, r.in.src_port, {}};
    out.pba.sequence = r.pbu.sequence;
    out.pba.flags = ba_flag::kProxy;
    out.pba.lifetime = 0;
    return out;
}

// Options every PBA carries back: the MN-ID, HI, ATT, MN link-layer ID and link-local address as
// received; the Timestamp as received except in the two timestamp rejections, which carry ours
// (RFC 5213 §5.5).
void LocalMobilityAnchor::echo_options(const Registration& r, ProxyBindingAcknowledgement& pba,
                                       bool our_timestamp) const {
    const PbuOptions& o = r.opt;
    if (o.mn_id) {
        pba.options.add(*o.mn_id);
    }
    if (o.hi) {
        pba.options.add(*o.hi);
    }
    if (o.att) {
        pba.options.add(*o.att);
    }
    if (o.mn_link_layer) {
        pba.options.add(*o.mn_link_layer);
    }
    if (o.link_local) {
        pba.options.add(*o.link_local);
    }
    if (our_timestamp) {
        pba.options.add(TimestampOption{wall_timestamp_()});
    } else if (o.timestamp) {
        pba.options.add(*o.timestamp);
    }
}

OutgoingPba LocalMobilityAnchor::reject(const Registration& r, Status status) const {
    OutgoingPba out = reply_to(r);
    ProxyBindingAcknowledgement& pba = out.pba;
    if (r.last_accepted_sequence) {
        pba.sequence = *r.last_accepted_sequence;   // 135: RFC 6275 §6.1.8
    }
    pba.status = static_cast<std::uint8_t>(status);
    echo_options(r, pba, status == Status::TimestampMismatch || status == Status::TimestampLowerThanPrevAccepted);
    for (const auto& h : r.opt.hnps) {
        pba.options.add(h);
    }
    // RFC 8278 §4.4 (for 180; any rejection of a multipath request, so that the MAG can tell which
    // binding it concerns): both options echoed.
    if (r.opt.multipath) {
        pba.options.add(*r.opt.multipath);
        if (r.opt.mag_identifier) {
            pba.options.add(*r.opt.mag_identifier);
        }
    }
    log_exchange(r.in, out, r.entry);
    return out;
}

OutgoingPba LocalMobilityAnchor::accept_deregistration(const Registration& r) const {
    OutgoingPba out = reply_to(r);
    out.pba.status = static_cast<std::uint8_t>(Status::Accepted);
    echo_options(r, out.pba, false);
    for (const auto& h : r.opt.hnps) {
        out.pba.options.add(h);
    }
    if (r.opt.multipath) {
        out.pba.options.add(*r.opt.multipath);
    }
    log_exchange(r.in, out, r.entry);
    return out;
}

OutgoingPba LocalMobilityAnchor::accept(const Registration& r, const BindingCacheEntry& entry) const {
    OutgoingPba out = reply_to(r);
    ProxyBindingAcknowledgement& pba = out.pba;
    pba.status = static_cast<std::uint8_t>(r.gre.status);
    pba.lifetime = static_cast<std::uint16_t>(r.granted.count() / kLifetimeUnitSeconds);
    if (r.gre.tlv) {
        pba.flags |= ba_flag::kTlvHeader;
    }
    echo_options(r, pba, false);
    if (entry.serves_hnp && entry.hnp) {
        pba.options.add(HomeNetworkPrefixOption{entry.hnp->length, entry.hnp->address});
    }
    if (r.opt.ipv4_coa) {
        pba.options.add(*r.opt.ipv4_coa);
    }
    if (r.opt.ipv4_request) {
        Ipv4HomeAddressReplyOption reply;
        if (r.addresses.ipv4_prohibited) {
            reply.status = ipv4_hoa_status::kProhibited;
        } else {
            reply.address = *entry.ipv4_hoa;
            reply.prefix_length = r.realm->ipv4_pool ? r.realm->ipv4_pool->length : 32;
        }
        pba.options.add(reply);
        if (!r.addresses.ipv4_prohibited && r.realm->ipv4_default_router) {
            pba.options.add(Ipv4DefaultRouterAddressOption{*r.realm->ipv4_default_router});
        }
    }
    if (r.gre.include_option) {
        const auto key = r.multipath() ? entry.multipath->bindings.at(r.opt.multipath->binding_id).key_uplink : entry.key_uplink;
        pba.options.add(GreKeyOption{r.gre.keyed ? key : std::nullopt});
    }
    if (r.force_udp) {
        pba.options.add(NatDetectionOption{true, kNatKeepaliveSeconds});
    }
    add_bulk_answer(entry, pba);   // RFC 6602 §5.2.2
    if (r.opt.multipath) {
        // §4.4: "the LMA MUST include the Multipath Binding Option ..., without the MAG NAI Option".
        // (The last paragraph's SHOULD echo both contradicts it; the MUST wins here.)
        pba.options.add(*r.opt.multipath);
    }
    log_exchange(r.in, out, &entry);
    return out;
}

void LocalMobilityAnchor::log_exchange(const IncomingPbu& in, const OutgoingPba& out, const BindingCacheEntry* e) const {
    const auto& pba = out.pba;
    if (!spdlog::should_log(pba.accepted() ? spdlog::level::info : spdlog::level::warn)) {
        return;   // formatting the line costs more than the rest of an accepted registration
    }
    const auto* mn_id = in.pbu.options.find<MobileNodeIdentifierOption>();
    const auto* hi = in.pbu.options.find<HandoffIndicatorOption>();
    // Rejections are rate limited per MAG address and status (README "Logs under attack"); the
    // line is not even formatted when it is suppressed.
    std::uint64_t suppressed = 0;
    if (!pba.accepted() &&
        !signaling_log_limiter().admit(to_string(in.src), status_name(pba.status), Clock::now(), &suppressed)) {
        return;
    }
    std::string addrs;
    if (e && pba.accepted() && in.pbu.lifetime != 0) {
        if (e->hnp) {
            addrs += " hnp=" + e->hnp->to_string();
        }
        if (e->ipv4_hoa) {
            addrs += " hoa=" + e->ipv4_hoa->to_string();
        }
        addrs += fmt::format(" session={} encap={}", e->session_id, dataplane::to_string(e->encap));
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
        gre_key_text(in.pbu.options.find<GreKeyOption>()), in.pbu.has(bu_flag::kTlvHeader) ? 1 : 0,
        status_name(pba.status), pba.status, pba.sequence, pba.lifetime_seconds().count(),
        gre_key_text(pba.options.find<GreKeyOption>()), pba.has(ba_flag::kTlvHeader) ? 1 : 0, addrs);
    if (pba.accepted()) {
        spdlog::info("{}", line);
    } else {
        spdlog::warn("{}{}", line, suppressed ? fmt::format(" ({} more like it suppressed)", suppressed) : "");
    }
}

} // namespace xpmip::lma
