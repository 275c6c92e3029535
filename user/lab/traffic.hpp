// Traffic between a mobile node and its correspondent, and a look at the tunnel on the wire.
#pragma once

#include "lab/system.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::lab {

struct PingResult {
    bool ok = false;             // every echo answered
    int sent = 0, received = 0;
    double avg_ms = 0;
    std::string output;          // ping's, for a failure message
    std::string summary() const;
};

// `ping -c COUNT DST` from namespace `ns` (iputils-ping).
PingResult ping(const std::string& ns, const std::string& dst, int count);

struct TcpResult {
    bool ok = false;
    std::size_t uplink = 0;      // octets the server received intact
    std::size_t downlink = 0;    // octets the client received intact
    double seconds = 0;
    std::string error;
    std::string summary() const;
};

// One TCP connection from a socket in `client_ns` to `server_addr`:`port` in `server_ns`:
// `bytes` of a pseudo-random pattern uplink, then the same downlink, each side checking every
// octet. Both ends are sockets of this process, made inside their namespaces.
TcpResult tcp_transfer(const std::string& client_ns, const std::string& server_ns, const std::string& server_addr,
                       std::uint16_t port, std::size_t bytes, std::chrono::milliseconds timeout);

struct GrePacket {
    std::string src, dst;        // outer addresses
    std::optional<std::uint32_t> key;
};

// tshark on a bridge in the transit namespace, keeping GRE (IP protocol 47) only.
class GreCapture {
public:
    GreCapture(const std::string& ns, const std::string& iface, std::filesystem::path pcap);
    ~GreCapture();
    GreCapture(const GreCapture&) = delete;
    GreCapture& operator=(const GreCapture&) = delete;
    // Stop capturing and decode what was seen (tshark -r ... -e ip.src -e ip.dst -e gre.key).
    std::vector<GrePacket> stop();

private:
    std::filesystem::path pcap_;
    std::unique_ptr<Child> tshark_;
};

} // namespace xpmip::lab
