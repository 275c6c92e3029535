// Mobility options (RFC 6275 §6.2 TLV format) as value types, and their codec.
//
// Each option is one struct here and one block in options.cpp, like one dissector per option in
// Wireshark's packet-mip6.c: adding an option is that struct and block, and its place in the
// MobilityOption variant below (the registry the codec dispatches on). Each struct carries:
//   kType       - the IANA mobility option type (wire/numbers.hpp)
//   kAlign      - the alignment requirement xn+y of its Type octet, honoured on output with
//                 Pad1/PadN (RFC 6275 §6.2.1). Input accepts any legal padding.
//   kMayRepeat  - whether a message may carry it more than once (else "appears more than once")
//   decode()    - every check of its Length and fields, errors naming field and MH offset
//   encode()    - its body; what encode() writes is decoded again before it goes out
// Unknown option types are kept as raw bytes (UnknownOption) and re-emitted unchanged.
#pragma once

#include "common/address.hpp"
#include "wire/bytes.hpp"
#include "wire/numbers.hpp"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <string>
#include <variant>
#include <vector>

namespace xpmip::wire {

struct Alignment {
    std::uint8_t factor = 1;  // x in xn+y; 1 = no requirement
    std::uint8_t offset = 0;  // y
};

// What one option's decoder reads: its body (after Type and Length), with the MH offsets errors
// name, and the Length checks every option makes.
class OptionReader : public ByteReader {
public:
    OptionReader(std::uint8_t type, ByteView body, std::size_t type_offset)
        : ByteReader(body, type_offset + 2), type_(type), at_(type_offset), length_(body.size()) {}
    std::uint8_t type() const { return type_; }
    std::size_t length() const { return length_; }
    // "<option name> option <field>", as errors name a field.
    std::string field(std::string_view name) const;
    // The Length is one of `allowed` / at least `min` (else a WireError at the Length octet).
    void expect_length(std::initializer_list<std::size_t> allowed) const;
    void expect_min_length(std::size_t min) const;

private:
    std::uint8_t type_;
    std::size_t at_;
    std::size_t length_;
};

// RFC 7542 §2.3: an NAI (MN-ID subtype 1) is at most 253 octets. Other subtypes are limited
// only by the 8-bit option Length: 254 octets in the MN-ID option, 253 in the MAG Identifier.
inline constexpr std::size_t kMaxNaiLength = 253;

// RFC 4283 §3. No alignment requirement. Subtype 0 is reserved (RFC 7330); a subtype 1 (NAI)
// identifier is UTF-8 (RFC 7542 §2.2) of at most kMaxNaiLength octets. Other subtypes (RFC 7330:
// IPv6 address, IMSI, EUI-48, ...) are binary: `identifier` holds their raw octets.
struct MobileNodeIdentifierOption {
    static constexpr OptionType kType = OptionType::MobileNodeIdentifier;
    static constexpr Alignment kAlign{1, 0};
    static constexpr bool kMayRepeat = false;
    std::uint8_t subtype = kMnIdSubtypeNai;
    std::string identifier;
    static MobileNodeIdentifierOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const MobileNodeIdentifierOption&) const = default;
};

// RFC 5213 §8.3. Alignment 8n+4 so the prefix is 8-octet aligned.
struct HomeNetworkPrefixOption {
    static constexpr OptionType kType = OptionType::HomeNetworkPrefix;
    static constexpr Alignment kAlign{8, 4};
    static constexpr bool kMayRepeat = true;   // RFC 5213 §8.3: one per home network prefix
    std::uint8_t prefix_length = 0;
    Ipv6Address prefix;   // all zero with length 0: "allocate one for me" (RFC 5213 §6.9.1.1)
    static HomeNetworkPrefixOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const HomeNetworkPrefixOption&) const = default;
};

// RFC 5213 §8.4. No alignment requirement.
struct HandoffIndicatorOption {
    static constexpr OptionType kType = OptionType::HandoffIndicator;
    static constexpr Alignment kAlign{1, 0};
    static constexpr bool kMayRepeat = false;
    std::uint8_t value = static_cast<std::uint8_t>(HandoffIndicator::NewInterface);
    static HandoffIndicatorOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const HandoffIndicatorOption&) const = default;
};

