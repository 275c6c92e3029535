#include "wire/options.hpp"

#include "common/overloaded.hpp"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <type_traits>

namespace xpmip::wire {

namespace {


std::string field_name(std::uint8_t type, std::string_view field) {
    return fmt::format("{} option {}", option_name(type), field);
}

constexpr std::size_t kValidUtf8 = static_cast<std::size_t>(-1);

// Index of the first octet of `s` that breaks UTF-8, or kValidUtf8. RFC 3629 §4: shortest form
// only, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
std::size_t first_invalid_utf8(ByteView s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const std::uint8_t lead = s[i];
        if (lead < 0x80) {
            ++i;
            continue;
        }
        std::size_t continuation = 0;
        std::uint8_t lo = 0x80;  // allowed range of the first continuation octet (RFC 3629 §4)
        std::uint8_t hi = 0xbf;
        if (lead >= 0xc2 && lead <= 0xdf) {
            continuation = 1;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            continuation = 2;
            lo = lead == 0xe0 ? 0xa0 : 0x80;  // E0 A0..BF: no overlong forms
            hi = lead == 0xed ? 0x9f : 0xbf;  // ED 80..9F: no surrogates
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            continuation = 3;
            lo = lead == 0xf0 ? 0x90 : 0x80;  // F0 90..BF: no overlong forms
            hi = lead == 0xf4 ? 0x8f : 0xbf;  // F4 80..8F: nothing above U+10FFFF
        } else {
            return i;  // a stray continuation octet, an overlong C0/C1 lead, or F5..FF
        }
        for (std::size_t k = 1; k <= continuation; ++k) {
            if (i + k >= s.size()) {
                return i;  // the sequence is cut short by the end of the identifier
            }
            const std::uint8_t c = s[i + k];
            if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf)) {
                return i + k;
            }
        }
        i += continuation + 1;
    }
    return kValidUtf8;
}

// The Subtype and Identifier rules shared by the Mobile Node Identifier (RFC 4283 §3) and the MAG
// Identifier (RFC 8278 §4.2, whose Subtype uses the MN-ID subtypes). `subtype_at` / `id_at` are the
// MH offsets of the Subtype octet and of the Identifier's first octet.
void check_identifier(std::uint8_t type, std::uint8_t subtype, std::size_t subtype_at, ByteView id,
                      std::size_t id_at) {
    // RFC 7330 (MN-ID subtype registry): 0 is reserved.
    if (subtype == kMnIdSubtypeReserved) {
        throw WireError(field_name(type, "Subtype"), subtype_at, "0 is reserved (RFC 7330)");
    }
    if (id.empty()) {
        throw WireError(field_name(type, "Identifier"), id_at, "empty");
    }
    if (subtype != kMnIdSubtypeNai) {
        return;  // binary identifiers: only the 8-bit option Length limits them
    }
    // RFC 7542 §2.3: an NAI is at most 253 octets long.
    if (id.size() > kMaxNaiLength) {
        throw WireError(field_name(type, "Identifier"), id_at,
                        fmt::format("{} octets exceeds the maximum of {} for an NAI (RFC 7542 §2.3)", id.size(),
                                    kMaxNaiLength));
    }
    // RFC 7542 §2.2: an NAI is a UTF-8 string.
    if (const auto bad = first_invalid_utf8(id); bad != kValidUtf8) {
        throw WireError(field_name(type, "Identifier"), id_at,
                        fmt::format("is not valid UTF-8 (octet 0x{:02x} at offset {}), which an NAI must be "
                                    "(RFC 7542 §2.2)",
                                    id[bad], id_at + bad));
    }
}

Ipv4Address read_ipv4(ByteReader& r, std::string_view field) {
    Ipv4Address a;
    auto b = r.bytes(4, field);
    std::copy(b.begin(), b.end(), a.bytes.begin());
    return a;
}

