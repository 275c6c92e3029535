// libFuzzer target for the signaling parser.
//
// Input byte 0 picks the entry point (even: a bare Mobility Header through decode(); odd: a
// whole IPv4/UDP or IPv6 packet through parse_packet()); the rest is the data. For an IPv6
// packet, bit 1 of byte 0 decides (half of the odd mode bytes) whether the MH checksum is
// recomputed before parsing: mutated IPv6 inputs almost never keep a right checksum, and
// parse_packet() verifies it first (RFC 6275 §9.2), so without this the decoder would hardly
// ever be reached through the IPv6 path. Properties:
//   - the parser never crashes, never reads out of bounds (ASan) and never throws anything
//     but WireError;
//   - whatever it accepts re-encodes, and the re-encoded bytes decode to the same message;
//   - whatever it accepts converts to JSON that dumps (strict UTF-8) without throwing.
#include "wire/framing.hpp"
#include "wire/json.hpp"

#include <algorithm>
#include <cstdlib>

using namespace xpmip::wire;

namespace {

constexpr std::size_t kIpv6HeaderLength = 40;

void check_reencodes(const MobilityMessage& m) {
    (void)to_json(m).dump();  // throws json::type_error (and so crashes) on invalid UTF-8
    Bytes again;
    try {
        again = encode(m);
    } catch (const WireError& e) {
        // Only legitimate reason: re-padding grew a near-maximal message past 2048 octets.
        if (e.field() != "Header Len") {
            std::abort();
        }
        return;
    }
    if (!(decode(again) == m)) {
        std::abort();
    }
}

// If `pkt` looks like IPv6 carrying a Mobility Header, write the right MH checksum into it, over
// the same octets parse_packet() checks: the first Payload Length octets after the header.
void fix_ipv6_mh_checksum(Bytes& pkt) {
    if (pkt.size() < kIpv6HeaderLength || (pkt[0] >> 4) != 6 || pkt[6] != kIpProtoMobilityHeader) {
        return;
    }
    const std::size_t payload_len = load_be16(&pkt[4]);
    if (payload_len > pkt.size() - kIpv6HeaderLength || payload_len < kMhChecksumOffset + 2) {
        return;
    }
    xpmip::Ipv6Address src, dst;
    std::copy(pkt.begin() + 8, pkt.begin() + 24, src.bytes.begin());
    std::copy(pkt.begin() + 24, pkt.begin() + 40, dst.bytes.begin());
    const auto mh_at = static_cast<std::ptrdiff_t>(kIpv6HeaderLength);
    Bytes mh(pkt.begin() + mh_at, pkt.begin() + mh_at + static_cast<std::ptrdiff_t>(payload_len));
    fill_mh_checksum(mh, src, dst);
    std::copy(mh.begin(), mh.end(), pkt.begin() + mh_at);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const ByteView in(data + 1, size - 1);
    try {
        if ((data[0] & 1) == 0) {
            check_reencodes(decode(in));
        } else if ((data[0] & 2) != 0) {
            Bytes pkt(in.begin(), in.end());
            fix_ipv6_mh_checksum(pkt);
            const auto rx = parse_packet(pkt);
            (void)to_json(rx).dump();
            check_reencodes(rx.message);
        } else {
            const auto rx = parse_packet(in);
            (void)to_json(rx).dump();
            check_reencodes(rx.message);
        }
    } catch (const WireError&) {
        // rejected cleanly
    }
    return 0;
}
