#include "lma/resources.hpp"

#include <algorithm>
#include <stdexcept>

namespace xpmip::lma {

namespace {
std::uint64_t host_count(const Ipv4Prefix& p) {
    return std::uint64_t{1} << (32 - p.length);
}
} // namespace

Ipv4Pool::Ipv4Pool(const Ipv4Prefix& pool, std::optional<Ipv4Address> router, Clock::duration quarantine)
    : pool_(pool.canonical()), ids_(1, host_count(pool) - 2, quarantine) {
    if (pool.length > 30) {
        throw std::invalid_argument("an IPv4 pool needs at least 2 host addresses");
    }
    if (router && pool_.contains(*router)) {
        reserve(*router);
    }
}

std::optional<Ipv4Address> Ipv4Pool::allocate(Clock::time_point now) {
    // A static address found here stays allocated (reserved for its MN) and the search goes on.
    for (auto i = ids_.allocate(now); i; i = ids_.allocate(now)) {
        const auto a = Ipv4Address::from_host_order(pool_.address.to_host_order() + static_cast<std::uint32_t>(*i));
        if (!is_static_ || !is_static_(a)) {
            return a;
        }
    }
    return std::nullopt;
}

bool Ipv4Pool::reserve(const Ipv4Address& a) {
    return contains(a) && ids_.reserve(a.to_host_order() - pool_.address.to_host_order());
}

void Ipv4Pool::release(const Ipv4Address& a, Clock::time_point now) {
    if (contains(a)) {
        ids_.release(a.to_host_order() - pool_.address.to_host_order(), now);
    }
}

void Ipv4Pool::release_now(const Ipv4Address& a) {
    if (contains(a)) {
        ids_.release_now(a.to_host_order() - pool_.address.to_host_order());
    }
}

namespace {
std::uint64_t prefix_count(const Ipv6Prefix& pool, std::uint8_t len) {
    unsigned bits = len - pool.length;
    return bits >= 63 ? (std::uint64_t{1} << 63) : (std::uint64_t{1} << bits);
}
} // namespace

Ipv6PrefixPool::Ipv6PrefixPool(const Ipv6Prefix& pool, std::uint8_t hnp_length, Clock::duration quarantine)
    : pool_(pool.canonical()), hnp_length_(hnp_length), ids_(0, prefix_count(pool, hnp_length) - 1, quarantine) {
    if (hnp_length < pool.length || hnp_length > 128) {
        throw std::invalid_argument("home network prefix length must be inside the pool");
    }
}

// The index counts /hnp_length prefixes from the pool's start; only the 63 bits just above
// hnp_length can vary (a realm never hands out more prefixes than that).
std::uint64_t Ipv6PrefixPool::index_of(const Ipv6Prefix& p) const {
    unsigned bits = std::min<unsigned>(hnp_length_ - pool_.length, 63);
    std::uint64_t v = 0;
    for (unsigned b = hnp_length_ - bits; b < hnp_length_; ++b) {
        v = (v << 1) | ((p.address.bytes[b / 8] >> (7 - b % 8)) & 1u);
    }
    return v;
}

Ipv6Prefix Ipv6PrefixPool::prefix_at(std::uint64_t i) const {
    Ipv6Prefix p{pool_.address, hnp_length_};
    unsigned bits = std::min<unsigned>(hnp_length_ - pool_.length, 63);
    for (unsigned k = 0; k < bits; ++k) {
        unsigned b = hnp_length_ - 1 - k;
        auto mask = static_cast<std::uint8_t>(1u << (7 - b % 8));
        if ((i >> k) & 1u) {
            p.address.bytes[b / 8] |= mask;
        } else {
            p.address.bytes[b / 8] &= static_cast<std::uint8_t>(~mask);
        }
    }
    return p;
}

bool Ipv6PrefixPool::contains(const Ipv6Prefix& p) const {
    return p.length == hnp_length_ && pool_.contains(p.address) && p.canonical() == p;
}

std::optional<Ipv6Prefix> Ipv6PrefixPool::allocate(Clock::time_point now) {
    for (auto i = ids_.allocate(now); i; i = ids_.allocate(now)) {
        const auto p = prefix_at(*i);
        if (!is_static_ || !is_static_(p)) {
            return p;
        }
    }
    return std::nullopt;
}

bool Ipv6PrefixPool::reserve(const Ipv6Prefix& p) {
    return contains(p) && ids_.reserve(index_of(p));
}

void Ipv6PrefixPool::release(const Ipv6Prefix& p, Clock::time_point now) {
    if (contains(p)) {
        ids_.release(index_of(p), now);
    }
}

void Ipv6PrefixPool::release_now(const Ipv6Prefix& p) {
    if (contains(p)) {
        ids_.release_now(index_of(p));
    }
}

} // namespace xpmip::lma
