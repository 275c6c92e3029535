// Rate limits for repeated log lines (README "Logs under attack"): at most `burst` lines per
// (source, reason) and `period`; the rest are counted, and the first line admitted after a quiet
// period says how many were suppressed.
// Memory is bounded: beyond `max_sources` tracked pairs, new sources share one entry per reason
// (a flood from spoofed addresses cannot grow it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace xpmip {

class LogLimiter {
public:
    using Clock = std::chrono::steady_clock;
    struct Options {
        unsigned burst = 5;
        std::chrono::milliseconds period{10000};
        std::size_t max_sources = 4096;
    };
    LogLimiter() : LogLimiter(Options{}) {}
    explicit LogLimiter(Options o) : o_(o) {}

    // Whether to write a line now. When it is admitted after others were suppressed, `suppressed`
    // says how many (write it into the line).
    bool admit(std::string_view source, std::string_view reason, Clock::time_point now,
               std::uint64_t* suppressed = nullptr);
    // Lines suppressed since the last call, by reason (for the metrics).
    std::map<std::string, std::uint64_t> take_suppressed();
    std::size_t tracked() const { return entries_.size(); }

private:
    struct Entry {
        Clock::time_point window_start{};
        unsigned admitted = 0;
        std::uint64_t suppressed = 0;   // since the last admitted line
    };
    Options o_;
    std::map<std::tuple<std::string, std::string>, Entry> entries_;
    std::map<std::string, std::uint64_t> suppressed_by_reason_;
    Clock::time_point last_sweep_{};
};

// The process's limiter for signaling logs (one event loop: no locking).
LogLimiter& signaling_log_limiter();

} // namespace xpmip
