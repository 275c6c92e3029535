// The LMA's Binding Cache (RFC 5213 §5.1, extended by RFC 5844 §3.2.1 with the IPv4 home
// address and IPv4 proxy CoA, by RFC 5845 §5.1 with the GRE fields and by RFC 8278 with several
// bindings per session). One mobility session per MN-ID: a later registration of the same MN
// refreshes it, adds a binding (multipath) or moves it to another MAG.
#pragma once

#include "common/address.hpp"
#include "control/metrics.hpp"
#include "dataplane/types.hpp"
#include "lma/resources.hpp"
#include "wire/framing.hpp"
#include "wire/options.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace xpmip::lma {

// One binding of a multipath session (RFC 8278 §4.1): a proxy CoA of the MAG with its access
// network's label, and its own GRE key pair (RFC 5845 keys belong to one binding).
struct MultipathBinding {
    std::uint8_t bid = 0;                  // Binding-Id, 1..254
    std::uint8_t label = 0;                // If-Label
    std::uint8_t if_att = 0;               // If-ATT
    IpAddress proxy_coa;
    IpAddress lma_address;
    std::uint32_t ifindex = 0;             // the interface its PBUs arrive on: its link's carrier
    Clock::time_point expires{};
    std::uint16_t last_sequence = 0;
    std::optional<std::uint64_t> last_timestamp;
    bool gre = false;
    std::optional<std::uint32_t> key_downlink;
    std::optional<std::uint32_t> key_uplink;
    bool tlv_header = false;
    dataplane::Encapsulation encap = dataplane::Encapsulation::IpInIp;   // (UDP when F was accepted)
};

struct BindingCacheEntry {
    std::uint32_t session_id = 0;          // the data plane session
    std::string mn_id;                     // MN-ID (NAI)
    std::uint32_t realm = 0;

    // The MAG and how it talks to us.
    std::string peer;                      // configured peer name
    IpAddress proxy_coa;                   // the PBU's source address (RFC 5213 §5.1, RFC 5844)
    IpAddress lma_address;                 // our address it registered with
    wire::Transport transport = wire::Transport::Ipv6;
    std::uint16_t mag_port = 0;            // IPv4/UDP: the PBU's source port

    std::optional<Ipv6Prefix> hnp;
    std::optional<Ipv4Address> ipv4_hoa;
    std::uint8_t ipv4_hoa_length = 32;
    std::uint8_t att = 0;                  // access technology type
    std::uint8_t handoff_indicator = 0;
    std::vector<std::uint8_t> mn_ll_id;    // MN link-layer identifier, when sent
    std::optional<Ipv6Address> link_local; // MAG link-local address option, when sent

    // Registration state.
    std::chrono::seconds lifetime{0};
    Clock::time_point expires{};
    std::optional<std::uint64_t> last_timestamp;   // timestamp mode (RFC 5213 §5.5)
    std::uint16_t last_sequence = 0;               // sequence-number mode
    bool deregistered = false;                      // lifetime 0 accepted: waiting to be deleted
    Clock::time_point delete_at{};

    // RFC 5845 §5.1
    bool gre = false;
    std::optional<std::uint32_t> key_downlink;     // assigned by the MAG
    std::optional<std::uint32_t> key_uplink;       // assigned by us
    bool tlv_header = false;
    bool force_udp = false;                         // RFC 5844 F flag accepted

    dataplane::SessionConfig session;               // what the data plane holds (when active)
    bool in_dataplane = false;

    // RFC 8278: a multipath session has its bindings here, by Binding-Id, and the fields above
    // that describe one binding (proxy CoA, transport, GRE, lifetime) are those of the binding
    // registered last (shown, not used to forward); its keys are the bindings' own.
    bool multipath = false;
    std::string mag_id;                              // MAG Identifier option (64)
    std::map<std::uint8_t, MultipathBinding> bindings;

    // The class it is counted in for the metrics (README "Metrics"; 0: none yet).
    control::BindingClassCounts::Id counted_class = 0;
    // Its place in the cache's deadline index (BindingCache::schedule), when it has one.
    std::optional<Clock::time_point> scheduled;
};

// The Binding Cache key of an MN-ID: an NAI as it is, other subtypes (RFC 7330) as hex.
std::string mn_key(const wire::MobileNodeIdentifierOption& o);

// The metrics class of an entry: state, realm, peer and encapsulation.
control::BindingClass binding_class(const BindingCacheEntry& e);

class BindingCache {
public:
    BindingCacheEntry* find(const std::string& mn_id);
    const BindingCacheEntry* find(const std::string& mn_id) const;
    // A replaced entry's place in the class counts carries over; recount() after a change.
    BindingCacheEntry& insert(BindingCacheEntry e);
    void erase(const std::string& mn_id);
    // Count `e` in its class as it is now (after anything changed it).
    void recount(BindingCacheEntry& e);
    control::BindingClassCounts& classes() { return classes_; }
    const control::BindingClassCounts& classes() const { return classes_; }
    std::size_t size() const { return entries_.size(); }
    const std::map<std::string, BindingCacheEntry>& entries() const { return entries_; }
    std::map<std::string, BindingCacheEntry>& entries() { return entries_; }

    // The deadline index: entries by the next time they need the timers (lifetime, a binding's
    // lifetime, deletion after de-registration). It points at the cache's own keys (no copy of
    // the MN-ID per entry) and forgets an entry when it is erased.
    void schedule(const std::string& mn_id, Clock::time_point t);
    std::vector<std::string> due(Clock::time_point now) const;
    std::optional<Clock::time_point> earliest() const;

private:
    std::map<std::string, BindingCacheEntry> entries_;
    std::set<std::pair<Clock::time_point, const std::string*>> deadlines_;
    control::BindingClassCounts classes_;
};

} // namespace xpmip::lma
