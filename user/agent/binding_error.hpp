// RFC 6275 §9.2: a Mobility Header of an MH Type we do not know is answered with a Binding
// Error, Status 2. RFC 6275 §9.3.3: Binding Errors SHOULD be rate limited like ICMPv6 (RFC 4443
// §2.4 f, a token bucket). A Binding Error received is decoded, logged and counted, and goes no
// further: never an answer to it.
#pragma once

#include "wire/messages.hpp"

#include <chrono>

namespace xpmip::agent {

class BindingErrorLimit {
public:
    using Clock = std::chrono::steady_clock;
    // A bucket of `per_second` tokens refilled continuously: at most that many a second, a
    // burst of as many after a quiet second. A flood of unknown MH Types from spoofed sources
    // gets no more answers than that.
    explicit BindingErrorLimit(unsigned per_second = kDefaultPerSecond);
    bool admit(Clock::time_point now);

    static constexpr unsigned kDefaultPerSecond = 10;

private:
    double per_second_;
    double tokens_;
    Clock::time_point last_{};
};

// The Binding Error answering a Mobility Header of an MH Type we do not know.
wire::BindingError unrecognized_mh_type_error();

} // namespace xpmip::agent
