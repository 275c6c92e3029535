#include "access/access_link.hpp"

#include "access/packets.hpp"
#include "netlink/interfaces.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace xpmip::access {

namespace {

constexpr std::size_t kMaxFramesPerCall = 1024;       // the rest on the next POLLIN
constexpr std::size_t kUnknownPruneAt = 1024;         // rate-limit table: prune expired entries
constexpr std::size_t kUnknownMax = 4096;             //  ... and refuse new MACs beyond this
constexpr int kMaxInitialAdvertisements = 3;          // RFC 4861 §10 MAX_INITIAL_RTR_ADVERTISEMENTS
constexpr std::uint16_t kMaxRouterLifetime = 9000;    // RFC 4861 §6.2.1 AdvDefaultLifetime bound

[[noreturn]] void fail_errno(const std::string& ifname, const std::string& what) {
    throw std::runtime_error(fmt::format("access link {}: {}: {}", ifname, what, std::strerror(errno)));
}

// Classic BPF: only what we answer reaches the socket - IPv6 ICMPv6 Router Solicitations (no
// extension headers, as RFC 4861 senders emit them), ARP, and unfragmented IPv4 UDP to port 67.
std::vector<sock_filter> access_filter() {
    return {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                     // 0: EtherType
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kEtherTypeIpv6, 0, 4),  // 1: -> 2 / 6
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 14 + 6),                 // 2: Next Header
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 58, 0, 12),             // 3: ICMPv6 -> 4 / 16
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 14 + 40),                // 4: ICMPv6 Type
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 133, 9, 10),            // 5: RS -> 15 / 16
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kEtherTypeArp, 8, 0),   // 6: -> 15 / 7
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kEtherTypeIpv4, 0, 8),  // 7: -> 8 / 16
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 14 + 9),                 // 8: Protocol
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 6),              // 9: UDP -> 10 / 16
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 14 + 6),                 // 10: flags, fragment offset
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 4, 0),         // 11: later fragment -> 16 / 12
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),                    // 12: X = IHL * 4
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 14 + 2),                 // 13: UDP destination port
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kDhcpServerPort, 0, 1), // 14: -> 15 / 16
        BPF_STMT(BPF_RET | BPF_K, 0xffff),                          // 15: accept
        BPF_STMT(BPF_RET | BPF_K, 0),                               // 16: drop
    };
}

std::string describe(const StationConfig& c) {
    std::string s = fmt::format("hnp={}", c.hnp ? c.hnp->to_string() : "-");
    if (c.ipv4_address) {
        s += fmt::format(" ipv4={}/{} router={}", c.ipv4_address->to_string(), c.ipv4_prefix_length,
                         c.ipv4_router ? c.ipv4_router->to_string() : "-");
    }
    return s + fmt::format(" lifetime={}s", c.lifetime_seconds);
}

