// Golden Mobility Header byte vectors, assembled by hand from the RFC figures (RFC 6275 §6.1.1,
// RFC 5213 §8.1-§8.8, RFC 5845 Figures 2-4, RFC 8278 §4.1-§4.2, RFC 5844 §3.3.1). Offsets are
// from the first octet of the Mobility Header. Shared by the unit tests and the fuzz seed corpus.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace xpmip::golden {

struct Vector {
    std::string_view name;
    std::vector<std::uint8_t> bytes;
};

// PBU: seq 0x1234, flags A|H|P|T, lifetime 150 (600 s); MN-ID, HNP, HI, ATT, Timestamp,
// GRE Key with downlink key 0x1001. 88 octets, Header Len 10.
inline const std::vector<std::uint8_t> kPbuGreKeyTlv = {
    0x3b, 0x0a, 0x05, 0x00, 0x00, 0x00,  // 0: Payload Proto 59, Header Len 10, MH Type 5, Reserved, Checksum
    0x12, 0x34,                          // 6: Sequence #
    0xc2, 0x80,                          // 8: A H . . . . P . | T (0x0080)
    0x00, 0x96,                          // 10: Lifetime 150 units = 600 s
    // 12: Mobile Node Identifier (no alignment), Length 18: Subtype 1 (NAI) + 17 octets
    0x08, 0x12, 0x01, 'm', 'n', '1', '@', 'x', 'p', 'm', 'i', 'p', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
    0x01, 0x02, 0x00, 0x00,              // 32: PadN(2) so the HNP option starts at 36 = 8n+4
    // 36: Home Network Prefix, Length 18: Reserved, Prefix Length 64, 2001:db8:1:1::
    0x16, 0x12, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x17, 0x02, 0x00, 0x01,              // 56: Handoff Indicator 1 (new interface)
    0x18, 0x02, 0x00, 0x04,              // 60: Access Technology Type 4 (802.11a/b/g)
    0x01, 0x00,                          // 64: PadN(0) so the Timestamp starts at 66 = 8n+2
    0x1b, 0x08, 0x00, 0x00, 0x4c, 0x04, 0x4c, 0x80, 0x80, 0x00,  // 66: Timestamp 1275350144.5 s
    0x21, 0x06, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01,              // 76: GRE Key (4n), key 0x00001001
    0x01, 0x02, 0x00, 0x00,              // 84: PadN(2): 88 octets, a multiple of 8
};

// PBA answering it: status 0, flags P|T, same options with uplink key 0x2002.
inline const std::vector<std::uint8_t> kPbaGreKeyTlv = {
    0x3b, 0x0a, 0x06, 0x00, 0x00, 0x00,  // 0: MH Type 6
    0x00,                                // 6: Status 0 (accepted)
    0x30,                                // 7: Flags: P (0x20) | T (0x10)
    0x12, 0x34,                          // 8: Sequence #
    0x00, 0x96,                          // 10: Lifetime
    0x08, 0x12, 0x01, 'm', 'n', '1', '@', 'x', 'p', 'm', 'i', 'p', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
    0x01, 0x02, 0x00, 0x00,
    0x16, 0x12, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x17, 0x02, 0x00, 0x01,
    0x18, 0x02, 0x00, 0x04,
    0x01, 0x00,
    0x1b, 0x08, 0x00, 0x00, 0x4c, 0x04, 0x4c, 0x80, 0x80, 0x00,
    0x21, 0x06, 0x00, 0x00, 0x00, 0x00, 0x20, 0x02,              // 76: GRE Key, uplink key 0x00002002
    0x01, 0x02, 0x00, 0x00,
};

// PBA rejecting with 163 GRE_KEY_OPTION_REQUIRED (RFC 5845 §6.4), no options. 16 octets.
inline const std::vector<std::uint8_t> kPbaGreKeyRequired = {
    0x3b, 0x01, 0x06, 0x00, 0x00, 0x00,
    0xa3,                                // 6: Status 163
    0x20,                                // 7: P
    0x12, 0x34, 0x00, 0x00,              // 8: Sequence #, Lifetime 0
    0x01, 0x02, 0x00, 0x00,              // 12: PadN(2) to 16 octets
};

// PBU over IPv4 (RFC 5844): seq 7, flags A|H|P|F, lifetime 255; MN-ID "mn2", IPv4 HoA Request
// 0.0.0.0/0 (allocate), HI 1, ATT 3, GRE Key without key (GRE mode only, RFC 5845 §3.2),
// MAG Multipath-Binding (If-ATT 4, If-Label 1, BID 5, B), MAG Identifier. 72 octets.
inline const std::vector<std::uint8_t> kPbuIpv4GreModeMultipath = {
    0x3b, 0x08, 0x05, 0x00, 0x00, 0x00,
    0x00, 0x07,                          // 6: Sequence # 7
    0xc3, 0x00,                          // 8: A H . . . . P F
    0x00, 0xff,                          // 10: Lifetime 255
    0x08, 0x04, 0x01, 'm', 'n', '2',     // 12: MN-ID, Length 4
    0x01, 0x00,                          // 18: PadN(0) so the next option starts at 20 = 4n
    0x24, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 20: IPv4 HoA Request, Prefix-len 0, 0.0.0.0
    0x17, 0x02, 0x00, 0x01,              // 28: HI 1
    0x18, 0x02, 0x00, 0x03,              // 32: ATT 3 (802.3)
    0x21, 0x02, 0x00, 0x00,              // 36: GRE Key, Length 2: no key field
    0x01, 0x00,                          // 40: PadN(0) so the next option starts at 42 = 8n+2
    0x3f, 0x06, 0x04, 0x01, 0x05, 0x80, 0x00, 0x00,  // 42: Multipath-Binding If-ATT 4, If-Label 1, BID 5, B
    0x40, 0x0e, 0x01, 0x00, 'm', 'a', 'g', '1', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',  // 50: MAG Identifier
    0x01, 0x04, 0x00, 0x00, 0x00, 0x00,  // 66: PadN(4) to 72 octets
};

inline const std::vector<Vector> kAll = {
    {"pbu_gre_key_tlv", kPbuGreKeyTlv},
    {"pba_gre_key_tlv", kPbaGreKeyTlv},
    {"pba_gre_key_required", kPbaGreKeyRequired},
    {"pbu_ipv4_gre_mode_multipath", kPbuIpv4GreModeMultipath},
};

} // namespace xpmip::golden
