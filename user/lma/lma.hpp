// The local mobility anchor's registration logic (RFC 5213 §5.3, RFC 5844 §3.2, RFC 5845 §3-§5
// and §7.2-§7.4): a PBU in, a PBA out, the Binding Cache and the data plane kept in step.
// No sockets and no clocks of its own: the daemon passes packets and the time in, which is what
// lets the tests drive every rule directly (tests/unit/test_lma_registration.cpp).
#pragma once

#include "lma/binding_cache.hpp"
#include "lma/journal.hpp"
#include "lma/lma_config.hpp"
#include "lma/registration.hpp"
#include "lma/reservation.hpp"
#include "lma/resources.hpp"
#include "lma/revocation.hpp"
#include "lma/subscriber_store.hpp"
#include "wire/messages.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace xpmip::lma {

// A PBU as it arrived: over IPv6 (Mobility Header) or IPv4 / UDP 5436 (RFC 5844).
struct IncomingPbu {
    wire::Transport transport = wire::Transport::Ipv6;
    IpAddress src;               // the MAG's proxy CoA
    IpAddress dst;               // our address it was sent to
    std::uint16_t src_port = 0;  // IPv4/UDP
    wire::ProxyBindingUpdate pbu;
    std::uint32_t ifindex = 0;   // the interface it arrived on (0: unknown)
};

// A PBA to send back the same way (for UDP, from 5436 to the PBU's source port).
struct OutgoingPba {
    wire::Transport transport = wire::Transport::Ipv6;
    IpAddress src;
    IpAddress dst;
    std::uint16_t dst_port = 0;
    wire::ProxyBindingAcknowledgement pba;
};

// Where sessions go: the real data plane (SessionTable), or a recorder in tests.
class SessionSink {
public:
    virtual ~SessionSink() = default;
    // Both throw (dataplane::DataplaneError, std::runtime_error) when the data plane cannot
    // take the change; the change is then not applied at all (SessionTable rolls back).
    virtual void upsert(const dataplane::SessionConfig& s) = 0;
    virtual void remove(std::uint32_t session_id) = 0;
    // ifindex of a realm's core interface (the MN side of its sessions at the LMA).
    virtual std::uint32_t realm_ifindex(std::uint32_t realm) = 0;
    // Whether an interface has carrier (RFC 8278 paths over a link without it are down).
    virtual bool link_up(std::uint32_t /*ifindex*/) { return true; }
    // The MAG at `address` answers heartbeats (RFC 5847): paths toward one that stopped are down.
    virtual bool peer_answers(const IpAddress& /*address*/) { return true; }
    // Every session the data plane holds now (a restarted agent finds its predecessor's).
    virtual std::vector<dataplane::SessionConfig> held_sessions() = 0;
};

// What a restart recovered (LocalMobilityAnchor::restore).
struct RestoreReport {
    std::size_t bindings = 0;          // back in the cache
    std::size_t dropped = 0;           // journaled, but no longer valid here (each logged)
    std::size_t sessions_kept = 0;     // found in the data plane as journaled
    std::size_t sessions_written = 0;  // journaled, missing or different in the data plane: written
    std::size_t orphans_removed = 0;   // in the data plane, in no binding: removed
};

class LocalMobilityAnchor {
public:
    // `wall_timestamp` gives "now" as an RFC 5213 §8.8 timestamp (tests pass a fake).
    LocalMobilityAnchor(LmaConfig config, SessionSink& sink,
                        std::function<std::uint64_t()> wall_timestamp = nullptr);

    // Process one PBU. Returns the PBA, or nothing when the answer is deferred (HI 4 while the
    // previous MAG's binding is still up: RFC 5213 §5.4.1.3, the answer comes from on_timer or
    // with the previous MAG's de-registration).
    std::vector<OutgoingPba> on_pbu(const IncomingPbu& in, Clock::time_point now);
    // Lifetime expiry, deletion of de-registered entries, deferred handoffs.
    std::vector<OutgoingPba> on_timer(Clock::time_point now);
    std::optional<Clock::time_point> next_deadline() const;
    // A link's carrier changed: the multipath sessions' paths over it go down or up (their
    // flows move to other paths in the data plane at once, no signaling).
    void on_link_change();
    // RFC 5847 §6.2: the MAG at `mag` restarted after `restarted_after` (its last answer with the
    // old Restart Counter). Its bindings not registered again since then are let go
    // timers.mag_restart_grace from now unless it registers them (issue 17). Returns how many.
    std::size_t on_mag_restart(const IpAddress& mag, Clock::time_point restarted_after, Clock::time_point now);

