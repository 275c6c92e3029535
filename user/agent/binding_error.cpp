#include "agent/binding_error.hpp"

#include <algorithm>

namespace xpmip::agent {

BindingErrorLimit::BindingErrorLimit(unsigned per_second)
    : per_second_(static_cast<double>(std::max(per_second, 1u))), tokens_(per_second_) {}

bool BindingErrorLimit::admit(Clock::time_point now) {
    if (last_ != Clock::time_point{}) {
        const double elapsed = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(per_second_, tokens_ + std::max(elapsed, 0.0) * per_second_);
    }
    last_ = now;
    if (tokens_ < 1.0) {
        return false;
    }
    tokens_ -= 1.0;
    return true;
}

wire::BindingError unrecognized_mh_type_error() {
    // RFC 6275 §9.2: Status 2; the Home Address field is the unspecified address, PMIPv6
    // signaling carrying no Home Address destination option.
    return wire::BindingError{.status = wire::be_status::kUnrecognizedMhType};
}

} // namespace xpmip::agent
