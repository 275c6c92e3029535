// Errors raised by the wire codec. Every error names the field it is about and, when parsing,
// the octet offset of that field from the start of the Mobility Header (or the packet, for
// framing errors), so an operator can find the bad byte in a capture.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

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

} // namespace xpmip::wire
