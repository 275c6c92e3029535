// The MAG's services on one access link (RFC 5213 §6.7 home network emulation, RFC 5844 §3.3
// IPv4 home address configuration): per-MN Router Advertisements carrying the MN's home network
// prefix, a minimal DHCPv4 server that answers each MN by its MAC with the address the LMA
// assigned, and ARP replies for each MN's IPv4 default router. Everything goes through one
// AF_PACKET socket, so the access interface needs no address of any MN's subnet and two realms'
// overlapping private ranges can share one link.
#pragma once

#include "common/address.hpp"
#include "common/fd.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace xpmip::access {

struct DhcpFrame;     // access/packets.hpp
struct DhcpMessage;
enum class DhcpType : std::uint8_t;

struct StationConfig {
    std::optional<Ipv6Prefix> hnp;            // IPv6 home network prefix
    std::optional<Ipv4Address> ipv4_address;  // IPv4 home address
    std::uint8_t ipv4_prefix_length = 24;
    std::optional<Ipv4Address> ipv4_router;   // default router (also the DHCP server id)
    std::uint32_t lifetime_seconds = 3600;    // prefix valid lifetime / DHCP lease time
    // Prefix preferred lifetime; unset: the valid lifetime.
    std::optional<std::uint32_t> preferred_lifetime_seconds;
    std::vector<Ipv4Address> dns_servers;     // DHCP option 6, left out when empty

    bool operator==(const StationConfig&) const = default;
};

