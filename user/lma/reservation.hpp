// What one registration takes on its way (a session id, an uplink GRE key, a home network prefix,
// an IPv4 home address), held until the registration commits. A registration that stops anywhere
// before commit() gives all of it back at once (no quarantine: nobody ever saw it), so no step
// needs a hand-written roll-back.
#pragma once

#include "lma/resources.hpp"

#include <optional>

namespace xpmip::lma {

class Reservation {
public:
    // Any pool may be null (the realm has none): taking from it then gives nothing.
    Reservation(IndexAllocator& session_ids, IndexAllocator& uplink_keys, Ipv6PrefixPool* prefixes,
                Ipv4Pool* addresses, Clock::time_point now)
        : session_ids_(session_ids), uplink_keys_(uplink_keys), prefixes_(prefixes), addresses_(addresses), now_(now) {}
    ~Reservation();
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;

    std::optional<std::uint32_t> session_id();
    std::optional<std::uint32_t> uplink_key();   // RFC 5845 §3.3: unique, never 0
    std::optional<Ipv6Prefix> prefix();
    std::optional<Ipv4Address> address();

    // The registration holds: what was taken is its own now.
    void commit() { committed_ = true; }

private:
    IndexAllocator& session_ids_;
    IndexAllocator& uplink_keys_;
    Ipv6PrefixPool* prefixes_;
    Ipv4Pool* addresses_;
    Clock::time_point now_;
    bool committed_ = false;
    std::optional<std::uint32_t> session_;
    std::optional<std::uint32_t> key_;
    std::optional<Ipv6Prefix> prefix_;
    std::optional<Ipv4Address> address_;
};

} // namespace xpmip::lma