void validate(const MacAddress& mac, const StationConfig& c) {
    auto bad = [&](const std::string& why) {
        throw std::invalid_argument(fmt::format("station {}: {}", mac.to_string(), why));
    };
    if (mac.bytes[0] & 0x01) {
        bad("the MAC is a group (multicast) address");
    }
    if (c.hnp && (c.hnp->length == 0 || c.hnp->length > 128)) {
        bad(fmt::format("hnp {}: prefix length {} is not 1..128", c.hnp->to_string(), c.hnp->length));
    }
    if (c.lifetime_seconds == 0) {
        bad("lifetime_seconds 0: a station's prefix and lease need a lifetime");
    }
    // RFC 4862 §5.5.3 (c): a PIO whose preferred lifetime exceeds the valid lifetime is ignored.
    if (c.preferred_lifetime_seconds && *c.preferred_lifetime_seconds > c.lifetime_seconds) {
        bad(fmt::format("preferred_lifetime_seconds {} exceeds lifetime_seconds {}", *c.preferred_lifetime_seconds,
                        c.lifetime_seconds));
    }
    if (!c.ipv4_address) {
        if (c.ipv4_router) {
            bad(fmt::format("ipv4_router {} without an ipv4_address", c.ipv4_router->to_string()));
        }
        return;
    }
    const auto addr = *c.ipv4_address;
    if (c.ipv4_prefix_length == 0 || c.ipv4_prefix_length > 32) {
        bad(fmt::format("ipv4_prefix_length {} is not 1..32", c.ipv4_prefix_length));
    }
    // RFC 5844 §3.3.3: the MN's default router is on its link; it is also our DHCP server id.
    if (!c.ipv4_router) {
        bad(fmt::format("ipv4_address {} without an ipv4_router (the default router and DHCP server identifier)",
                        addr.to_string()));
    }
    Ipv4Prefix subnet{addr, c.ipv4_prefix_length};
    // RFC 5844 §3.3 allows a /32 home address: the router is then off the MN's subnet, and DHCP
    // tells the MN how to reach it (option 121, as point-to-point access networks do).
    if (c.ipv4_prefix_length < 32 && !subnet.contains(*c.ipv4_router)) {
        bad(fmt::format("ipv4_router {} is outside {}/{}", c.ipv4_router->to_string(), addr.to_string(),
                        c.ipv4_prefix_length));
    }
    if (*c.ipv4_router == addr) {
        bad(fmt::format("ipv4_router {} equals ipv4_address", addr.to_string()));
    }
    if (c.ipv4_prefix_length <= 30) {
        std::uint32_t host = addr.to_host_order() & ~netmask(c.ipv4_prefix_length).to_host_order();
        std::uint32_t all = ~netmask(c.ipv4_prefix_length).to_host_order();
        if (host == 0 || host == all) {
            bad(fmt::format("ipv4_address {} is the {} address of /{}", addr.to_string(),
                            host == 0 ? "network" : "broadcast", c.ipv4_prefix_length));
        }
    }
}

// RFC 3442 Classless Static Route option for a /32 lease: the router itself on the link (router
// 0.0.0.0), then the default route through it. A client that knows option 121 ignores option 3
// (RFC 3442 §3), so the default route must be in it.
std::vector<std::uint8_t> routes_to_off_subnet_router(const Ipv4Address& router) {
    std::vector<std::uint8_t> v{32};
    v.insert(v.end(), router.bytes.begin(), router.bytes.end());
    v.insert(v.end(), {0, 0, 0, 0, 0});
    v.insert(v.end(), router.bytes.begin(), router.bytes.end());
    return v;
}

std::vector<std::uint8_t> be32(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
            static_cast<std::uint8_t>(v)};
}
std::vector<std::uint8_t> bytes_of(const Ipv4Address& a) {
    return {a.bytes.begin(), a.bytes.end()};
}

// The options RFC 4861 bounds (§6.2.1 AdvDefaultLifetime) and an RA interval range tick() can draw from.
void check_options(const std::string& ifname, const AccessLinkOptions& options) {
    if (options.router_lifetime_seconds > kMaxRouterLifetime) {
        throw std::invalid_argument(fmt::format("access link {}: router_lifetime_seconds {} exceeds {} (RFC 4861 §6.2.1)",
                                                ifname, options.router_lifetime_seconds, kMaxRouterLifetime));
    }
    if (options.ra_min_interval <= std::chrono::milliseconds{0} || options.ra_max_interval < options.ra_min_interval) {
        throw std::invalid_argument(fmt::format("access link {}: RA interval {}..{} ms is not a positive range", ifname,
                                                options.ra_min_interval.count(), options.ra_max_interval.count()));
    }
}

// The RA source: the configured address (RFC 5213 §6.8: maybe shared by every MAG of the
// domain), else the interface's own link-local address, if it has one yet.
std::optional<Ipv6Address> router_link_local(const std::string& ifname, const AccessLinkOptions& options,
                                             const netlink::InterfaceInfo& info) {
    if (options.link_local) {
        if (!options.link_local->is_link_local()) {
            throw std::invalid_argument(fmt::format("access link {}: link_local {} is not a link-local address", ifname,
                                                    options.link_local->to_string()));
        }
        return options.link_local;
    }
    for (const auto& a : info.ipv6) {
        if (a.is_link_local()) {
            return a;
        }
    }
    return std::nullopt;
}

