// The two signaling transports of PMIPv6, as sockets:
//   IPv6:       a raw IPPROTO_MH socket. The kernel computes the MH checksum on send and
//               verifies it on receipt (raw IPv6 sockets of protocol 135 checksum at offset 4).
//   IPv4/UDP:   a UDP socket on 5436 (RFC 5844 §3); the MH checksum is 0 and ignored.
// Both report the address a message was sent to (IPV6_PKTINFO / IP_PKTINFO) and send from a
// chosen local address, so a gateway with several addresses answers from the one asked.
#pragma once

#include "common/address.hpp"
#include "common/fd.hpp"
#include "wire/framing.hpp"

#include <optional>
#include <stdexcept>
#include <vector>

namespace xpmip::transport {

class SocketError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Datagram {
    wire::Transport transport = wire::Transport::Ipv6;
    IpAddress src;
    IpAddress dst;
    std::uint16_t src_port = 0;
    std::uint32_t ifindex = 0;      // the interface it arrived on
    std::vector<std::uint8_t> mh;   // the Mobility Header
};

class SignalingSocket {
public:
    // IPv6: raw MH socket. IPv4: UDP bound to `port` on every address.
    static SignalingSocket open_ipv6();
    static SignalingSocket open_ipv4_udp(std::uint16_t port = wire::kUdpPortPmipControl);

    int fd() const { return fd_.get(); }
    wire::Transport transport() const { return transport_; }

    // One datagram, or nothing when none is waiting (non-blocking). Throws SocketError.
    std::optional<Datagram> receive();
    // Send `mh` (checksum field 0) to dst (UDP: dst_port) from src.
    void send(const std::vector<std::uint8_t>& mh, const IpAddress& src, const IpAddress& dst,
              std::uint16_t dst_port = wire::kUdpPortPmipControl);

private:
    SignalingSocket(UniqueFd fd, wire::Transport t) : fd_(std::move(fd)), transport_(t) {}
    UniqueFd fd_;
    wire::Transport transport_;
};

} // namespace xpmip::transport
