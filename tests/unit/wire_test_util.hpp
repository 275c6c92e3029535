#pragma once

#include "wire/error.hpp"
#include "wire/json.hpp"

#include <boost/test/unit_test.hpp>

#include <functional>
#include <ostream>
#include <string>

// Boost.Test prints values of failed comparisons: show messages as their JSON.
namespace xpmip::wire {
inline std::ostream& operator<<(std::ostream& os, const ProxyBindingUpdate& m) {
    return os << dump_json(to_json(m));
}
inline std::ostream& operator<<(std::ostream& os, const ProxyBindingAcknowledgement& m) {
    return os << dump_json(to_json(m));
}
inline std::ostream& operator<<(std::ostream& os, const MobilityMessage& m) { return os << dump_json(to_json(m)); }
} // namespace xpmip::wire

// Run `fn`, require a WireError, and check the field it names, its offset and (optionally) a
// piece of its reason.
inline void require_wire_error(const std::function<void()>& fn, const std::string& field, std::size_t offset,
                               const std::string& reason_part = {}) {
    try {
        fn();
    } catch (const xpmip::wire::WireError& e) {
        BOOST_TEST(e.field() == field, "field: got '" << e.field() << "' (" << e.what() << ")");
        BOOST_TEST(e.offset() == offset, "offset: got " << e.offset() << " (" << e.what() << ")");
        if (!reason_part.empty()) {
            BOOST_TEST(e.reason().find(reason_part) != std::string::npos,
                       "reason '" << e.reason() << "' lacks '" << reason_part << "'");
        }
        return;
    }
    BOOST_FAIL("expected a WireError naming " << field);
}
