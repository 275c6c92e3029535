// Bounds-checked big-endian readers and writers. All byte poking of the codec goes through
// these two classes, so an out-of-bounds read is impossible by construction: every read names
// the field it is for and throws WireError (with that field and its offset) instead.
#pragma once

#include "wire/error.hpp"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace xpmip::wire {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

class ByteReader {
public:
    // base_offset: offset of buf[0] within the enclosing message, used in error reports.
    explicit ByteReader(ByteView buf, std::size_t base_offset = 0) : buf_(buf), base_(base_offset) {}

    std::size_t offset() const noexcept { return base_ + pos_; }
    std::size_t remaining() const noexcept { return buf_.size() - pos_; }
    bool empty() const noexcept { return pos_ == buf_.size(); }

    std::uint8_t u8(std::string_view field);
    std::uint16_t u16(std::string_view field);
    std::uint32_t u32(std::string_view field);
    std::uint64_t u64(std::string_view field);
    ByteView bytes(std::size_t n, std::string_view field);
    // Everything left.
    ByteView rest() noexcept;
    void skip(std::size_t n, std::string_view field) { (void)bytes(n, field); }

private:
    void need(std::size_t n, std::string_view field) const;

    ByteView buf_;
    std::size_t base_;
    std::size_t pos_ = 0;
};

class ByteWriter {
public:
    explicit ByteWriter(Bytes& out) : out_(out) {}

    std::size_t size() const noexcept { return out_.size(); }
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v);
    void u32(std::uint32_t v);
    void u64(std::uint64_t v);
    void bytes(ByteView v) { out_.insert(out_.end(), v.begin(), v.end()); }
    void zeros(std::size_t n) { out_.insert(out_.end(), n, 0); }
    // Overwrite a 16-bit field already written at `at` (lengths, checksums).
    void patch_u16(std::size_t at, std::uint16_t v);
    void patch_u8(std::size_t at, std::uint8_t v);

private:
    Bytes& out_;
};

inline std::uint16_t load_be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

} // namespace xpmip::wire
