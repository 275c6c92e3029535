// Minimal pcap writer (libpcap file format, LINKTYPE_RAW: each record is an IPv4 or IPv6
// packet with no link-layer header), so tests and tools can hand packets to tshark.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>

namespace xpmip {

class PcapWriter {
public:
    explicit PcapWriter(const std::string& path);  // throws std::runtime_error naming the path
    void write(std::span<const std::uint8_t> packet);

private:
    struct Closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, Closer> file_;
    std::string path_;
};

} // namespace xpmip
