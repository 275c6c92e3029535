// The agents' one event loop (both daemons): named handlers for readable fds, a deadline the loop
// re-arms before every wait (the registration logic's next_deadline, on a timerfd), and tasks run
// after every wake-up that say how long they may wait. poll(2) on a handful of fds is all a
// single-threaded agent needs; Boost.Asio would add callbacks and executors for nothing here
// (README: "One event loop").
#pragma once

#include "common/fd.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::agent {

using Clock = std::chrono::steady_clock;

class EventLoop {
public:
    using Handler = std::function<void()>;
    EventLoop();

    // Call `on_readable` when `fd` is readable (an fd < 0 is never). A handler that throws is
    // logged with its name and the loop goes on: one bad message must not stop signaling.
    void watch(std::string name, int fd, Handler on_readable);
    // Before every wait: arm this deadline's own timer at next() (nothing: disarmed); `on_due`
    // runs when it fires. Several deadlines each have a timer of their own.
    void deadline(std::string name, std::function<std::optional<Clock::time_point>()> next, Handler on_due);
    // After every wake-up: `task` runs and returns how long the loop may wait before running it again.
    void after_wakeup(std::string name, std::function<std::chrono::milliseconds()> task);
    // Leave run() once the current handler returns.
    void stop() { running_ = false; }
    void run();

private:
    struct Watch {
        std::string name;
        int fd;
        Handler handler;
    };
    struct Deadline {
        std::function<std::optional<Clock::time_point>()> next;
        UniqueFd timer;
    };
    struct Task {
        std::string name;
        std::function<std::chrono::milliseconds()> run;
    };
    void call(const std::string& name, const Handler& h);
    int wait_ms();

    std::vector<Watch> watches_;
    std::vector<Task> tasks_;
    std::vector<std::unique_ptr<Deadline>> deadlines_;
    std::chrono::milliseconds task_wait_{-1};
    bool running_ = true;
};

} // namespace xpmip::agent
