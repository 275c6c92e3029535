// The field codec of the agents' state files (user/state/record_log.hpp): little-endian integers,
// length-prefixed strings, tagged addresses and optionals, every field in a fixed order. A
// Reader names the field and the offset of every error.
#pragma once

#include "common/address.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace xpmip::state {

class RecordError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) { uint(v, 2); }
    void u32(std::uint32_t v) { uint(v, 4); }
    void u64(std::uint64_t v) { uint(v, 8); }
    void flag(bool v) { u8(v ? 1 : 0); }
    void bytes(std::string_view s) {
        u16(static_cast<std::uint16_t>(s.size()));
        out_.append(s);
    }
    template <std::size_t N>
    void raw(const std::array<std::uint8_t, N>& a) {
        out_.append(reinterpret_cast<const char*>(a.data()), N);
    }
    void address(const IpAddress& a) {
        if (const auto* v4 = std::get_if<Ipv4Address>(&a)) {
            u8(4);
            raw(v4->bytes);
        } else {
            u8(6);
            raw(std::get<Ipv6Address>(a).bytes);
        }
    }
    template <class T, class F>
    void optional(const std::optional<T>& v, F&& write) {
        flag(v.has_value());
        if (v) {
            write(*v);
        }
    }
    // The optional fields both journals hold, each a flag then its value.
    void opt_u32(const std::optional<std::uint32_t>& v) { optional(v, [&](auto x) { u32(x); }); }
    void opt_u64(const std::optional<std::uint64_t>& v) { optional(v, [&](auto x) { u64(x); }); }
    void opt_ipv4(const std::optional<Ipv4Address>& v) { optional(v, [&](const auto& a) { raw(a.bytes); }); }
    void opt_ipv6(const std::optional<Ipv6Address>& v) { optional(v, [&](const auto& a) { raw(a.bytes); }); }
    void opt_prefix6(const std::optional<Ipv6Prefix>& v) {
        optional(v, [&](const Ipv6Prefix& p) {
            raw(p.address.bytes);
            u8(p.length);
        });
    }

private:
    void uint(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) {
            out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        }
    }
    std::string& out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    std::uint8_t u8(const char* field) { return static_cast<std::uint8_t>(uint(1, field)); }
    std::uint16_t u16(const char* field) { return static_cast<std::uint16_t>(uint(2, field)); }
    std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(uint(4, field)); }
    std::uint64_t u64(const char* field) { return uint(8, field); }
    bool flag(const char* field) {
        const auto v = u8(field);
        if (v > 1) {
            throw RecordError(fmt::format("{}: {} is not 0 or 1 (offset {})", field, v, at_ - 1));
        }
        return v == 1;
    }
    std::string bytes(const char* field) {
        const auto n = u16(field);
        need(n, field);
        std::string s(in_.substr(at_, n));
        at_ += n;
        return s;
    }
    template <std::size_t N>
    void raw(std::array<std::uint8_t, N>& a, const char* field) {
        need(N, field);
        std::memcpy(a.data(), in_.data() + at_, N);
        at_ += N;
    }
    IpAddress address(const char* field) {
        const auto family = u8(field);
        if (family == 4) {
            Ipv4Address a;
            raw(a.bytes, field);
            return a;
        }
        if (family != 6) {
            throw RecordError(fmt::format("{}: address family {} is not 4 or 6 (offset {})", field, family, at_ - 1));
        }
        Ipv6Address a;
        raw(a.bytes, field);
        return a;
    }
    template <class F>
    auto optional(const char* field, F&& read) -> std::optional<decltype(read())> {
        if (!flag(field)) {
            return std::nullopt;
        }
        return read();
    }
    std::optional<std::uint32_t> opt_u32(const char* field) {
        return optional(field, [&] { return u32(field); });
    }
    std::optional<std::uint64_t> opt_u64(const char* field) {
        return optional(field, [&] { return u64(field); });
    }
    std::optional<Ipv4Address> opt_ipv4(const char* field) {
        return optional(field, [&] { return fixed<Ipv4Address>(field); });
    }
    std::optional<Ipv6Address> opt_ipv6(const char* field) {
        return optional(field, [&] { return fixed<Ipv6Address>(field); });
    }
    std::optional<Ipv6Prefix> opt_prefix6(const char* field) {
        return optional(field, [&] {
            Ipv6Prefix p;
            raw(p.address.bytes, field);
            p.length = u8(field);
            return p;
        });
    }
    void end() const {
        if (at_ != in_.size()) {
            throw RecordError(fmt::format("{} octets after the last field (offset {})", in_.size() - at_, at_));
        }
    }

private:
    template <class A>
    A fixed(const char* field) {
        A a;
        raw(a.bytes, field);
        return a;
    }
    void need(std::size_t n, const char* field) const {
        if (in_.size() - at_ < n) {
            throw RecordError(fmt::format("{}: cut short at offset {} ({} of {} octets)", field, at_, in_.size() - at_, n));
        }
    }
    std::uint64_t uint(int n, const char* field) {
        need(static_cast<std::size_t>(n), field);
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) {
            v |= std::uint64_t{static_cast<std::uint8_t>(in_[at_ + i])} << (8 * i);
        }
        at_ += static_cast<std::size_t>(n);
        return v;
    }
    std::string_view in_;
    std::size_t at_ = 0;
};

} // namespace xpmip::state
