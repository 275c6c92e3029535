// Hands out small integers (session ids, GRE keys) with a rest after release, as the LMA and MAG
// both need them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

namespace xpmip {

// A set of integers as bits, in pages of 4096 allocated when their first bit is set and freed
// with their last. Ids are handed out densely (round robin from a cursor), so a million of them
// cost about 128 KiB, where a hash set of them cost about 40 B each (README "Memory per binding").
class PagedBitset {
public:
    bool test(std::uint64_t v) const;
    bool set(std::uint64_t v);     // true when it was clear
    bool reset(std::uint64_t v);   // true when it was set
    std::size_t count() const { return count_; }

private:
    static constexpr std::uint64_t kPageBits = 4096;
    struct Page {
        std::array<std::uint64_t, kPageBits / 64> words{};
        std::uint32_t set = 0;
    };
    std::unordered_map<std::uint64_t, std::unique_ptr<Page>> pages_;
    std::size_t count_ = 0;
};

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
    bool in_use(std::uint64_t v) const { return used_.test(v); }
    std::size_t used() const { return used_.count(); }
    std::uint64_t capacity() const { return last_ - first_ + 1; }

private:
    void expire(Clock::time_point now);
    std::uint64_t first_, last_, cursor_;
    Clock::duration quarantine_;
    PagedBitset used_;                           // allocated, reserved or in quarantine
    std::deque<std::pair<Clock::time_point, std::uint64_t>> resting_;
};

} // namespace xpmip