// An AF_PACKET socket that sees only access_filter()'s frames, with their checksum status.
UniqueFd open_filtered_socket(const std::string& ifname) {
    // Protocol 0 receives nothing until bind(): attach the filter first, so no unfiltered frame
    // can be queued in between.
    UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        fail_errno(ifname, "socket(AF_PACKET)");
    }
    auto filter = access_filter();
    sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};
    if (setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
        fail_errno(ifname, "SO_ATTACH_FILTER");
    }
    int one = 1;
    // tp_status tells frames whose checksum is not filled in yet (CHECKSUM_PARTIAL from a local
    // sender or a veth peer): their checksums cannot be checked from the bytes.
    if (setsockopt(fd.get(), SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0) {
        fail_errno(ifname, "PACKET_AUXDATA");
    }
#ifdef PACKET_IGNORE_OUTGOING
    (void)setsockopt(fd.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));  // also checked per frame
#endif
    return fd;
}

void bind_to_interface(int fd, const std::string& ifname, int ifindex) {
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0) {
        fail_errno(ifname, fmt::format("bind AF_PACKET to ifindex {}", ifindex));
    }
}

// Router Solicitations go to ff02::2 (33:33:00:00:00:02): make sure the NIC lets them in.
void join_all_routers(int fd, const std::string& ifname, int ifindex) {
    packet_mreq mreq{};
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = PACKET_MR_MULTICAST;
    mreq.mr_alen = 6;
    const std::uint8_t all_routers[6] = {0x33, 0x33, 0, 0, 0, 2};
    std::memcpy(mreq.mr_address, all_routers, 6);
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0) {
        fail_errno(ifname, "PACKET_ADD_MEMBERSHIP 33:33:00:00:00:02");
    }
}

} // namespace

AccessLink::AccessLink(const std::string& ifname, AccessLinkOptions options)
    : ifname_(ifname), options_(std::move(options)), rx_buffer_(65536), rng_(std::random_device{}()) {
    check_options(ifname, options_);
    auto info = netlink::find_interface(ifname);
    if (!info) {
        throw std::runtime_error(fmt::format("access link {}: no such interface", ifname));
    }
    ifindex_ = info->ifindex;
    mac_ = info->mac;
    if (mac_ == MacAddress{}) {
        throw std::runtime_error(fmt::format("access link {}: no Ethernet address (not an Ethernet interface?)", ifname));
    }
    link_local_ = router_link_local(ifname, options_, *info);
    fd_ = open_filtered_socket(ifname);
    bind_to_interface(fd_.get(), ifname, ifindex_);
    join_all_routers(fd_.get(), ifname, ifindex_);
    spdlog::info("access link {}: ifindex {} mac {} router link-local {}", ifname_, ifindex_, mac_.to_string(),
                 link_local_ ? link_local_->to_string() : "none (IPv6 off: no RAs until it has one)");
}

AccessLink::~AccessLink() = default;

const StationConfig* AccessLink::station(const MacAddress& mac) const {
    auto it = stations_.find(mac);
    return it == stations_.end() ? nullptr : &it->second.cfg;
}

void AccessLink::set_station(const MacAddress& mac, const StationConfig& cfg_in) {
    validate(mac, cfg_in);
    StationConfig cfg = cfg_in;
    if (cfg.hnp) {
        cfg.hnp = cfg.hnp->canonical();
        if (cfg.hnp->length != 64) {
            // RFC 4862 §5.5.3 (d) with RFC 4291's 64-bit interface identifiers: SLAAC on Ethernet
            // ignores other lengths.
            spdlog::warn("access link {}: station {}: hnp {} is not a /64; SLAAC will not use it", ifname_,
                         mac.to_string(), cfg.hnp->to_string());
        }
    }
    std::optional<Ipv6Prefix> old;
    auto it = stations_.find(mac);
    if (it != stations_.end()) {
        old = it->second.cfg.hnp;
        it->second.cfg = cfg;
    } else {
        it = stations_.emplace(mac, Station{cfg, {}, 0}).first;
    }
    spdlog::info("access link {}: station {} {}", ifname_, mac.to_string(), describe(cfg));
    std::vector<Ipv6Prefix> withdrawn;
    if (old && old != cfg.hnp) {
        withdrawn.push_back(*old);
    }
    const bool new_prefix = cfg.hnp && old != cfg.hnp;
    if (new_prefix) {
        it->second.initial_ras_left = kMaxInitialAdvertisements - 1;  // this one is the first
    }
    if (new_prefix || !withdrawn.empty()) {
        send_ra(mac, cfg.hnp, &it->second.cfg, withdrawn, false);
        schedule_periodic(it->second, Clock::now());
    }
}

