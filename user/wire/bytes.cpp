#include "wire/bytes.hpp"

#include <fmt/format.h>

namespace xpmip::wire {

void ByteReader::need(std::size_t n, std::string_view field) const {
    if (n > remaining()) {
        throw WireError(std::string(field), offset(),
                        fmt::format("truncated: needs {} octet(s), {} left", n, remaining()));
    }
}

std::uint8_t ByteReader::u8(std::string_view field) {
    need(1, field);
    return buf_[pos_++];
}

std::uint16_t ByteReader::u16(std::string_view field) {
    need(2, field);
    auto v = load_be16(&buf_[pos_]);
    pos_ += 2;
    return v;
}

std::uint32_t ByteReader::u32(std::string_view field) {
    need(4, field);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v = (v << 8) | buf_[pos_++];
    }
    return v;
}

std::uint64_t ByteReader::u64(std::string_view field) {
    need(8, field);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
        v = (v << 8) | buf_[pos_++];
    }
    return v;
}

ByteView ByteReader::bytes(std::size_t n, std::string_view field) {
    need(n, field);
    auto v = buf_.subspan(pos_, n);
    pos_ += n;
    return v;
}

ByteView ByteReader::rest() noexcept {
    auto v = buf_.subspan(pos_);
    pos_ = buf_.size();
    return v;
}

void ByteWriter::u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
}

void ByteWriter::u32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out_.push_back(static_cast<std::uint8_t>(v >> shift));
    }
}

void ByteWriter::u64(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) {
        out_.push_back(static_cast<std::uint8_t>(v >> shift));
    }
}

void ByteWriter::patch_u16(std::size_t at, std::uint16_t v) {
    out_.at(at) = static_cast<std::uint8_t>(v >> 8);
    out_.at(at + 1) = static_cast<std::uint8_t>(v);
}

void ByteWriter::patch_u8(std::size_t at, std::uint8_t v) { out_.at(at) = v; }

} // namespace xpmip::wire
