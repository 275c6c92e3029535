// Termination and reload signals as an fd, and a one-shot monotonic timer armed at the next
// deadline of the registration logic: what the event loop waits on besides sockets.
#pragma once

#include "common/fd.hpp"

#include <chrono>
#include <optional>
#include <vector>

namespace xpmip::agent {

// SIGTERM, SIGINT and SIGHUP blocked and delivered through a signalfd. Call first thing, so a
// signal during start-up is handled by the loop (clean unload), not by the default action.
UniqueFd signal_fd();
// The signal numbers waiting on a signal_fd (non-blocking read until empty).
std::vector<int> read_signals(int sfd);
UniqueFd timer_fd();
// Arm `tfd` to fire at `when` (at once if past), or disarm it.
void arm_timer(int tfd, std::optional<std::chrono::steady_clock::time_point> when);
// Consume a fired timer's expiry count.
void clear_timer(int tfd);

} // namespace xpmip::agent