void AccessLink::remove_station(const MacAddress& mac) {
    auto it = stations_.find(mac);
    if (it == stations_.end()) {
        spdlog::debug("access link {}: remove_station {}: no such station", ifname_, mac.to_string());
        return;
    }
    std::optional<Ipv6Prefix> hnp = it->second.cfg.hnp;
    stations_.erase(it);
    spdlog::info("access link {}: station {} removed", ifname_, mac.to_string());
    if (hnp) {
        // RFC 4861 §6.2.5 (ceasing to advertise) and RFC 4862 §5.5.3 (e): Router Lifetime 0 drops
        // us as default router; Preferred Lifetime 0 deprecates the address at once (its Valid
        // Lifetime 0 is honoured down to the 2-hour floor only, which is why we say it once).
        send_ra(mac, std::nullopt, nullptr, {*hnp}, false);
    }
}

void AccessLink::advertise(const MacAddress& mac) {
    auto it = stations_.find(mac);
    if (it == stations_.end() || !it->second.cfg.hnp) {
        return;
    }
    send_ra(mac, it->second.cfg.hnp, &it->second.cfg, {}, false);
    schedule_periodic(it->second, Clock::now());
}

std::chrono::milliseconds AccessLink::tick() {
    const auto now = Clock::now();
    auto next = now + options_.ra_max_interval;
    // send_ra() does not touch stations_, so the iteration is safe.
    for (auto& [mac, st] : stations_) {
        if (!st.cfg.hnp) {
            continue;
        }
        if (st.next_ra <= now) {
            send_ra(mac, st.cfg.hnp, &st.cfg, {}, false);
            schedule_periodic(st, now);
        }
        next = std::min(next, st.next_ra);
    }
    return std::max(std::chrono::milliseconds{0}, std::chrono::ceil<std::chrono::milliseconds>(next - now));
}

void AccessLink::schedule_periodic(Station& st, Clock::time_point now) {
    std::uniform_int_distribution<std::int64_t> pick(options_.ra_min_interval.count(), options_.ra_max_interval.count());
    std::chrono::milliseconds interval{pick(rng_)};
    if (st.initial_ras_left > 0) {
        // RFC 4861 §6.2.4: the first few unsolicited RAs at most MAX_INITIAL_RTR_ADVERT_INTERVAL
        // apart, in case the first is lost.
        interval = std::min(interval, options_.initial_ra_interval);
        --st.initial_ras_left;
    }
    st.next_ra = now + interval;
}

void AccessLink::send_ra(const MacAddress& mac, const std::optional<Ipv6Prefix>& prefix, const StationConfig* cfg,
                         const std::vector<Ipv6Prefix>& withdrawn, bool solicited) {
    if (!link_local_) {
        // The interface may have gained its link-local address since we started (DAD done).
        if (auto info = netlink::find_interface(ifname_)) {
            for (const auto& a : info->ipv6) {
                if (a.is_link_local()) {
                    link_local_ = a;
                    break;
                }
            }
        }
        if (!link_local_) {
            ++counters_.send_errors;
            spdlog::warn("access link {}: no IPv6 link-local address: Router Advertisement to {} not sent", ifname_,
                         mac.to_string());
            return;
        }
    }
    RouterAdvertisement ra;
    // RFC 5213 §6.7: the prefix is the MN's own, so on a shared link the RA goes to the MN's
    // MAC only: link-layer unicast, IPv6 destination all-nodes (RFC 4861 §6.2.6 allows either).
    ra.dst_mac = mac;
    ra.src_mac = mac_;
    ra.src = *link_local_;
    ra.dst = all_nodes();
    ra.cur_hop_limit = options_.cur_hop_limit;
    ra.router_lifetime = prefix ? options_.router_lifetime_seconds : 0;
    ra.mtu = options_.advertised_mtu;
    if (prefix && cfg) {
        PrefixInformation pio;
        pio.prefix = *prefix;
        pio.valid_lifetime = cfg->lifetime_seconds;
        pio.preferred_lifetime = cfg->preferred_lifetime_seconds.value_or(cfg->lifetime_seconds);
        ra.prefixes.push_back(pio);
    }
    for (const auto& w : withdrawn) {
        PrefixInformation pio;
        pio.prefix = w;
        ra.prefixes.push_back(pio);   // lifetimes 0
    }
    send_frame(mac, build_router_advertisement(ra), "Router Advertisement");
    ++counters_.ra_sent;
    if (solicited) {
        ++counters_.ra_solicited;
    }
    if (!withdrawn.empty()) {
        ++counters_.ra_withdrawals;
    }
    spdlog::debug("access link {}: RA to {} prefix {} withdrawn {}{}", ifname_, mac.to_string(),
                  prefix ? prefix->to_string() : "-", withdrawn.size(), solicited ? " (solicited)" : "");
}