Ipv6Address read_ipv6(ByteReader& r, std::string_view field) {
    Ipv6Address a;
    auto b = r.bytes(16, field);
    std::copy(b.begin(), b.end(), a.bytes.begin());
    return a;
}

void write_ipv4(ByteWriter& w, const Ipv4Address& a) { w.bytes(a.bytes); }
void write_ipv6(ByteWriter& w, const Ipv6Address& a) { w.bytes(a.bytes); }

void write_identifier(ByteWriter& w, const std::string& id) {
    w.bytes({reinterpret_cast<const std::uint8_t*>(id.data()), id.size()});
}

} // namespace

// ---- OptionReader ------------------------------------------------------------------------------

std::string OptionReader::field(std::string_view name) const {
    // Only the field: decode_option() prefixes the option's name when an error is thrown, so a
    // message that parses costs no formatting.
    return std::string(name);
}

void OptionReader::expect_length(std::initializer_list<std::size_t> allowed) const {
    for (auto a : allowed) {
        if (length_ == a) {
            return;
        }
    }
    std::string list;
    for (auto a : allowed) {
        list += (list.empty() ? "" : " or ") + std::to_string(a);
    }
    throw WireError(field("Length"), at_ + 1, fmt::format("{} is invalid (must be {})", length_, list));
}

void OptionReader::expect_min_length(std::size_t min) const {
    if (length_ < min) {
        throw WireError(field("Length"), at_ + 1, fmt::format("{} is invalid (must be at least {})", length_, min));
    }
}

// ---- One block per option: decode (every check) and encode ------------------------------------

// RFC 4283 §3: Subtype(1), Identifier.
MobileNodeIdentifierOption MobileNodeIdentifierOption::decode(OptionReader& r) {
    r.expect_min_length(1);
    MobileNodeIdentifierOption o;
    const auto subtype_at = r.offset();
    o.subtype = r.u8(r.field("Subtype"));
    const auto id_at = r.offset();
    auto id = r.rest();
    check_identifier(r.type(), o.subtype, subtype_at, id, id_at);
    o.identifier.assign(id.begin(), id.end());
    return o;
}
void MobileNodeIdentifierOption::encode(ByteWriter& w) const {
    w.u8(subtype);
    write_identifier(w, identifier);
}

// RFC 5213 §8.3: Reserved(1), Prefix Length(1), Prefix(16).
HomeNetworkPrefixOption HomeNetworkPrefixOption::decode(OptionReader& r) {
    r.expect_length({18});
    HomeNetworkPrefixOption o;
    r.skip(1, r.field("Reserved"));
    const auto plen_at = r.offset();
    o.prefix_length = r.u8(r.field("Prefix Length"));
    if (o.prefix_length > 128) {
        throw WireError(r.field("Prefix Length"), plen_at, fmt::format("{} exceeds 128", o.prefix_length));
    }
    o.prefix = read_ipv6(r, r.field("Prefix"));
    return o;
}
void HomeNetworkPrefixOption::encode(ByteWriter& w) const {
    w.u8(0);
    w.u8(prefix_length);
    write_ipv6(w, prefix);
}

// RFC 5213 §8.4: Reserved(1), HI(1).
HandoffIndicatorOption HandoffIndicatorOption::decode(OptionReader& r) {
    r.expect_length({2});
    r.skip(1, r.field("Reserved"));
    return HandoffIndicatorOption{r.u8(r.field("HI"))};
}
void HandoffIndicatorOption::encode(ByteWriter& w) const {
    w.u8(0);
    w.u8(value);
}

// RFC 5213 §8.5: Reserved(1), ATT(1).
AccessTechnologyTypeOption AccessTechnologyTypeOption::decode(OptionReader& r) {
    r.expect_length({2});
    r.skip(1, r.field("Reserved"));
    return AccessTechnologyTypeOption{r.u8(r.field("ATT"))};
}
void AccessTechnologyTypeOption::encode(ByteWriter& w) const {
    w.u8(0);
    w.u8(value);
}