struct AccessLinkOptions {
    // RA Router Lifetime (RFC 4861 §4.2; §6.2.1: 0 or MaxRtrAdvInterval..9000 s).
    std::uint16_t router_lifetime_seconds = 1800;
    std::uint8_t cur_hop_limit = 64;
    // MTU option (RFC 4861 §4.6.4) in every RA when set.
    std::optional<std::uint32_t> advertised_mtu;
    // Source of the RAs; unset: the interface's link-local address. RFC 5213 §6.8 lets every
    // MAG of a domain use the same link-local address (from the LMA), so an MN that moves keeps
    // its default router.
    std::optional<Ipv6Address> link_local;
    // Unsolicited RAs (RFC 4861 §6.2.4): after a new prefix, up to 3 at most 16 s apart
    // (MAX_INITIAL_RTR_ADVERTISEMENTS, MAX_INITIAL_RTR_ADVERT_INTERVAL), then at random
    // intervals in [min, max] (MinRtrAdvInterval, MaxRtrAdvInterval). Driven by tick().
    std::chrono::milliseconds ra_min_interval{200'000};
    std::chrono::milliseconds ra_max_interval{600'000};
    std::chrono::milliseconds initial_ra_interval{16'000};
    // on_unknown_station is called at most once per this interval per MAC.
    std::chrono::milliseconds unknown_station_interval{1000};
};

struct AccessLinkCounters {
    std::uint64_t frames = 0;             // frames read from the socket
    std::uint64_t malformed = 0;          // dropped: failed a validity check
    std::uint64_t rs_received = 0;        // valid Router Solicitations
    std::uint64_t ra_sent = 0;            // all Router Advertisements
    std::uint64_t ra_solicited = 0;       //  ... of them in answer to an RS
    std::uint64_t ra_withdrawals = 0;     //  ... of them withdrawing a prefix (lifetimes 0)
    std::uint64_t dhcp_discover = 0;
    std::uint64_t dhcp_request = 0;
    std::uint64_t dhcp_inform = 0;
    std::uint64_t dhcp_release = 0;
    std::uint64_t dhcp_decline = 0;
    std::uint64_t dhcp_offer = 0;         // sent
    std::uint64_t dhcp_ack = 0;           // sent
    std::uint64_t dhcp_nak = 0;           // sent
    std::uint64_t dhcp_ignored = 0;       // valid but not answered (other server chosen, no IPv4, ...)
    std::uint64_t arp_requests = 0;       // ARP requests seen
    std::uint64_t arp_replies = 0;        // ... answered for a station's default router
    std::uint64_t unknown_reported = 0;   // on_unknown_station calls
    std::uint64_t unknown_suppressed = 0; // unknown-station frames over the rate limit
    std::uint64_t send_errors = 0;
};

class AccessLink {   // one per access interface; non-copyable, RAII
public:
    using Clock = std::chrono::steady_clock;

    explicit AccessLink(const std::string& ifname, AccessLinkOptions options = {});  // throws naming the interface
    AccessLink(const AccessLink&) = delete;
    AccessLink& operator=(const AccessLink&) = delete;
    ~AccessLink();

    int fd() const { return fd_.get(); }             // poll() it for POLLIN
    const std::string& ifname() const { return ifname_; }
    const MacAddress& mac() const { return mac_; }
    std::optional<Ipv6Address> link_local() const { return link_local_; }

    // Add or update (throws std::invalid_argument naming the field). A new prefix (a new
    // station, or another HNP) sends an RA at once; a replaced prefix is withdrawn in it.
    void set_station(const MacAddress& mac, const StationConfig& cfg);
    // Forget the station; one last RA gives its prefix lifetimes 0 and router lifetime 0
    // (RFC 4861 §6.2.5), so the MN deprecates the address and drops the default route.
    void remove_station(const MacAddress& mac);
    const StationConfig* station(const MacAddress& mac) const;
    std::size_t station_count() const { return stations_.size(); }

    void advertise(const MacAddress& mac);            // unsolicited RA now (no-op without hnp)
    void handle_readable();                           // read all pending frames, answer RS / DHCP / ARP
    // Send the periodic RAs that are due; returns how long until the next one (poll timeout).
    std::chrono::milliseconds tick();

    const AccessLinkCounters& counters() const { return counters_; }

    // A DHCP DISCOVER / REQUEST or a Router Solicitation from a MAC without a station (the MAG
    // starts a dynamic attach). Rate-limited per MAC (options.unknown_station_interval); only
    // valid frames count. May call set_station() from inside: the frame that caused the call is
    // then answered. An exception thrown by a callback leaves handle_readable() (the frames
    // still pending are read by the next call).
    std::function<void(const MacAddress&)> on_unknown_station;
    // A DHCPRELEASE from a station's MAC (the MN gave up its address; the station stays).
    std::function<void(const MacAddress&)> on_release;

private:
    struct Station {
        StationConfig cfg;
        Clock::time_point next_ra{};
        int initial_ras_left = 0;
    };

    void handle_frame(const std::uint8_t* data, std::size_t len, bool checksum_unverifiable);
    void handle_router_solicitation(const std::uint8_t* data, std::size_t len, bool skip_checksum);
    void handle_dhcp(const std::uint8_t* data, std::size_t len, bool skip_checksum);
    // Counts a client message type we answer; false (counted as ignored) for the others.
    bool count_dhcp_request(DhcpType type);
    // The station `f` is answered for, or nullptr (counted) when we stay silent.
    const StationConfig* dhcp_client(const DhcpFrame& f, DhcpType type);
    void answer_dhcp(const DhcpMessage& req, DhcpType type, const StationConfig& cfg);
    void answer_dhcp_request(const DhcpMessage& req, const StationConfig& cfg);
    // The `rtype` reply to `req` (of type `type`), sent, counted and logged.
    void send_dhcp_reply(const DhcpMessage& req, DhcpType type, const StationConfig& cfg, DhcpType rtype,
                         const std::string& nak_message = {});
    void handle_arp(const std::uint8_t* data, std::size_t len);
    bool report_unknown(const MacAddress& mac);  // true when the callback ran
    void send_ra(const MacAddress& mac, const std::optional<Ipv6Prefix>& prefix, const StationConfig* cfg,
                 const std::vector<Ipv6Prefix>& withdrawn, bool solicited);
    void schedule_periodic(Station& st, Clock::time_point now);
    void send_frame(const MacAddress& dst, const std::vector<std::uint8_t>& frame, const char* what);

    std::string ifname_;
    AccessLinkOptions options_;
    int ifindex_ = 0;
    MacAddress mac_;
    std::optional<Ipv6Address> link_local_;
    UniqueFd fd_;
    std::map<MacAddress, Station> stations_;
    std::map<MacAddress, Clock::time_point> unknown_seen_;
    AccessLinkCounters counters_;
    std::uint16_t ip_id_ = 0;
    std::vector<std::uint8_t> rx_buffer_;
    std::mt19937 rng_;
};

} // namespace xpmip::access
