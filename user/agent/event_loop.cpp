#include "agent/event_loop.hpp"

#include "agent/signals.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace xpmip::agent {

EventLoop::EventLoop() = default;

void EventLoop::watch(std::string name, int fd, Handler on_readable) {
    if (fd >= 0) {
        watches_.push_back({std::move(name), fd, std::move(on_readable)});
    }
}

void EventLoop::deadline(std::string name, std::function<std::optional<Clock::time_point>()> next, Handler on_due) {
    auto d = std::make_unique<Deadline>(Deadline{std::move(next), timer_fd()});
    const int fd = d->timer.get();
    deadlines_.push_back(std::move(d));
    watch(std::move(name), fd, [fd, on_due = std::move(on_due)] {
        clear_timer(fd);
        on_due();
    });
}

void EventLoop::after_wakeup(std::string name, std::function<std::chrono::milliseconds()> task) {
    tasks_.push_back({std::move(name), std::move(task)});
}

void EventLoop::call(const std::string& name, const Handler& h) {
    try {
        h();
    } catch (const std::exception& e) {
        spdlog::error("{}: {}", name, e.what());
    }
}

int EventLoop::wait_ms() {
    if (tasks_.empty()) {
        return -1;
    }
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(task_wait_.count(), 1));
}

void EventLoop::run() {
    std::vector<pollfd> fds;
    // Tasks first run at once: they say how long the first wait may be.
    task_wait_ = std::chrono::milliseconds(1000);
    for (const auto& t : tasks_) {
        call(t.name, [&] { task_wait_ = std::min(task_wait_, t.run()); });
    }
    while (running_) {
        for (const auto& d : deadlines_) {
            arm_timer(d->timer.get(), d->next());
        }
        fds.clear();
        for (const auto& w : watches_) {
            fds.push_back({w.fd, POLLIN, 0});
        }
        if (poll(fds.data(), fds.size(), wait_ms()) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
        }
        for (std::size_t i = 0; i < fds.size() && running_; ++i) {
            if (fds[i].revents & POLLIN) {
                call(watches_[i].name, watches_[i].handler);
            }
        }
        task_wait_ = std::chrono::milliseconds(1000);
        for (const auto& t : tasks_) {
            if (!running_) {
                break;
            }
            call(t.name, [&] { task_wait_ = std::min(task_wait_, t.run()); });
        }
    }
}

} // namespace xpmip::agent