// RFC 5213 §8.6: Reserved(2), Link-layer Identifier (at least 1 octet).
MobileNodeLinkLayerIdOption MobileNodeLinkLayerIdOption::decode(OptionReader& r) {
    r.expect_min_length(3);
    r.skip(2, r.field("Reserved"));
    auto id = r.rest();
    return MobileNodeLinkLayerIdOption{{id.begin(), id.end()}};
}
void MobileNodeLinkLayerIdOption::encode(ByteWriter& w) const {
    w.u16(0);
    w.bytes(identifier);
}

// RFC 5213 §8.7: Link-local Address(16).
LinkLocalAddressOption LinkLocalAddressOption::decode(OptionReader& r) {
    r.expect_length({16});
    return LinkLocalAddressOption{read_ipv6(r, r.field("Address"))};
}
void LinkLocalAddressOption::encode(ByteWriter& w) const { write_ipv6(w, address); }

// RFC 5213 §8.8: Timestamp(8), 48.16 fixed point.
TimestampOption TimestampOption::decode(OptionReader& r) {
    r.expect_length({8});
    return TimestampOption{r.u64(r.field("Timestamp"))};
}
void TimestampOption::encode(ByteWriter& w) const { w.u64(value); }

// RFC 5847 §6.2: Restart Counter(4).
RestartCounterOption RestartCounterOption::decode(OptionReader& r) {
    r.expect_length({4});
    return RestartCounterOption{r.u32(r.field("Restart Counter"))};
}
void RestartCounterOption::encode(ByteWriter& w) const { w.u32(counter); }

// RFC 6602 §4.3: Sub-type(1), Reserved(1: ignored on receipt), Mobile Node Group Identifier(4).
MobileNodeGroupIdentifierOption MobileNodeGroupIdentifierOption::decode(OptionReader& r) {
    r.expect_length({6});
    MobileNodeGroupIdentifierOption o;
    o.subtype = r.u8(r.field("Sub-type"));
    r.skip(1, r.field("Reserved"));
    o.group = r.u32(r.field("Mobile Node Group Identifier"));
    return o;
}
void MobileNodeGroupIdentifierOption::encode(ByteWriter& w) const {
    w.u8(subtype);
    w.u8(0);
    w.u32(group);
}

// RFC 5555 §3.2: F flag(1 bit) + Reserved(15 bits), Refresh Time(4).
NatDetectionOption NatDetectionOption::decode(OptionReader& r) {
    r.expect_length({6});
    NatDetectionOption o;
    o.udp_encapsulation_required = (r.u16(r.field("Flags")) & 0x8000) != 0;
    o.refresh_time = r.u32(r.field("Refresh Time"));
    return o;
}
void NatDetectionOption::encode(ByteWriter& w) const {
    w.u16(udp_encapsulation_required ? 0x8000 : 0);
    w.u32(refresh_time);
}

// RFC 5555 §3.1.1: Reserved(2), IPv4 address(4).
Ipv4CareOfAddressOption Ipv4CareOfAddressOption::decode(OptionReader& r) {
    r.expect_length({6});
    r.skip(2, r.field("Reserved"));
    return Ipv4CareOfAddressOption{read_ipv4(r, r.field("Address"))};
}
void Ipv4CareOfAddressOption::encode(ByteWriter& w) const {
    w.u16(0);
    write_ipv4(w, address);
}

// RFC 5845 §6.1: Reserved(2) [+ GRE Key Identifier(4)]; Length 2 = no key, 6 = key present.
GreKeyOption GreKeyOption::decode(OptionReader& r) {
    r.expect_length({2, 6});
    r.skip(2, r.field("Reserved"));
    GreKeyOption o;
    if (r.length() == 6) {
        o.key = r.u32(r.field("GRE Key Identifier"));
    }
    return o;
}
void GreKeyOption::encode(ByteWriter& w) const {
    w.u16(0);
    if (key) {
        w.u32(*key);
    }
}

