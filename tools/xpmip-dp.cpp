// xpmip-dp: drive an xpmip data plane instance directly (tests, debugging, the lab).
//
//   xpmip-dp [-i INSTANCE] load --role lma|mag [--attach IF:KIND[:REALM]]... [--sessions N] [--generic]
//                                   [--spread-cpus all|none|0-3,6]
//   xpmip-dp [-i INSTANCE] session add FILE|-        JSON session (or array), see user/dataplane/json.cpp
//   xpmip-dp [-i INSTANCE] session del ID
//   xpmip-dp [-i INSTANCE] session show [ID]          JSON with counters
//   xpmip-dp [-i INSTANCE] path ID BID up|down
//   xpmip-dp [-i INSTANCE] policy set ID FILE|-
//   xpmip-dp [-i INSTANCE] stats [--reset]
//   xpmip-dp [-i INSTANCE] events [--count N] [--timeout MS]
//   xpmip-dp [-i INSTANCE] interfaces
//   xpmip-dp [-i INSTANCE] unload
//   xpmip-dp run IFNAME xdp|tc-ingress|tc-egress HEX [--repeat N]
//                                                    BPF_PROG_TEST_RUN of the attached program
#include "dataplane/dataplane.hpp"
#include "dataplane/events.hpp"
#include "dataplane/json.hpp"
#include "dataplane/test_run.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>

using namespace xpmip;
using namespace xpmip::dataplane;
using nlohmann::json;

namespace {

json read_json(const std::string& path) {
    if (path.empty() || path == "-") {
        return json::parse(std::cin);
    }
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error(fmt::format("cannot open {}", path));
    }
    return json::parse(in);
}

