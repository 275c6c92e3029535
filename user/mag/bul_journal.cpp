#include "mag/bul_journal.hpp"

#include <fmt/format.h>

#include <map>

namespace xpmip::mag {

using state::Reader;
using state::RecordError;
using state::Writer;

namespace {

using State = BindingUpdateListEntry::State;

State state_of(std::uint8_t v) {
    if (v > static_cast<std::uint8_t>(State::Failed)) {
        throw RecordError(fmt::format("state: {} is not a Binding Update List state", v));
    }
    return static_cast<State>(v);
}

// One registration (the MN's entry or one of its other paths'), without the paths.
void write_registration(Writer& w, const BindingUpdateListEntry& e, bool with_sequence) {
    w.u8(static_cast<std::uint8_t>(e.state));
    w.u8(static_cast<std::uint8_t>(e.path));
    w.u16(with_sequence ? e.sequence : 0);
    w.u8(e.last_status);
    w.opt_prefix6(e.hnp);
    w.opt_ipv4(e.ipv4_hoa);
    w.u8(e.ipv4_prefix_length);
    w.opt_ipv4(e.ipv4_router);
    w.u32(static_cast<std::uint32_t>(e.lifetime.count()));
    w.flag(e.gre);
    w.flag(e.gre_for_session);
    w.flag(e.gre_forced);
    w.opt_u32(e.key_downlink);
    w.opt_u32(e.key_uplink);
    w.flag(e.tlv_header);
    w.flag(e.tlv_requested);
    w.flag(e.udp);
    w.flag(e.in_dataplane);
    w.flag(e.multipath_sent);
}

void read_registration(Reader& r, BindingUpdateListEntry& e) {
    e.state = state_of(r.u8("state"));
    e.path = r.u8("path");
    e.sequence = r.u16("sequence");
    e.last_status = r.u8("last_status");
    e.hnp = r.opt_prefix6("hnp");
    e.ipv4_hoa = r.opt_ipv4("ipv4_hoa");
    e.ipv4_prefix_length = r.u8("ipv4_prefix_length");
    e.ipv4_router = r.opt_ipv4("ipv4_router");
    e.lifetime = std::chrono::seconds(r.u32("lifetime"));
    e.gre = r.flag("gre");
    e.gre_for_session = r.flag("gre_for_session");
    e.gre_forced = r.flag("gre_forced");
    e.key_downlink = r.opt_u32("key_downlink");
    e.key_uplink = r.opt_u32("key_uplink");
    e.tlv_header = r.flag("tlv_header");
    e.tlv_requested = r.flag("tlv_requested");
    e.udp = r.flag("udp");
    e.in_dataplane = r.flag("in_dataplane");
    e.multipath_sent = r.flag("multipath_sent");
}

} // namespace

void encode_bul_entry_into(std::string& out, const BindingUpdateListEntry& e, bool with_sequence) {
    Writer w(out);
    w.bytes(e.mn_id);   // (the key: first)
    w.raw(e.mac.bytes);
    w.bytes(e.interface);
    w.u32(e.session_id);
    w.flag(e.session_installed);
    w.u16(with_sequence ? e.mn_sequence : 0);
    w.flag(with_sequence && e.sequenced);
    write_registration(w, e, with_sequence);
    w.u8(static_cast<std::uint8_t>(e.paths.size()));
    for (const auto& x : e.paths) {
        write_registration(w, x, with_sequence);
    }
}

std::string encode_bul_entry(const BindingUpdateListEntry& e, bool with_sequence) {
    std::string out;
    encode_bul_entry_into(out, e, with_sequence);
    return out;
}

BindingUpdateListEntry decode_bul_entry(std::string_view payload) {
    Reader r(payload);
    BindingUpdateListEntry e;
    e.mn_id = r.bytes("mn_id");
    r.raw(e.mac.bytes, "mac");
    e.interface = r.bytes("interface");
    e.session_id = r.u32("session_id");
    e.session_installed = r.flag("session_installed");
    e.mn_sequence = r.u16("mn_sequence");
    e.sequenced = r.flag("sequenced");
    read_registration(r, e);
    const auto n = r.u8("paths");
    for (unsigned i = 0; i < n; ++i) {
        BindingUpdateListEntry x;
        x.mn_id = e.mn_id;
        x.mac = e.mac;
        x.interface = e.interface;
        x.session_id = e.session_id;
        read_registration(r, x);
        e.paths.push_back(std::move(x));
    }
    r.end();
    return e;
}

BulJournal::BulJournal(std::filesystem::path dir) {
    std::map<std::string, BindingUpdateListEntry> state;
    log_.emplace(std::move(dir), "binding update list journal",
                 state::ReplayHandlers{.put =
                                           [&](std::string_view payload) {
                                               auto e = decode_bul_entry(payload);
                                               std::string id = e.mn_id;
                                               state.insert_or_assign(std::move(id), std::move(e));
                                           },
                                       .erase = [&](const std::string& id) { state.erase(id); }});
    recovery_.records = log_->replayed().records;
    recovery_.losses = log_->replayed().losses;
    for (auto& [id, e] : state) {
        recovery_.entries.push_back(std::move(e));
    }
}

void BulJournal::put(const BindingUpdateListEntry& primary) {
    log_->put([&](std::string& out) { encode_bul_entry_into(out, primary, true); });
}

void BulJournal::tend(const std::map<std::string, BindingUpdateListEntry>& bul) {
    log_->tend(bul.size(), [&bul](const state::RecordLog::Emit& emit) {
        std::string payload;
        for (const auto& [id, e] : bul) {
            payload.clear();
            encode_bul_entry_into(payload, e, true);
            emit(payload);
        }
    });
}

} // namespace xpmip::mag
