// Errors raised by the wire codec. Every error names the field it is about and, when parsing,
// the octet offset of that field from the start of the Mobility Header (or the packet, for
// framing errors), so an operator can find the bad byte in a capture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace xpmip::wire {

class WireError : public std::runtime_error {
public:
    static constexpr std::size_t kNoOffset = static_cast<std::size_t>(-1);

    WireError(std::string field, std::size_t offset, const std::string& reason);

    const std::string& field() const noexcept { return field_; }
    // Octet offset of the offending field, or kNoOffset for errors found while encoding.
    std::size_t offset() const noexcept { return offset_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string field_;
    std::size_t offset_;
    std::string reason_;
};

// A well-formed Mobility Header (Payload Proto and Header Len check out) of a type the codec does
// not handle, e.g. 7 Binding Error, 13 Heartbeat (RFC 5847) or 16 Binding Revocation (RFC 5846).
// RFC 6275 §9.2: "The MH Type field MUST have a known value ... Otherwise, the node MUST discard
// the message and issue a Binding Error message ... with Status field set to 2 (unrecognized MH
// Type value)" - so the agent must be able to tell this from malformed input, which is dropped.
// The field is "MH Type" (MH octet 2); parse_packet() re-bases the offset onto the packet.
class UnsupportedMessageError : public WireError {
public:
    UnsupportedMessageError(std::string field, std::size_t offset, const std::string& reason, std::uint8_t mh_type)
        : WireError(std::move(field), offset, reason), mh_type_(mh_type) {}

    std::uint8_t mh_type() const noexcept { return mh_type_; }

private:
    std::uint8_t mh_type_;
};

} // namespace xpmip::wire
