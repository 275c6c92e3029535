#include "common/index_allocator.hpp"

namespace xpmip {

void IndexAllocator::expire(Clock::time_point now) {
    while (!resting_.empty() && resting_.front().first <= now) {
        used_.erase(resting_.front().second);
        resting_.pop_front();
    }
}

std::optional<std::uint64_t> IndexAllocator::allocate(Clock::time_point now) {
    expire(now);
    if (used_.size() >= capacity()) {
        return std::nullopt;
    }
    // Round robin from the cursor: recently released values come back last.
    for (std::uint64_t n = 0; n < capacity(); ++n) {
        std::uint64_t v = cursor_;
        cursor_ = cursor_ == last_ ? first_ : cursor_ + 1;
        if (!used_.count(v)) {
            used_.insert(v);
            return v;
        }
    }
    return std::nullopt;
}

bool IndexAllocator::reserve(std::uint64_t v) {
    if (v < first_ || v > last_) {
        return false;
    }
    return used_.insert(v).second;
}

void IndexAllocator::release(std::uint64_t v, Clock::time_point now) {
    if (!used_.count(v)) {
        return;
    }
    if (quarantine_.count() == 0) {
        used_.erase(v);
        return;
    }
    // Releases come in time order, so the queue stays sorted by release time.
    resting_.emplace_back(now + quarantine_, v);
}

void IndexAllocator::release_now(std::uint64_t v) {
    used_.erase(v);
}

} // namespace xpmip
