#include "agent/signals.hpp"

#include <fmt/format.h>

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <unistd.h>

namespace xpmip::agent {

UniqueFd signal_fd() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) < 0) {
        throw std::runtime_error(fmt::format("sigprocmask: {}", std::strerror(errno)));
    }
    UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) {
        throw std::runtime_error(fmt::format("signalfd: {}", std::strerror(errno)));
    }
    return fd;
}

std::vector<int> read_signals(int sfd) {
    std::vector<int> out;
    signalfd_siginfo si{};
    while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
        out.push_back(static_cast<int>(si.ssi_signo));
    }
    return out;
}

void clear_timer(int tfd) {
    std::uint64_t ticks = 0;
    [[maybe_unused]] auto n = read(tfd, &ticks, sizeof(ticks));
}

UniqueFd timer_fd() {
    UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!fd) {
        throw std::runtime_error(fmt::format("timerfd_create: {}", std::strerror(errno)));
    }
    return fd;
}

void arm_timer(int tfd, std::optional<std::chrono::steady_clock::time_point> when) {
    itimerspec its{};
    if (when) {
        auto d = *when - std::chrono::steady_clock::now();
        if (d <= std::chrono::steady_clock::duration::zero()) {
            d = std::chrono::milliseconds(1);   // 0 would disarm it
        }
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        its.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
        its.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
    }
    timerfd_settime(tfd, 0, &its, nullptr);
}

} // namespace xpmip::agent
