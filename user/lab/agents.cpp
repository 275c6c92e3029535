#include "lab/agents.hpp"

#include "control/control.hpp"
#include "dataplane/dataplane.hpp"
#include "lab/topology.hpp"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <csignal>
#include <sstream>
#include <thread>

namespace xpmip::lab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path Agent::config() const { return kStateDir / (role + ".yaml"); }
fs::path Agent::log() const { return kStateDir / (role + ".log"); }
fs::path Agent::pidfile() const { return kStateDir / (role + ".pid"); }
fs::path Agent::pins() const { return kPinRoot / instance; }
fs::path Agent::socket() const { return control::socket_path(instance); }

const Agent& lma_agent() {
    static const Agent a{"lma", "LMA", kLmaNs, "xl-lma"};
    return a;
}

const Agent& mag_agent() {
    static const Agent a{"mag", "MAG", kMagNs, "xl-mag"};
    return a;
}

void check_config(const fs::path& xpmip, const Agent& a) {
    auto r = run({xpmip.string(), "check-config", "--role", a.role, a.config().string()}, RunOptions{.check = false});
    if (r.status != 0) {
        throw LabError(fmt::format("the lab's {} configuration {} is refused by `xpmip check-config`: {}", a.title,
                                   a.config().string(), r.err.empty() ? r.out : r.err));
    }
}

