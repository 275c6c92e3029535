// What both daemons' poll loops need: termination/reload signals as an fd, and a one-shot
// monotonic timer armed at the next deadline of the registration logic.
#pragma once

#include "common/fd.hpp"

#include <chrono>
#include <optional>

namespace xpmip::transport {

// SIGTERM, SIGINT and SIGHUP blocked and delivered through a signalfd.
UniqueFd signal_fd();
UniqueFd timer_fd();
// Arm `tfd` to fire at `when` (at once if past), or disarm it.
void arm_timer(int tfd, std::optional<std::chrono::steady_clock::time_point> when);

} // namespace xpmip::transport
