#include "wire/messages.hpp"

#include <fmt/format.h>

#include <ctime>

namespace xpmip::wire {

Bytes encode(const MobilityMessage& message) {
    Bytes out;
    ByteWriter w(out);
    w.u8(kMhPayloadProtoNone);
    w.u8(0);  // Header Len, patched below
    const bool is_bu = std::holds_alternative<ProxyBindingUpdate>(message);
    w.u8(is_bu ? kMhTypeBindingUpdate : kMhTypeBindingAck);
    w.u8(0);   // Reserved
    w.u16(0);  // Checksum
    const OptionList* options = nullptr;
    if (is_bu) {
        const auto& bu = std::get<ProxyBindingUpdate>(message);
        w.u16(bu.sequence);
        w.u16(bu.flags);
        w.u16(bu.lifetime);
        options = &bu.options;
    } else {
        const auto& ba = std::get<ProxyBindingAcknowledgement>(message);
        w.u8(ba.status);
        w.u8(ba.flags);
        w.u16(ba.sequence);
        w.u16(ba.lifetime);
        options = &ba.options;
    }
    encode_options(*options, out);
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
    if (mh_type != kMhTypeBindingUpdate && mh_type != kMhTypeBindingAck) {
        throw WireError("MH Type", 2,
                        fmt::format("{} is not a Binding Update (5) or Binding Acknowledgement (6)", mh_type));
    }
    if (total < kMhFixedPartLength) {
        throw WireError("Header Len", 1,
                        fmt::format("{} is too short for a {} (needs at least 1)", header_len,
                                    mh_type == kMhTypeBindingUpdate ? "Binding Update" : "Binding Acknowledgement"));
    }
    ByteReader body(mh.subspan(6, total - 6), 6);
    if (mh_type == kMhTypeBindingUpdate) {
        ProxyBindingUpdate bu;
        bu.sequence = body.u16("Sequence #");
        bu.flags = body.u16("Flags");
        bu.lifetime = body.u16("Lifetime");
        bu.options = decode_options(body.rest(), kMhFixedPartLength);
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
