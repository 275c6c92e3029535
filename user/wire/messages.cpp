#include "wire/messages.hpp"

#include <fmt/format.h>

#include <ctime>

namespace xpmip::wire {

namespace {

// MAG Multipath-Binding: Type, Length, If-ATT, If-Label, Binding-Id, then the B|O flags octet.
constexpr std::size_t kMultipathFlagsOffset = 5;

// Rules that depend on the message, not only on one option. `type_offsets[i]` is the MH offset of
// the Type octet of options.items[i]; the same check runs on input and on output.
void check_deregistration(const ProxyBindingUpdate& bu, const std::vector<std::size_t>& type_offsets) {
    if (bu.lifetime != 0) {
        return;
    }
    for (std::size_t i = 0; i < bu.options.items.size(); ++i) {
        const auto* mp = std::get_if<MagMultipathBindingOption>(&bu.options.items[i]);
        // RFC 8278 §4.1: the Overwrite (O) flag MUST be 0 in a de-registration (Lifetime 0).
        if (mp != nullptr && mp->overwrite) {
            throw WireError("MAG Multipath-Binding option Flags", type_offsets.at(i) + kMultipathFlagsOffset,
                            "O is set in a de-registration (Lifetime 0); RFC 8278 §4.1 requires O = 0");
        }
    }
}

} // namespace

Bytes encode(const MobilityMessage& message) {
    Bytes out;
    ByteWriter w(out);
    w.u8(kMhPayloadProtoNone);
    w.u8(0);  // Header Len, patched below
    const OptionList* options = nullptr;
    if (const auto* bu = std::get_if<ProxyBindingUpdate>(&message)) {
        w.u8(kMhTypeBindingUpdate);
        w.u8(0);   // Reserved
        w.u16(0);  // Checksum
        w.u16(bu->sequence);
        w.u16(bu->flags);
        w.u16(bu->lifetime);
        options = &bu->options;
    } else if (const auto* ba = std::get_if<ProxyBindingAcknowledgement>(&message)) {
        w.u8(kMhTypeBindingAck);
        w.u8(0);
        w.u16(0);
        w.u8(ba->status);
        w.u8(ba->flags);
        w.u16(ba->sequence);
        w.u16(ba->lifetime);
        options = &ba->options;
    } else {
        const auto& hb = std::get<Heartbeat>(message);
        w.u8(kMhTypeHeartbeat);
        w.u8(0);
        w.u16(0);
        w.u8(0);   // Reserved (RFC 5847 §6.1)
        w.u8(hb.flags);
        w.u32(hb.sequence);
        options = &hb.options;
    }
    const auto option_offsets = encode_options(*options, out);
    if (const auto* bu = std::get_if<ProxyBindingUpdate>(&message)) {
        check_deregistration(*bu, option_offsets);
    }
    // Header Len: 8-octet units, excluding the first 8 octets (RFC 6275 §6.1.1).
    const std::size_t units = out.size() / 8 - 1;
    if (units > 255) {
        throw WireError("Header Len", WireError::kNoOffset,
                        fmt::format("message of {} octets exceeds the 2048-octet maximum", out.size()));
    }
    w.patch_u8(1, static_cast<std::uint8_t>(units));
    return out;
}

MobilityMessage decode(ByteView mh) {
    ByteReader r(mh);
    const auto payload_proto = r.u8("Payload Proto");
    // RFC 6275 §6.1.1: Payload Proto MUST be IPPROTO_NONE (59) in this version.
    if (payload_proto != kMhPayloadProtoNone) {
        throw WireError("Payload Proto", 0, fmt::format("{} is invalid (must be 59)", payload_proto));
    }
    const auto header_len = r.u8("Header Len");
    const auto mh_type = r.u8("MH Type");
    r.skip(1, "Reserved");
    r.skip(2, "Checksum");
    const std::size_t total = (std::size_t{header_len} + 1) * 8;
    if (total > mh.size()) {
        throw WireError("Header Len", 1,
                        fmt::format("{} ({} octets) runs beyond the {} octet(s) received", header_len, total,
                                    mh.size()));
    }
    if (total < mh.size()) {
        throw WireError("Header Len", 1,
                        fmt::format("{} ({} octets) leaves {} trailing octet(s) after the Mobility Header",
                                    header_len, total, mh.size() - total));
    }
    // RFC 6275 §9.2: an unknown MH Type is answered with a Binding Error (Status 2), so a
    // well-formed message of another type raises the distinguishable UnsupportedMessageError.
    if (mh_type != kMhTypeBindingUpdate && mh_type != kMhTypeBindingAck && mh_type != kMhTypeHeartbeat) {
        throw UnsupportedMessageError("MH Type", 2,
                                      fmt::format("{} is not supported (only Binding Update (5), Binding "
                                                  "Acknowledgement (6) and Heartbeat (13) are)",
                                                  mh_type),
                                      mh_type);
    }
    if (total < kMhFixedPartLength) {
        const char* name = mh_type == kMhTypeBindingUpdate ? "Binding Update"
                           : mh_type == kMhTypeBindingAck  ? "Binding Acknowledgement"
                                                           : "Heartbeat";
        throw WireError("Header Len", 1, fmt::format("{} is too short for a {} (needs at least 1)", header_len, name));
    }
    ByteReader body(mh.subspan(6, total - 6), 6);
    if (mh_type == kMhTypeHeartbeat) {
        Heartbeat hb;
        body.skip(1, "Reserved");
        hb.flags = body.u8("Flags");
        hb.sequence = body.u32("Sequence Number");
        hb.options = decode_options(body.rest(), kMhFixedPartLength);
        return hb;
    }
    if (mh_type == kMhTypeBindingUpdate) {
        ProxyBindingUpdate bu;
        bu.sequence = body.u16("Sequence #");
        bu.flags = body.u16("Flags");
        bu.lifetime = body.u16("Lifetime");
        std::vector<std::size_t> type_offsets;
        bu.options = decode_options(body.rest(), kMhFixedPartLength, &type_offsets);
        check_deregistration(bu, type_offsets);
        return bu;
    }
    ProxyBindingAcknowledgement ba;
    ba.status = body.u8("Status");
    ba.flags = body.u8("Flags");
    ba.sequence = body.u16("Sequence #");
    ba.lifetime = body.u16("Lifetime");
    ba.options = decode_options(body.rest(), kMhFixedPartLength);
    return ba;
}

std::uint64_t timestamp_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return timestamp_from_unix_nanos(static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
                                     static_cast<std::uint64_t>(ts.tv_nsec));
}

} // namespace xpmip::wire
