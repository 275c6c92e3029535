#include "common/pcap.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace xpmip {

namespace {
constexpr std::uint32_t kPcapMagic = 0xa1b2c3d4;  // microsecond timestamps, native byte order
constexpr std::uint32_t kLinktypeRaw = 101;

struct GlobalHeader {
    std::uint32_t magic = kPcapMagic;
    std::uint16_t version_major = 2;
    std::uint16_t version_minor = 4;
    std::int32_t thiszone = 0;
    std::uint32_t sigfigs = 0;
    std::uint32_t snaplen = 65535;
    std::uint32_t network = kLinktypeRaw;
};
static_assert(sizeof(GlobalHeader) == 24);

struct RecordHeader {
    std::uint32_t ts_sec = 0;
    std::uint32_t ts_usec = 0;
    std::uint32_t incl_len = 0;
    std::uint32_t orig_len = 0;
};
static_assert(sizeof(RecordHeader) == 16);
} // namespace

PcapWriter::PcapWriter(const std::string& path) : file_(std::fopen(path.c_str(), "wb")), path_(path) {
    if (!file_) {
        throw std::runtime_error(fmt::format("pcap {}: {}", path, std::strerror(errno)));
    }
    GlobalHeader h;
    if (std::fwrite(&h, sizeof h, 1, file_.get()) != 1) {
        throw std::runtime_error(fmt::format("pcap {}: write failed", path));
    }
}

void PcapWriter::write(std::span<const std::uint8_t> packet) {
    RecordHeader r;
    r.ts_sec = 1;
    r.incl_len = r.orig_len = static_cast<std::uint32_t>(packet.size());
    if (std::fwrite(&r, sizeof r, 1, file_.get()) != 1 ||
        std::fwrite(packet.data(), 1, packet.size(), file_.get()) != packet.size()) {
        throw std::runtime_error(fmt::format("pcap {}: write failed", path_));
    }
    std::fflush(file_.get());
}

} // namespace xpmip
