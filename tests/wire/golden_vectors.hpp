// Golden Mobility Header byte vectors, assembled by hand from the RFC figures (RFC 6275 §6.1.1,
// §6.1.7, §6.1.8, RFC 5213 §8.1-§8.8, RFC 5845 Figures 2-4, RFC 8278 §4.1-§4.2, RFC 5844
// §3.3.1-§3.3.4, RFC 5555 §4.2.2, RFC 5648 §6.1 with RFC 6089 BID-PRI). Offsets are from the
// first octet of the Mobility Header. Shared by the unit tests and the fuzz seed corpus.
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

// PBU with every older BU flag: seq 3, flags A|H|L|K|M|R|P|B (RFC 6275 §6.1.7, RFC 3963 R,
// RFC 6602 B), lifetime 100; MN-ID "mn3", IPv4 DHCP Support Mode with S set (RFC 5844 §3.3.4),
// MN Link-layer Identifier 02:00:5e:00:53:01 (RFC 5213 §8.6). 40 octets, Header Len 4.
inline const std::vector<std::uint8_t> kPbuLkmrbDhcpLinkLayerId = {
    0x3b, 0x04, 0x05, 0x00, 0x00, 0x00,  // 0: Payload Proto 59, Header Len 4, MH Type 5, Reserved, Checksum
    0x00, 0x03,                          // 6: Sequence # 3
    0xfe, 0x40,                          // 8: A H L K | M R P . (0xfe00) | . B . . . . . . (0x0040)
    0x00, 0x64,                          // 10: Lifetime 100 units = 400 s
    0x08, 0x04, 0x01, 'm', 'n', '3',     // 12: MN-ID, Length 4: Subtype 1 (NAI), "mn3"
    0x01, 0x00,                          // 18: PadN(0) so the next option starts at 20 = 4n
    0x27, 0x02, 0x00, 0x01,              // 20: IPv4 DHCP Support Mode, Length 2: Reserved (15 bits), S = 1
    0x01, 0x00,                          // 24: PadN(0) so the next option starts at 26 = 8n+2
    0x19, 0x08,                          // 26: MN Link-layer Identifier, Length 8
    0x00, 0x00,                          // 28: Reserved
    0x02, 0x00, 0x5e, 0x00, 0x53, 0x01,  // 30: Link-layer Identifier (EUI-48 02:00:5e:00:53:01)
    0x01, 0x02, 0x00, 0x00,              // 36: PadN(2) to 40 octets
};

// PBU with three Binding Identifier options (RFC 5648 §6.1; BID-PRI from RFC 6089): Length 4
// (no care-of address), 8 (IPv4 CoA) and 20 (IPv6 CoA). Seq 4, flags A|H|P, lifetime 100.
// 56 octets, Header Len 6.
inline const std::vector<std::uint8_t> kPbuBindingIdentifiers = {
    0x3b, 0x06, 0x05, 0x00, 0x00, 0x00,  // 0: MH Type 5, Header Len 6
    0x00, 0x04,                          // 6: Sequence # 4
    0xc2, 0x00,                          // 8: A H . . . . P .
    0x00, 0x64,                          // 10: Lifetime 100
    0x08, 0x04, 0x01, 'm', 'n', '3',     // 12: MN-ID "mn3"
    0x23, 0x04,                          // 18: Binding Identifier (2n), Length 4
    0x00, 0x01,                          // 20: BID 1
    0x00,                                // 22: Status 0
    0x85,                                // 23: H = 1 (0x80) | BID-PRI 5
    0x23, 0x08,                          // 24: Binding Identifier, Length 8
    0x00, 0x02,                          // 26: BID 2
    0x00,                                // 28: Status 0
    0x7f,                                // 29: H = 0 | BID-PRI 127
    0xc0, 0x00, 0x02, 0x0a,              // 30: IPv4 care-of address 192.0.2.10
    0x23, 0x14,                          // 34: Binding Identifier, Length 20
    0x01, 0x03,                          // 36: BID 259
    0x00,                                // 38: Status 0
    0x83,                                // 39: H = 1 | BID-PRI 3
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,  // 40: IPv6 care-of address 2001:db8::8
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
    // 56: a multiple of 8 octets already: no trailing padding
};

// PBA with K, R and B set: status 0, flags K|R|P|B (RFC 6275 §6.1.8, RFC 3963, RFC 6602), seq 4,
// lifetime 100; NAT Detection with F and refresh time 110 s (RFC 5555 §4.2.2), IPv4 Home Address
// Reply with status 130 and Pref-len 24 (RFC 5844 §3.3.2), Binding Identifier with status 128.
// 40 octets, Header Len 4.
inline const std::vector<std::uint8_t> kPbaKrbNatHoaReply = {
    0x3b, 0x04, 0x06, 0x00, 0x00, 0x00,  // 0: MH Type 6, Header Len 4
    0x00,                                // 6: Status 0 (accepted)
    0xe8,                                // 7: K (0x80) | R (0x40) | P (0x20) | B (0x08)
    0x00, 0x04,                          // 8: Sequence # 4
    0x00, 0x64,                          // 10: Lifetime 100
    0x1f, 0x06,                          // 12: NAT Detection (4n), Length 6
    0x80, 0x00,                          // 14: F = 1 | Reserved (15 bits)
    0x00, 0x00, 0x00, 0x6e,              // 16: Refresh time 110 s
    0x25, 0x06,                          // 20: IPv4 Home Address Reply (4n), Length 6
    0x82,                                // 22: Status 130 (incorrect IPv4 home address)
    0x60,                                // 23: Pref-len 24 (24 << 2) | Reserved (2 bits)
    0x0a, 0x01, 0x02, 0x03,              // 24: IPv4 home address 10.1.2.3
    0x23, 0x04,                          // 28: Binding Identifier (2n), Length 4
    0x00, 0x01,                          // 30: BID 1
    0x80,                                // 32: Status 128 (for this BID only)
    0x00,                                // 33: H = 0 | BID-PRI 0
    0x01, 0x04, 0x00, 0x00, 0x00, 0x00,  // 34: PadN(4) to 40 octets
};

inline const std::vector<Vector> kAll = {
    {"pbu_gre_key_tlv", kPbuGreKeyTlv},
    {"pba_gre_key_tlv", kPbaGreKeyTlv},
    {"pba_gre_key_required", kPbaGreKeyRequired},
    {"pbu_ipv4_gre_mode_multipath", kPbuIpv4GreModeMultipath},
    {"pbu_lkmrb_dhcp_link_layer_id", kPbuLkmrbDhcpLinkLayerId},
    {"pbu_binding_identifiers", kPbuBindingIdentifiers},
    {"pba_krb_nat_hoa_reply", kPbaKrbNatHoaReply},
};

} // namespace xpmip::golden
