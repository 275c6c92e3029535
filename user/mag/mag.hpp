// The mobile access gateway's signaling (RFC 5213 §6, RFC 5844 §3.1, RFC 5845 §4 and §7.3): the
// Binding Update List, PBUs on attach / refresh / detach with retransmission, PBA handling, and
// the data plane session of every registered MN. Like the LMA's logic it has no sockets and no
// clock of its own: the daemon passes the time in and sends what it returns.
#pragma once

#include "common/index_allocator.hpp"
#include "dataplane/types.hpp"
#include "mag/mag_config.hpp"
#include "wire/framing.hpp"
#include "wire/messages.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace xpmip::mag {

using Clock = std::chrono::steady_clock;

struct OutgoingPbu {
    wire::Transport transport = wire::Transport::Ipv6;
    IpAddress src;
    IpAddress dst;
    wire::ProxyBindingUpdate pbu;
};

struct IncomingPba {
    wire::Transport transport = wire::Transport::Ipv6;
    IpAddress src;
    wire::ProxyBindingAcknowledgement pba;
};

// Binding Update List entry (RFC 5213 §6.1 + RFC 5845 §4.1).
struct BindingUpdateListEntry {
    enum class State { Registering, Registered, Deregistering, Failed };
    std::string mn_id;
    MacAddress mac;
    std::string interface;
    State state = State::Registering;
    bool refreshing = false;                  // a re-registration is outstanding
    std::uint16_t sequence = 0;               // of the last PBU sent
    // (the MN's entry) the MN's sequence numbers, for all its paths: the next PBU's is
    // mn_sequence + 1 once one was sent (`sequenced`).
    std::uint16_t mn_sequence = 0;
    bool sequenced = false;
    std::uint8_t last_status = 0;

    // What the LMA gave (RFC 5213 §6.9.1.2, RFC 5844 §3.1.2).
    std::optional<Ipv6Prefix> hnp;
    std::optional<Ipv4Address> ipv4_hoa;
    std::uint8_t ipv4_prefix_length = 32;
    std::optional<Ipv4Address> ipv4_router;
    std::chrono::seconds lifetime{0};
    Clock::time_point expires{};

    // RFC 5845 §4.1
    bool gre = false;
    bool gre_for_session = true;              // false after status 2: never ask again for it
    bool gre_forced = false;                  // after 163: include the option even if GRE is off here
    std::optional<std::uint32_t> key_downlink;
    std::optional<std::uint32_t> key_uplink;
    bool tlv_header = false;
    bool tlv_requested = false;               // its last PBU set T (RFC 5845 §7.3)
    bool udp = false;                         // UDP encapsulation (F flag accepted)
    bool reattaching = false;                 // registering again as new after a 155/171 (issue 17)

    // Retransmission (RFC 6275 §11.8): the next send and its back-off.
    Clock::time_point next_send{};
    std::chrono::milliseconds backoff{0};
    unsigned attempts = 0;

    std::uint32_t session_id = 0;
    bool in_dataplane = false;
    dataplane::SessionConfig session;

    // RFC 8278. `path`: the WAN path (MagConfig::wans index) this entry registers over; the
    // MN's entry in the list is the path it registered over first and holds the other paths'
    // entries in `paths`.
    std::size_t path = 0;
    bool multipath_sent = false;              // its last PBU carried options 63 and 64
    std::vector<BindingUpdateListEntry> paths;
    bool session_installed = false;           // (the MN's entry) its session is in the data plane
    std::size_t journaled = 0;                // (the MN's entry) hash of what the journal last got of it
};

// Where the MN's entries go when they change (issue 17: mag/bul_journal.hpp).
class BulJournalSink {
public:
    virtual ~BulJournalSink() = default;
    virtual void put(const BindingUpdateListEntry& primary) = 0;
    virtual void erase(const std::string& mn_id) = 0;
};

// What a restart recovered (MobileAccessGateway::restore).
struct MagRestoreReport {
    std::size_t bindings = 0;          // back in the list
    std::size_t dropped = 0;           // journaled, no longer valid here (each logged)
    std::size_t sessions_written = 0;  // the restored MNs' sessions, written as the journal says
    std::size_t orphans_removed = 0;   // in the data plane, of no MN: removed
    std::vector<OutgoingPbu> pbus;     // every restored MN registers again at once
};

// The data plane and the access link, as the MAG's logic sees them.
class MagSink {
public:
    virtual ~MagSink() = default;
    virtual void upsert(const dataplane::SessionConfig& s) = 0;   // throws when refused
    virtual void remove(std::uint32_t session_id) = 0;
    virtual std::uint32_t ifindex(const std::string& interface) = 0;
    // Our link-local address on an access link, for the PBU's Link-local Address option.
    virtual std::optional<Ipv6Address> link_local(const std::string& /*interface*/) { return std::nullopt; }
    // Carrier of a WAN interface: paths over one without it are down (RFC 8278 failover).
    virtual bool link_up(std::uint32_t /*ifindex*/) { return true; }
    // Session ids in the data plane (a restart's orphans are among them).
    virtual std::vector<std::uint32_t> held_sessions() { return {}; }
    // The MN's addresses are ready (RA/DHCP may hand them out) or gone.
    virtual void registered(const BindingUpdateListEntry&) {}
    virtual void deregistered(const BindingUpdateListEntry&) {}
};

