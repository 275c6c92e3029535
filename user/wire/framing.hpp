// The two framings of PMIPv6 signaling:
//   IPv6:        IPv6 (Next Header 135) / Mobility Header, MH checksum over the IPv6
//                pseudo-header (RFC 6275 §6.1.1);
//   IPv4 / UDP:  IPv4 / UDP dport 5436 / Mobility Header, MH checksum 0 and ignored on
//                receipt, the UDP checksum covers the message (RFC 5844 §3).
#pragma once

#include "common/address.hpp"
#include "wire/messages.hpp"

#include <initializer_list>

namespace xpmip::wire {

// RFC 1071 ones' complement sum over several buffers, as if concatenated; returns the
// complemented 16-bit checksum in host order.
std::uint16_t internet_checksum(std::initializer_list<ByteView> parts);

// MH checksum over the IPv6 pseudo-header (RFC 6275 §6.1.1, RFC 8200 §8.1).
std::uint16_t mh_checksum(ByteView mh, const Ipv6Address& src, const Ipv6Address& dst);
void fill_mh_checksum(Bytes& mh, const Ipv6Address& src, const Ipv6Address& dst);
bool mh_checksum_ok(ByteView mh, const Ipv6Address& src, const Ipv6Address& dst);

// Whole IP packets carrying `message` (no link-layer header), e.g. for pcaps and tests.
Bytes frame_ipv6(const MobilityMessage& message, const Ipv6Address& src, const Ipv6Address& dst,
                 std::uint8_t hop_limit = 255);
Bytes frame_ipv4_udp(const MobilityMessage& message, const Ipv4Address& src, const Ipv4Address& dst,
                     std::uint16_t src_port, std::uint16_t dst_port = kUdpPortPmipControl);

enum class Transport { Ipv6, Ipv4Udp };

struct ReceivedPacket {
    Transport transport = Transport::Ipv6;
    Ipv6Address src6, dst6;    // Transport::Ipv6
    Ipv4Address src4, dst4;    // Transport::Ipv4Udp
    std::uint16_t src_port = 0, dst_port = 0;
    MobilityMessage message;
};

// Parse a whole IPv4 or IPv6 packet (told apart by the version nibble): validates the IP
// header, (for IPv4) the UDP header, length and checksum, and (for IPv6) the MH checksum,
// then decodes the Mobility Header. Throws WireError naming the field; offsets here are
// from the start of the packet.
ReceivedPacket parse_packet(ByteView packet);

} // namespace xpmip::wire
