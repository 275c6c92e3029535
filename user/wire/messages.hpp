// Proxy Binding Update and Proxy Binding Acknowledgement (RFC 5213 §8.1, §8.2) as value types,
// and the Mobility Header codec (RFC 6275 §6.1).
#pragma once

#include "wire/options.hpp"

#include <chrono>
#include <variant>

namespace xpmip::wire {

// Lifetime fields count units of 4 seconds (RFC 6275 §6.1.7).
inline constexpr unsigned kLifetimeUnitSeconds = 4;

struct ProxyBindingUpdate {
    std::uint16_t sequence = 0;
    // RFC 5213 §6.9.1.5: A, H and P set on a PBU. F (RFC 5844) and T (RFC 5845) as negotiated.
    std::uint16_t flags = bu_flag::kAck | bu_flag::kHomeRegistration | bu_flag::kProxy;
    std::uint16_t lifetime = 0;  // units of 4 s; 0 = de-registration
    OptionList options;

    bool has(std::uint16_t flag) const { return (flags & flag) != 0; }
    std::chrono::seconds lifetime_seconds() const { return std::chrono::seconds(lifetime * kLifetimeUnitSeconds); }
    bool operator==(const ProxyBindingUpdate&) const = default;
};

struct ProxyBindingAcknowledgement {
    std::uint8_t status = 0;
    std::uint8_t flags = ba_flag::kProxy;  // RFC 5213 §6.9.1.5 (P set on a PBA)
    std::uint16_t sequence = 0;
    std::uint16_t lifetime = 0;  // units of 4 s
    OptionList options;

    bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
    bool accepted() const { return is_success(status); }
    std::chrono::seconds lifetime_seconds() const { return std::chrono::seconds(lifetime * kLifetimeUnitSeconds); }
    bool operator==(const ProxyBindingAcknowledgement&) const = default;
};

// RFC 5847 §6.1: Reserved(1), Flags(1: U 0x02 unsolicited, R 0x01 response), Sequence Number(4),
// options (the Restart Counter, §6.2). Between a MAG and its LMA, to see a peer that stopped
// answering or restarted.
namespace hb_flag {
inline constexpr std::uint8_t kUnsolicited = 0x02;
inline constexpr std::uint8_t kResponse = 0x01;
}

struct Heartbeat {
    std::uint8_t flags = 0;
    std::uint32_t sequence = 0;
    OptionList options;

    bool response() const { return (flags & hb_flag::kResponse) != 0; }
    bool unsolicited() const { return (flags & hb_flag::kUnsolicited) != 0; }
    bool operator==(const Heartbeat&) const = default;
};

// RFC 6275 §6.1.9: Status(1), Reserved(1), Home Address(16), options. Sent in answer to a
// Mobility Header it cannot process (§9.2: an MH Type it does not know, Status 2); never in
// answer to another Binding Error.
namespace be_status {
inline constexpr std::uint8_t kUnknownBindingForHomeAddressOption = 1;   // RFC 6275 §6.1.9
inline constexpr std::uint8_t kUnrecognizedMhType = 2;                   // RFC 6275 §6.1.9
}

struct BindingError {
    std::uint8_t status = be_status::kUnrecognizedMhType;
    // The home address of the Home Address destination option the offending packet carried;
    // unspecified (::) without one, as PMIPv6 signaling always is.
    Ipv6Address home_address{};
    OptionList options;

    bool operator==(const BindingError&) const = default;
};

// RFC 5846 §5.1: B.R. Type 1, Revocation Trigger, Sequence #, P|V|G flags, options (MN-ID,
// HNP, IPv4 HoA Request, Alternate CoA). Between LMA and MAG, to end bindings the sender decides
// to end (an operator, a subscriber gone) and that the other side must let go too.
struct BindingRevocationIndication {
    std::uint8_t trigger = revocation_trigger::kAdministrativeReason;
    std::uint16_t sequence = 0;
    std::uint16_t flags = br_flag::kProxy;   // §8.1: P on every PMIPv6 revocation
    OptionList options;

    bool has(std::uint16_t flag) const { return (flags & flag) != 0; }
    bool operator==(const BindingRevocationIndication&) const = default;
};

// RFC 5846 §5.2: B.R. Type 2, Status, the BRI's Sequence # and P|V|G flags, options.
struct BindingRevocationAcknowledgement {
    std::uint8_t status = bra_status::kSuccess;
    std::uint16_t sequence = 0;
    std::uint16_t flags = br_flag::kProxy;
    OptionList options;

    bool has(std::uint16_t flag) const { return (flags & flag) != 0; }
    bool accepted() const { return status < 128; }
    bool operator==(const BindingRevocationAcknowledgement&) const = default;
};

using MobilityMessage = std::variant<ProxyBindingUpdate, ProxyBindingAcknowledgement, Heartbeat, BindingError,
                                     BindingRevocationIndication, BindingRevocationAcknowledgement>;

// The MH Type a message goes out with (RFC 6275 §6.1.1).
std::uint8_t mh_type_of(const MobilityMessage& message);

// Offsets inside the Mobility Header (RFC 6275 §6.1.1, §6.1.7, §6.1.8).
inline constexpr std::size_t kMhChecksumOffset = 4;
inline constexpr std::size_t kMhFixedPartLength = 12;  // BU and BA: options start at octet 12
inline constexpr std::size_t kBindingErrorFixedPartLength = 24;   // RFC 6275 §6.1.9: options at 24

// The Mobility Header bytes of `message`, with the Checksum field 0: right for IPv4/UDP
// (RFC 5844 §3 "the checksum MUST be set to zero") and for a raw IPPROTO_MH socket, where the
// kernel fills it. Use fill_mh_checksum() for IPv6 framing built by hand.
// Throws WireError naming the field when a value cannot be encoded.
Bytes encode(const MobilityMessage& message);

// Parse a Mobility Header carrying a BU (type 5), BA (6), Binding Error (7), Heartbeat (13) or
// Binding Revocation (16).
// Exactly `mh` is the header: trailing octets are an error. Never reads outside `mh`; throws
// WireError on any defect, and its subclass UnsupportedMessageError (field "MH Type", offset 2)
// for a well-formed header of any other MH Type, which RFC 6275 §9.2 answers with a Binding
// Error (Status 2).
// The checksum is not verified here (see framing.hpp).
MobilityMessage decode(ByteView mh);

// 48.16 timestamp of "now" (CLOCK_REALTIME), for the Timestamp option.
std::uint64_t timestamp_now();

} // namespace xpmip::wire
