// What the LMA hands out and takes back: IPv4 home addresses and IPv6 home network prefixes from
// a realm's pools (RFC 5213 §5.3.1 / RFC 5844 §3.1.2), uplink GRE keys (RFC 5845 §3.3), session
// ids. A released item rests in quarantine for a while before it may be handed out again
// (RFC 5845 §3.3: a key is not reused until MinDelayBeforeBCEDelete has passed).
#pragma once

#include "common/address.hpp"
#include "common/index_allocator.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <functional>
#include <set>
#include <unordered_set>

namespace xpmip::lma {

using Clock = std::chrono::steady_clock;

using xpmip::IndexAllocator;

// IPv4 home addresses of one realm: the hosts of the pool other than the network and broadcast
// addresses and the default router.
class Ipv4Pool {
public:
    Ipv4Pool(const Ipv4Prefix& pool, std::optional<Ipv4Address> router, Clock::duration quarantine);
    std::optional<Ipv4Address> allocate(Clock::time_point now);
    // Addresses the subscriber store gives MNs statically: allocate() finds out as it reaches
    // one (a lookup, no scan of the store), keeps it reserved and takes the next.
    void set_static_check(std::function<bool(const Ipv4Address&)> is_static) { is_static_ = std::move(is_static); }
    bool contains(const Ipv4Address& a) const { return pool_.contains(a); }
    bool reserve(const Ipv4Address& a);
    void release(const Ipv4Address& a, Clock::time_point now);
    void release_now(const Ipv4Address& a);
    std::size_t used() const { return ids_.used(); }

private:
    Ipv4Prefix pool_;
    IndexAllocator ids_;
    std::function<bool(const Ipv4Address&)> is_static_;
};

// IPv6 home network prefixes of one realm: the /hnp_length prefixes inside the pool.
class Ipv6PrefixPool {
public:
    Ipv6PrefixPool(const Ipv6Prefix& pool, std::uint8_t hnp_length, Clock::duration quarantine);
    std::optional<Ipv6Prefix> allocate(Clock::time_point now);
    void set_static_check(std::function<bool(const Ipv6Prefix&)> is_static) { is_static_ = std::move(is_static); }
    bool contains(const Ipv6Prefix& p) const;
    bool reserve(const Ipv6Prefix& p);
    void release(const Ipv6Prefix& p, Clock::time_point now);
    void release_now(const Ipv6Prefix& p);

private:
    std::uint64_t index_of(const Ipv6Prefix& p) const;
    Ipv6Prefix prefix_at(std::uint64_t i) const;
    Ipv6Prefix pool_;
    std::uint8_t hnp_length_;
    IndexAllocator ids_;
    std::function<bool(const Ipv6Prefix&)> is_static_;
};

} // namespace xpmip::lma