// RFC 5213 §8.5. No alignment requirement.
struct AccessTechnologyTypeOption {
    static constexpr OptionType kType = OptionType::AccessTechnologyType;
    static constexpr Alignment kAlign{1, 0};
    static constexpr bool kMayRepeat = false;
    std::uint8_t value = 0;
    static AccessTechnologyTypeOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const AccessTechnologyTypeOption&) const = default;
};

// RFC 5213 §8.6: Reserved(2) + link-layer identifier. Alignment 8n+2.
struct MobileNodeLinkLayerIdOption {
    static constexpr OptionType kType = OptionType::MobileNodeLinkLayerId;
    static constexpr Alignment kAlign{8, 2};
    static constexpr bool kMayRepeat = false;
    std::vector<std::uint8_t> identifier;
    static MobileNodeLinkLayerIdOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const MobileNodeLinkLayerIdOption&) const = default;
};

// RFC 5213 §8.7. Alignment 8n+6 so the address is 8-octet aligned.
struct LinkLocalAddressOption {
    static constexpr OptionType kType = OptionType::LinkLocalAddress;
    static constexpr Alignment kAlign{8, 6};
    static constexpr bool kMayRepeat = false;
    Ipv6Address address;
    static LinkLocalAddressOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const LinkLocalAddressOption&) const = default;
};

// RFC 5213 §8.8: 64-bit timestamp, 48 bits of seconds since 1970-01-01 UTC and 16 bits of
// 1/65536 fractions. Alignment 8n+2.
struct TimestampOption {
    static constexpr OptionType kType = OptionType::Timestamp;
    static constexpr Alignment kAlign{8, 2};
    static constexpr bool kMayRepeat = false;
    std::uint64_t value = 0;
    static TimestampOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const TimestampOption&) const = default;
};

// RFC 5847 §6.2: Restart Counter(4), the sender's count of its restarts. Alignment 4n+2.
struct RestartCounterOption {
    static constexpr OptionType kType = OptionType::RestartCounter;
    static constexpr Alignment kAlign{4, 2};
    static constexpr bool kMayRepeat = false;
    std::uint32_t counter = 0;
    static RestartCounterOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const RestartCounterOption&) const = default;
};

// RFC 6602 §4.3: Sub-type(1), Reserved(1), Mobile Node Group Identifier(4); Length 6. RFC 6602
// gives no alignment: 4n (RFC 6275 §6.2.1's rule for the 4-octet identifier at +4). One per
// sub-type may appear.
struct MobileNodeGroupIdentifierOption {
    static constexpr OptionType kType = OptionType::MobileNodeGroupIdentifier;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = true;
    std::uint8_t subtype = kMngSubtypeBulkBindingUpdateGroup;
    std::uint32_t group = kMngAllSessions;
    static MobileNodeGroupIdentifierOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const MobileNodeGroupIdentifierOption&) const = default;
};

// RFC 5555 §4.2.2: F flag (UDP encapsulation required) + Reserved, Refresh time (seconds).
struct NatDetectionOption {
    static constexpr OptionType kType = OptionType::NatDetection;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    bool udp_encapsulation_required = false;
    std::uint32_t refresh_time = 0;
    static NatDetectionOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const NatDetectionOption&) const = default;
};

// RFC 5555 §3.1.1: Reserved(2) + IPv4 address.
struct Ipv4CareOfAddressOption {
    static constexpr OptionType kType = OptionType::Ipv4CareOfAddress;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    Ipv4Address address;
    static Ipv4CareOfAddressOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const Ipv4CareOfAddressOption&) const = default;
};

// RFC 5845 §6.1: Reserved(2) [+ GRE Key Identifier(4)]. Length 2 means no key ("GRE
// encapsulation mode only"), Length 6 carries the downlink (PBU) or uplink (PBA) key.
struct GreKeyOption {
    static constexpr OptionType kType = OptionType::GreKey;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    std::optional<std::uint32_t> key;
    static GreKeyOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const GreKeyOption&) const = default;
};

