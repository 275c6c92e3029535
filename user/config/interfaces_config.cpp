#include "config/interfaces_config.hpp"

#include <fmt/format.h>

#include <set>

namespace xpmip::config {

std::vector<dataplane::InterfaceConfig> read_interfaces(MapReader& root) {
    std::vector<dataplane::InterfaceConfig> out;
    std::set<std::string> seen;
    for (auto& r : root.map_list("interfaces")) {
        dataplane::InterfaceConfig ic;
        ic.name = r.str("name");
        if (!seen.insert(ic.name).second) {
            r.fail("name", fmt::format("interface '{}' is listed twice", ic.name));
        }
        auto kind = r.opt_choice("kind", {"core", "core-l2", "tunnel", "access"});
        if (!kind) {
            r.fail("kind", "is required (core, core-l2, tunnel or access)");
        }
        ic.kind = dataplane::parse_interface_kind(*kind);
        ic.realm = static_cast<std::uint32_t>(r.opt_uint("realm", 0, 0xffffffffu).value_or(0));
        ic.generic_xdp = r.opt_bool("generic_xdp").value_or(false);
        r.finish();
        out.push_back(ic);
    }
    return out;
}

DataplaneTuning read_dataplane(MapReader& root) {
    DataplaneTuning t;
    auto dp = root.opt_map("dataplane");
    if (!dp) {
        return t;
    }
    std::string joined;
    for (const auto& item : dp->str_list("spread_cpus")) {
        joined += (joined.empty() ? "" : ",") + item;
    }
    try {
        t.spread_cpus = dataplane::parse_cpu_list(joined, dataplane::possible_cpus());
    } catch (const dataplane::DataplaneError& e) {
        dp->fail("spread_cpus", e.what());
    }
    t.route_cache = dp->opt_bool("route_cache").value_or(t.route_cache);
    dp->finish();
    return t;
}

std::string read_state_directory(MapReader& root, const std::string& instance, const char* role) {
    std::string dir = root.opt_str("state_directory").value_or("/var/lib/xpmip/" + instance);
    if (dir.empty() || dir.front() != '/') {
        root.fail("state_directory", fmt::format("'{}' is not an absolute path (a directory of the {}'s own, e.g. "
                                                 "/var/lib/xpmip/{})", dir, role, instance));
    }
    return dir;
}

std::vector<std::string> read_signaling_interfaces(MapReader& root,
                                                   const std::vector<dataplane::InterfaceConfig>& interfaces) {
    std::vector<std::string> names = root.str_list("signaling_interfaces");
    for (const auto& n : names) {
        if (n.empty() || n.size() >= 16) {
            root.fail("signaling_interfaces", fmt::format("'{}' is not an interface name", n));
        }
    }
    if (names.empty()) {
        for (const auto& i : interfaces) {
            if (i.kind == dataplane::InterfaceKind::Tunnel) {
                names.push_back(i.name);
            }
        }
    }
    return names;
}

} // namespace xpmip::config
