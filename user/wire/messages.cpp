#include "wire/messages.hpp"

#include "common/overloaded.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <ctime>

namespace xpmip::wire {

namespace {

// RFC 5846 §5.1: P, V, G; the rest of the 16 bits reserved.
constexpr std::uint16_t kBrFlagsMask = br_flag::kProxy | br_flag::kIpv4HoaOnly | br_flag::kGlobal;

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

// The fixed part of each message after the 6-octet MH header (Payload Proto, Header Len, MH
// Type, Reserved, Checksum); options follow.
void encode_fixed(ByteWriter& w, const ProxyBindingUpdate& bu) {   // RFC 6275 §6.1.7
    w.u16(bu.sequence);
    w.u16(bu.flags);
    w.u16(bu.lifetime);
}

void encode_fixed(ByteWriter& w, const ProxyBindingAcknowledgement& ba) {   // RFC 6275 §6.1.8
    w.u8(ba.status);
    w.u8(ba.flags);
    w.u16(ba.sequence);
    w.u16(ba.lifetime);
}

void encode_fixed(ByteWriter& w, const Heartbeat& hb) {   // RFC 5847 §6.1
    w.u8(0);   // Reserved
    w.u8(hb.flags);
    w.u32(hb.sequence);
}

void encode_fixed(ByteWriter& w, const BindingError& be) {   // RFC 6275 §6.1.9
    w.u8(be.status);
    w.u8(0);   // Reserved
    w.bytes(be.home_address.bytes);
}

// RFC 5846 §5.1, §5.2: the two share one layout, the octet after the B.R. Type is the Trigger
// or the Status; the 13 reserved bits are sent 0 and ignored on receipt.
void encode_fixed(ByteWriter& w, const BindingRevocationIndication& bri) {
    w.u8(br_type::kIndication);
    w.u8(bri.trigger);
    w.u16(bri.sequence);
    w.u16(bri.flags & kBrFlagsMask);
}

void encode_fixed(ByteWriter& w, const BindingRevocationAcknowledgement& bra) {
    w.u8(br_type::kAcknowledgement);
    w.u8(bra.status);
    w.u16(bra.sequence);
    w.u16(bra.flags & kBrFlagsMask);
}

ProxyBindingUpdate decode_bu(ByteReader& body) {
    ProxyBindingUpdate bu;
    bu.sequence = body.u16("Sequence #");
    bu.flags = body.u16("Flags");
    bu.lifetime = body.u16("Lifetime");
    std::vector<std::size_t> type_offsets;
    bu.options = decode_options(body.rest(), kMhFixedPartLength, &type_offsets);
    check_deregistration(bu, type_offsets);
    return bu;
}

ProxyBindingAcknowledgement decode_ba(ByteReader& body) {
    ProxyBindingAcknowledgement ba;
    ba.status = body.u8("Status");
    ba.flags = body.u8("Flags");
    ba.sequence = body.u16("Sequence #");
    ba.lifetime = body.u16("Lifetime");
    ba.options = decode_options(body.rest(), kMhFixedPartLength);
    return ba;
}

Heartbeat decode_heartbeat(ByteReader& body) {
    Heartbeat hb;
    body.skip(1, "Reserved");
    hb.flags = body.u8("Flags");
    hb.sequence = body.u32("Sequence Number");
    hb.options = decode_options(body.rest(), kMhFixedPartLength);
    return hb;
}

BindingError decode_binding_error(ByteReader& body) {
    BindingError be;
    be.status = body.u8("Status");
    body.skip(1, "Reserved");
    const ByteView home = body.bytes(16, "Home Address");
    std::copy(home.begin(), home.end(), be.home_address.bytes.begin());
    be.options = decode_options(body.rest(), kBindingErrorFixedPartLength);
    return be;
}

MobilityMessage decode_binding_revocation(ByteReader& body) {
    const auto type = body.u8("B.R. Type");
    const auto trigger_or_status = body.u8(type == br_type::kIndication ? "R. Trigger" : "Status");
    const auto sequence = body.u16("Sequence #");
    const auto flags = static_cast<std::uint16_t>(body.u16("Flags") & kBrFlagsMask);
    auto options = decode_options(body.rest(), kMhFixedPartLength);
    if (type == br_type::kIndication) {
        return BindingRevocationIndication{trigger_or_status, sequence, flags, std::move(options)};
    }
    if (type == br_type::kAcknowledgement) {
        return BindingRevocationAcknowledgement{trigger_or_status, sequence, flags, std::move(options)};
    }
    throw WireError("B.R. Type", 6,
                    fmt::format("{} is not 1 (Indication) or 2 (Acknowledgement) (RFC 5846 §5)", type));
}

struct KnownType {
    std::uint8_t type;
    const char* name;
    std::size_t fixed_part;   // octets up to the options, the MH header included
};

constexpr KnownType kKnownTypes[] = {
    {kMhTypeBindingUpdate, "Binding Update", kMhFixedPartLength},
    {kMhTypeBindingAck, "Binding Acknowledgement", kMhFixedPartLength},
    {kMhTypeBindingError, "Binding Error", kBindingErrorFixedPartLength},
    {kMhTypeHeartbeat, "Heartbeat", kMhFixedPartLength},
    {kMhTypeBindingRevocation, "Binding Revocation", kMhFixedPartLength},
};

// RFC 6275 §9.2: an unknown MH Type is answered with a Binding Error (Status 2), so a
// well-formed message of another type raises the distinguishable UnsupportedMessageError.
const KnownType& known_type(std::uint8_t mh_type) {
    for (const auto& k : kKnownTypes) {
        if (k.type == mh_type) {
            return k;
        }
    }
    throw UnsupportedMessageError("MH Type", 2,
                                  fmt::format("{} is not supported (only Binding Update (5), Binding "
                                              "Acknowledgement (6), Binding Error (7), Heartbeat (13) and Binding Revocation (16) are)",
                                              mh_type),
                                  mh_type);
}

} // namespace

std::uint8_t mh_type_of(const MobilityMessage& message) {
    return std::visit(Overloaded{[](const ProxyBindingUpdate&) { return kMhTypeBindingUpdate; },
                                 [](const ProxyBindingAcknowledgement&) { return kMhTypeBindingAck; },
                                 [](const Heartbeat&) { return kMhTypeHeartbeat; },
                                 [](const BindingError&) { return kMhTypeBindingError; },
                                 [](const BindingRevocationIndication&) { return kMhTypeBindingRevocation; },
                                 [](const BindingRevocationAcknowledgement&) { return kMhTypeBindingRevocation; }},
                      message);
}

Bytes encode(const MobilityMessage& message) {
    Bytes out;
    ByteWriter w(out);
    w.u8(kMhPayloadProtoNone);
    w.u8(0);  // Header Len, patched below
    w.u8(mh_type_of(message));
    w.u8(0);   // Reserved
    w.u16(0);  // Checksum
    std::visit([&](const auto& m) { encode_fixed(w, m); }, message);
    const auto option_offsets = std::visit([&](const auto& m) { return encode_options(m.options, out); }, message);
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
    const KnownType& known = known_type(mh_type);
    if (total < known.fixed_part) {
        throw WireError("Header Len", 1,
                        fmt::format("{} is too short for a {} (needs at least {})", header_len, known.name,
                                    (known.fixed_part + 7) / 8 - 1));
    }
    ByteReader body(mh.subspan(6, total - 6), 6);
    switch (mh_type) {
    case kMhTypeBindingUpdate: return decode_bu(body);
    case kMhTypeBindingAck: return decode_ba(body);
    case kMhTypeBindingError: return decode_binding_error(body);
    case kMhTypeBindingRevocation: return decode_binding_revocation(body);
    default: return decode_heartbeat(body);
    }
}

std::uint64_t timestamp_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return timestamp_from_unix_nanos(static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
                                     static_cast<std::uint64_t>(ts.tv_nsec));
}

} // namespace xpmip::wire