// How logs show it: "none" (absent), "no-key" (GRE encapsulation mode only), "key:N".
std::string gre_key_text(const GreKeyOption* o);

// RFC 5648 §6.1 (+ RFC 6089 BID-PRI): BID(2, 0 reserved), Status(1), H flag + 7-bit priority,
// optional IPv4 or IPv6 care-of address (Length 4, 8 or 20). We emit it at 2n (the BID 16-bit
// aligned). May appear several times (one per binding).
struct BindingIdentifierOption {
    static constexpr OptionType kType = OptionType::BindingIdentifier;
    static constexpr Alignment kAlign{2, 0};
    static constexpr bool kMayRepeat = true;   // RFC 5648 §6.1: one per binding
    std::uint16_t binding_id = 0;
    std::uint8_t status = 0;
    bool simultaneous_home = false;      // H
    std::uint8_t priority = 0;           // 7 bits
    std::optional<Ipv4Address> ipv4_care_of;
    std::optional<Ipv6Address> ipv6_care_of;
    static BindingIdentifierOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const BindingIdentifierOption&) const = default;
};

// RFC 5844 §3.3.1: Prefix-len(6 bits) + Reserved(10 bits), IPv4 HoA (0.0.0.0 = allocate).
struct Ipv4HomeAddressRequestOption {
    static constexpr OptionType kType = OptionType::Ipv4HomeAddressRequest;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    std::uint8_t prefix_length = 0;
    Ipv4Address address;
    static Ipv4HomeAddressRequestOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const Ipv4HomeAddressRequestOption&) const = default;
};

// RFC 5844 §3.3.2: Status(1), Pref-len(6 bits) + Reserved(2 bits), IPv4 HoA.
struct Ipv4HomeAddressReplyOption {
    static constexpr OptionType kType = OptionType::Ipv4HomeAddressReply;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    std::uint8_t status = ipv4_hoa_status::kSuccess;
    std::uint8_t prefix_length = 0;
    Ipv4Address address;
    static Ipv4HomeAddressReplyOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const Ipv4HomeAddressReplyOption&) const = default;
};

// RFC 5844 §3.3.3: Reserved(2) + IPv4 default router address.
struct Ipv4DefaultRouterAddressOption {
    static constexpr OptionType kType = OptionType::Ipv4DefaultRouterAddress;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    Ipv4Address address;
    static Ipv4DefaultRouterAddressOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const Ipv4DefaultRouterAddressOption&) const = default;
};

// RFC 5844 §3.3.4: Reserved(15 bits) + S flag (MAG acts as DHCP server).
struct Ipv4DhcpSupportModeOption {
    static constexpr OptionType kType = OptionType::Ipv4DhcpSupportMode;
    static constexpr Alignment kAlign{4, 0};
    static constexpr bool kMayRepeat = false;
    bool server = false;
    static Ipv4DhcpSupportModeOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const Ipv4DhcpSupportModeOption&) const = default;
};

// RFC 8278 §4.1: If-ATT(1), If-Label(1), Binding-Id(1, 1..254), B|O|Reserved(24 bits).
// Length 6, alignment 8n+2. B and O together are invalid.
struct MagMultipathBindingOption {
    static constexpr OptionType kType = OptionType::MagMultipathBinding;
    static constexpr Alignment kAlign{8, 2};
    static constexpr bool kMayRepeat = false;
    std::uint8_t if_att = 0;
    std::uint8_t if_label = 0;
    std::uint8_t binding_id = 1;
    bool bulk_reregistration = false;  // B
    bool overwrite = false;            // O
    static MagMultipathBindingOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const MagMultipathBindingOption&) const = default;
};

// RFC 8278 §4.2: Subtype(1, MN-ID subtypes), Reserved(1), Identifier. No alignment. The
// Identifier follows the MN-ID rules above.
struct MagIdentifierOption {
    static constexpr OptionType kType = OptionType::MagIdentifier;
    static constexpr Alignment kAlign{1, 0};
    static constexpr bool kMayRepeat = false;
    std::uint8_t subtype = kMnIdSubtypeNai;
    std::string identifier;
    static MagIdentifierOption decode(OptionReader& r);   // every check of Length and fields
    void encode(ByteWriter& w) const;
    bool operator==(const MagIdentifierOption&) const = default;
};