class MobileAccessGateway {
public:
    MobileAccessGateway(MagConfig config, MagSink& sink, std::function<std::uint64_t()> wall_timestamp = nullptr);

    // Start a registration for a configured MN (idempotent while one is under way).
    std::vector<OutgoingPbu> attach(const std::string& mn_id, Clock::time_point now);
    // Stop serving it: the data plane session goes, a de-registration goes to the LMA.
    std::vector<OutgoingPbu> detach(const std::string& mn_id, Clock::time_point now);
    // SIGTERM: every MN detached; their de-registrations are retransmitted every
    // initial_retransmit, without the attempt limit, until answered (the daemon stops waiting
    // after timers.shutdown_timeout). Attaches are refused from here on.
    std::vector<OutgoingPbu> shutdown(Clock::time_point now);
    std::size_t deregistrations_outstanding() const;
    bool shutting_down() const { return shutting_down_; }
    std::vector<OutgoingPbu> on_pba(const IncomingPba& in, Clock::time_point now);
    // Restart (issue 17): the journal's entries back (session ids and keys reserved again), the
    // data plane made to match them, orphans removed; every MN registers again at once, with the
    // same keys. Called once, before anything else.
    MagRestoreReport restore(std::vector<BindingUpdateListEntry> entries, Clock::time_point now);
    // Every change of an MN's entry from here on goes to `journal` (not plain refreshes).
    void attach_journal(BulJournalSink* journal) { journal_ = journal; }
    // Retransmissions, refreshes, expiry.
    std::vector<OutgoingPbu> on_timer(Clock::time_point now);
    std::optional<Clock::time_point> next_deadline() const;

    // Take a new configuration's mobile nodes, GRE/TLV/UDP choices and timers. The LMA, our
    // addresses, interfaces and instance stay as loaded (a restart changes those). MNs no longer
    // configured are detached; new static MNs are attached. Returns the PBUs that causes.
    std::vector<OutgoingPbu> reload(MagConfig config, Clock::time_point now);

