// The LMA's configuration: its addresses, the data plane interfaces, realms with their address
// pools, the MAGs allowed to register (RFC 5213 §5.3.1 "MAG authorization"), the mobile nodes'
// policy profiles, the GRE policy at each level (RFC 5845 §3), and the RFC 5213 §9.3 timers.
#pragma once

#include "common/address.hpp"
#include "config/interfaces_config.hpp"
#include "config/steering_config.hpp"
#include "config/yaml_reader.hpp"
#include "dataplane/dataplane.hpp"

#include <chrono>
#include <map>
#include <unordered_map>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::lma {

// What the LMA asks of GRE for a binding (RFC 5845 §3, §5.1), strictest last. Several levels
// (LMA, realm, MAG peer, MN) may each set one; the strictest set wins (see effective_gre()).
enum class GrePolicy {
    Allowed = 0,       // GRE with or without keys when the MAG asks for it, none otherwise
    NotRequired = 1,   // GRE KEY OPTION NOT REQUIRED (2) when asked, no GRE
    Unsupported = 2,   // behave as an LMA without RFC 5845: ignore the option, never set T
    GreRequired = 3,   // GRE needed (keys as the MAG offers); without the option: 163
    KeysRequired = 4,  // GRE with keys needed; without the option or without a key: 163
};
std::string to_string(GrePolicy p);
GrePolicy parse_gre_policy(const std::string& s);

// The policy of one level; unset members leave the decision to the other levels.
struct TunnelPolicy {
    std::optional<GrePolicy> gre;
    std::optional<bool> tlv_header;   // RFC 5845 §7.2 TLV-header UDP format supported
    std::optional<bool> udp;          // RFC 5844 F flag (forced UDP encapsulation) accepted
};

struct Realm {
    std::uint32_t id = 0;
    std::string name;
    std::string interface;                       // its core interface
    std::optional<Ipv4Prefix> ipv4_pool;
    std::optional<Ipv4Address> ipv4_default_router;   // RFC 5844 §3.3.3, default: pool's first host
    std::optional<Ipv6Prefix> ipv6_pool;
    std::uint8_t hnp_length = 64;                // prefixes handed out from ipv6_pool
    TunnelPolicy policy;
};

struct MagPeer {
    std::string name;
    std::vector<IpAddress> addresses;            // its proxy CoAs (IPv6 and/or IPv4)
    TunnelPolicy policy;
};

struct MobileNodeProfile {
    std::string id;                              // MN-ID (NAI)
    std::uint32_t realm = 0;
    bool ipv4 = true;                            // authorized for IPv4 home address service
    bool ipv6 = true;                            // authorized for IPv6 home network prefixes
    std::optional<Ipv4Address> ipv4_home_address;   // static; else from the realm pool
    std::optional<Ipv6Prefix> home_network_prefix;   // static; else from the realm pool
    TunnelPolicy policy;
    bool multipath = true;                       // RFC 8278: authorized for several bindings (else 180)
};

// Every MN whose NAI realm (RFC 7542 §2.2: the part after the last '@') is `domain` or one of
// its subdomains, and that mobile_nodes does not list, is authorized with `profile` (which has
// no static addresses: they come from the realm's pools). The most specific domain wins.
struct MobileNodeDomain {
    std::string domain;                          // lower case (NAI realms compare case-insensitively)
    MobileNodeProfile profile;                   // profile.id is "*@<domain>"
};