void AccessLink::send_frame(const MacAddress& dst, const std::vector<std::uint8_t>& frame, const char* what) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, dst.bytes.data(), 6);
    if (::sendto(fd_.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
        // The link going down is an ordinary event on an access link: count it, do not throw.
        ++counters_.send_errors;
        spdlog::warn("access link {}: sending {} to {}: {}", ifname_, what, dst.to_string(), std::strerror(errno));
    }
}

void AccessLink::handle_readable() {
    auto& buf = rx_buffer_;
    for (std::size_t n = 0; n < kMaxFramesPerCall; ++n) {
        sockaddr_ll from{};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof(from);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        ssize_t got = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno == ENETDOWN) {   // reported once when the interface goes down
                spdlog::warn("access link {}: interface went down", ifname_);
                continue;
            }
            fail_errno(ifname_, "recvmsg");
        }
        ++counters_.frames;
        if (from.sll_pkttype == PACKET_OUTGOING || (msg.msg_flags & MSG_TRUNC)) {
            continue;
        }
        bool unverifiable = false;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
                tpacket_auxdata aux;
                std::memcpy(&aux, CMSG_DATA(c), sizeof(aux));
                unverifiable = (aux.tp_status & TP_STATUS_CSUMNOTREADY) != 0;
            }
        }
        handle_frame(buf.data(), static_cast<std::size_t>(got), unverifiable);
    }
}

void AccessLink::handle_frame(const std::uint8_t* data, std::size_t len, bool checksum_unverifiable) {
    if (len < kEthernetHeader) {
        ++counters_.malformed;
        return;
    }
    const std::uint16_t type = static_cast<std::uint16_t>((data[12] << 8) | data[13]);
    if (type == kEtherTypeIpv6) {
        handle_router_solicitation(data, len, checksum_unverifiable);
    } else if (type == kEtherTypeIpv4) {
        handle_dhcp(data, len, checksum_unverifiable);
    } else if (type == kEtherTypeArp) {
        handle_arp(data, len);
    }
}

bool AccessLink::report_unknown(const MacAddress& mac) {
    const auto now = Clock::now();
    auto it = unknown_seen_.find(mac);
    if (it != unknown_seen_.end()) {
        if (now - it->second < options_.unknown_station_interval) {
            ++counters_.unknown_suppressed;
            return false;
        }
        it->second = now;
    } else {
        if (unknown_seen_.size() >= kUnknownPruneAt) {
            std::erase_if(unknown_seen_,
                          [&](const auto& e) { return now - e.second >= options_.unknown_station_interval; });
        }
        if (unknown_seen_.size() >= kUnknownMax) {
            // So many MACs within one interval is a flood (or spoofing): drive no registrations.
            ++counters_.unknown_suppressed;
            return false;
        }
        unknown_seen_.emplace(mac, now);
    }
    ++counters_.unknown_reported;
    spdlog::info("access link {}: unknown station {}", ifname_, mac.to_string());
    if (on_unknown_station) {
        on_unknown_station(mac);
    }
    return true;
}

void AccessLink::handle_router_solicitation(const std::uint8_t* data, std::size_t len, bool skip_checksum) {
    RouterSolicitation rs;
    try {
        rs = parse_router_solicitation(std::span(data, len), !skip_checksum);
    } catch (const MalformedFrame& e) {
        ++counters_.malformed;
        spdlog::debug("access link {}: dropped: {}", ifname_, e.what());
        return;
    }
    ++counters_.rs_received;
    auto it = stations_.find(rs.src_mac);
    if (it == stations_.end()) {
        if (!report_unknown(rs.src_mac)) {
            return;
        }
        it = stations_.find(rs.src_mac);   // the callback may have attached it
        if (it == stations_.end()) {
            return;
        }
    }
    if (!it->second.cfg.hnp) {
        return;   // an IPv4-only station: nothing to advertise
    }
    send_ra(rs.src_mac, it->second.cfg.hnp, &it->second.cfg, {}, true);
}