InterfaceConfig parse_attach(const std::string& spec, bool generic) {
    // IF:KIND[:REALM]
    InterfaceConfig c;
    const auto a = spec.find(':');
    if (a == std::string::npos) {
        throw std::runtime_error(fmt::format("--attach '{}': expected IFNAME:KIND[:REALM]", spec));
    }
    c.name = spec.substr(0, a);
    const auto b = spec.find(':', a + 1);
    c.kind = parse_interface_kind(spec.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1));
    if (b != std::string::npos) {
        c.realm = static_cast<std::uint32_t>(std::stoul(spec.substr(b + 1)));
    }
    c.generic_xdp = generic;
    return c;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Drive an xpmip data plane instance (maps pinned under /sys/fs/bpf/xpmip/<instance>)"};
    app.require_subcommand(1);
    std::string instance = "default";
    std::string pin_root = kDefaultPinRoot.string();
    bool verbose = false;
    app.add_option("-i,--instance", instance, "instance name");
    app.add_option("--pin-root", pin_root, "bpffs directory of all instances");
    app.add_flag("-v,--verbose", verbose, "debug logging (libbpf)");

    std::string role = "lma";
    std::vector<std::string> attaches;
    bool generic = false;
    Limits limits;
    auto* load = app.add_subcommand("load", "Load (or reload, keeping pinned maps) and attach the programs");
    load->add_option("--role", role, "lma or mag")->required();
    load->add_option("--attach", attaches, "IFNAME:KIND[:REALM], KIND one of core, core-l2, tunnel, access");
    load->add_flag("--generic", generic, "attach XDP in generic (skb) mode instead of native");
    load->add_option("--sessions", limits.sessions, "session table size");
    std::string spread = "none";
    bool no_route_cache = false;
    load->add_flag("--no-route-cache", no_route_cache, "a FIB lookup for every uplink packet (README \"Route cache\")");
    std::uint32_t route_ttl_ms = XPMIP_ROUTE_CACHE_TTL_MS;
    load->add_option("--route-cache-ttl-ms", route_ttl_ms, "how long a cached route may serve (tests)")
        ->check(CLI::Range(1u, 3600u * 1000u));
    load->add_option("--spread-cpus", spread, "CPUs tunnel ingress is spread over (all, none, 0-3,6)");
    load->add_option("--interfaces", limits.interfaces, "interface table size");
    load->add_option("--policies", limits.policies, "steering policy table size");

    auto* session = app.add_subcommand("session", "Add, remove or show sessions");
    session->require_subcommand(1);
    std::string file;
    std::uint32_t id = 0;
    auto* sadd = session->add_subcommand("add", "Add or replace session(s) from JSON");
    sadd->add_option("file", file, "JSON file ('-' for stdin)");
    auto* sdel = session->add_subcommand("del", "Remove a session");
    sdel->add_option("id", id, "session id")->required();
    auto* sshow = session->add_subcommand("show", "Show sessions with their counters (JSON)");
    sshow->add_option("id", id, "session id (all when omitted)");

    std::uint32_t bid = 0;
    std::string state;
    auto* path = app.add_subcommand("path", "Mark a session's path up or down");
    path->add_option("id", id, "session id")->required();
    path->add_option("bid", bid, "Binding-Id of the path")->required();
    path->add_option("state", state, "up or down")->required()->check(CLI::IsMember({"up", "down"}));

    std::uint32_t policy_id = 0;
    auto* policy = app.add_subcommand("policy", "Set a steering policy");
    policy->require_subcommand(1);
    auto* pset = policy->add_subcommand("set", "Set policy ID from JSON");
    pset->add_option("id", policy_id, "policy id (1..)")->required();
    pset->add_option("file", file, "JSON file ('-' for stdin)");

    bool reset = false;
    auto* stats = app.add_subcommand("stats", "Global counters (JSON)");
    stats->add_flag("--reset", reset, "zero them after printing");

    int count = 1, timeout_ms = 5000;
    auto* events = app.add_subcommand("events", "Print events from the ring buffer (JSON lines)");
    events->add_option("--count", count, "stop after this many");
    events->add_option("--timeout", timeout_ms, "give up after this many milliseconds");

    bool refresh = false;
    auto* nexthops = app.add_subcommand("nexthops", "Show the tunnel peers' next hops (JSON)");
    nexthops->add_flag("--refresh", refresh, "resolve them from the kernel's routes and neighbours first "
                                             "(what a running agent does on every change)");

    auto* ifs = app.add_subcommand("interfaces", "Show attached interfaces (JSON)");
    auto* unload = app.add_subcommand("unload", "Detach everything and remove the pinned maps and links");
    auto* routes = app.add_subcommand("invalidate-routes",
                                      "Make the route cache's entries stale, as the agent does on netlink events");

    std::string run_if, run_hook, run_hex;
    std::uint32_t repeat = 1;
    auto* run = app.add_subcommand("run", "Run a packet (hex) through the program attached to an interface "
                                          "(BPF_PROG_TEST_RUN); prints {retval, output, duration_ns}");
    run->add_option("interface", run_if, "interface the program is attached to")->required();
    run->add_option("hook", run_hook, "xdp, tc-ingress or tc-egress")->required();
    run->add_option("packet", run_hex, "Ethernet frame in hex")->required();
    run->add_option("--repeat", repeat, "repetitions (for timing)");

    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
    try {
        if (load->parsed()) {
            DataplaneOptions o;
            o.instance = instance;
            o.role = parse_role(role);
            o.limits = limits;
            o.pin_root = pin_root;
            o.spread_cpus = parse_cpu_list(spread, possible_cpus());
            o.route_cache = !no_route_cache;
            o.route_cache_ttl_ms = route_ttl_ms;
            Dataplane dp(o);
            for (const auto& a : attaches) {
                dp.attach(parse_attach(a, generic));
            }
            return 0;
        }
        if (run->parsed()) {
            std::vector<std::uint8_t> pkt;
            for (std::size_t i = 0; i + 1 < run_hex.size(); i += 2) {
                pkt.push_back(static_cast<std::uint8_t>(std::stoul(run_hex.substr(i, 2), nullptr, 16)));
            }
            const auto r = test_run(run_if, parse_hook(run_hook), pkt, repeat);
            std::string out;
            for (auto b : r.output) {
                out += fmt::format("{:02x}", b);
            }
            std::cout << json{{"retval", r.retval}, {"output", out}, {"duration_ns", r.duration_ns}}.dump() << "\n";
            return 0;
        }
        if (unload->parsed()) {
            unload_pinned(instance, pin_root);
            return 0;
        }
        auto pinned = open_pinned(instance, pin_root);
        if (routes->parsed()) {
            invalidate_routes(pinned.maps);
            return 0;
        }
        auto table = pinned.sessions();
        if (sadd->parsed()) {
            const auto j = read_json(file);
            for (const auto& s : j.is_array() ? j : json::array({j})) {
                table.upsert(session_from_json(s));
            }
        } else if (sdel->parsed()) {
            if (!table.remove(id)) {
                throw DataplaneError(fmt::format("session {} does not exist", id));
            }
        } else if (sshow->parsed()) {
            json out = json::array();
            for (const auto& s : table.list()) {
                if (id && s.id != id) {
                    continue;
                }
                auto j = to_json(s);
                j["counters"] = to_json(table.counters(s.id), s.paths.size());
                out.push_back(j);
            }
            std::cout << out.dump(2) << "\n";
        } else if (path->parsed()) {
            table.set_path_up(id, static_cast<std::uint8_t>(bid), state == "up");
        } else if (pset->parsed()) {
            if (policy_id == 0 || policy_id > 255) {
                throw DataplaneError(fmt::format("policy id {} is not 1..255", policy_id));
            }
            table.set_policy(static_cast<std::uint8_t>(policy_id), policy_from_json(read_json(file)));
        } else if (nexthops->parsed()) {
            if (refresh) {
                NextHopCache(pinned.maps).refresh_all();
            }
            std::cout << to_json(list_next_hops(pinned.maps)).dump(2) << "\n";
        } else if (stats->parsed()) {
            std::cout << to_json(read_counters(pinned.maps)).dump(2) << "\n";
            if (reset) {
                reset_counters(pinned.maps);
            }
        } else if (events->parsed()) {
            int seen = 0;
            EventReader reader(pinned.maps, [&](const xpmip_event& e) {
                MacAddress mac;
                std::copy(std::begin(e.mac), std::end(e.mac), mac.bytes.begin());
                std::cout << json{{"type", e.type}, {"ifindex", e.ifindex}, {"mac", mac.to_string()},
                                  {"ethertype", e.ethertype}}.dump()
                          << std::endl;
                ++seen;
            });
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
            while (seen < count && std::chrono::steady_clock::now() < deadline) {
                reader.poll(100);
            }
            return seen >= count ? 0 : 3;
        } else if (ifs->parsed()) {
            json out = json::array();
            for (const auto& k : pinned.maps.keys(MapId::Ifaces, sizeof(std::uint32_t))) {
                std::uint32_t ifindex;
                std::memcpy(&ifindex, k.data(), sizeof ifindex);
                xpmip_iface v{};
                pinned.maps.lookup(MapId::Ifaces, &ifindex, &v);
                out.push_back({{"ifindex", ifindex}, {"kind", to_string(static_cast<InterfaceKind>(v.kind))},
                               {"realm", v.realm}});
            }
            std::cout << out.dump(2) << "\n";
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "xpmip-dp: " << e.what() << "\n";
        return 1;
    }
}
