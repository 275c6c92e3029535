#include "common/log_limit.hpp"

namespace xpmip {

bool LogLimiter::admit(std::string_view source, std::string_view reason, Clock::time_point now,
                       std::uint64_t* suppressed) {
    // Entries idle for a whole period are forgotten (their suppressed lines were counted).
    if (now - last_sweep_ >= o_.period && entries_.size() > o_.max_sources / 2) {
        std::erase_if(entries_, [&](const auto& kv) { return now - kv.second.window_start >= 2 * o_.period; });
        last_sweep_ = now;
    }
    std::tuple<std::string, std::string> key{std::string(source), std::string(reason)};
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        if (entries_.size() >= o_.max_sources) {
            std::get<0>(key) = "*";   // every further source, together
            it = entries_.find(key);
        }
        if (it == entries_.end()) {
            it = entries_.emplace(std::move(key), Entry{now, 0, 0}).first;
        }
    }
    Entry& e = it->second;
    if (now - e.window_start >= o_.period) {
        e.window_start = now;
        e.admitted = 0;
    }
    if (e.admitted < o_.burst) {
        ++e.admitted;
        if (suppressed) {
            *suppressed = e.suppressed;
        }
        e.suppressed = 0;
        return true;
    }
    ++e.suppressed;
    ++suppressed_by_reason_[std::string(reason)];
    return false;
}

std::map<std::string, std::uint64_t> LogLimiter::take_suppressed() {
    std::map<std::string, std::uint64_t> out;
    out.swap(suppressed_by_reason_);
    return out;
}

LogLimiter& signaling_log_limiter() {
    static LogLimiter limiter;
    return limiter;
}

} // namespace xpmip