bool answers(const Agent& a) {
    try {
        control::request(a.socket(), {{"command", "ping"}}, 1000);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

ProcessRecord start_agent(const fs::path& xpmip, const Agent& a, std::chrono::seconds timeout) {
    // Like `nsenter --net=/run/netns/NS xpmip ROLE -c FILE`: the network namespace only, so the
    // agent sees bpffs (`ip netns exec` would remount /sys and hide it).
    const auto rec = spawn_detached({xpmip.string(), a.role, "-c", a.config().string()}, a.ns, a.log());
    write_file(a.pidfile(), rec.to_line());
    const auto deadline = Clock::now() + timeout;
    while (!answers(a)) {
        throw_if_interrupted();
        if (!is_running(rec)) {
            throw LabError(fmt::format("the {} (xpmip {} in {}, pid {}) exited while starting; {}:\n{}", a.title, a.role,
                                       a.ns, rec.pid, a.log().string(), tail_file(a.log(), 20)));
        }
        if (Clock::now() >= deadline) {
            throw LabError(fmt::format("the {} (pid {}) did not answer on {} within {} s; {}:\n{}", a.title, rec.pid,
                                       a.socket().string(), timeout.count(), a.log().string(), tail_file(a.log(), 20)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return rec;
}

std::optional<ProcessRecord> recorded_process(const Agent& a) {
    std::error_code ec;
    if (!fs::exists(a.pidfile(), ec)) {
        return std::nullopt;
    }
    return ProcessRecord::parse(read_file(a.pidfile()));
}

nlohmann::json show(const Agent& a, const std::string& what) {
    try {
        return control::request(a.socket(), {{"command", "show"}, {"what", what}})["result"];
    } catch (const control::ControlError& e) {
        throw LabError(fmt::format("the {} ({}) did not answer `show {}`: {}", a.title, a.socket().string(), what,
                                   e.what()));
    }
}

namespace {

// SIGTERM, then SIGKILL when it is still running after `timeout`; what happened goes into `r`.
void terminate_agent(const Agent& a, const ProcessRecord& rec, std::chrono::seconds timeout, StopResult& r) {
    kill(rec.pid, SIGTERM);
    const auto t0 = Clock::now();
    int status = -1;   // known only when the agent is our child (demo)
    while (is_running(rec, &status) && Clock::now() - t0 < timeout) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (status > 0) {
        r.warnings.push_back(fmt::format("the {} (pid {}) exited with status {} after SIGTERM{}; {}:\n{}", a.title,
                                         rec.pid, status,
                                         status == 128 + SIGTERM ? " (killed by it: not yet handling signals)" : "",
                                         a.log().string(), tail_file(a.log(), 15)));
    }
    if (is_running(rec)) {
        kill(rec.pid, SIGKILL);
        while (is_running(rec) && Clock::now() - t0 < timeout + std::chrono::seconds(5)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        r.warnings.push_back(fmt::format("the {} (pid {}) ignored SIGTERM for {} s and was killed; {}:\n{}", a.title,
                                         rec.pid, timeout.count(), a.log().string(), tail_file(a.log(), 15)));
        r.what = fmt::format("{} (pid {}): SIGTERM ignored, SIGKILL", a.title, rec.pid);
        if (is_running(rec)) {
            r.problems.push_back(fmt::format("the {} (pid {}) survived SIGKILL", a.title, rec.pid));
        }
    } else {
        r.what = fmt::format("{} (pid {}): SIGTERM, exited after {:.2f} s", a.title, rec.pid, secs);
    }
}

void unload_pinned_in_namespace(const Agent& a) {
    NetnsScope in(a.ns);
    // Quiet: it detaches tc egress from every interface, and libbpf reports each one
    // that has none ("Cannot find specified filter chain").
    struct QuietLibbpf {
        libbpf_print_fn_t old = libbpf_set_print(nullptr);
        ~QuietLibbpf() { libbpf_set_print(old); }
    } quiet;
    dataplane::unload_pinned(a.instance, kPinRoot);
}

// An agent that was killed (or died) leaves its data plane pinned. Unload it from inside its
// namespace: the pinned interface table holds ifindexes, which mean other interfaces here.
void remove_leftover_pins(const Agent& a, StopResult& r) {
    std::error_code ec;
    if (fs::exists(a.pins(), ec)) {
        try {
            if (netns_exists(a.ns)) {
                unload_pinned_in_namespace(a);
            } else {
                fs::remove_all(a.pins(), ec);
            }
        } catch (const std::exception& e) {
            r.problems.push_back(fmt::format("unloading the {}'s pinned data plane {}: {}", a.title, a.pins().string(),
                                             e.what()));
        }
        if (fs::exists(a.pins(), ec)) {
            r.problems.push_back(fmt::format("cannot remove {}", a.pins().string()));
        } else {
            r.what += fmt::format("{}left-over pins {} removed", r.what.empty() ? a.title + ": " : "; ",
                                  a.pins().string());
        }
    }
}

} // namespace

StopResult stop_agent(const Agent& a, std::chrono::seconds timeout) {
    StopResult r;
    auto rec = recorded_process(a);
    if (rec && is_running(*rec)) {
        terminate_agent(a, *rec, timeout, r);
    } else if (rec) {
        r.what = fmt::format("{} (pid {}): not running", a.title, rec->pid);
    } else if (answers(a)) {
        // Something answers on the lab's socket that we did not record: not ours to stop.
        r.problems.push_back(fmt::format("an agent answers on {} but the lab recorded no pid for it ({}): stop it "
                                         "yourself", a.socket().string(), a.pidfile().string()));
        r.what = fmt::format("{}: running without a pid record (left alone)", a.title);
        return r;
    }
    remove_leftover_pins(a, r);
    std::error_code ec;
    if (fs::exists(a.socket(), ec) && !answers(a)) {
        fs::remove(a.socket(), ec);
    }
    return r;
}

} // namespace xpmip::lab

namespace xpmip::lab {

std::vector<std::string> log_errors(const Agent& a) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!std::filesystem::exists(a.log(), ec)) {
        return out;
    }
    std::istringstream in(read_file(a.log()));
    for (std::string line; std::getline(in, line);) {
        if (line.find(" error ") != std::string::npos || line.find(" critical ") != std::string::npos ||
            line.find("ALARM") != std::string::npos) {
            out.push_back(line);
        }
    }
    return out;
}

} // namespace xpmip::lab
