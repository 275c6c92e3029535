#include "wire/framing.hpp"

#include <fmt/format.h>

namespace xpmip::wire {

namespace {

constexpr std::uint8_t kIpProtoUdp = 17;
constexpr std::size_t kIpv6HeaderLength = 40;
constexpr std::size_t kIpv4HeaderLength = 20;
constexpr std::size_t kUdpHeaderLength = 8;

Bytes pseudo_header_v6(const Ipv6Address& src, const Ipv6Address& dst, std::size_t length, std::uint8_t next) {
    Bytes ph;
    ByteWriter w(ph);
    w.bytes(src.bytes);
    w.bytes(dst.bytes);
    w.u32(static_cast<std::uint32_t>(length));
    w.zeros(3);
    w.u8(next);
    return ph;
}

Bytes pseudo_header_v4(const Ipv4Address& src, const Ipv4Address& dst, std::size_t length, std::uint8_t proto) {
    Bytes ph;
    ByteWriter w(ph);
    w.bytes(src.bytes);
    w.bytes(dst.bytes);
    w.u8(0);
    w.u8(proto);
    w.u16(static_cast<std::uint16_t>(length));
    return ph;
}

// Decode the MH and re-base its error offsets onto the packet, keeping the error's class so that
// an UnsupportedMessageError (and its MH Type) reaches the caller as such.
MobilityMessage decode_at(ByteView mh, std::size_t mh_offset) {
    const auto rebase = [mh_offset](const WireError& e) {
        return e.offset() == WireError::kNoOffset ? e.offset() : e.offset() + mh_offset;
    };
    try {
        return decode(mh);
    } catch (const UnsupportedMessageError& e) {
        throw UnsupportedMessageError("Mobility Header " + e.field(), rebase(e), e.reason(), e.mh_type());
    } catch (const WireError& e) {
        throw WireError("Mobility Header " + e.field(), rebase(e), e.reason());
    }
}

} // namespace

std::uint16_t internet_checksum(std::initializer_list<ByteView> parts) {
    std::uint32_t sum = 0;
    bool odd = false;  // an odd-length part leaves the next octet in the low byte
    for (auto part : parts) {
        for (auto b : part) {
            sum += odd ? b : static_cast<std::uint32_t>(b) << 8;
            odd = !odd;
        }
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

std::uint16_t mh_checksum(ByteView mh, const Ipv6Address& src, const Ipv6Address& dst) {
    const auto ph = pseudo_header_v6(src, dst, mh.size(), kIpProtoMobilityHeader);
    return internet_checksum({ph, mh});
}

void fill_mh_checksum(Bytes& mh, const Ipv6Address& src, const Ipv6Address& dst) {
    ByteWriter w(mh);
    w.patch_u16(kMhChecksumOffset, 0);
    w.patch_u16(kMhChecksumOffset, mh_checksum(mh, src, dst));
}

bool mh_checksum_ok(ByteView mh, const Ipv6Address& src, const Ipv6Address& dst) {
    // Summing over a correctly checksummed message gives 0 after complement.
    return mh_checksum(mh, src, dst) == 0;
}

Bytes frame_ipv6(const MobilityMessage& message, const Ipv6Address& src, const Ipv6Address& dst,
                 std::uint8_t hop_limit) {
    auto mh = encode(message);
    fill_mh_checksum(mh, src, dst);
    Bytes pkt;
    ByteWriter w(pkt);
    w.u32(0x60000000);  // version 6, traffic class 0, flow label 0
    w.u16(static_cast<std::uint16_t>(mh.size()));
    w.u8(kIpProtoMobilityHeader);
    w.u8(hop_limit);
    w.bytes(src.bytes);
    w.bytes(dst.bytes);
    w.bytes(mh);
    return pkt;
}

Bytes frame_ipv4_udp(const MobilityMessage& message, const Ipv4Address& src, const Ipv4Address& dst,
                     std::uint16_t src_port, std::uint16_t dst_port) {
    const auto mh = encode(message);  // checksum stays 0 (RFC 5844 §3)
    const std::size_t udp_len = kUdpHeaderLength + mh.size();
    Bytes pkt;
    ByteWriter w(pkt);
    w.u8(0x45);  // version 4, IHL 5
    w.u8(0);     // DSCP/ECN
    w.u16(static_cast<std::uint16_t>(kIpv4HeaderLength + udp_len));
    w.u16(0);       // identification
    w.u16(0x4000);  // DF
    w.u8(64);       // TTL
    w.u8(kIpProtoUdp);
    w.u16(0);  // header checksum, below
    w.bytes(src.bytes);
    w.bytes(dst.bytes);
    w.patch_u16(10, internet_checksum({ByteView(pkt).subspan(0, kIpv4HeaderLength)}));
    const std::size_t udp_at = pkt.size();
    w.u16(src_port);
    w.u16(dst_port);
    w.u16(static_cast<std::uint16_t>(udp_len));
    w.u16(0);
    w.bytes(mh);
    const auto ph = pseudo_header_v4(src, dst, udp_len, kIpProtoUdp);
    std::uint16_t csum = internet_checksum({ph, ByteView(pkt).subspan(udp_at)});
    w.patch_u16(udp_at + 6, csum == 0 ? 0xffff : csum);  // RFC 768: 0 means "no checksum"
    return pkt;
}

namespace {

// Next Header 135, Payload Length, then the MH checksum before the MH itself is decoded.
ReceivedPacket parse_ipv6_packet(ByteView packet) {
    ByteReader r(packet);
    ReceivedPacket out;
    r.skip(4, "IPv6 version/class/flow");
    const auto payload_len = r.u16("IPv6 Payload Length");
    const auto next = r.u8("IPv6 Next Header");
    r.skip(1, "IPv6 Hop Limit");
    auto s = r.bytes(16, "IPv6 Source Address");
    auto d = r.bytes(16, "IPv6 Destination Address");
    std::copy(s.begin(), s.end(), out.src6.bytes.begin());
    std::copy(d.begin(), d.end(), out.dst6.bytes.begin());
    if (next != kIpProtoMobilityHeader) {
        throw WireError("IPv6 Next Header", 6, fmt::format("{} is not a Mobility Header (135)", next));
    }
    // RFC 8200 §3: Payload Length counts the octets after the IPv6 header. Octets beyond it
    // (link-layer padding) are not part of the packet and are ignored; fewer is truncation.
    if (payload_len > r.remaining()) {
        throw WireError("IPv6 Payload Length", 4,
                        fmt::format("{} exceeds the {} octet(s) after the header", payload_len, r.remaining()));
    }
    const auto mh = r.bytes(payload_len, "IPv6 payload");
    // RFC 6275 §9.2: "The checksum must be verified as per Section 6.1. Otherwise, the node
    // MUST silently discard the message" - before anything in the message is looked at. A
    // header too short to hold the Checksum field is left to decode(), which rejects it.
    if (mh.size() >= kMhChecksumOffset + 2 && !mh_checksum_ok(mh, out.src6, out.dst6)) {
        throw WireError("Mobility Header Checksum", kIpv6HeaderLength + kMhChecksumOffset,
                        fmt::format("0x{:04x} is wrong for this pseudo-header", load_be16(&mh[kMhChecksumOffset])));
    }
    out.message = decode_at(mh, kIpv6HeaderLength);
    out.transport = Transport::Ipv6;
    return out;
}

struct Ipv4Header {
    std::size_t ihl = 0;               // header length in octets, options included
    std::uint16_t total_length = 0;
    std::uint16_t flags_fragment = 0;
    std::uint8_t protocol = 0;
};

// The fixed IPv4 header and its options; the addresses go into `out`.
Ipv4Header read_ipv4_header(ByteView packet, ReceivedPacket& out) {
    Ipv4Header h;
    h.ihl = (packet[0] & 0x0f) * 4u;
    if (h.ihl < kIpv4HeaderLength) {
        throw WireError("IPv4 IHL", 0, fmt::format("{} octets is shorter than 20", h.ihl));
    }
    ByteReader r(packet);
    r.skip(2, "IPv4 version/IHL/DSCP");
    h.total_length = r.u16("IPv4 Total Length");
    r.skip(2, "IPv4 Identification");
    h.flags_fragment = r.u16("IPv4 Flags/Fragment Offset");
    r.skip(1, "IPv4 TTL");
    h.protocol = r.u8("IPv4 Protocol");
    r.skip(2, "IPv4 Header Checksum");
    auto s = r.bytes(4, "IPv4 Source Address");
    auto d = r.bytes(4, "IPv4 Destination Address");
    std::copy(s.begin(), s.end(), out.src4.bytes.begin());
    std::copy(d.begin(), d.end(), out.dst4.bytes.begin());
    r.skip(h.ihl - kIpv4HeaderLength, "IPv4 Options");
    return h;
}

// The datagram of `packet` (trailing padding cut off) once its header checksum is right and it
// is an unfragmented UDP datagram.
ByteView checked_ipv4_datagram(ByteView packet, const Ipv4Header& h) {
    // RFC 791 §3.1: Total Length is the datagram length, header included. Octets beyond it
    // (Ethernet pads frames to 60 octets) are not part of the datagram and are ignored.
    if (h.total_length > packet.size()) {
        throw WireError("IPv4 Total Length", 2,
                        fmt::format("{} exceeds the {} octet(s) received", h.total_length, packet.size()));
    }
    if (h.total_length < h.ihl) {
        throw WireError("IPv4 Total Length", 2,
                        fmt::format("{} is shorter than the {}-octet header", h.total_length, h.ihl));
    }
    packet = packet.first(h.total_length);
    if (internet_checksum({packet.subspan(0, h.ihl)}) != 0) {
        throw WireError("IPv4 Header Checksum", 10, "wrong");
    }
    if ((h.flags_fragment & 0x3fff) != 0) {
        throw WireError("IPv4 Flags/Fragment Offset", 6, "fragments are not reassembled here");
    }
    if (h.protocol != kIpProtoUdp) {
        throw WireError("IPv4 Protocol", 9, fmt::format("{} is not UDP (17)", h.protocol));
    }
    return packet;
}

// The UDP header of an RFC 5844 §3 datagram: its Length, the PMIPv6 control port on one side,
// its checksum when nonzero.
void check_udp_header(ByteView datagram, std::size_t udp_at, std::uint16_t udp_len, std::uint16_t udp_csum,
                      const ReceivedPacket& out) {
    if (udp_len != datagram.size() - udp_at) {
        throw WireError("UDP Length", udp_at + 4,
                        fmt::format("{} disagrees with the {} octet(s) of UDP datagram", udp_len,
                                    datagram.size() - udp_at));
    }
    if (out.src_port != kUdpPortPmipControl && out.dst_port != kUdpPortPmipControl) {
        throw WireError("UDP Destination Port", udp_at + 2,
                        fmt::format("neither port ({} -> {}) is the PMIPv6 control port 5436", out.src_port,
                                    out.dst_port));
    }
    if (udp_csum != 0) {
        const auto ph = pseudo_header_v4(out.src4, out.dst4, udp_len, kIpProtoUdp);
        if (internet_checksum({ph, datagram.subspan(udp_at)}) != 0) {
            throw WireError("UDP Checksum", udp_at + 6, fmt::format("0x{:04x} is wrong", udp_csum));
        }
    }
}

ReceivedPacket parse_ipv4_udp_packet(ByteView packet) {
    ReceivedPacket out;
    const Ipv4Header h = read_ipv4_header(packet, out);
    const ByteView datagram = checked_ipv4_datagram(packet, h);
    ByteReader r(datagram);
    r.skip(h.ihl, "IPv4 header");
    const std::size_t udp_at = r.offset();
    out.src_port = r.u16("UDP Source Port");
    out.dst_port = r.u16("UDP Destination Port");
    const auto udp_len = r.u16("UDP Length");
    const auto udp_csum = r.u16("UDP Checksum");
    check_udp_header(datagram, udp_at, udp_len, udp_csum, out);
    // RFC 5844 §3: the MH checksum is 0 over UDP and ignored on receipt.
    out.message = decode_at(r.rest(), udp_at + kUdpHeaderLength);
    out.transport = Transport::Ipv4Udp;
    return out;
}

} // namespace

ReceivedPacket parse_packet(ByteView packet) {
    if (packet.empty()) {
        throw WireError("IP version", 0, "empty packet");
    }
    const unsigned version = packet[0] >> 4;
    if (version == 6) {
        return parse_ipv6_packet(packet);
    }
    if (version != 4) {
        throw WireError("IP version", 0, fmt::format("{} is neither 4 nor 6", version));
    }
    return parse_ipv4_udp_packet(packet);
}

} // namespace xpmip::wire
