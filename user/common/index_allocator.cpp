#include "common/index_allocator.hpp"

namespace xpmip {

bool PagedBitset::test(std::uint64_t v) const {
    auto it = pages_.find(v / kPageBits);
    if (it == pages_.end()) {
        return false;
    }
    const std::uint64_t bit = v % kPageBits;
    return (it->second->words[bit / 64] >> (bit % 64)) & 1u;
}

bool PagedBitset::set(std::uint64_t v) {
    auto& page = pages_[v / kPageBits];
    if (!page) {
        page = std::make_unique<Page>();
    }
    const std::uint64_t bit = v % kPageBits, mask = std::uint64_t{1} << (bit % 64);
    auto& word = page->words[bit / 64];
    if (word & mask) {
        return false;
    }
    word |= mask;
    ++page->set;
    ++count_;
    return true;
}

bool PagedBitset::reset(std::uint64_t v) {
    auto it = pages_.find(v / kPageBits);
    if (it == pages_.end()) {
        return false;
    }
    const std::uint64_t bit = v % kPageBits, mask = std::uint64_t{1} << (bit % 64);
    auto& word = it->second->words[bit / 64];
    if (!(word & mask)) {
        return false;
    }
    word &= ~mask;
    --count_;
    if (--it->second->set == 0) {
        pages_.erase(it);
    }
    return true;
}

void IndexAllocator::expire(Clock::time_point now) {
    while (!resting_.empty() && resting_.front().first <= now) {
        used_.reset(resting_.front().second);
        resting_.pop_front();
    }
}

std::optional<std::uint64_t> IndexAllocator::allocate(Clock::time_point now) {
    expire(now);
    if (used_.count() >= capacity()) {
        return std::nullopt;
    }
    // Round robin from the cursor: recently released values come back last.
    for (std::uint64_t n = 0; n < capacity(); ++n) {
        std::uint64_t v = cursor_;
        cursor_ = cursor_ == last_ ? first_ : cursor_ + 1;
        if (used_.set(v)) {
            return v;
        }
    }
    return std::nullopt;
}

bool IndexAllocator::reserve(std::uint64_t v) {
    if (v < first_ || v > last_) {
        return false;
    }
    return used_.set(v);
}

void IndexAllocator::release(std::uint64_t v, Clock::time_point now) {
    if (!used_.test(v)) {
        return;
    }
    if (quarantine_.count() == 0) {
        used_.reset(v);
        return;
    }
    // Releases come in time order, so the queue stays sorted by release time.
    resting_.emplace_back(now + quarantine_, v);
}

void IndexAllocator::release_now(std::uint64_t v) {
    used_.reset(v);
}

} // namespace xpmip