// RFC 5648 §6.1 (+ RFC 6089 BID-PRI): BID(2, 0 reserved), Status(1), H + 7-bit priority(1),
// optional IPv4 or IPv6 care-of address (Length 4, 8 or 20).
BindingIdentifierOption BindingIdentifierOption::decode(OptionReader& r) {
    r.expect_length({4, 8, 20});
    BindingIdentifierOption o;
    const auto bid_at = r.offset();
    o.binding_id = r.u16(r.field("Binding ID"));
    if (o.binding_id == 0) {
        throw WireError(r.field("Binding ID"), bid_at, "0 is reserved (RFC 5648 §6.1)");
    }
    o.status = r.u8(r.field("Status"));
    const auto flags = r.u8(r.field("Flags"));
    o.simultaneous_home = (flags & 0x80) != 0;
    o.priority = flags & 0x7f;
    if (r.length() == 8) {
        o.ipv4_care_of = read_ipv4(r, r.field("Care-of Address"));
    } else if (r.length() == 20) {
        o.ipv6_care_of = read_ipv6(r, r.field("Care-of Address"));
    }
    return o;
}
void BindingIdentifierOption::encode(ByteWriter& w) const {
    if (priority > 0x7f) {
        throw WireError("Binding Identifier option BID-PRI", WireError::kNoOffset,
                        fmt::format("{} does not fit in 7 bits", priority));
    }
    if (ipv4_care_of && ipv6_care_of) {
        throw WireError("Binding Identifier option Care-of Address", WireError::kNoOffset,
                        "both an IPv4 and an IPv6 care-of address given");
    }
    w.u16(binding_id);
    w.u8(status);
    w.u8(static_cast<std::uint8_t>((simultaneous_home ? 0x80 : 0) | priority));
    if (ipv4_care_of) {
        write_ipv4(w, *ipv4_care_of);
    }
    if (ipv6_care_of) {
        write_ipv6(w, *ipv6_care_of);
    }
}

// RFC 5844 §3.3.1: Prefix-len(6 bits) + Reserved(10 bits), IPv4 Home Address(4).
Ipv4HomeAddressRequestOption Ipv4HomeAddressRequestOption::decode(OptionReader& r) {
    r.expect_length({6});
    Ipv4HomeAddressRequestOption o;
    const auto plen_at = r.offset();
    o.prefix_length = static_cast<std::uint8_t>(r.u16(r.field("Prefix-len")) >> 10);
    if (o.prefix_length > 32) {
        throw WireError(r.field("Prefix-len"), plen_at, fmt::format("{} exceeds 32", o.prefix_length));
    }
    o.address = read_ipv4(r, r.field("IPv4 Home Address"));
    return o;
}
void Ipv4HomeAddressRequestOption::encode(ByteWriter& w) const {
    if (prefix_length > 32) {
        throw WireError("IPv4 Home Address Request option Prefix-len", WireError::kNoOffset,
                        fmt::format("{} exceeds 32", prefix_length));
    }
    w.u16(static_cast<std::uint16_t>(prefix_length << 10));
    write_ipv4(w, address);
}

// RFC 5844 §3.3.2: Status(1), Pref-len(6 bits) + Reserved(2 bits), IPv4 Home Address(4).
Ipv4HomeAddressReplyOption Ipv4HomeAddressReplyOption::decode(OptionReader& r) {
    r.expect_length({6});
    Ipv4HomeAddressReplyOption o;
    o.status = r.u8(r.field("Status"));
    const auto plen_at = r.offset();
    o.prefix_length = static_cast<std::uint8_t>(r.u8(r.field("Pref-len")) >> 2);
    if (o.prefix_length > 32) {
        throw WireError(r.field("Pref-len"), plen_at, fmt::format("{} exceeds 32", o.prefix_length));
    }
    o.address = read_ipv4(r, r.field("IPv4 Home Address"));
    return o;
}
void Ipv4HomeAddressReplyOption::encode(ByteWriter& w) const {
    if (prefix_length > 32) {
        throw WireError("IPv4 Home Address Reply option Pref-len", WireError::kNoOffset,
                        fmt::format("{} exceeds 32", prefix_length));
    }
    w.u8(status);
    w.u8(static_cast<std::uint8_t>(prefix_length << 2));
    write_ipv4(w, address);
}

