#include "wire/error.hpp"

#include <fmt/format.h>

namespace xpmip::wire {

namespace {
std::string describe(const std::string& field, std::size_t offset, const std::string& reason) {
    if (offset == WireError::kNoOffset) {
        return fmt::format("{}: {}", field, reason);
    }
    return fmt::format("{} at offset {}: {}", field, offset, reason);
}
} // namespace

WireError::WireError(std::string field, std::size_t offset, const std::string& reason)
    : std::runtime_error(describe(field, offset, reason)), field_(std::move(field)), offset_(offset),
      reason_(reason) {}

} // namespace xpmip::wire
