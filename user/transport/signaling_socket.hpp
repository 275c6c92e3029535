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

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
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

    // The datagrams waiting, up to kBatch, with one recvmmsg (empty: none waiting). They stay
    // valid until the next call, which reuses their buffers. Throws SocketError.
    const std::vector<Datagram>& receive_batch();
    // Send `mh` (checksum field 0) to dst (UDP: dst_port) from src, now.
    void send(const std::vector<std::uint8_t>& mh, const IpAddress& src, const IpAddress& dst,
              std::uint16_t dst_port = wire::kUdpPortPmipControl);
    // The same, queued: flush() sends everything queued with one sendmmsg (queue() flushes by
    // itself when kBatch are waiting). flush() returns what could not be sent, one line each.
    void queue(const std::vector<std::uint8_t>& mh, const IpAddress& src, const IpAddress& dst,
               std::uint16_t dst_port = wire::kUdpPortPmipControl);
    std::vector<std::string> flush();

    static constexpr std::size_t kBatch = 64;
    static constexpr std::size_t kMaxMessage = 8192;   // larger datagrams arrive truncated (malformed)

    ~SignalingSocket();
    SignalingSocket(SignalingSocket&&) noexcept;
    SignalingSocket& operator=(SignalingSocket&&) noexcept;

private:
    struct Batches;
    SignalingSocket(UniqueFd fd, wire::Transport t);
    UniqueFd fd_;
    wire::Transport transport_;
    std::unique_ptr<Batches> batches_;   // recvmmsg / sendmmsg buffers, allocated once
    std::vector<std::string> send_errors_;
    std::vector<Datagram> received_;
};

} // namespace xpmip::transport
