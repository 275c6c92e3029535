// Writes the fuzz seed corpus from the golden vectors: each as a bare MH (prefix byte 0), framed
// in IPv6 and in IPv4/UDP 5436 (prefix byte 1), and in IPv6 again with prefix byte 3 (the harness
// recomputes the MH checksum of mutated IPv6 packets, see fuzz_mh_parser.cpp).
#include "../wire/golden_vectors.hpp"
#include "wire/framing.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

using namespace xpmip;
using namespace xpmip::wire;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: write_seeds DIR\n";
        return 1;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    const auto put = [&](const std::string& name, std::uint8_t mode, const Bytes& b) {
        std::ofstream out(dir / name, std::ios::binary);
        out.put(static_cast<char>(mode));
        out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    };
    for (const auto& v : golden::kAll) {
        put(std::string(v.name) + ".mh", 0, v.bytes);
        const auto m = decode(v.bytes);
        const auto v6 = frame_ipv6(m, Ipv6Address::parse("2001:db8::1"), Ipv6Address::parse("2001:db8::2"));
        put(std::string(v.name) + ".ipv6", 1, v6);
        put(std::string(v.name) + ".ipv6-fix-checksum", 3, v6);
        put(std::string(v.name) + ".udp", 1,
            frame_ipv4_udp(m, Ipv4Address::parse("192.0.2.1"), Ipv4Address::parse("192.0.2.2"), 5436));
    }
    // The messages without a golden vector: a Binding Error, a per-MN and a global BRI, a BRA.
    BindingRevocationIndication bri;
    bri.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1@op.example"});
    BindingRevocationIndication global;
    global.trigger = revocation_trigger::kPerPeerPolicy;
    global.flags = br_flag::kProxy | br_flag::kGlobal;
    const std::pair<const char*, MobilityMessage> more[] = {
        {"binding-error", BindingError{}},
        {"bri", bri},
        {"bri-global", global},
        {"bra", BindingRevocationAcknowledgement{}},
    };
    for (const auto& [name, m] : more) {
        put(std::string(name) + ".mh", 0, encode(m));
        put(std::string(name) + ".ipv6-fix-checksum", 3,
            frame_ipv6(m, Ipv6Address::parse("2001:db8::1"), Ipv6Address::parse("2001:db8::2")));
    }
    return 0;
}
