// Hands out small integers (session ids, GRE keys) with a rest after release, as the LMA and MAG
// both need them.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_set>

namespace xpmip {

// Hands out integers in [first, last], lowest-after-cursor first, skipping those in use or in
// quarantine. Everything the pools and allocators below do is this.
class IndexAllocator {
public:
    using Clock = std::chrono::steady_clock;
    IndexAllocator(std::uint64_t first, std::uint64_t last, Clock::duration quarantine)
        : first_(first), last_(last), cursor_(first), quarantine_(quarantine) {}

    std::optional<std::uint64_t> allocate(Clock::time_point now);
    bool reserve(std::uint64_t v);               // false when taken or outside the range
    void release(std::uint64_t v, Clock::time_point now);   // into quarantine
    void release_now(std::uint64_t v);           // back at once (an allocation rolled back)
    bool in_use(std::uint64_t v) const { return used_.count(v) != 0; }
    std::size_t used() const { return used_.size(); }
    std::uint64_t capacity() const { return last_ - first_ + 1; }

private:
    void expire(Clock::time_point now);
    std::uint64_t first_, last_, cursor_;
    Clock::duration quarantine_;
    std::unordered_set<std::uint64_t> used_;     // allocated, reserved or in quarantine
    std::deque<std::pair<Clock::time_point, std::uint64_t>> resting_;
};

} // namespace xpmip
