// The LMA's Binding Cache (RFC 5213 §5.1, extended by RFC 5844 §3.2.1 with the IPv4 home
// address and IPv4 proxy CoA, by RFC 5845 §5.1 with the GRE fields and by RFC 8278 with several
// bindings per session). One mobility session per MN-ID: a later registration of the same MN
// refreshes it, adds a binding (multipath) or moves it to another MAG.
#pragma once

#include "common/address.hpp"
#include "common/boxed.hpp"
#include "control/metrics.hpp"
#include "dataplane/types.hpp"
#include "lma/resources.hpp"
#include "wire/framing.hpp"
#include "wire/options.hpp"

#include <boost/intrusive/set.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace xpmip::lma {

// One binding of a multipath session (RFC 8278 §4.1): a proxy CoA of the MAG with its access
// network's label, and its own GRE key pair (RFC 5845 keys belong to one binding).
struct MultipathBinding {
    Clock::time_point expires{};
    std::optional<std::uint64_t> last_timestamp;
    IpAddress proxy_coa;
    IpAddress lma_address;
    std::uint32_t ifindex = 0;             // the interface its PBUs arrive on: its link's carrier
    std::optional<std::uint32_t> key_downlink;
    std::optional<std::uint32_t> key_uplink;
    std::uint16_t last_sequence = 0;
    std::uint8_t bid = 0;                  // Binding-Id, 1..254
    std::uint8_t label = 0;                // If-Label
    std::uint8_t if_att = 0;               // If-ATT
    bool gre = false;
    bool tlv_header = false;
    dataplane::Encapsulation encap = dataplane::Encapsulation::IpInIp;   // (UDP when F was accepted)
    // Its path as last written to the data plane (LocalMobilityAnchor::follow_links).
    bool path_up = true;
    std::uint8_t weight = 1;
};

// RFC 8278 state of a session with several bindings; most sessions have one, and carry only a
// pointer to none of this (Boxed).
struct MultipathState {
    std::string mag_id;                              // MAG Identifier option (64)
    std::map<std::uint8_t, MultipathBinding> bindings;
    // Uplink keys of bindings de-registered while others stay, by Binding-Id, each until its
    // MinDelayBeforeBCEDelete hold ends (RFC 5213 §5.3.5, RFC 5845 §3.3): the binding registering
    // again within it gets its key back. Not journaled (a restart ends the holds).
    struct HeldKey {
        std::uint32_t key = 0;
        Clock::time_point until{};
    };
    std::map<std::uint8_t, HeldKey> held_keys;
};

// Laid out for a million of them (issue 16: at most 400 B of agent memory per binding, the map
// node, the MN-ID and the deadline index included): the MN-ID is the cache's key, held once; the
// peer's name is interned; the data plane session is not copied but derived
// (LocalMobilityAnchor::dataplane_session), from the fields below marked "as written".
struct BindingCacheEntry {
    // Registration state.
    Clock::time_point expires{};                   // de-registered: when it is deleted
    std::chrono::seconds lifetime{0};
    std::optional<std::uint64_t> last_timestamp;   // timestamp mode (RFC 5213 §5.5)

    std::string mn_ll_id;                  // MN link-layer identifier octets, when sent (a MAC: inline)
    Boxed<MultipathState> multipath;       // RFC 8278, see below

    // The MAG and how it talks to us.
    IpAddress proxy_coa;                   // the PBU's source address (RFC 5213 §5.1, RFC 5844)
    IpAddress lma_address;                 // our address it registered with
    std::optional<Ipv6Address> link_local; // MAG link-local address option, when sent
    std::optional<Ipv6Prefix> hnp;
    std::optional<Ipv4Address> ipv4_hoa;

    std::uint32_t session_id = 0;          // the data plane session
    std::uint32_t realm = 0;
    std::uint32_t bulk_group = 0;          // RFC 6602: its MAG's group (the MAG's id; 0: none)
    // RFC 5845 §5.1
    std::optional<std::uint32_t> key_downlink;     // assigned by the MAG
    std::optional<std::uint32_t> key_uplink;       // assigned by us