    // RFC 5846 §8.1: revoke an MN's binding, every binding of a peer (G) or all (a G BRI to each
    // peer with bindings). Throws std::invalid_argument naming what is unknown (an MN without a
    // binding, a peer not configured, a trigger that does not fit the scope).
    std::vector<OutgoingBri> revoke(const RevocationRequest& request, Clock::time_point now);
    // §6.2.2: a BRA from `src`. One that matches no outstanding BRI of ours to `src` is dropped
    // and logged (false). Success: the bindings go with their sessions; a rejection is logged,
    // and the bindings go too (the operator or the LMA decided), except on "Revocation Failed -
    // MN is Attached" (132), which keeps them.
    bool on_bra(const IpAddress& src, const wire::BindingRevocationAcknowledgement& bra, Clock::time_point now);
    // §6.3: BRIs due again; a revocation past its last retransmission is cleaned up (its
    // bindings go, logged).
    std::vector<OutgoingBri> on_revocation_timer(Clock::time_point now);
    std::optional<Clock::time_point> next_revocation_deadline() const;
    // After reload(): the bindings of MNs no longer authorized (gone from mobile_nodes, their
    // domain, the subscriber store) or of MAGs no longer configured are revoked (Administrative
    // Reason). A walk of the cache: SIGHUP's cost, not a PBU's.
    std::vector<OutgoingBri> revoke_unauthorized(Clock::time_point now);
    const std::map<std::uint16_t, PendingRevocation>& revocations() const { return revocations_; }

    // Replace the policy part of the configuration (peers, MNs, GRE policy, timers) without
    // touching existing bindings; they follow the new policy at their next registration.
    void reload(LmaConfig config);

    // Restart (issue 17): take the journal's entries back (resources reserved, lifetimes counted
    // again from `now`), then make the data plane match the cache: sessions missing written,
    // sessions of no binding removed. Called once, before the first PBU, journal or not.
    RestoreReport restore(std::vector<JournalRecord> records, Clock::time_point now);
    // Every binding change from here on goes to `journal` (not plain refreshes); may be null.
    void attach_journal(BindingJournal* journal) { journal_ = journal; }

    const BindingCache& cache() const { return cache_; }
    control::BindingClassCounts& binding_classes() { return cache_.classes(); }
    const LmaConfig& config() const { return config_; }
    const SubscriberStore* subscribers() const { return subscribers_.get(); }

    // The profile an MN is authorized with (RFC 5213 §5.3.1): its `mobile_nodes` entry, else the
    // subscriber store's (decoded into `storage`), else its NAI domain's; null if none.
    const MobileNodeProfile* profile_of(const std::string& id, MobileNodeProfile& storage) const;

    // The session the data plane holds for an entry (while in_dataplane): derived from the entry,
    // which keeps no copy of it.
    dataplane::SessionConfig dataplane_session(const BindingCacheEntry& e) const;

private:
    struct Deferred {
        IncomingPbu in;
        Clock::time_point deadline;
    };

    // The registration pipeline (lma.cpp), in RFC order; each step says its section.
    std::vector<OutgoingPba> process(const IncomingPbu& in, Clock::time_point now, bool replay);
    std::vector<OutgoingPba> register_binding(Registration& r);
    Rejection authorize(Registration& r) const;
    Rejection check_multipath_request(const Registration& r) const;
    void find_binding(Registration& r);
    Rejection check_freshness(Registration& r) const;
    bool is_handoff(const Registration& r) const;
    bool wait_for_previous_mag(const Registration& r);
    Rejection check_addresses(Registration& r) const;
    Rejection check_udp_encapsulation(Registration& r) const;
    Rejection negotiate_gre(Registration& r) const;
    Rejection assign_addresses(Registration& r, Reservation& res);
    void replace_bindings(Registration& r);
    Rejection assign_uplink_key(Registration& r, Reservation& res);
    Rejection assign_session_id(Registration& r, Reservation& res);
    void build_session(Registration& r);
    Rejection add_multipath_binding(Registration& r);
    Rejection write_session(Registration& r);
    BindingCacheEntry& commit_entry(Registration& r);
    // De-registration (RFC 5213 §5.3.5; RFC 8278: one Binding-Id of several).
    std::vector<OutgoingPba> deregistration(Registration& r);
    void deregister_one_binding(Registration& r);
    void deregister_session(Registration& r);
    std::vector<OutgoingPba> resume_deferred_handoff(const std::string& mn_id, Clock::time_point now);

    // The PBAs (pba.cpp): RFC 5213 §5.3.6, RFC 5844 §3.2.3, RFC 5845 §5.1, RFC 8278 §4.4.
    OutgoingPba reply_to(const Registration& r) const;
    void echo_options(const Registration& r, wire::ProxyBindingAcknowledgement& pba, bool our_timestamp) const;
    OutgoingPba reject(const Registration& r, wire::Status status) const;
    OutgoingPba accept_deregistration(const Registration& r) const;
    OutgoingPba accept(const Registration& r, const BindingCacheEntry& entry) const;
    void log_exchange(const IncomingPbu& in, const OutgoingPba& out, const BindingCacheEntry* e) const;