void AccessLink::handle_arp(const std::uint8_t* data, std::size_t len) {
    ArpRequest req;
    try {
        req = parse_arp_request(std::span(data, len));
    } catch (const MalformedFrame& e) {
        spdlog::trace("access link {}: ARP ignored: {}", ifname_, e.what());   // replies, other kinds
        return;
    }
    ++counters_.arp_requests;
    // RFC 5844 §3.3.3: the MN's default router is this MAG. The router address may exist on no
    // interface here (several realms' MNs share the link), so we answer for it - to that MN only,
    // and only with the router address the MN was given.
    auto it = stations_.find(req.src_mac);
    if (it == stations_.end() || req.sender_mac != req.src_mac || !it->second.cfg.ipv4_router ||
        *it->second.cfg.ipv4_router != req.target_ip) {
        return;
    }
    send_frame(req.sender_mac, build_arp_reply(mac_, req.target_ip, req), "ARP reply");
    ++counters_.arp_replies;
    spdlog::debug("access link {}: ARP {} is-at {} to {}", ifname_, req.target_ip.to_string(), mac_.to_string(),
                  req.sender_mac.to_string());
}

namespace {

// The BOOTREPLY header fields for `req`. RFC 2131 §4.3.1 Table 3: ciaddr 0 in OFFER and NAK,
// the client's in ACK; yiaddr the address in OFFER / ACK, but not in an ACK to INFORM (§4.3.5).
DhcpMessage reply_header(const DhcpMessage& req, DhcpType type, DhcpType rtype, const StationConfig& cfg) {
    DhcpMessage m;
    m.op = 2;
    m.xid = req.xid;
    m.flags = req.flags;
    m.giaddr = req.giaddr;
    m.chaddr = req.chaddr;
    if (rtype == DhcpType::Ack) {
        m.ciaddr = req.ciaddr;
    }
    if (rtype == DhcpType::Offer || (rtype == DhcpType::Ack && type != DhcpType::Inform)) {
        m.yiaddr = *cfg.ipv4_address;
    }
    return m;
}

// The station's configuration in an OFFER or ACK: lease times, mask, router, routes, DNS.
void add_configuration_options(DhcpMessage& m, DhcpType type, const StationConfig& cfg) {
    const Ipv4Address server_id = *cfg.ipv4_router;
    if (type != DhcpType::Inform) {
        // RFC 2131 §4.3.5: no lease time in an ACK to INFORM. T1 = 0.5, T2 = 0.875 of the lease (§4.4.5).
        const std::uint32_t lease = cfg.lifetime_seconds;
        m.options.emplace_back(dhcp_option::kLeaseTime, be32(lease));
        m.options.emplace_back(dhcp_option::kRenewalTime, be32(lease / 2));
        m.options.emplace_back(dhcp_option::kRebindingTime,
                               be32(static_cast<std::uint32_t>(std::uint64_t{lease} * 7 / 8)));
    }
    m.options.emplace_back(dhcp_option::kSubnetMask, bytes_of(netmask(cfg.ipv4_prefix_length)));
    m.options.emplace_back(dhcp_option::kRouter, bytes_of(server_id));
    if (cfg.ipv4_prefix_length == 32) {
        m.options.emplace_back(dhcp_option::kClasslessStaticRoute, routes_to_off_subnet_router(server_id));
    }
    if (!cfg.dns_servers.empty()) {
        std::vector<std::uint8_t> dns;
        for (const auto& d : cfg.dns_servers) {
            dns.insert(dns.end(), d.bytes.begin(), d.bytes.end());
        }
        m.options.emplace_back(dhcp_option::kDns, std::move(dns));
    }
}

// The `rtype` answer to the client message `req` of type `type`.
DhcpMessage dhcp_reply(const DhcpMessage& req, DhcpType type, DhcpType rtype, const StationConfig& cfg,
                       const std::string& nak_message) {
    DhcpMessage m = reply_header(req, type, rtype, cfg);
    m.options.emplace_back(dhcp_option::kMessageType, std::vector<std::uint8_t>{static_cast<std::uint8_t>(rtype)});
    m.options.emplace_back(dhcp_option::kServerId, bytes_of(*cfg.ipv4_router));
    if (rtype == DhcpType::Nak) {
        m.options.emplace_back(dhcp_option::kMessage, std::vector<std::uint8_t>(nak_message.begin(), nak_message.end()));
    } else {
        add_configuration_options(m, type, cfg);
    }
    if (const auto* cid = req.option(dhcp_option::kClientId)) {
        m.options.emplace_back(dhcp_option::kClientId, *cid);   // RFC 6842 §3: echo it
    }
    return m;
}

// RFC 2131 §4.1 (giaddr 0): NAK and B-flag replies to 255.255.255.255, a client with ciaddr to
// ciaddr, else to yiaddr. The link-layer destination is always the client's MAC (chaddr): the
// broadcast-flag clients read it all the same, and the other stations on a shared link (maybe
// of another realm) never see another MN's answer.
Ipv4Address reply_destination(const DhcpMessage& req, const DhcpMessage& reply, DhcpType rtype) {
    Ipv4Address dst = Ipv4Address::from_host_order(0xffffffff);
    if (rtype != DhcpType::Nak) {
        if (!req.ciaddr.is_unspecified()) {
            dst = req.ciaddr;
        } else if (!(req.flags & kDhcpBroadcastFlag)) {
            dst = reply.yiaddr;
        }
    }
    return dst;
}

} // namespace

