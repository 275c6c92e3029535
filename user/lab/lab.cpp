// `xpmip lab up|down|status|demo`: RFC 5845 Figure 1 in network namespaces (topology.hpp).
#include "lab/lab.hpp"

#include "control/control.hpp"
#include "lab/agents.hpp"
#include "lab/mobile_node.hpp"
#include "lab/network.hpp"
#include "lab/system.hpp"
#include "lab/topology.hpp"
#include "lab/traffic.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>

namespace xpmip::lab {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kAgentStart = std::chrono::seconds(30);
constexpr auto kRegistration = std::chrono::seconds(20);
constexpr auto kAgentStop = std::chrono::seconds(10);
constexpr std::size_t kTcpBytes = 1 << 20;
constexpr int kPings = 3;

struct Context {
    fs::path xpmip;   // the real binary the agents run
};

class Table {
public:
    explicit Table(std::vector<std::string> head) : head_(std::move(head)) {}
    void add(std::vector<std::string> row) {
        row.resize(head_.size());
        rows_.push_back(std::move(row));
    }
    std::string str() const {
        std::vector<std::size_t> w(head_.size());
        for (std::size_t i = 0; i < head_.size(); ++i) {
            w[i] = head_[i].size();
            for (const auto& r : rows_) {
                w[i] = std::max(w[i], r[i].size());
            }
        }
        std::string out;
        auto line = [&](const std::vector<std::string>& r) {
            std::string l;
            for (std::size_t i = 0; i < r.size(); ++i) {
                l += r[i];
                if (i + 1 < r.size()) {
                    l += std::string(w[i] - r[i].size() + 2, ' ');
                }
            }
            out += "  " + l + "\n";
        };
        line(head_);
        for (const auto& r : rows_) {
            line(r);
        }
        return out;
    }

private:
    std::vector<std::string> head_;
    std::vector<std::vector<std::string>> rows_;
};

std::string cell(const json& b, const char* key) {
    if (!b.contains(key) || b[key].is_null()) {
        return "-";
    }
    return b[key].is_string() ? b[key].get<std::string>() : b[key].dump();
}

void section(const std::string& title) { fmt::print("\n== {}\n", title); }

void check_host() {
    if (geteuid() != 0) {
        throw LabError("the lab needs root (network namespaces, XDP, bpffs)");
    }
    struct statfs s {};
    if (statfs("/sys/fs/bpf", &s) != 0 || static_cast<unsigned long>(s.f_type) != BPF_FS_MAGIC) {
        throw LabError("bpffs is not mounted on /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)");
    }
}

// Whatever of the lab exists, for `up` (refuses), `down` and `status`.
std::vector<std::string> existing_parts() {
    std::vector<std::string> parts;
    std::error_code ec;
    if (fs::exists(kStateDir, ec)) {
        parts.push_back("state directory " + kStateDir.string());
    }
    std::vector<std::string> ns;
    for (const auto& n : lab_namespaces()) {
        if (netns_exists(n)) {
            ns.push_back(n);
        }
    }
    if (!ns.empty()) {
        parts.push_back(fmt::format("namespaces {}", fmt::join(ns, " ")));
    }
    for (const Agent* a : {&lma_agent(), &mag_agent()}) {
        if (auto rec = recorded_process(*a); rec && is_running(*rec)) {
            parts.push_back(fmt::format("the {} (pid {})", a->title, rec->pid));
        } else if (answers(*a)) {
            parts.push_back(fmt::format("an agent answering on {}", a->socket().string()));
        }
        if (fs::exists(a->pins(), ec)) {
            parts.push_back("pins " + a->pins().string());
        }
    }
    return parts;
}

std::map<std::string, json> bindings_by_mn(const Agent& a) {
    std::map<std::string, json> out;
    for (const auto& b : show(a, "bindings")) {
        out[b.value("mn", "")] = b;
    }
    return out;
}

struct Registered {
    std::map<std::string, json> mag;   // by MN-ID
    std::map<std::string, json> lma;
};

// A binding's path (RFC 8278) by Binding-Id from a `show bindings` row; null when missing.
json path_of(const json& b, unsigned bid) {
    for (const auto& p : b.value("paths", json::array())) {
        if (p.value("bid", 0u) == bid) {
            return p;
        }
    }
    return json();
}

// A WAN link's Binding-Id: its position in the MAG's `wan` list (the default BIDs).
unsigned bid_of(const WanLink& l) {
    return static_cast<unsigned>(&l - wan_links().data()) + 1;   // the MAG config's default Binding-Ids
}

// The last lines of the MAG's and the LMA's logs, for a registration that went wrong.
std::string agent_log_tails() {
    return fmt::format("{} ({}):\n{}{} ({}):\n{}", mag_agent().title, mag_agent().log().string(),
                       tail_file(mag_agent().log(), 15), lma_agent().title, lma_agent().log().string(),
                       tail_file(lma_agent().log(), 15));
}

// Throws with the log's tail of an agent that exited while the mobile nodes registered.
void check_agents_running(const ProcessRecord& lma, const ProcessRecord& mag) {
    for (const auto& [rec, a] : {std::pair{&lma, &lma_agent()}, std::pair{&mag, &mag_agent()}}) {
        if (!is_running(*rec)) {
            throw LabError(fmt::format("the {} (pid {}) exited while the mobile nodes registered; {}:\n{}", a->title,
                                       rec->pid, a->log().string(), tail_file(a->log(), 20)));
        }
    }
}

// What is still awaited of `mn`'s binding over `link` (nullopt: nothing), from the MAG's binding
// and the LMA's (null when it has none). Throws when the two disagree on the GRE keys.
std::optional<std::string> awaited_path(const MobileNode& mn, const WanLink& link, const json& mag_binding,
                                        const json* lma_binding) {
    const json mp = path_of(mag_binding, bid_of(link));
    const json lp = lma_binding == nullptr ? json() : path_of(*lma_binding, bid_of(link));
    if (mp.is_null() || mp.value("state", "") != "registered" || mp["key_uplink"].is_null() ||
        mp["key_downlink"].is_null()) {
        return fmt::format("{} ({}, {}) over {} ({}): MAG state {}, last status {}, keys up {} "
                           "down {}", mn.id, mn.ns, mn.access_if, link.mag_if, link.label,
                           cell(mp, "state"), cell(mp, "status"), cell(mp, "key_uplink"),
                           cell(mp, "key_downlink"));
    }
    if (lp.is_null() || lma_binding->value("state", "") != "registered") {
        return fmt::format("{} ({}) over {} ({}): registered at the MAG but not in the LMA's "
                           "binding cache", mn.id, mn.ns, link.mag_if, link.label);
    }
    if (lp["key_uplink"] != mp["key_uplink"] || lp["key_downlink"] != mp["key_downlink"]) {
        throw LabError(fmt::format("{} over {}: the LMA and the MAG disagree on the GRE keys (LMA up {} "
                                   "down {}, MAG up {} down {})", mn.id, link.label,
                                   cell(lp, "key_uplink"), cell(lp, "key_downlink"),
                                   cell(mp, "key_uplink"), cell(mp, "key_downlink")));
    }
    return std::nullopt;
}

// What is still awaited of `mn`'s registration, one line per WAN link. Throws when the MAG gave
// up on it or the agents disagree on its keys.
std::vector<std::string> awaited_registration(const MobileNode& mn, const Registered& r) {
    auto m = r.mag.find(mn.id);
    auto l = r.lma.find(mn.id);
    if (m == r.mag.end() || m->second.value("state", "") == "failed") {
        // Static MNs are in the list from the MAG's start: gone or failed, it gave up.
        throw LabError(fmt::format("{} ({}, {}): the MAG gave up on it ({})\n{}", mn.id, mn.ns, mn.access_if,
                                   m == r.mag.end() ? "not in its binding update list"
                                                    : "state failed, last status " + cell(m->second, "status"),
                                   agent_log_tails()));
    }
    std::vector<std::string> waiting;
    // RFC 8278: a binding over every WAN link, each with its own key pair (RFC 5845).
    for (const auto& link : wan_links()) {
        if (auto w = awaited_path(mn, link, m->second, l == r.lma.end() ? nullptr : &l->second)) {
            waiting.push_back(std::move(*w));
        }
    }
    return waiting;
}

// Every MN registered on both sides with GRE keys, and both sides agreeing on the keys.
Registered wait_for_registrations(const ProcessRecord& lma, const ProcessRecord& mag) {
    const auto deadline = Clock::now() + kRegistration;
    Registered r;
    for (;;) {
        throw_if_interrupted();
        check_agents_running(lma, mag);
        r.mag = bindings_by_mn(mag_agent());
        r.lma = bindings_by_mn(lma_agent());
        std::vector<std::string> waiting;
        for (const auto& mn : mobile_nodes()) {
            const auto w = awaited_registration(mn, r);
            waiting.insert(waiting.end(), w.begin(), w.end());
        }
        if (waiting.empty()) {
            return r;
        }
        if (Clock::now() >= deadline) {
            throw LabError(fmt::format("not every mobile node registered within {} s:\n  {}\n{}",
                                       kRegistration.count(), fmt::join(waiting, "\n  "), agent_log_tails()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

void print_mobile_nodes(const Registered& r) {
    Table t({"MN", "NAMESPACE", "OPERATOR", "REALM", "MN-ID", "MAC", "ACCESS", "HOA", "HNP", "PATH", "KEY-UP",
             "KEY-DOWN", "STATE"});
    for (const auto& mn : mobile_nodes()) {
        auto it = r.mag.find(mn.id);
        const json b = it == r.mag.end() ? json::object() : it->second;
        for (const auto& link : wan_links()) {
            const json p = path_of(b, bid_of(link));
            t.add({mn.name, mn.ns, mn.op->name, std::to_string(mn.op->realm), mn.id, mn.mac, mn.access_if,
                   cell(b, "hoa"), cell(b, "hnp"), fmt::format("{} ({})", link.label, link.mag_if),
                   cell(p, "key_uplink"), cell(p, "key_downlink"), p.is_null() ? "not registered" : cell(p, "state")});
        }
    }
    fmt::print("{}", t.str());
}

void print_agent_tables(const Agent& a) {
    for (const char* what : {"sessions", "paths"}) {
        fmt::print("\n{} {} (xpmip show {} -i {}):\n", a.title, what, what, a.instance);
        const auto table = control::format_table(what, show(a, what));
        std::istringstream in(table);
        for (std::string line; std::getline(in, line);) {
            fmt::print("  {}\n", line);
        }
    }
}

void print_watch_commands(const Context& c) {
    const auto& wan = wan_links()[0];
    const auto& mn = mobile_nodes()[0];
    fmt::print(
        "While the lab is up (xpmip lab up), watch it with:\n"
        "  {x} lab status\n"
        "  {x} show bindings -c {magcfg}            # the MAG's binding update list\n"
        "  {x} show sessions -c {lmacfg}            # the LMA's sessions with counters\n"
        "  bpftool map dump pinned {pins}/xl-lma/sessions       # field names from BTF\n"
        "  bpftool map dump pinned {pins}/xl-lma/tunnel_keys    # uplink GRE key -> session\n"
        "  bpftool map dump pinned {pins}/xl-mag/tunnel_keys    # downlink GRE key -> session\n"
        "  bpftool prog show name xpmip_xdp\n"
        "  ip netns exec {wanns} tshark -i {br} -f 'ip proto 47' -T fields -E occurrence=f -e ip.src -e ip.dst "
        "-e gre.key\n"
        "  ip netns exec {wanns} tshark -i {br} -f 'udp port 5436' -T fields -e ip.src -e mip6.mhtype "
        "-e mip6.mnid.identifier -e mip6.bu.lifetime -e mip6.ba.status -e mip6.gre_key   # PBU (5) / PBA (6)\n"
        "  ip netns exec {mnns} ping {cn}\n"
        "  less {state}/mag.log {state}/lma.log\n",
        fmt::arg("x", c.xpmip.string()), fmt::arg("magcfg", mag_agent().config().string()),
        fmt::arg("lmacfg", lma_agent().config().string()), fmt::arg("pins", kPinRoot.string()),
        fmt::arg("wanns", kWanNs), fmt::arg("br", wan.bridge), fmt::arg("mnns", mn.ns), fmt::arg("cn", mn.op->cn4),
        fmt::arg("state", kStateDir.string()));
}

// --- down ------------------------------------------------------------------------------------

// The LMA's bindings still registered (its answer, or nullopt when it does not answer).
std::optional<std::vector<std::string>> lma_registered() {
    if (!answers(lma_agent())) {
        return std::nullopt;
    }
    std::vector<std::string> ids;
    try {
        for (const auto& [id, b] : bindings_by_mn(lma_agent())) {
            if (b.value("state", "") == "registered") {
                ids.push_back(id);
            }
        }
    } catch (const std::exception&) {
        return std::nullopt;
    }
    return ids;
}

struct DownResult {
    int rc = 0;
    std::vector<std::string> warnings;   // the lab is gone, but not everything went as it should
};

// One agent stopped (stop_agent): what happened printed, its warnings and problems collected.
void stop_and_report(const Agent& a, std::vector<std::string>& warnings, std::vector<std::string>& problems) {
    try {
        auto stopped = stop_agent(a, kAgentStop);
        if (!stopped.what.empty()) {
            fmt::print("[lab] {}\n", stopped.what);
        }
        warnings.insert(warnings.end(), stopped.warnings.begin(), stopped.warnings.end());
        problems.insert(problems.end(), stopped.problems.begin(), stopped.problems.end());
    } catch (const std::exception& e) {
        problems.push_back(fmt::format("stopping the {}: {}", a.title, e.what()));
    }
}

// After the MAG's exit: the LMA's `registered` bindings (there were `before`) gone, or a warning.
void await_deregistrations(std::size_t before, std::vector<std::string>& warnings) {
    // Bounded: the de-registrations are in flight when the MAG exits.
    const auto deadline = Clock::now() + std::chrono::seconds(3);
    auto still = lma_registered();
    while (still && !still->empty() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        still = lma_registered();
    }
    if (still && still->empty()) {
        fmt::print("[lab] LMA: the MAG de-registered all {} binding(s) before exiting\n", before);
    } else if (still) {
        warnings.push_back(fmt::format("the MAG exited on SIGTERM but the LMA still holds {} registered "
                                       "binding(s): {}",
                                       still->size(), fmt::join(*still, " ")));
    }
}

// Both agents stopped, with what the MAG's de-registrations did at the LMA.
void stop_agents(std::vector<std::string>& warnings, std::vector<std::string>& problems) {
    // The MAG first: on SIGTERM it de-registers every MN (RFC 5213 §6.9.1.3: lifetime 0) with
    // the LMA, which must still be there to take them.
    const auto before = lma_registered();
    const auto mag_rec = recorded_process(mag_agent());
    const bool mag_was_running = mag_rec && is_running(*mag_rec);
    for (const Agent* a : {&mag_agent(), &lma_agent()}) {
        stop_and_report(*a, warnings, problems);
        if (a == &mag_agent() && mag_was_running && before && !before->empty()) {
            await_deregistrations(before->size(), warnings);
        }
    }
}

// The namespaces (their links go with them) and the state directory.
void remove_namespaces_and_state(std::vector<std::string>& problems) {
    try {
        if (auto removed = remove_namespaces(); !removed.empty()) {
            fmt::print("[lab] namespaces removed: {}\n", fmt::join(removed, " "));
        }
    } catch (const std::exception& e) {
        problems.push_back(e.what());
    }
    std::error_code ec;
    if (fs::exists(kStateDir, ec)) {
        fs::remove_all(kStateDir, ec);
        if (ec) {
            problems.push_back(fmt::format("removing {}: {}", kStateDir.string(), ec.message()));
        } else {
            fmt::print("[lab] state directory {} removed\n", kStateDir.string());
        }
    }
}

DownResult down() {
    const Uninterruptible teardown;   // an interrupted demo still comes down completely
    DownResult res;
    auto parts = existing_parts();
    if (parts.empty()) {
        fmt::print("[lab] nothing to remove: the lab is down\n");
        return res;
    }
    std::vector<std::string> problems;
    stop_agents(res.warnings, problems);
    remove_namespaces_and_state(problems);
    for (const auto& left : existing_parts()) {
        problems.push_back("still there: " + left);
    }
    for (const auto& w : res.warnings) {
        fmt::print("[lab] warning: {}\n", w);
    }
    if (!problems.empty()) {
        for (const auto& p : problems) {
            fmt::print(stderr, "xpmip lab down: {}\n", p);
        }
        res.rc = 1;
        return res;
    }
    fmt::print("[lab] down: nothing of the lab is left\n");
    return res;
}

// --- up --------------------------------------------------------------------------------------

struct UpResult {
    ProcessRecord lma, mag;
    Registered bindings;
};

UpResult up(const Context& c) {
    if (auto parts = existing_parts(); !parts.empty()) {
        throw LabError(fmt::format("the lab is already up (or half-built): {}; `xpmip lab down` removes it",
                                   fmt::join(parts, ", ")));
    }
    try {
        fs::create_directories(kStateDir);
        write_file(lma_agent().config(), lma_config_yaml());
        write_file(mag_agent().config(), mag_config_yaml());
        check_config(c.xpmip, lma_agent());
        check_config(c.xpmip, mag_agent());
        fmt::print("[lab] configurations: {} {}\n", lma_agent().config().string(), mag_agent().config().string());

        build_network();

        UpResult r;
        r.lma = start_agent(c.xpmip, lma_agent(), kAgentStart);
        fmt::print("[lab] LMA up in {} (pid {}, instance {}, log {})\n", kLmaNs, r.lma.pid, lma_agent().instance,
                   lma_agent().log().string());
        r.mag = start_agent(c.xpmip, mag_agent(), kAgentStart);
        fmt::print("[lab] MAG up in {} (pid {}, instance {}, log {}); it registers its 4 static MNs over {} ({}, "
                   "to {}) and then {} ({}, to {}): PBUs over UDP 5436 with the MAG Multipath-Binding option\n",
                   kMagNs, r.mag.pid, mag_agent().instance, mag_agent().log().string(), wan_links()[0].mag_if,
                   wan_links()[0].label, wan_links()[0].lma4, wan_links()[1].mag_if, wan_links()[1].label,
                   wan_links()[1].lma4);
        r.bindings = wait_for_registrations(r.lma, r.mag);
        fmt::print("[lab] all 4 mobile nodes registered over both WAN links with GRE keys per path; the LMA and the "
                   "MAG agree on them\n");

        for (const auto& mn : mobile_nodes()) {
            const auto addrs = addresses_from_binding(mn, r.bindings.mag.at(mn.id), mag_link_local(mn.access_if));
            configure_mobile_node(mn, addrs);
            fmt::print("[lab] {} ({}): {} via {}, {} via {}, MTU {} (set by hand from the MAG's binding)\n", mn.name,
                       mn.ns, addrs.ipv4.value_or("-"), addrs.ipv4_router.value_or("-"), addrs.ipv6.value_or("-"),
                       addrs.ipv6_router.value_or("-"), addrs.mtu);
        }
        section("Mobile nodes (RFC 5845 Figure 1: mn1 and mn3 share 10.0.0.10 in two realms; GRE keys tell them apart)");
        print_mobile_nodes(r.bindings);
        fmt::print("\nSteering (RFC 8278 §3.2, the same rules on both agents): TCP to port 80 on red (wan0), UDP to "
                   "port 5001 spread 3:1 over red and blue packet by packet, the rest on blue (wan1); a link without "
                   "carrier hands its flows to the other.\n");
        return r;
    } catch (const std::exception& e) {
        fmt::print(stderr, "xpmip lab up: {}\n", e.what());
        fmt::print("[lab] up failed: removing what was built\n");
        down();
        throw LabError("the lab did not come up (see above)");
    }
}

// --- status ----------------------------------------------------------------------------------

int status(const Context& c) {
    auto parts = existing_parts();
    if (parts.empty()) {
        fmt::print("the lab is down (no namespace, agent, pin or state of it exists)\n");
        return 3;
    }
    bool healthy = true;
    std::vector<std::string> present, missing;
    for (const auto& n : lab_namespaces()) {
        (netns_exists(n) ? present : missing).push_back(n);
    }
    fmt::print("namespaces: {} of {} present{}{}\n", present.size(), lab_namespaces().size(),
               missing.empty() ? "" : "; missing: ", fmt::join(missing, " "));
    healthy = healthy && missing.empty();
    Table agents({"AGENT", "NAMESPACE", "INSTANCE", "PID", "PROCESS", "CONTROL SOCKET", "PINS", "LOG"});
    for (const Agent* a : {&lma_agent(), &mag_agent()}) {
        auto rec = recorded_process(*a);
        const bool running = rec && is_running(*rec);
        const bool ok = answers(*a);
        std::error_code ec;
        agents.add({a->title, a->ns, a->instance, rec ? std::to_string(rec->pid) : "-", running ? "running" : "not running",
                    fmt::format("{} {}", a->socket().string(), ok ? "answers" : "does not answer"),
                    fs::exists(a->pins(), ec) ? a->pins().string() : "none", a->log().string()});
        healthy = healthy && running && ok;
    }
    fmt::print("agents:\n{}", agents.str());
    if (answers(mag_agent()) && answers(lma_agent())) {
        Registered r{bindings_by_mn(mag_agent()), bindings_by_mn(lma_agent())};
        section("Mobile nodes");
        print_mobile_nodes(r);
        section("Session tables");
        print_agent_tables(lma_agent());
        print_agent_tables(mag_agent());
        fmt::print("\n");
        print_watch_commands(c);
    }
    if (!healthy) {
        fmt::print("\nthe lab is not healthy (half-built, or an agent stopped): `xpmip lab down` removes it\n");
        return 1;
    }
    return 0;
}

// --- demo ------------------------------------------------------------------------------------

struct MnOutcome {
    PingResult ping4, ping6;
    TcpResult tcp4, tcp6, web4;
    bool ok() const { return ping4.ok && ping6.ok && tcp4.ok && tcp6.ok && web4.ok; }
};

// What tshark saw on one WAN link's bridge: for every MN, GRE packets MAG -> LMA with the uplink key
// of its binding over that link and LMA -> MAG with that binding's downlink key (RFC 5845 §3: each
// direction carries the key its receiver chose; RFC 8278: each binding has its own pair).
bool check_keys_on_the_wire(const WanLink& wan, const std::vector<GrePacket>& pkts, const Registered& r) {
    std::map<std::uint32_t, std::string> up_owner, down_owner;
    bool ok = true;
    auto keys = [&](const MobileNode& mn) {
        const json p = path_of(r.mag.at(mn.id), bid_of(wan));
        return std::pair{p["key_uplink"].get<std::uint32_t>(), p["key_downlink"].get<std::uint32_t>()};
    };
    for (const auto& mn : mobile_nodes()) {
        const auto [up, down] = keys(mn);
        if (!up_owner.emplace(up, mn.name).second || !down_owner.emplace(down, mn.name).second) {
            fmt::print("  FAILED: {} shares a GRE key with another MN on {} (uplink {}, downlink {})\n", mn.name,
                       wan.label, up, down);
            ok = false;
        }
    }
    std::map<std::pair<bool, std::uint32_t>, std::size_t> count;   // (uplink?, key) -> packets
    std::size_t stray = 0;
    for (const auto& p : pkts) {
        const bool uplink = p.src == wan.mag4 && p.dst == wan.lma4;
        const bool downlink = p.src == wan.lma4 && p.dst == wan.mag4;
        if (!p.key || (!uplink && !downlink) || (uplink && !up_owner.count(*p.key)) ||
            (downlink && !down_owner.count(*p.key))) {
            ++stray;
            continue;
        }
        ++count[{uplink, *p.key}];
    }
    Table t({"MN", "KEY-UP", "PKTS-MAG>LMA", "KEY-DOWN", "PKTS-LMA>MAG", "RESULT"});
    for (const auto& mn : mobile_nodes()) {
        const auto [up, down] = keys(mn);
        const auto nu = count[{true, up}], nd = count[{false, down}];
        const bool good = nu > 0 && nd > 0;
        ok = ok && good;
        t.add({mn.name, std::to_string(up), std::to_string(nu), std::to_string(down), std::to_string(nd),
               good ? "ok" : "FAILED"});
    }
    fmt::print("{}", t.str());
    if (stray > 0) {
        fmt::print("  FAILED: {} GRE packet(s) on {} with a key or addresses no binding over it has\n", stray,
                   wan.label);
        ok = false;
    }
    return ok;
}

// Brings the lab down when the demo leaves early (an error, an interrupt) unless disarmed.
struct DemoTeardown {
    bool armed = true;
    ~DemoTeardown() {
        if (armed) {
            fmt::print("\n== Tearing down\n");
            down();
        }
    }
};

// tshark on every WAN link's bridge (none when tshark is not installed).
std::vector<std::unique_ptr<GreCapture>> start_gre_captures() {
    std::vector<std::unique_ptr<GreCapture>> captures;   // one per WAN link
    if (find_program("tshark")) {
        for (const auto& l : wan_links()) {
            captures.push_back(std::make_unique<GreCapture>(kWanNs, l.bridge, kStateDir / ("gre-" + l.label + ".pcap")));
        }
    } else {
        fmt::print("\n(tshark is not installed: the GRE keys on the wire are not checked; apt-get install tshark)\n");
    }
    return captures;
}

// One MN to its operator's CN: ping and TCP over IPv4 and IPv6, and TCP to port 80; each printed.
MnOutcome exchange_traffic(const MobileNode& mn) {
    MnOutcome o;
    const auto& op = *mn.op;
    o.ping4 = ping(mn.ns, op.cn4, kPings);
    fmt::print("  {} -> {} {:<16} ping  {}\n", mn.name, op.cn_ns, op.cn4, o.ping4.summary());
    o.ping6 = ping(mn.ns, op.cn6, kPings);
    fmt::print("  {} -> {} {:<16} ping  {}\n", mn.name, op.cn_ns, op.cn6, o.ping6.summary());
    const auto port = static_cast<std::uint16_t>(5000 + 10 * mn.index);
    o.tcp4 = tcp_transfer(mn.ns, op.cn_ns, op.cn4, port, kTcpBytes, std::chrono::seconds(20));
    fmt::print("  {} -> {} {:<16} TCP   {}\n", mn.name, op.cn_ns, op.cn4, o.tcp4.summary());
    o.tcp6 = tcp_transfer(mn.ns, op.cn_ns, op.cn6, static_cast<std::uint16_t>(port + 1), kTcpBytes,
                          std::chrono::seconds(20));
    fmt::print("  {} -> {} {:<16} TCP   {}\n", mn.name, op.cn_ns, op.cn6, o.tcp6.summary());
    o.web4 = tcp_transfer(mn.ns, op.cn_ns, op.cn4, 80, kTcpBytes / 4, std::chrono::seconds(20));
    fmt::print("  {} -> {} {:<16} TCP80 {}\n", mn.name, op.cn_ns, op.cn4, o.web4.summary());
    for (const auto* p : {&o.ping4, &o.ping6}) {
        if (!p->ok) {
            fmt::print("    ping output:\n{}\n", p->output);
        }
    }
    return o;
}

// Every MN's traffic (exchange_traffic), by MN-ID.
std::map<std::string, MnOutcome> exchange_all_traffic() {
    section(fmt::format("Traffic: every MN to its operator's CN, ping ({} each) and TCP ({} KiB each way), IPv4 "
                        "and IPv6 (on blue), and TCP to port 80 (on red)",
                        kPings, kTcpBytes / 1024));
    std::map<std::string, MnOutcome> outcome;
    for (const auto& mn : mobile_nodes()) {
        throw_if_interrupted();
        outcome[mn.id] = exchange_traffic(mn);
    }
    return outcome;
}

// Each capture stopped and checked (check_keys_on_the_wire), then gone; false when one failed.
bool check_gre_captures(std::vector<std::unique_ptr<GreCapture>>& captures, const Registered& bindings) {
    bool ok = true;
    for (std::size_t i = 0; i < captures.size(); ++i) {
        const auto& l = wan_links()[i];
        section(fmt::format("GRE on the wire of {} ({}; tshark on {} in {}): each MN's keys of its binding over it",
                            l.label, l.mag_if, l.bridge, kWanNs));
        ok = check_keys_on_the_wire(l, captures[i]->stop(), bindings) && ok;
        captures[i].reset();
    }
    return ok;
}

void print_results(const std::map<std::string, MnOutcome>& outcome, const Registered& bindings) {
    section("Results");
    Table t({"MN", "OPERATOR", "HOA", "HNP", "PING4", "PING6", "TCP4", "TCP6", "TCP80"});
    for (const auto& mn : mobile_nodes()) {
        const auto& b = bindings.mag.at(mn.id);
        const auto& o = outcome.at(mn.id);
        auto word = [](bool good) { return std::string(good ? "ok" : "FAILED"); };
        t.add({mn.name, mn.op->name, cell(b, "hoa"), cell(b, "hnp"), word(o.ping4.ok), word(o.ping6.ok),
               word(o.tcp4.ok), word(o.tcp6.ok), word(o.web4.ok)});
    }
    fmt::print("{}", t.str());
}

// False, with the lines printed, when an agent logged errors.
bool agent_logs_clean() {
    bool ok = true;
    for (const Agent* a : {&lma_agent(), &mag_agent()}) {
        if (auto errors = log_errors(*a); !errors.empty()) {
            fmt::print("\nFAILED: the {} logged errors ({}):\n  {}\n", a->title, a->log().string(),
                       fmt::join(errors, "\n  "));
            ok = false;
        }
    }
    return ok;
}

int demo(const Context& c) {
    install_interrupt_handler();
    section("xpmip lab demo: RFC 5845 Figure 1 in network namespaces");
    auto lab = up(c);
    // From here on the lab comes down whatever happens.
    DemoTeardown teardown;

    auto captures = start_gre_captures();
    const auto outcome = exchange_all_traffic();
    bool ok = std::all_of(outcome.begin(), outcome.end(), [](const auto& o) { return o.second.ok(); });
    ok = check_gre_captures(captures, lab.bindings) && ok;
    print_results(outcome, lab.bindings);

    section("Session tables: keys, paths, counters");
    print_agent_tables(lma_agent());
    print_agent_tables(mag_agent());

    section("Watching it");
    print_watch_commands(c);
    ok = agent_logs_clean() && ok;

    section("Tearing down");
    teardown.armed = false;
    const auto gone = down();
    if (gone.rc != 0 || !gone.warnings.empty()) {
        ok = false;
    }
    fmt::print("\n{}\n", ok ? "demo: every mobile node reached its operator's correspondent (ping and TCP, IPv4 and "
                              "IPv6) over both WAN links as steered, with its own GRE keys per link; the lab is down"
                            : "demo: FAILED (see above)");
    return ok ? 0 : 1;
}

} // namespace

int lab_main(const LabOptions& options) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        if (!options.extra.empty()) {
            throw LabError(fmt::format("'{}' takes no further arguments (got: {})", options.action,
                                       fmt::join(options.extra, " ")));
        }
        check_host();
        const Context c{resolve_executable(options.xpmip_binary)};
        if (options.action == "up") {
            install_interrupt_handler();
            up(c);
            fmt::print("\n");
            print_watch_commands(c);
            fmt::print("\nthe lab is up; `{} lab demo` runs the whole show, `{} lab down` removes it\n",
                       c.xpmip.string(), c.xpmip.string());
            return 0;
        }
        if (options.action == "down") {
            return down().rc;
        }
        if (options.action == "status") {
            return status(c);
        }
        if (options.action == "demo") {
            return demo(c);
        }
        throw LabError(fmt::format("unknown action '{}' (up, down, status, demo)", options.action));
    } catch (const std::exception& e) {
        fmt::print(stderr, "xpmip lab {}: {}\n", options.action, e.what());
        return 1;
    }
}

} // namespace xpmip::lab
