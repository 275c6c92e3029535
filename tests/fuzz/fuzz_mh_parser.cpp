// libFuzzer target for the signaling parser.
//
// Input byte 0 picks the entry point (even: a bare Mobility Header through decode(); odd: a
// whole IPv4/UDP or IPv6 packet through parse_packet()); the rest is the data. Properties:
//   - the parser never crashes, never reads out of bounds (ASan) and never throws anything
//     but WireError;
//   - whatever it accepts re-encodes, and the re-encoded bytes decode to the same message.
#include "wire/framing.hpp"

#include <cstdlib>

using namespace xpmip::wire;

namespace {

void check_reencodes(const MobilityMessage& m) {
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

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const ByteView in(data + 1, size - 1);
    try {
        if ((data[0] & 1) == 0) {
            check_reencodes(decode(in));
        } else {
            check_reencodes(parse_packet(in).message);
        }
    } catch (const WireError&) {
        // rejected cleanly
    }
    return 0;
}
