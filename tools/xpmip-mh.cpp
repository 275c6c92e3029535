// xpmip-mh: build and decode PMIPv6 signaling with xpmip's codec.
//
//   xpmip-mh decode [--mh] [FILE]      hex (whitespace ignored) of an IP packet, or with --mh of a
//                                      bare Mobility Header; prints the message as JSON. Exit 2 and
//                                      {"error", "field", "offset"} on malformed input.
//   xpmip-mh encode --frame ipv6|udp|mh [--src A --dst B --sport N] [--pcap OUT] [SPEC]
//                                      SPEC: a JSON message or array of messages (see
//                                      user/wire/json.cpp); writes hex per message, or a pcap.
#include "common/pcap.hpp"
#include "wire/json.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

using namespace xpmip;
using namespace xpmip::wire;

namespace {

std::string read_input(const std::string& path) {
    if (path.empty() || path == "-") {
        return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error(fmt::format("cannot open {}", path));
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Bytes parse_hex(const std::string& text) {
    Bytes out;
    int nibble = -1;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c)) || c == ':') {
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            throw std::runtime_error(fmt::format("input: '{}' is not a hex digit", c));
        }
        const int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
        if (nibble < 0) {
            nibble = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(nibble << 4 | v));
            nibble = -1;
        }
    }
    if (nibble >= 0) {
        throw std::runtime_error("input: odd number of hex digits");
    }
    return out;
}

std::string to_hex(ByteView b) {
    std::string s;
    for (auto x : b) {
        s += fmt::format("{:02x}", x);
    }
    return s;
}

int run_decode(const std::string& file, bool bare_mh) {
    const auto bytes = parse_hex(read_input(file));
    try {
        nlohmann::json j = bare_mh ? to_json(decode(bytes)) : to_json(parse_packet(bytes));
        std::cout << dump_json(j, 2) << "\n";
        return 0;
    } catch (const WireError& e) {
        nlohmann::json j{{"error", e.what()}, {"field", e.field()}, {"reason", e.reason()}};
        if (e.offset() != WireError::kNoOffset) {
            j["offset"] = e.offset();
        }
        std::cout << dump_json(j, 2) << "\n";
        return 2;
    }
}

int run_encode(const std::string& file, const std::string& frame, const std::string& src, const std::string& dst,
               std::uint16_t sport, std::uint16_t dport, const std::string& pcap_path) {
    const auto spec = nlohmann::json::parse(read_input(file));
    std::vector<MobilityMessage> messages;
    if (spec.is_array()) {
        for (const auto& m : spec) {
            messages.push_back(message_from_json(m));
        }
    } else {
        messages.push_back(message_from_json(spec));
    }
    std::optional<PcapWriter> pcap;
    if (!pcap_path.empty()) {
        if (frame == "mh") {
            throw std::runtime_error("--pcap needs --frame ipv6 or udp");
        }
        pcap.emplace(pcap_path);
    }
    for (const auto& m : messages) {
        Bytes out;
        if (frame == "ipv6") {
            out = frame_ipv6(m, Ipv6Address::parse(src.empty() ? "2001:db8::1" : src),
                             Ipv6Address::parse(dst.empty() ? "2001:db8::2" : dst));
        } else if (frame == "udp") {
            out = frame_ipv4_udp(m, Ipv4Address::parse(src.empty() ? "192.0.2.1" : src),
                                 Ipv4Address::parse(dst.empty() ? "192.0.2.2" : dst), sport, dport);
        } else {
            out = encode(m);
        }
        if (pcap) {
            pcap->write(out);
        } else {
            std::cout << to_hex(out) << "\n";
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Build and decode PMIPv6 Proxy Binding Update / Acknowledgement messages"};
    app.require_subcommand(1);

    std::string file;
    bool bare_mh = false;
    auto* dec = app.add_subcommand("decode", "Decode hex of an IPv4/UDP 5436 or IPv6 packet (or --mh: a bare "
                                             "Mobility Header) and print it as JSON; exit 2 on malformed input");
    dec->add_option("file", file, "input file with hex digits ('-' or none: stdin)");
    dec->add_flag("--mh", bare_mh, "the input is a bare Mobility Header, not an IP packet");

    std::string frame = "ipv6", src, dst, pcap_path;
    std::uint16_t sport = kUdpPortPmipControl, dport = kUdpPortPmipControl;
    auto* enc = app.add_subcommand("encode", "Encode JSON message(s) and print hex per message or write a pcap");
    enc->add_option("spec", file, "JSON file: one message object or an array ('-' or none: stdin)");
    enc->add_option("--frame", frame, "ipv6 (MH in IPv6, checksum filled), udp (IPv4/UDP 5436, MH checksum 0) "
                                      "or mh (bare MH)")
        ->check(CLI::IsMember({"ipv6", "udp", "mh"}));
    enc->add_option("--src", src, "source address (default 2001:db8::1 / 192.0.2.1)");
    enc->add_option("--dst", dst, "destination address (default 2001:db8::2 / 192.0.2.2)");
    enc->add_option("--sport", sport, "UDP source port (udp frame)");
    enc->add_option("--dport", dport, "UDP destination port (udp frame)");
    enc->add_option("--pcap", pcap_path, "write a pcap (LINKTYPE_RAW) instead of hex");

    CLI11_PARSE(app, argc, argv);
    try {
        if (dec->parsed()) {
            return run_decode(file, bare_mh);
        }
        return run_encode(file, frame, src, dst, sport, dport, pcap_path);
    } catch (const std::exception& e) {
        std::cerr << "xpmip-mh: " << e.what() << "\n";
        return 1;
    }
}