    std::uint16_t peer = 0;                        // its configured peer (BindingCache::peer_name)
    std::uint16_t mag_port = 0;                    // IPv4/UDP: the PBU's source port
    std::uint16_t last_sequence = 0;               // sequence-number mode
    control::BindingClassCounts::Id counted_class = 0;   // its metrics class (0: none yet)
    wire::Transport transport = wire::Transport::Ipv6;
    std::uint8_t ipv4_hoa_length = 32;
    std::uint8_t att = 0;                          // access technology type
    std::uint8_t handoff_indicator = 0;
    bool deregistered = false;                     // lifetime 0 accepted: waiting to be deleted
    bool gre = false;
    bool tlv_header = false;
    bool force_udp = false;                        // RFC 5844 F flag accepted

    // The data plane session as written (while in_dataplane).
    bool in_dataplane = false;
    bool serves_hnp = false;                       // the session routes the HNP
    bool serves_hoa = false;                       // ... and the IPv4 HoA
    bool gre_keys = false;
    dataplane::Encapsulation encap = dataplane::Encapsulation::IpInIp;
    std::uint8_t policy = 0;                       // steering policy id (multipath)

    // RFC 8278: a multipath session has its bindings in `multipath`, by Binding-Id, and the
    // fields above that describe one binding (proxy CoA, transport, GRE, lifetime) are those of
    // the binding registered last (shown, not used to forward); its keys are the bindings' own.

    // The cache's deadline index (BindingCache::schedule): a hook in the entry, no node of its own.
    Clock::time_point scheduled{};
    boost::intrusive::set_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>,
                                      boost::intrusive::optimize_size<true>>
        deadline_hook;
    const std::string* key = nullptr;              // the cache's key of it (its MN-ID), once inserted
};

// A multipath entry's bindings by Binding-Id; none for a single-binding one.
const std::map<std::uint8_t, MultipathBinding>& bindings_of(const BindingCacheEntry& e);

// The Binding Cache key of an MN-ID: an NAI as it is, other subtypes (RFC 7330) as hex.
std::string mn_key(const wire::MobileNodeIdentifierOption& o);

class BindingCache {
public:
    BindingCache() = default;
    BindingCache(const BindingCache&) = delete;
    BindingCache& operator=(const BindingCache&) = delete;
    ~BindingCache();

    BindingCacheEntry* find(const std::string& mn_id);
    const BindingCacheEntry* find(const std::string& mn_id) const;
    // A replaced entry's place in the class counts and the deadline index carries over;
    // recount() after a change.
    BindingCacheEntry& insert(const std::string& mn_id, BindingCacheEntry e);
    void erase(const std::string& mn_id);
    // Count `e` in its class as it is now (after anything changed it).
    void recount(BindingCacheEntry& e);
    control::BindingClassCounts& classes() { return classes_; }
    const control::BindingClassCounts& classes() const { return classes_; }
    std::size_t size() const { return entries_.size(); }
    const std::map<std::string, BindingCacheEntry>& entries() const { return entries_; }
    std::map<std::string, BindingCacheEntry>& entries() { return entries_; }

    // Peer names, interned: an entry holds the number (there are few peers and many entries).
    std::uint16_t peer_id(const std::string& name);
    const std::string& peer_name(const BindingCacheEntry& e) const { return peer_names_.at(e.peer); }
    // The metrics class of an entry: state, realm, peer and encapsulation.
    control::BindingClass binding_class(const BindingCacheEntry& e) const;

    // The deadline index: entries by the next time they need the timers (lifetime, a binding's
    // lifetime, deletion after de-registration). It forgets an entry when it is erased.
    void schedule(BindingCacheEntry& e, Clock::time_point t);
    std::vector<std::string> due(Clock::time_point now) const;
    std::optional<Clock::time_point> earliest() const;

private:
    struct ByDeadline {
        bool operator()(const BindingCacheEntry& a, const BindingCacheEntry& b) const {
            return a.scheduled < b.scheduled;
        }
    };
    using DeadlineIndex = boost::intrusive::multiset<
        BindingCacheEntry, boost::intrusive::compare<ByDeadline>,
        boost::intrusive::member_hook<BindingCacheEntry, decltype(BindingCacheEntry::deadline_hook),
                                      &BindingCacheEntry::deadline_hook>>;

    std::map<std::string, BindingCacheEntry> entries_;
    DeadlineIndex deadlines_;                        // (after entries_: gone before them)
    std::vector<std::string> peer_names_{""};        // 0: none
    control::BindingClassCounts classes_;
};

} // namespace xpmip::lma
