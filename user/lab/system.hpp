// What the lab needs from the host: running commands (in a network namespace or not), agents
// started detached and recognised again later by pid and start time, entering a network
// namespace for a scope (sockets, sysctls, XDP attachments made there stay there), and files.
#pragma once

#include "common/fd.hpp"

#include <sys/types.h>

#include <csignal>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace xpmip::lab {

class LabError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Set by SIGINT/SIGTERM while `install_interrupt_handler()` is in effect; blocking waits give up
// (killing their child) and throw LabError("interrupted").
void install_interrupt_handler();
bool interrupted();
void throw_if_interrupted();

// While it lives, SIGINT and SIGTERM are ignored and the flag is clear: a teardown runs to its
// end however often the user presses Ctrl-C.
class Uninterruptible {
public:
    Uninterruptible();
    ~Uninterruptible();
    Uninterruptible(const Uninterruptible&) = delete;
    Uninterruptible& operator=(const Uninterruptible&) = delete;

private:
    struct sigaction old_int_ {}, old_term_ {};
};

// "ip -n xl-mag link set wan0 up" (quoted where needed), for messages.
std::string shell_words(const std::vector<std::string>& argv);

struct RunOptions {
    std::string netns;                                  // empty: ours; else /run/netns/<netns> (net only,
                                                        // like `nsenter --net`: bpffs stays visible)
    std::chrono::milliseconds timeout{30'000};
    bool check = true;                                  // throw LabError on a non-zero exit
};

struct CommandResult {
    int status = -1;                                    // exit status, or 128 + signal
    std::string out;
    std::string err;
};

// Run a command to completion, capturing stdout and stderr. Errors name the command, its exit
// status and its stderr.
CommandResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// A process we started and wait for later (tshark). Killed and reaped when destroyed.
class Child {
public:
    enum class Output { Null, Pipe };
    Child(const std::vector<std::string>& argv, Output stdout_mode, Output stderr_mode, const std::string& netns = "");
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    // Read stderr until a line contains `needle`; false on timeout or when the process ended.
    bool wait_stderr_for(const std::string& needle, std::chrono::milliseconds timeout);
    const std::string& stderr_text() const { return err_text_; }
    void signal(int sig) const;
    // Wait for the exit status; nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    bool running();

private:
    void drain_stderr(int timeout_ms);
    std::string name_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    UniqueFd out_;
    UniqueFd err_;
    std::string err_text_;
};

// A process recognised by pid and start time (field 22 of /proc/PID/stat), so a recorded pid
// that the kernel has since given to another process is never signalled.
struct ProcessRecord {
    pid_t pid = 0;
    unsigned long long start_time = 0;
    std::string to_line() const;
    static std::optional<ProcessRecord> parse(const std::string& text);
};

std::optional<unsigned long long> process_start_time(pid_t pid);
// Running (not a zombie) and still the process recorded. Reaps it when it is our child, and then
// stores its exit status (or 128 + signal) in `exit_status` when given.
bool is_running(const ProcessRecord& r, int* exit_status = nullptr);

// Start a daemon detached from us: own session, stdin /dev/null, stdout and stderr appended to
// `log`, no other descriptor inherited, entered into `netns` (network only). Throws when it
// cannot be executed (naming the program and why).
ProcessRecord spawn_detached(const std::vector<std::string>& argv, const std::string& netns,
                             const std::filesystem::path& log);

// Enter a network namespace (/run/netns/<name>) for this thread until the scope ends. Sockets
// created inside keep the namespace; /proc/sys/net is the namespace's.
class NetnsScope {
public:
    explicit NetnsScope(const std::string& name);
    ~NetnsScope();
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;

private:
    UniqueFd home_;
};

bool netns_exists(const std::string& name);
std::vector<std::string> list_netns();
// Write a sysctl of the current network namespace ("net.ipv6.conf.all.forwarding").
void write_sysctl(const std::string& key, const std::string& value);

std::optional<std::filesystem::path> find_program(const std::string& name);
// Throws naming the program and the Debian package that has it.
void require_program(const std::string& name, const std::string& package);

void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);
// The last `lines` lines of a file ("(no log)" when it does not exist).
std::string tail_file(const std::filesystem::path& path, std::size_t lines);

// The real path of this executable (/proc/self/exe resolved), for the agents we start.
std::filesystem::path resolve_executable(const std::string& path);

} // namespace xpmip::lab