// RFC 5844 §3.4: Reserved(2), IPv4 Default-Router Address(4).
Ipv4DefaultRouterAddressOption Ipv4DefaultRouterAddressOption::decode(OptionReader& r) {
    r.expect_length({6});
    r.skip(2, r.field("Reserved"));
    return Ipv4DefaultRouterAddressOption{read_ipv4(r, r.field("Address"))};
}
void Ipv4DefaultRouterAddressOption::encode(ByteWriter& w) const {
    w.u16(0);
    write_ipv4(w, address);
}

// RFC 5844 §3.5: Reserved(15 bits) + S flag(1 bit).
Ipv4DhcpSupportModeOption Ipv4DhcpSupportModeOption::decode(OptionReader& r) {
    r.expect_length({2});
    return Ipv4DhcpSupportModeOption{(r.u16(r.field("Flags")) & 0x0001) != 0};
}
void Ipv4DhcpSupportModeOption::encode(ByteWriter& w) const { w.u16(server ? 0x0001 : 0); }

// RFC 8278 §4.1: If-ATT(1), If-Label(1), Binding-Id(1, 1..254), B/O flags(1), Reserved(2).
MagMultipathBindingOption MagMultipathBindingOption::decode(OptionReader& r) {
    r.expect_length({6});
    MagMultipathBindingOption o;
    o.if_att = r.u8(r.field("If-ATT"));
    o.if_label = r.u8(r.field("If-Label"));
    const auto bid_at = r.offset();
    o.binding_id = r.u8(r.field("Binding-Id"));
    if (o.binding_id == 0 || o.binding_id == 255) {
        throw WireError(r.field("Binding-Id"), bid_at,
                        fmt::format("{} is reserved (must be 1..254, RFC 8278 §4.1)", o.binding_id));
    }
    const auto flags_at = r.offset();
    const auto flags = r.u8(r.field("Flags"));
    o.bulk_reregistration = (flags & 0x80) != 0;
    o.overwrite = (flags & 0x40) != 0;
    if (o.bulk_reregistration && o.overwrite) {   // §4.1: B MUST NOT be set together with O
        throw WireError(r.field("Flags"), flags_at, "B and O are both set (RFC 8278 §4.1 forbids it)");
    }
    r.skip(2, r.field("Reserved"));
    return o;
}
void MagMultipathBindingOption::encode(ByteWriter& w) const {
    w.u8(if_att);
    w.u8(if_label);
    w.u8(binding_id);
    w.u8(static_cast<std::uint8_t>((bulk_reregistration ? 0x80 : 0) | (overwrite ? 0x40 : 0)));
    w.u16(0);
}

// RFC 8278 §4.2: Subtype(1, MN-ID subtypes), Reserved(1), Identifier.
MagIdentifierOption MagIdentifierOption::decode(OptionReader& r) {
    r.expect_min_length(2);
    MagIdentifierOption o;
    const auto subtype_at = r.offset();
    o.subtype = r.u8(r.field("Subtype"));
    r.skip(1, r.field("Reserved"));
    const auto id_at = r.offset();
    auto id = r.rest();
    check_identifier(r.type(), o.subtype, subtype_at, id, id_at);
    o.identifier.assign(id.begin(), id.end());
    return o;
}
void MagIdentifierOption::encode(ByteWriter& w) const {
    w.u8(subtype);
    w.u8(0);
    write_identifier(w, identifier);
}

// ---- Dispatch over the MobilityOption registry ---------------------------------------------------

