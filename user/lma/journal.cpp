#include "lma/journal.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>

namespace xpmip::lma {

namespace fs = std::filesystem;
using state::Reader;
using state::Writer;

namespace {

// ---- the payload codec: every field in a fixed order (user/state/record_codec.hpp) ---------

dataplane::Encapsulation encapsulation(std::uint8_t v, const char* field) {
    switch (v) {
    case XPMIP_ENCAP_IPIP:
    case XPMIP_ENCAP_UDP:
    case XPMIP_ENCAP_GRE:
    case XPMIP_ENCAP_UDP_TLV_GRE:
        return static_cast<dataplane::Encapsulation>(v);
    default:
        throw JournalError(fmt::format("{}: {} is not an encapsulation", field, v));
    }
}

void write_binding(Writer& w, const MultipathBinding& b, bool with_freshness) {
    w.u8(b.bid);
    w.u8(b.label);
    w.u8(b.if_att);
    w.address(b.proxy_coa);
    w.address(b.lma_address);
    w.u32(b.ifindex);
    w.u16(with_freshness ? b.last_sequence : 0);
    w.opt_u64(with_freshness ? b.last_timestamp : std::nullopt);
    w.flag(b.gre);
    w.opt_u32(b.key_downlink);
    w.opt_u32(b.key_uplink);
    w.flag(b.tlv_header);
    w.u8(static_cast<std::uint8_t>(b.encap));
    w.flag(b.path_up);
    w.u8(b.weight);
}

MultipathBinding read_binding(Reader& r) {
    MultipathBinding b;
    b.bid = r.u8("binding.bid");
    b.label = r.u8("binding.label");
    b.if_att = r.u8("binding.if_att");
    b.proxy_coa = r.address("binding.proxy_coa");
    b.lma_address = r.address("binding.lma_address");
    b.ifindex = r.u32("binding.ifindex");
    b.last_sequence = r.u16("binding.last_sequence");
    b.last_timestamp = r.opt_u64("binding.last_timestamp");
    b.gre = r.flag("binding.gre");
    b.key_downlink = r.opt_u32("binding.key_downlink");
    b.key_uplink = r.opt_u32("binding.key_uplink");
    b.tlv_header = r.flag("binding.tlv_header");
    b.encap = encapsulation(r.u8("binding.encap"), "binding.encap");
    b.path_up = r.flag("binding.path_up");
    b.weight = r.u8("binding.weight");
    return b;
}

} // namespace

std::string encode_entry(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e,
                         bool with_freshness) {
    std::string out;
    out.reserve(160);
    encode_entry_into(out, mn_id, peer, e, with_freshness);
    return out;
}

void encode_entry_into(std::string& out, const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e,
                       bool with_freshness) {
    Writer w(out);
    w.bytes(mn_id);
    w.bytes(peer);
    w.u32(e.session_id);
    w.u32(e.realm);
    w.address(e.proxy_coa);
    w.address(e.lma_address);
    w.u8(e.transport == wire::Transport::Ipv6 ? 6 : 4);
    w.u16(e.mag_port);
    w.opt_prefix6(e.hnp);
    w.opt_ipv4(e.ipv4_hoa);
    w.u8(e.ipv4_hoa_length);
    w.u8(e.att);
    w.u8(e.handoff_indicator);
    w.bytes(e.mn_ll_id);
    w.opt_ipv6(e.link_local);
    w.u32(static_cast<std::uint32_t>(e.lifetime.count()));
    w.u16(with_freshness ? e.last_sequence : 0);
    w.opt_u64(with_freshness ? e.last_timestamp : std::nullopt);
    w.flag(e.deregistered);
    w.flag(e.gre);
    w.opt_u32(e.key_downlink);
    w.opt_u32(e.key_uplink);
    w.flag(e.tlv_header);
    w.flag(e.force_udp);
    w.flag(e.in_dataplane);
    w.flag(e.serves_hnp);
    w.flag(e.serves_hoa);
    w.flag(e.gre_keys);
    w.u8(static_cast<std::uint8_t>(e.encap));
    w.u8(e.policy);
    w.flag(static_cast<bool>(e.multipath));
    if (e.multipath) {
        w.bytes(e.multipath->mag_id);
        w.u8(static_cast<std::uint8_t>(e.multipath->bindings.size()));
        for (const auto& [bid, b] : e.multipath->bindings) {
            write_binding(w, b, with_freshness);
        }
    }
}

JournalRecord decode_entry(std::string_view payload) {
    Reader r(payload);
    JournalRecord rec;
    BindingCacheEntry& e = rec.entry;
    rec.mn_id = r.bytes("mn_id");
    rec.peer = r.bytes("peer");
    e.session_id = r.u32("session_id");
    e.realm = r.u32("realm");
    e.proxy_coa = r.address("proxy_coa");
    e.lma_address = r.address("lma_address");
    const auto transport = r.u8("transport");
    if (transport != 4 && transport != 6) {
        throw JournalError(fmt::format("transport: {} is not 4 or 6", transport));
    }
    e.transport = transport == 6 ? wire::Transport::Ipv6 : wire::Transport::Ipv4Udp;
    e.mag_port = r.u16("mag_port");
    e.hnp = r.opt_prefix6("hnp");
    e.ipv4_hoa = r.opt_ipv4("ipv4_hoa");
    e.ipv4_hoa_length = r.u8("ipv4_hoa_length");
    e.att = r.u8("att");
    e.handoff_indicator = r.u8("handoff_indicator");
    e.mn_ll_id = r.bytes("mn_ll_id");
    e.link_local = r.opt_ipv6("link_local");
    e.lifetime = std::chrono::seconds(r.u32("lifetime"));
    e.last_sequence = r.u16("last_sequence");
    e.last_timestamp = r.opt_u64("last_timestamp");
    e.deregistered = r.flag("deregistered");
    e.gre = r.flag("gre");
    e.key_downlink = r.opt_u32("key_downlink");
    e.key_uplink = r.opt_u32("key_uplink");
    e.tlv_header = r.flag("tlv_header");
    e.force_udp = r.flag("force_udp");
    e.in_dataplane = r.flag("in_dataplane");
    e.serves_hnp = r.flag("serves_hnp");
    e.serves_hoa = r.flag("serves_hoa");
    e.gre_keys = r.flag("gre_keys");
    e.encap = encapsulation(r.u8("encap"), "encap");
    e.policy = r.u8("policy");
    if (r.flag("multipath")) {
        MultipathState& mp = e.multipath.get_or_emplace();
        mp.mag_id = r.bytes("mag_id");
        const auto n = r.u8("bindings");
        for (unsigned i = 0; i < n; ++i) {
            MultipathBinding b = read_binding(r);
            const auto bid = b.bid;
            if (!mp.bindings.emplace(bid, std::move(b)).second) {
                throw JournalError(fmt::format("binding {}: Binding-Id {} twice", i, bid));
            }
        }
    }
    r.end();
    return rec;
}

BindingJournal::BindingJournal(fs::path dir) {
    std::map<std::string, JournalRecord> state;
    log_.emplace(std::move(dir), "binding journal",
                 state::ReplayHandlers{.put =
                                           [&](std::string_view payload) {
                                               auto rec = decode_entry(payload);
                                               std::string id = rec.mn_id;
                                               state.insert_or_assign(std::move(id), std::move(rec));
                                           },
                                       .erase = [&](const std::string& id) { state.erase(id); }});
    const auto& r = log_->replayed();
    recovery_.generation = r.generation;
    recovery_.records = r.records;
    recovery_.losses = r.losses;
    for (auto& [id, rec] : state) {
        recovery_.entries.push_back(std::move(rec));
    }
}

void BindingJournal::put(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e) {
    // Encoded in place (no copies: this runs once per registration that changes something).
    log_->put([&](std::string& out) { encode_entry_into(out, mn_id, peer, e, true); });
}

namespace {

state::RecordLog::Walk walk_of(const BindingCache& cache) {
    return [&cache](const state::RecordLog::Emit& emit) {
        std::string payload;
        for (const auto& [id, e] : cache.entries()) {
            payload.clear();
            encode_entry_into(payload, id, cache.peer_name(e), e, true);
            emit(payload);
        }
    };
}

} // namespace

void BindingJournal::compact(const BindingCache& cache) {
    log_->compact(cache.size(), walk_of(cache));
}

void BindingJournal::tend(const BindingCache& cache) {
    log_->tend(cache.size(), walk_of(cache));
}

} // namespace xpmip::lma
