// The MAG's configuration: its proxy care-of addresses, its LMA, the GRE/TLV/UDP policy it asks
// for (RFC 5845 §4, RFC 5844 §3.1), the mobile nodes it serves and the timers of RFC 5213 §6.9 /
// RFC 6275 §11.8 (retransmission from 1 s doubling to 32 s, at most 3 PBUs per second).
#pragma once

#include "common/address.hpp"
#include "config/interfaces_config.hpp"
#include "config/steering_config.hpp"
#include "config/yaml_reader.hpp"
#include "dataplane/dataplane.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <unordered_map>
#include <string>
#include <vector>

namespace xpmip::mag {

// What the MAG asks of GRE (RFC 5845 §4).
enum class GreMode {
    Off,      // no GRE Key option: IP-in-IP (or UDP with F)
    GreOnly,  // the option without a key: "GRE encapsulation mode only"
    Keys,     // the option with a downlink key
    OnRequest,   // no option until the LMA answers 163, then the option with a key (RFC 5845 §4.2)
};
std::string to_string(GreMode m);

struct MobileNodeConfig {
    std::string id;                  // MN-ID (NAI)
    MacAddress mac;                  // how it shows up on the access link
    std::string interface;           // its access interface
    bool dynamic = false;            // attach when first seen on the link (else at start-up)
    bool ipv4 = true;                // ask for an IPv4 home address (RFC 5844)
    bool ipv6 = true;                // ask for a home network prefix
    // Its operator's realm in this MAG's data plane (default: its access interface's realm).
    // MNs of different realms may then share one access link with the same private address.
    std::optional<std::uint32_t> realm;
};

// One WAN interface of the MAG and the proxy CoA it registers over (RFC 8278 §3.1). Without a
// `wan` list there is one: the first tunnel interface, mag.addresses and mag.lma.
struct WanPath {
    std::string interface;           // a tunnel interface of `interfaces`
    IpAddress address;               // the proxy CoA
    IpAddress lma;                   // the LMA address this path registers with
    std::uint8_t label = 0;          // If-Label (RFC 8278 §4.1)
    std::uint8_t bid = 1;            // Binding-Id, 1..254
    std::uint8_t access_technology = 4;   // If-ATT
};

struct MagTimers {
    std::chrono::milliseconds initial_retransmit{1000};    // RFC 6275 INITIAL_BINDACK_TIMEOUT
    std::chrono::milliseconds max_retransmit{32000};       // RFC 6275 MAX_BINDACK_TIMEOUT
    unsigned max_pbu_per_second = 3;                        // RFC 6275 MAX_UPDATE_RATE
    std::chrono::seconds lifetime{3600};                   // asked for
    double refresh_at = 0.8;                               // share of the granted lifetime
    std::chrono::seconds inactivity_timeout{0};            // detach after this idle time; 0: never
    unsigned deregistration_attempts = 3;
    // SIGTERM: how long the MAG waits for its de-registrations' PBAs (resent every
    // initial_retransmit meanwhile) before it exits; 0: send once and exit.
    std::chrono::milliseconds shutdown_timeout{10000};
    // RFC 5847 §3.1 (its defaults): a Heartbeat to the LMA every interval (0: off); this many
    // unanswered in a row take the path down.
    std::chrono::milliseconds heartbeat_interval{60000};
    unsigned missing_heartbeats_allowed = 3;
};

struct MagConfig {
    std::string file;
    std::string instance = "mag";
    std::string log_level = "info";
    std::optional<std::string> metrics;      // Prometheus endpoint, "address:port"
    std::vector<std::string> signaling_interfaces;   // where PBAs may arrive (README "Trust boundaries")
    // The Binding Update List journal and the restart counter (README "Restarts"); default
    // /var/lib/xpmip/<instance>.
    std::string state_directory;
    bool journal = true;
    std::vector<IpAddress> addresses;        // proxy CoAs (one per family)
    IpAddress lma;                           // LMAA or IPv4-LMAA (the latter: UDP 5436)
    GreMode gre = GreMode::Keys;
    bool tlv_header = false;                 // with GRE over IPv4: ask for UDP/TLV/GRE (T flag)
    bool force_udp = false;                  // F flag (RFC 5844): UDP encapsulation
    bool timestamps = true;                  // Timestamp option (RFC 5213 §5.5), else sequence numbers
    std::uint8_t access_technology = 4;      // ATT (RFC 5213 §8.5; 4 = IEEE 802.3)
    std::vector<dataplane::InterfaceConfig> interfaces;
    config::DataplaneTuning dataplane;   // `dataplane:` (spread_cpus, route_cache)
    dataplane::Limits limits;
    std::vector<WanPath> wans;               // at least one; two or more: multipath (RFC 8278)
    std::string identifier;                  // MAG Identifier option (RFC 8278 §4.2), an NAI
    config::SteeringConfig steering;         // labels and routing rules (RFC 8278 §3.2)
    std::vector<MobileNodeConfig> mobile_nodes;
    std::unordered_map<std::string, std::size_t> mobile_node_index;   // MN-ID -> mobile_nodes[i]
    std::map<MacAddress, std::size_t> mobile_node_by_mac_index;        // MAC -> mobile_nodes[i]
    MagTimers timers;

    const MobileNodeConfig* mobile_node(const std::string& id) const;
    const MobileNodeConfig* mobile_node_by_mac(const MacAddress& mac) const;
    // Our proxy CoA of the LMA's family.
    IpAddress proxy_coa() const;
    bool multipath() const { return wans.size() > 1; }
    // The path whose LMA address is `a`, or nullptr.
    bool is_lma_address(const IpAddress& a) const;
};

MagConfig parse_mag_config(config::MapReader root);
MagConfig load_mag_config(const std::string& file);

} // namespace xpmip::mag