namespace {

constexpr std::size_t kKnownOptions = std::variant_size_v<MobilityOption> - 1;   // the last is UnknownOption

template <std::size_t I = 0>
MobilityOption decode_known(std::uint8_t type, OptionReader& r, ByteView body) {
    if constexpr (I < kKnownOptions) {
        using T = std::variant_alternative_t<I, MobilityOption>;
        if (type == static_cast<std::uint8_t>(T::kType)) {
            return T::decode(r);
        }
        return decode_known<I + 1>(type, r, body);
    } else {
        return UnknownOption{type, {body.begin(), body.end()}};
    }
}

template <std::size_t I = 0>
bool known_option_may_repeat(std::uint8_t type) {
    if constexpr (I < kKnownOptions) {
        using T = std::variant_alternative_t<I, MobilityOption>;
        return type == static_cast<std::uint8_t>(T::kType) ? T::kMayRepeat : known_option_may_repeat<I + 1>(type);
    } else {
        return true;   // unknown options are kept raw, however many there are
    }
}

// Decode one option body. `at` is the MH offset of the option's Type octet; the body starts at
// at+2. The encoder re-runs it on what it produced, so the codec cannot emit a message it would
// itself reject.
MobilityOption decode_option(std::uint8_t type, ByteView body, std::size_t at) {
    OptionReader r(type, body, at);
    try {
        return decode_known(type, r, body);
    } catch (const WireError& e) {
        const std::string prefix = field_name(type, "");
        if (e.field().rfind(prefix, 0) == 0) {
            throw;
        }
        throw WireError(prefix + e.field(), e.offset(), e.reason());
    }
}

void encode_body(const MobilityOption& option, ByteWriter& w) {
    std::visit(Overloaded{[&](const UnknownOption& o) { w.bytes(o.data); }, [&](const auto& o) { o.encode(w); }},
               option);
}

// Pad `out` so that its next octet lands on factor*n + offset (RFC 6275 §6.2.1): one Pad1
// for a single octet, otherwise one PadN with zero contents.
void pad_to(Bytes& out, std::size_t factor, std::size_t offset) {
    const std::size_t pad = (offset + factor - out.size() % factor) % factor;
    if (pad == 1) {
        out.push_back(static_cast<std::uint8_t>(OptionType::Pad1));
    } else if (pad >= 2) {
        out.push_back(static_cast<std::uint8_t>(OptionType::PadN));
        out.push_back(static_cast<std::uint8_t>(pad - 2));
        out.insert(out.end(), pad - 2, 0);
    }
}

} // namespace

std::string gre_key_text(const GreKeyOption* o) {
    if (!o) {
        return "none";
    }
    return o->key ? fmt::format("key:{}", *o->key) : "no-key";
}

std::uint8_t option_type(const MobilityOption& option) {
    return std::visit(
        [](const auto& o) -> std::uint8_t {
            if constexpr (std::is_same_v<std::decay_t<decltype(o)>, UnknownOption>) {
                return o.type;
            } else {
                return static_cast<std::uint8_t>(std::decay_t<decltype(o)>::kType);
            }
        },
        option);
}

Alignment option_alignment(const MobilityOption& option) {
    return std::visit([](const auto& o) { return std::decay_t<decltype(o)>::kAlign; }, option);
}

bool is_valid_utf8(ByteView text) { return first_invalid_utf8(text) == kValidUtf8; }

bool option_may_repeat(std::uint8_t type) {
    if (type == static_cast<std::uint8_t>(OptionType::Pad1) || type == static_cast<std::uint8_t>(OptionType::PadN)) {
        return false;
    }
    return known_option_may_repeat(type);
}

namespace {

// Remembers which single-instance option types were seen; throws on the second occurrence,
// `at` being the offset of its Type octet. Each of these options describes one property of the
// binding (one MN, one handoff indicator, one timestamp, one GRE key per direction (RFC 5845
// §6.1), ...): a second instance would be ambiguous, so the message is rejected.
class DuplicateGuard {
public:
    void see(std::uint8_t type, std::size_t at) {
        if (option_may_repeat(type)) {
            return;
        }
        if (seen_[type]) {
            throw WireError(fmt::format("{} option", option_name(type)), at, "appears more than once");
        }
        seen_[type] = true;
    }

private:
    std::array<bool, 256> seen_{};
};

} // namespace