// Any option type we do not interpret: kept as raw bytes, skipped by length (RFC 6275 §6.2.1).
struct UnknownOption {
    static constexpr Alignment kAlign{1, 0};
    std::uint8_t type = 0;
    std::vector<std::uint8_t> data;
    bool operator==(const UnknownOption&) const = default;
};

using MobilityOption =
    std::variant<MobileNodeIdentifierOption, HomeNetworkPrefixOption, HandoffIndicatorOption,
                 AccessTechnologyTypeOption, MobileNodeLinkLayerIdOption, LinkLocalAddressOption,
                 TimestampOption, NatDetectionOption, Ipv4CareOfAddressOption, GreKeyOption,
                 BindingIdentifierOption, Ipv4HomeAddressRequestOption, Ipv4HomeAddressReplyOption,
                 Ipv4DefaultRouterAddressOption, Ipv4DhcpSupportModeOption, MagMultipathBindingOption,
                 MagIdentifierOption, RestartCounterOption, MobileNodeGroupIdentifierOption, UnknownOption>;

std::uint8_t option_type(const MobilityOption& option);
Alignment option_alignment(const MobilityOption& option);

// An ordered list of options, as they appear on the wire (padding removed).
struct OptionList {
    std::vector<MobilityOption> items;

    template <class T>
    const T* find() const {
        for (const auto& o : items) {
            if (const auto* p = std::get_if<T>(&o)) {
                return p;
            }
        }
        return nullptr;
    }
    template <class T>
    std::vector<T> all() const {
        std::vector<T> out;
        for (const auto& o : items) {
            if (const auto* p = std::get_if<T>(&o)) {
                out.push_back(*p);
            }
        }
        return out;
    }
    template <class T>
    std::size_t count() const {
        std::size_t n = 0;
        for (const auto& o : items) {
            n += std::holds_alternative<T>(o) ? 1 : 0;
        }
        return n;
    }
    void add(MobilityOption o) { items.push_back(std::move(o)); }
    bool operator==(const OptionList&) const = default;
};

// True if `text` is well-formed UTF-8 (RFC 3629 §4): what an NAI must be (RFC 7542 §2.2).
bool is_valid_utf8(ByteView text);

// Home Network Prefix (RFC 5213 §8.3), Binding Identifier (RFC 5648 §6.1) and unknown options may
// appear several times in a message; every other option type the codec knows at most once.
bool option_may_repeat(std::uint8_t type);

// Decode the options area of a message (from the first option to the end of the MH).
// `base_offset` is the offset of `area[0]` from the start of the MH, for error reports. A second
// occurrence of a single-instance option is a WireError ("<name> option", its Type offset,
// "appears more than once"). If `type_offsets` is given, it receives the MH offset of each
// decoded option's Type octet, parallel to the returned items.
OptionList decode_options(ByteView area, std::size_t base_offset, std::vector<std::size_t>* type_offsets = nullptr);

// Append `options` to `out` (which holds the MH so far, starting at MH octet 0), inserting
// Pad1/PadN before each option as its alignment requires, then pad to a multiple of 8 octets.
// Refuses whatever decode_options() would reject, duplicates included. Returns the MH offset of
// each option's Type octet, parallel to options.items.
std::vector<std::size_t> encode_options(const OptionList& options, Bytes& out);

// 48.16 fixed-point timestamp helpers (RFC 5213 §8.8). timestamp_to_unix_nanos saturates to
// UINT64_MAX for timestamps past 2554-07-21 (about 1.8e10 s), which do not fit 64-bit nanoseconds.
std::uint64_t timestamp_from_unix_nanos(std::uint64_t ns);
std::uint64_t timestamp_to_unix_nanos(std::uint64_t ts);

} // namespace xpmip::wire