struct LmaTimers {
    std::chrono::milliseconds min_delay_before_bce_delete{10000};       // RFC 5213 §9.3
    std::chrono::milliseconds max_delay_before_new_bce_assign{1500};    // RFC 5213 §9.3
    std::chrono::milliseconds timestamp_validity_window{300};           // RFC 5213 §9.3
    std::chrono::seconds max_lifetime{3600};                            // granted at most
    // RFC 5847 §3.1 (its defaults): a Heartbeat to every configured MAG address every interval
    // (0: off); this many unanswered in a row take the paths toward it down.
    std::chrono::milliseconds heartbeat_interval{60000};
    unsigned missing_heartbeats_allowed = 3;
    // A MAG that restarted (its Restart Counter changed) and does not register a binding again
    // within this long loses it (issue 17: a MAG that lost its state leaves no stale bindings).
    std::chrono::milliseconds mag_restart_grace{10000};
    // RFC 5846 §11 (its defaults): a BRI unanswered for InitMINDelayBRIs is sent again, the wait
    // doubling up to MAX_BRACK_TIMEOUT, at most BRIMaxRetriesNumber times; then the LMA cleans up.
    std::chrono::milliseconds bri_initial_delay{1000};   // InitMINDelayBRIs (at least 0.5 s)
    std::chrono::milliseconds bri_max_timeout{2000};     // MAX_BRACK_TIMEOUT
    unsigned bri_max_retries = 1;                        // BRIMaxRetriesNumber
};

struct LmaConfig {
    std::string file;
    std::string instance = "lma";
    std::string log_level = "info";
    std::optional<std::string> metrics;          // Prometheus endpoint, "address:port"
    std::vector<IpAddress> addresses;            // LMAA (IPv6) and IPv4-LMAA
    std::vector<dataplane::InterfaceConfig> interfaces;
    config::DataplaneTuning dataplane;   // `dataplane:` (spread_cpus, route_cache)
    dataplane::Limits limits;
    TunnelPolicy policy;                         // the LMA-wide defaults
    // RFC 8278 support. false: behave as a legacy LMA (options 63/64 skipped, §4.4).
    bool multipath = true;
    // RFC 6602 §6.1 AcceptBulkBindingUpdateReqForMobilitySession (default 1): a PBU with B and
    // a Mobile Node Group Identifier joins its MAG's group; false: every B answered B = 0.
    bool bulk_registration = true;
    config::SteeringConfig steering;             // labels and routing rules (RFC 8278 §3.2)
    std::vector<Realm> realms;
    std::vector<MagPeer> peers;
    std::optional<std::string> subscriber_store;   // LMDB file of per-MN profiles (README "Subscribers")
    // Where the binding journal lives (README "Restarts"); default /var/lib/xpmip/<instance>.
    std::string state_directory;
    std::vector<std::string> signaling_interfaces;   // where PBUs may arrive (README "Trust boundaries")
    bool journal = true;
    std::vector<MobileNodeProfile> mobile_nodes;
    std::unordered_map<std::string, std::size_t> mobile_node_index;   // MN-ID -> mobile_nodes[i]
    std::vector<MobileNodeDomain> mobile_node_domains;
    std::unordered_map<std::string, std::size_t> mobile_node_domain_index;   // domain -> [i]
    LmaTimers timers;

    const Realm* realm(std::uint32_t id) const;
    const MagPeer* peer_by_address(const IpAddress& a) const;
    // The MN's own entry, else the profile of the most specific domain of its NAI realm. (With a
    // subscriber store, the LMA asks the store between the two: LocalMobilityAnchor::profile_of.)
    const MobileNodeProfile* mobile_node(const std::string& id) const;
    const MobileNodeProfile* listed_mobile_node(const std::string& id) const;
    const MobileNodeProfile* domain_mobile_node(const std::string& id) const;
    bool is_own_address(const IpAddress& a) const;
};

// Parse and check (cross-references, overlapping pools inside a realm, static addresses inside
// their realm's pool or not clashing). Throws config::ConfigError naming file, line and key.
LmaConfig parse_lma_config(config::MapReader root);
LmaConfig load_lma_config(const std::string& file);


// The policy that applies to one binding: the strictest GRE requirement any level sets
// (default Allowed); TLV and UDP support only if no level turns them off (default on).
struct EffectivePolicy {
    GrePolicy gre = GrePolicy::Allowed;
    bool tlv_header = true;
    bool udp = true;
};
EffectivePolicy effective_policy(std::initializer_list<const TunnelPolicy*> levels);

} // namespace xpmip::lma