OptionList decode_options(ByteView area, std::size_t base_offset, std::vector<std::size_t>* type_offsets) {
    OptionList list;
    DuplicateGuard guard;
    ByteReader r(area, base_offset);
    while (!r.empty()) {
        const std::size_t at = r.offset();
        const std::uint8_t type = r.u8("option Type");
        if (type == static_cast<std::uint8_t>(OptionType::Pad1)) {
            continue;
        }
        if (r.empty()) {
            throw WireError(field_name(type, "Length"), r.offset(),
                            "truncated option: the message ends after the option Type");
        }
        const std::uint8_t len = r.u8("option Length");   // there is one (checked above)
        if (len > r.remaining()) {
            throw WireError(field_name(type, "Length"), at + 1,
                            fmt::format("option runs past the end of the message: Length {} but only "
                                        "{} octet(s) left",
                                        len, r.remaining()));
        }
        const auto body = r.bytes(len, "option data");      // and len octets after it
        if (type == static_cast<std::uint8_t>(OptionType::PadN)) {
            continue;  // contents ignored on receipt (RFC 6275 §6.2.3)
        }
        guard.see(type, at);
        list.items.push_back(decode_option(type, body, at));
        if (type_offsets != nullptr) {
            type_offsets->push_back(at);
        }
    }
    return list;
}

std::vector<std::size_t> encode_options(const OptionList& options, Bytes& out) {
    std::vector<std::size_t> type_offsets;
    DuplicateGuard guard;
    for (const auto& option : options.items) {
        const auto type = option_type(option);
        if (type == static_cast<std::uint8_t>(OptionType::Pad1) ||
            type == static_cast<std::uint8_t>(OptionType::PadN)) {
            throw WireError("option Type", WireError::kNoOffset,
                            "padding is generated by the encoder; do not add Pad1/PadN as options");
        }
        Bytes body;
        ByteWriter w(body);
        encode_body(option, w);
        if (body.size() > 255) {
            throw WireError(field_name(type, "Length"), WireError::kNoOffset,
                            fmt::format("option data of {} octets does not fit the 8-bit Length", body.size()));
        }
        const auto align = option_alignment(option);
        pad_to(out, align.factor, align.offset);
        const std::size_t at = out.size();
        guard.see(type, at);                  // the same rules as on input
        (void)decode_option(type, body, at);
        type_offsets.push_back(at);
        out.push_back(type);
        out.push_back(static_cast<std::uint8_t>(body.size()));
        out.insert(out.end(), body.begin(), body.end());
    }
    pad_to(out, 8, 0);  // RFC 6275 §6.1.1: the MH is a multiple of 8 octets
    return type_offsets;
}

std::uint64_t timestamp_from_unix_nanos(std::uint64_t ns) {
    const std::uint64_t seconds = ns / 1'000'000'000ULL;
    const std::uint64_t fraction = ((ns % 1'000'000'000ULL) << 16) / 1'000'000'000ULL;
    return ((seconds & 0xffff'ffff'ffffULL) << 16) | fraction;
}

std::uint64_t timestamp_to_unix_nanos(std::uint64_t ts) {
    constexpr std::uint64_t kNanosPerSecond = 1'000'000'000ULL;
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t seconds = ts >> 16;                                     // up to 2^48 - 1
    const std::uint64_t fraction_ns = ((ts & 0xffff) * kNanosPerSecond) >> 16;  // < 10^9
    // 2^64 ns is about 1.8e10 s: later timestamps saturate instead of wrapping around.
    if (seconds > kMax / kNanosPerSecond) {
        return kMax;
    }
    const std::uint64_t whole_ns = seconds * kNanosPerSecond;
    return whole_ns > kMax - fraction_ns ? kMax : whole_ns + fraction_ns;
}

} // namespace xpmip::wire