    const std::map<std::string, BindingUpdateListEntry>& entries() const { return bul_; }
    const MagConfig& config() const { return config_; }
    bool lma_supports_gre() const { return lma_supports_gre_; }
    // Count of "GRE required by the LMA but disabled here" events (RFC 5845 §4.2 alarm).
    unsigned gre_alarms() const { return gre_alarms_; }
    // A WAN link's carrier changed: paths over it go down or up in the data plane at once.
    void on_link_change();
    // RFC 5847: the LMA at `lma` restarted (its Restart Counter changed): refresh every binding
    // registered with it at once.
    std::vector<OutgoingPbu> on_lma_restart(const IpAddress& lma, Clock::time_point now);
    // RFC 5846 §9.1: a Binding Revocation Indication from `src`. Not from our LMA: nothing (no
    // answer, §6.1.2). Otherwise the MNs it names are torn down here (session, access-link
    // state, entry; no de-registration: the LMA revoked them) and the answer says how it went.
    std::optional<wire::BindingRevocationAcknowledgement> on_bri(const IpAddress& src,
                                                                 const wire::BindingRevocationIndication& bri,
                                                                 Clock::time_point now);
    // RFC 8278 §4.4: multipath is off for this MN (legacy LMA or status 180).
    bool multipath_disabled(const std::string& mn_id) const { return multipath_off_.count(mn_id) > 0; }

private:
    OutgoingPbu build_pbu(BindingUpdateListEntry& e, bool deregistration, Clock::time_point now);
    void add_mobile_node_options(BindingUpdateListEntry& e, const WanPath& wan, wire::ProxyBindingUpdate& pbu);
    void add_gre_key_option(BindingUpdateListEntry& e, wire::ProxyBindingUpdate& pbu);
    void add_multipath_options(BindingUpdateListEntry& e, const WanPath& wan, wire::ProxyBindingUpdate& pbu);
    void log_pbu(const BindingUpdateListEntry& e, const OutgoingPbu& out) const;
    std::vector<OutgoingPbu> send(BindingUpdateListEntry& e, bool deregistration, Clock::time_point now);
    bool rate_limited(BindingUpdateListEntry& e, Clock::time_point now);
    std::vector<OutgoingPbu> registered_timer(BindingUpdateListEntry& e, Clock::time_point now);
    void drop_path(const std::string& mn_id, std::size_t path);
    bool include_gre_option(const BindingUpdateListEntry& e) const;
    void install(BindingUpdateListEntry& e);
    void uninstall(BindingUpdateListEntry& e);
    // The MN's entry in the list (its first path) of any of its entries.
    BindingUpdateListEntry& primary(BindingUpdateListEntry& e);
    // Its entries over every path, the first path first.
    std::vector<BindingUpdateListEntry*> all_paths(BindingUpdateListEntry& primary);
    // RFC 8278 §4.4: register the MN's other paths once the LMA has shown multipath support.
    std::vector<OutgoingPbu> start_other_paths(BindingUpdateListEntry& primary, Clock::time_point now);
    // Multipath off for the MN: its other paths' entries go, the first registers without 63/64.
    std::vector<OutgoingPbu> fall_back_to_one_path(BindingUpdateListEntry& primary, Clock::time_point now);
    bool multipath_for(const BindingUpdateListEntry& e) const;
    // The data plane session of the MN from its paths in the data plane (none: nullopt).
    std::optional<dataplane::SessionConfig> session_of(BindingUpdateListEntry& primary);
    // Write (or remove) the MN's session as its paths now are. Throws when the data plane refuses.
    void refresh_session(BindingUpdateListEntry& primary);
    void release_key(BindingUpdateListEntry& e);
    // PBA handling (RFC 5213 §6.9.1.2), step by step.
    BindingUpdateListEntry* outstanding_entry(const wire::ProxyBindingAcknowledgement& pba);
    void finish_deregistration(BindingUpdateListEntry& e);
    std::optional<std::vector<OutgoingPbu>> on_legacy_lma(BindingUpdateListEntry& e, const IncomingPba& in,
                                                          Clock::time_point now);
    std::vector<OutgoingPbu> reattach(BindingUpdateListEntry& e, wire::Status status, Clock::time_point now);
    std::vector<OutgoingPbu> on_rejection(BindingUpdateListEntry& e, const wire::ProxyBindingAcknowledgement& pba,
                                          Clock::time_point now);
    void take_gre_answer(BindingUpdateListEntry& e, const wire::ProxyBindingAcknowledgement& pba);
    void take_encapsulation(BindingUpdateListEntry& e, const IncomingPba& in);
    void take_ipv4_addresses(BindingUpdateListEntry& e, const wire::ProxyBindingAcknowledgement& pba);
    std::vector<OutgoingPbu> complete_registration(BindingUpdateListEntry& e, const wire::ProxyBindingAcknowledgement& pba,
                                                   Clock::time_point now);
    // A PBA's Home Network Prefix into the entry, unless it assigns nothing (RFC 5213 §6.9.1.2).
    void take_home_network_prefix(BindingUpdateListEntry& e, const wire::ProxyBindingAcknowledgement& pba,
                                  const IpAddress& lma);
    // An LMA deviating from the RFCs in a way we survive: a warning, once per LMA and kind.
    void log_deviation(const IpAddress& lma, const char* kind, const std::string& what);
    std::uint32_t allocate_downlink_key();
    std::uint32_t downlink_key_for(BindingUpdateListEntry& e);
    // RFC 5846 §9.1 (mag_revocation.cpp): what a BRI asks, checked; the MNs it names.
    std::uint8_t check_bri(const wire::BindingRevocationIndication& bri) const;
    std::uint8_t revoke_per_mn(const wire::BindingRevocationIndication& bri);
    std::uint8_t revoke_global(const wire::BindingRevocationIndication& bri);
    void tear_down(const std::string& mn_id, std::uint8_t trigger);
    // An MN's entry goes: its keys and session id are free again.
    void forget(std::map<std::string, BindingUpdateListEntry>::iterator it);
    std::vector<OutgoingPbu> handle_pba(const IncomingPba& in, Clock::time_point now);
    // The MN's entry to the journal, unless only its sequence numbers moved (a refresh).
    void journal(const std::string& mn_id);
    // restore(): one journaled entry back, or why it cannot be.
    std::optional<std::string> adopt(BindingUpdateListEntry& e, Clock::time_point now);
    void reconcile_dataplane(MagRestoreReport& report);

    MagConfig config_;
    MagSink& sink_;
    std::function<std::uint64_t()> wall_timestamp_;
    std::map<std::string, BindingUpdateListEntry> bul_;
    std::uint16_t next_sequence_ = 1;
    std::uint32_t next_key_ = 1;
    IndexAllocator session_ids_;
    std::set<std::uint32_t> keys_in_use_;
    // Send times of the last second per MN, kept across entries so that an MN flapping between
    // attach and detach is held to the rate limit as well.
    std::map<std::string, std::deque<Clock::time_point>> recent_sends_;
    bool lma_supports_gre_ = true;   // until a PBA says otherwise (RFC 5845 §4.2)
    bool lma_multipath_known_ = false;   // a PBA carried option 63 (RFC 8278 §4.4)
    std::set<std::string> multipath_off_;
    unsigned gre_alarms_ = 0;
    bool shutting_down_ = false;
    BulJournalSink* journal_ = nullptr;
    std::string pba_mn_;   // the MN whose entry the PBA being handled answers
    // LMAs already logged for a deviation (a T flag we did not ask for, a prefix of nothing): once each.
    std::set<std::string> deviations_logged_;
};

} // namespace xpmip::mag