void AccessLink::handle_dhcp(const std::uint8_t* data, std::size_t len, bool skip_checksum) {
    DhcpFrame f;
    try {
        f = parse_dhcp_frame(std::span(data, len), !skip_checksum);
    } catch (const MalformedFrame& e) {
        ++counters_.malformed;
        spdlog::debug("access link {}: dropped: {}", ifname_, e.what());
        return;
    }
    const DhcpMessage& req = f.message;
    const auto type = req.type();
    if (req.op != 1 || !type) {
        ++counters_.dhcp_ignored;   // a reply (another server on the link) or plain BOOTP
        return;
    }
    if (!count_dhcp_request(*type)) {
        return;
    }
    if (const StationConfig* cfg = dhcp_client(f, *type)) {
        answer_dhcp(req, *type, *cfg);
    }
}

bool AccessLink::count_dhcp_request(DhcpType type) {
    switch (type) {
    case DhcpType::Discover: ++counters_.dhcp_discover; return true;
    case DhcpType::Request: ++counters_.dhcp_request; return true;
    case DhcpType::Inform: ++counters_.dhcp_inform; return true;
    case DhcpType::Release: ++counters_.dhcp_release; return true;
    case DhcpType::Decline: ++counters_.dhcp_decline; return true;
    default:
        ++counters_.dhcp_ignored;
        return false;
    }
}

const StationConfig* AccessLink::dhcp_client(const DhcpFrame& f, DhcpType type) {
    const DhcpMessage& req = f.message;
    const MacAddress mac = req.chaddr;
    if (!req.giaddr.is_unspecified() || f.src_mac != mac) {
        // Relayed, or chaddr is not the sender: we serve the stations on this link, identified by
        // their own link-layer address (RFC 5213 §6.6), never one station on another's behalf.
        ++counters_.dhcp_ignored;
        spdlog::debug("access link {}: {} for {} from {} giaddr {}: not served", ifname_, to_string(type),
                      mac.to_string(), f.src_mac.to_string(), req.giaddr.to_string());
        return nullptr;
    }
    auto it = stations_.find(mac);
    if (it == stations_.end() && (type == DhcpType::Discover || type == DhcpType::Request)) {
        if (report_unknown(mac)) {
            it = stations_.find(mac);
        }
    }
    if (it == stations_.end() || !it->second.cfg.ipv4_address) {
        // RFC 2131 §4.3.2: a server with no record of the client remains silent.
        ++counters_.dhcp_ignored;
        return nullptr;
    }
    return &it->second.cfg;
}

