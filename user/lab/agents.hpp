// The lab's two agents, `xpmip lma` in xl-lma and `xpmip mag` in xl-mag: started detached with
// their logs and pids in the state directory, asked through their control sockets, stopped with
// SIGTERM (the MAG de-registers its mobile nodes, both unload their data planes).
#pragma once

#include "lab/system.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::lab {

struct Agent {
    std::string role;            // lma, mag
    std::string title;           // LMA, MAG
    std::string ns;
    std::string instance;        // pins under /sys/fs/bpf/xpmip/<instance>, /run/xpmip/<instance>.sock
    std::filesystem::path config() const;
    std::filesystem::path log() const;
    std::filesystem::path pidfile() const;
    std::filesystem::path pins() const;
    std::filesystem::path socket() const;
};

const Agent& lma_agent();
const Agent& mag_agent();

// `xpmip check-config [--role mag] FILE`: throws with its message when the file is refused.
void check_config(const std::filesystem::path& xpmip, const Agent& a);
// Start it and wait until its control socket answers (bounded); throws with its log's tail.
ProcessRecord start_agent(const std::filesystem::path& xpmip, const Agent& a, std::chrono::seconds timeout);

std::optional<ProcessRecord> recorded_process(const Agent& a);
bool answers(const Agent& a);
// `show <what>` from the running agent (what `xpmip show WHAT -i INSTANCE --json` prints).
nlohmann::json show(const Agent& a, const std::string& what);

struct StopResult {
    std::string what;                    // what happened, for the user
    std::vector<std::string> warnings;   // the agent misbehaved (exit status, SIGKILL needed)
    std::vector<std::string> problems;   // something of it could not be removed
};

// SIGTERM, then (after `timeout`) SIGKILL; left-over pins and control socket are removed.
StopResult stop_agent(const Agent& a, std::chrono::seconds timeout);

// The lines of its log at level error or critical, and RFC 5845 §4.2 alarms.
std::vector<std::string> log_errors(const Agent& a);

} // namespace xpmip::lab