    // Lifetimes and deletion (lma_timers.cpp).
    void deregister(BindingCacheEntry& e, Clock::time_point now);
    void delete_entry(const std::string& mn_id, Clock::time_point now);
    void release_resources(const BindingCacheEntry& e, Clock::time_point now);
    void expire_multipath_bindings(const std::vector<std::string>& due, Clock::time_point now);
    // The deadline index: the next time an entry needs on_timer (its lifetime, a binding's,
    // or its deletion after de-registration); touch() after anything changes an entry.
    static Clock::time_point entry_deadline(const BindingCacheEntry& e);
    void touch(const std::string& mn_id);
    void touch_for(const IncomingPbu& in);
    // When the last binding of a multipath entry expires.
    static Clock::time_point bindings_expiry(const BindingCacheEntry& e);
    // Whether the data plane holds `s` for `e` already (a refresh that changes nothing there).
    bool dataplane_holds(const BindingCacheEntry* e, const dataplane::SessionConfig& s) const;
    // A multipath entry's paths as their links and the steering configuration now are: whether
    // that differs from what was written, and taking it over (RFC 8278 §3).
    bool links_moved(const BindingCacheEntry& e) const;
    void follow_links(BindingCacheEntry& e) const;
    bool link_carries(const MultipathBinding& b) const;
    std::uint8_t steering_policy_id() const;   // RFC 8278 §3.2 rules in force: their policy id, else 0
    // Write a multipath entry's paths again when its bindings changed or links_moved (errors
    // logged, and the entry keeps what the data plane holds).
    void rewrite_paths(BindingCacheEntry& e, bool bindings_changed);
    void reserve_static_addresses(const LmaConfig& config);
    // restore(): one journaled entry back, or why it cannot be.
    std::optional<std::string> adopt(JournalRecord& rec, Clock::time_point now);
    void reconcile_dataplane(RestoreReport& report);
    // The journal's record of `e` (after any change but a refresh), or of its deletion.
    void journal_change(const BindingCacheEntry& e);
    void journal_erase(const std::string& mn_id);
    void open_subscriber_store();
    void release_uplink_key(std::uint32_t key, Clock::time_point now);
    void hold_uplink_key(BindingCacheEntry& e, std::uint8_t bid, std::uint32_t key, Clock::time_point now);
    std::optional<std::uint32_t> take_held_uplink_key(BindingCacheEntry& e, std::uint8_t bid);
    void release_held_keys(BindingCacheEntry& e, Clock::time_point now, bool all);
    template <class Pool>
    static Pool* pool_of(std::map<std::uint32_t, std::unique_ptr<Pool>>& pools, std::uint32_t realm) {
        auto it = pools.find(realm);
        return it == pools.end() ? nullptr : it->second.get();
    }

    // RFC 6602 (bulk.cpp): each MAG's groups of bindings, refreshed (or ended) by one PBU.
    static const wire::MobileNodeGroupIdentifierOption* bulk_group_option(const wire::ProxyBindingUpdate& pbu);
    static bool is_bulk_pbu(const wire::ProxyBindingUpdate& pbu);
    std::vector<OutgoingPba> bulk_update(const IncomingPbu& in, Clock::time_point now);
    void follow_bulk_request(const Registration& r, BindingCacheEntry& e);
    void leave_bulk_group(BindingCacheEntry& e);
    void add_bulk_answer(const BindingCacheEntry& e, wire::ProxyBindingAcknowledgement& pba) const;

    // Revocation (revocation.cpp), RFC 5846 §8.1 and §6.
    OutgoingBri bri_toward(const BindingCacheEntry& e, wire::BindingRevocationIndication bri) const;
    std::vector<OutgoingBri> revoke_mn(const std::string& mn, std::uint8_t trigger, Clock::time_point now);
    std::vector<OutgoingBri> revoke_peer(const MagPeer& peer, std::uint8_t trigger, Clock::time_point now);
    OutgoingBri start_revocation(OutgoingBri out, std::vector<std::string> mns, Clock::time_point now);
    RevocationOutcome finish_revocation(const PendingRevocation& p, bool keep, Clock::time_point now);
    void forget_revocation_of(const std::string& mn_id);

    LmaConfig config_;
    std::map<std::uint16_t, PendingRevocation> revocations_;   // by BRI Sequence #
    std::unordered_map<std::string, std::uint16_t> revoking_;    // MN-ID -> its revocation's BRI
    struct BulkGroup {
        std::uint32_t lma_group = 0;                           // our id of it (§3.2: each side its own)
        std::unordered_set<const std::string*> members;        // the cache's keys
    };
    std::map<std::pair<std::uint16_t, std::uint32_t>, BulkGroup> bulk_groups_;   // (peer, MAG's group id)
    std::uint32_t next_lma_group_ = 2;
    std::uint16_t next_bri_sequence_ = 1;
    std::unique_ptr<SubscriberStore> subscribers_;
    SessionSink& sink_;
    std::function<std::uint64_t()> wall_timestamp_;
    BindingCache cache_;
    IndexAllocator session_ids_;
    IndexAllocator uplink_keys_;
    std::map<std::uint32_t, std::unique_ptr<Ipv4Pool>> ipv4_pools_;
    std::map<std::uint32_t, std::unique_ptr<Ipv6PrefixPool>> ipv6_pools_;
    std::map<std::string, Deferred> deferred_;   // by MN-ID
    BindingJournal* journal_ = nullptr;
};

} // namespace xpmip::lma