void AccessLink::answer_dhcp(const DhcpMessage& req, DhcpType type, const StationConfig& cfg) {
    const MacAddress mac = req.chaddr;
    switch (type) {
    case DhcpType::Discover:
        // The requested address (option 50), if any, is only a hint: the LMA assigned this one.
        send_dhcp_reply(req, type, cfg, DhcpType::Offer);
        return;
    case DhcpType::Request:
        answer_dhcp_request(req, cfg);
        return;
    case DhcpType::Inform:
        send_dhcp_reply(req, type, cfg, DhcpType::Ack);
        return;
    case DhcpType::Release:
        // The address stays the MN's (the LMA assigned it for the mobility session); a later
        // DISCOVER gets it again. The owner may take the release as a sign of detachment.
        spdlog::info("access link {}: DHCPRELEASE from {} of {}", ifname_, mac.to_string(), req.ciaddr.to_string());
        if (on_release) {
            on_release(mac);
        }
        return;
    case DhcpType::Decline: {
        // RFC 2131 §4.3.3: the client found the address in use. We have no other to offer: the
        // address comes from the LMA. Someone on the link is using a MN's home address.
        const auto requested = req.address_option(dhcp_option::kRequestedAddress);
        spdlog::warn("access link {}: DHCPDECLINE from {} of {}: the address is in use on the link", ifname_,
                     mac.to_string(), requested ? requested->to_string() : "(none)");
        return;
    }
    default:
        return;
    }
}

void AccessLink::answer_dhcp_request(const DhcpMessage& req, const StationConfig& cfg) {
    const Ipv4Address server_id = *cfg.ipv4_router;
    const auto requested = req.address_option(dhcp_option::kRequestedAddress);
    const auto their_server = req.address_option(dhcp_option::kServerId);
    const auto ack = [&] { send_dhcp_reply(req, DhcpType::Request, cfg, DhcpType::Ack); };
    const auto nak = [&](const std::string& why) { send_dhcp_reply(req, DhcpType::Request, cfg, DhcpType::Nak, why); };
    // RFC 2131 §4.3.2: SELECTING carries our server identifier and the requested address;
    // INIT-REBOOT the requested address only; RENEWING / REBINDING neither, with ciaddr set.
    if (their_server) {
        if (*their_server != server_id) {
            ++counters_.dhcp_ignored;   // the client took another server's offer
            return;
        }
        if (requested == cfg.ipv4_address) {
            ack();
        } else {
            nak(fmt::format("requested address {} is not this client's",
                            requested ? requested->to_string() : "(none)"));
        }
    } else if (requested) {
        if (*requested == *cfg.ipv4_address) {
            ack();
        } else {
            nak(fmt::format("requested address {} is not this client's", requested->to_string()));
        }
    } else if (!req.ciaddr.is_unspecified()) {
        if (req.ciaddr == *cfg.ipv4_address) {
            ack();
        } else {
            nak(fmt::format("address {} is not this client's", req.ciaddr.to_string()));
        }
    } else {
        ++counters_.malformed;
        spdlog::debug("access link {}: DHCPREQUEST from {} names no address", ifname_, req.chaddr.to_string());
    }
}

void AccessLink::send_dhcp_reply(const DhcpMessage& req, DhcpType type, const StationConfig& cfg, DhcpType rtype,
                                 const std::string& nak_message) {
    const MacAddress mac = req.chaddr;
    const Ipv4Address server_id = *cfg.ipv4_router;
    const DhcpMessage m = dhcp_reply(req, type, rtype, cfg, nak_message);
    const Ipv4Address dst = reply_destination(req, m, rtype);
    send_frame(mac, build_dhcp_frame(mac, mac_, server_id, dst, kDhcpServerPort, kDhcpClientPort, ip_id_++, m),
               to_string(rtype).c_str());
    switch (rtype) {
    case DhcpType::Offer: ++counters_.dhcp_offer; break;
    case DhcpType::Ack: ++counters_.dhcp_ack; break;
    case DhcpType::Nak: ++counters_.dhcp_nak; break;
    default: break;
    }
    spdlog::info("access link {}: {} from {} -> {} {} (to {})", ifname_, to_string(type), mac.to_string(),
                 to_string(rtype), rtype == DhcpType::Nak ? nak_message : cfg.ipv4_address->to_string(),
                 dst.to_string());
}

} // namespace xpmip::access
