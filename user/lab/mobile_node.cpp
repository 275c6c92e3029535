#include "lab/mobile_node.hpp"

#include "common/address.hpp"
#include "lab/system.hpp"

#include <fmt/format.h>

namespace xpmip::lab {

std::string eui64_address(const std::string& prefix, const std::string& mac) {
    const auto p = Ipv6Prefix::parse(prefix).canonical();
    if (p.length > 64) {
        throw LabError(fmt::format("prefix {} is longer than /64: no room for an interface identifier", prefix));
    }
    const auto m = MacAddress::parse(mac);
    Ipv6Address a = p.address;
    // Modified EUI-64: the MAC split by ff:fe, the universal/local bit inverted.
    a.bytes[8] = static_cast<std::uint8_t>(m.bytes[0] ^ 0x02);
    a.bytes[9] = m.bytes[1];
    a.bytes[10] = m.bytes[2];
    a.bytes[11] = 0xff;
    a.bytes[12] = 0xfe;
    a.bytes[13] = m.bytes[3];
    a.bytes[14] = m.bytes[4];
    a.bytes[15] = m.bytes[5];
    return a.to_string();
}

unsigned tunnel_mtu(const nlohmann::json& b, bool ipv4_transport) {
    unsigned overhead = ipv4_transport ? 20 : 40;   // the outer IP header
    if (b.value("gre", false)) {
        overhead += 4;                              // GRE (RFC 2784)
        if (!b["key_uplink"].is_null()) {
            overhead += 4;                          // its Key field (RFC 2890, RFC 5845 §3)
        }
        if (b.value("tlv", false)) {
            overhead += 8 + 4;                      // UDP and the TLV header (RFC 5845 §7.1)
        }
    } else if (b.value("udp", false)) {
        overhead += 8;                              // UDP encapsulation (RFC 5844)
    }
    return 1500 - overhead;
}

MnAddresses addresses_from_binding(const MobileNode& mn, const nlohmann::json& b, const std::string& mag_link_local) {
    MnAddresses a;
    auto field = [&](const char* name) -> std::optional<std::string> {
        if (!b.contains(name) || b[name].is_null()) {
            return std::nullopt;
        }
        if (!b[name].is_string()) {
            throw LabError(fmt::format("the MAG's binding of {} has a malformed '{}': {}", mn.id, name, b[name].dump()));
        }
        return b[name].get<std::string>();
    };
    if (auto hoa = field("hoa")) {
        // The HoA without its length (the MAG's view lists the address): the prefix length and
        // the default router are the realm's (RFC 5844 §3.3: IPv4 Home Address Reply prefix
        // length, IPv4 Default-Router Address option), as the LMA's configuration sets them.
        const auto addr = hoa->substr(0, hoa->find('/'));
        if (!Ipv4Address::try_parse(addr)) {
            throw LabError(fmt::format("the MAG's binding of {} has a malformed hoa '{}'", mn.id, *hoa));
        }
        a.ipv4 = fmt::format("{}/{}", addr, mn.op->ipv4_pool_length);
        a.ipv4_router = mn.op->ipv4_router;
    }
    if (auto hnp = field("hnp")) {
        try {
            a.ipv6 = fmt::format("{}/64", eui64_address(*hnp, mn.mac));
        } catch (const std::invalid_argument& e) {
            throw LabError(fmt::format("the MAG's binding of {} has a malformed hnp '{}': {}", mn.id, *hnp, e.what()));
        }
        a.ipv6_router = mag_link_local;
    }
    a.mtu = tunnel_mtu(b, b.value("lma", "").find(':') == std::string::npos);
    if (!a.ipv4 && !a.ipv6) {
        throw LabError(fmt::format("the MAG's binding of {} has neither an IPv4 home address nor a home network "
                                   "prefix: {}",
                                   mn.id, b.dump()));
    }
    return a;
}

void configure_mobile_node(const MobileNode& mn, const MnAddresses& a) {
    const RunOptions in{.netns = mn.ns};
    run({"ip", "link", "set", "eth0", "mtu", std::to_string(a.mtu)}, in);
    if (a.ipv4) {
        run({"ip", "addr", "add", *a.ipv4, "dev", "eth0"}, in);
        run({"ip", "route", "add", "default", "via", *a.ipv4_router, "dev", "eth0"}, in);
    }
    if (a.ipv6) {
        run({"ip", "-6", "addr", "add", *a.ipv6, "dev", "eth0"}, in);
        run({"ip", "-6", "route", "add", "default", "via", *a.ipv6_router, "dev", "eth0"}, in);
    }
}

} // namespace xpmip::lab
