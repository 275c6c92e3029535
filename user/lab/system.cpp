#include "lab/system.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

namespace xpmip::lab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_interrupt(int) { g_interrupted = 1; }

std::string errno_text(int e) { return std::strerror(e); }

struct Pipe {
    UniqueFd r, w;
    Pipe() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) {
            throw LabError(fmt::format("pipe: {}", errno_text(errno)));
        }
        r.reset(fds[0]);
        w.reset(fds[1]);
    }
};

// argv as the char* array execvp wants, built before fork (nothing is allocated in the child).
struct Argv {
    std::vector<std::string> words;
    std::vector<char*> ptrs;
    explicit Argv(const std::vector<std::string>& argv) : words(argv) {
        if (words.empty()) {
            throw LabError("empty command");
        }
        for (auto& w : words) {
            ptrs.push_back(w.data());
        }
        ptrs.push_back(nullptr);
    }
};

UniqueFd open_netns(const std::string& name) {
    const auto path = "/run/netns/" + name;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        throw LabError(fmt::format("network namespace {} ({}): {}", name, path, errno_text(errno)));
    }
    return fd;
}

// In the child, after fork: report errno through the status pipe and leave.
[[noreturn]] void child_fail(int status_fd, int err) {
    [[maybe_unused]] auto n = write(status_fd, &err, sizeof err);
    _exit(127);
}

void child_reset_signals() {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGCHLD}) {
        std::signal(s, SIG_DFL);
    }
}

// The exec error the child reported, if any (the status pipe closes on a successful exec).
std::optional<int> exec_error(int status_r) {
    int err = 0;
    ssize_t n;
    do {
        n = read(status_r, &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof err)) {
        return err;
    }
    return std::nullopt;
}

int decode_status(int st) {
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    if (WIFSIGNALED(st)) {
        return 128 + WTERMSIG(st);
    }
    return -1;
}

void append_from(int fd, std::string& to, bool& open) {
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        to.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        open = false;
    }
}

} // namespace

void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   // no SA_RESTART: blocking calls return EINTR and look at the flag
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_interrupted != 0; }

Uninterruptible::Uninterruptible() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int_);
    sigaction(SIGTERM, &ign, &old_term_);
    g_interrupted = 0;
}

Uninterruptible::~Uninterruptible() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
}

void throw_if_interrupted() {
    if (interrupted()) {
        throw LabError("interrupted");
    }
}

std::string shell_words(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& w : argv) {
        if (!out.empty()) {
            out += ' ';
        }
        const bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_./:=,@+%", c) != nullptr;
        });
        out += plain ? w : "'" + w + "'";
    }
    return out;
}

namespace {

// In the child, after fork: into the namespace (when given), stdin from /dev/null, stdout and
// stderr into the pipes, then the program.
[[noreturn]] void exec_command(const Argv& args, const UniqueFd& ns, const UniqueFd& devnull, const Pipe& out,
                               const Pipe& err, const Pipe& status) {
    child_reset_signals();
    if (ns && setns(ns.get(), CLONE_NEWNET) < 0) {
        child_fail(status.w.get(), errno);
    }
    if (dup2(devnull.get(), 0) < 0 || dup2(out.w.get(), 1) < 0 || dup2(err.w.get(), 2) < 0) {
        child_fail(status.w.get(), errno);
    }
    execvp(args.ptrs[0], args.ptrs.data());
    child_fail(status.w.get(), errno);
}

// The child's stdout and stderr into `r` until both pipes close; false when the deadline came
// first (the child killed). An interrupt kills the child, whose pipes then close.
bool collect_output(pid_t pid, const UniqueFd& out, const UniqueFd& err, Clock::time_point deadline,
                    CommandResult& r) {
    bool out_open = true, err_open = true;
    bool stopped = false;
    while (out_open || err_open) {
        if (interrupted() && !stopped) {
            kill(pid, SIGKILL);
            stopped = true;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            kill(pid, SIGKILL);
            return false;
        }
        pollfd p[2] = {{out_open ? out.get() : -1, POLLIN, 0}, {err_open ? err.get() : -1, POLLIN, 0}};
        int n = poll(p, 2, static_cast<int>(std::min<long long>(left, 200)));
        if (n < 0 && errno != EINTR) {
            throw LabError(fmt::format("poll: {}", errno_text(errno)));
        }
        if (n > 0) {
            if (p[0].revents) {
                append_from(out.get(), r.out, out_open);
            }
            if (p[1].revents) {
                append_from(err.get(), r.err, err_open);
            }
        }
    }
    return true;
}

// Reap the child: its exit status, or 128 + signal.
int reap(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return decode_status(st);
}

// What a failed command said (its stderr, else its stdout), without the trailing line end.
std::string failure_text(const CommandResult& r) {
    auto text = r.err.empty() ? r.out : r.err;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text;
}

} // namespace

CommandResult run(const std::vector<std::string>& argv, const RunOptions& options) {
    Argv args(argv);
    UniqueFd ns = options.netns.empty() ? UniqueFd() : open_netns(options.netns);
    Pipe out, err, status;
    UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
    const std::string where = options.netns.empty() ? "" : " (in " + options.netns + ")";

    pid_t pid = fork();
    if (pid < 0) {
        throw LabError(fmt::format("fork for {}: {}", shell_words(argv), errno_text(errno)));
    }
    if (pid == 0) {
        exec_command(args, ns, devnull, out, err, status);
    }
    out.w.reset();
    err.w.reset();
    status.w.reset();

    CommandResult r;
    const bool timed_out = !collect_output(pid, out.r, err.r, Clock::now() + options.timeout, r);
    r.status = reap(pid);
    if (auto e = exec_error(status.r.get())) {
        throw LabError(fmt::format("cannot run {}{}: {}", argv[0], where, errno_text(*e)));
    }
    if (timed_out) {
        throw LabError(fmt::format("{}{} did not finish within {} s", shell_words(argv), where,
                                   std::chrono::duration<double>(options.timeout).count()));
    }
    throw_if_interrupted();
    if (options.check && r.status != 0) {
        const auto text = failure_text(r);
        throw LabError(fmt::format("{}{} failed (exit {}){}{}", shell_words(argv), where, r.status,
                                   text.empty() ? "" : ": ", text));
    }
    return r;
}

// --- Child -----------------------------------------------------------------------------------

Child::Child(const std::vector<std::string>& argv, Output stdout_mode, Output stderr_mode, const std::string& netns)
    : name_(shell_words(argv)) {
    Argv args(argv);
    UniqueFd ns = netns.empty() ? UniqueFd() : open_netns(netns);
    Pipe out, err, status;
    UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
    pid_ = fork();
    if (pid_ < 0) {
        throw LabError(fmt::format("fork for {}: {}", name_, errno_text(errno)));
    }
    if (pid_ == 0) {
        child_reset_signals();
        if (ns && setns(ns.get(), CLONE_NEWNET) < 0) {
            child_fail(status.w.get(), errno);
        }
        const int o = stdout_mode == Output::Pipe ? out.w.get() : devnull.get();
        const int e = stderr_mode == Output::Pipe ? err.w.get() : devnull.get();
        if (dup2(devnull.get(), 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) {
            child_fail(status.w.get(), errno);
        }
        execvp(args.ptrs[0], args.ptrs.data());
        child_fail(status.w.get(), errno);
    }
    status.w.reset();
    if (auto e = exec_error(status.r.get())) {
        int st = 0;
        waitpid(pid_, &st, 0);
        pid_ = -1;
        throw LabError(fmt::format("cannot run {}: {}", argv[0], errno_text(*e)));
    }
    if (stdout_mode == Output::Pipe) {
        out_ = std::move(out.r);
    }
    if (stderr_mode == Output::Pipe) {
        err_ = std::move(err.r);
    }
}

Child::~Child() {
    // SIGTERM first: tshark then stops its dumpcap child too.
    if (pid_ > 0 && running()) {
        kill(pid_, SIGTERM);
        if (!wait(std::chrono::milliseconds(2000))) {
            kill(pid_, SIGKILL);
            wait(std::chrono::milliseconds(2000));
        }
    }
}

void Child::drain_stderr(int timeout_ms) {
    if (!err_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
        return;
    }
    pollfd p{err_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) > 0) {
        bool open = true;
        append_from(err_.get(), err_text_, open);
        if (!open) {
            err_.reset();
        }
    }
}

bool Child::wait_stderr_for(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (err_text_.find(needle) == std::string::npos) {
        if (Clock::now() >= deadline || !err_ || interrupted()) {
            return false;
        }
        drain_stderr(100);
        if (!err_ && !running()) {
            return err_text_.find(needle) != std::string::npos;
        }
    }
    return true;
}

void Child::signal(int sig) const {
    if (pid_ > 0 && !status_) {
        kill(pid_, sig);
    }
}

bool Child::running() {
    if (pid_ <= 0 || status_) {
        return false;
    }
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = decode_status(st);
        return false;
    }
    return r == 0;
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (running()) {
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        drain_stderr(50);   // keeps a chatty child from blocking on a full pipe
    }
    return status_;
}

// --- processes -------------------------------------------------------------------------------

std::string ProcessRecord::to_line() const { return fmt::format("{} {}\n", pid, start_time); }

std::optional<ProcessRecord> ProcessRecord::parse(const std::string& text) {
    std::istringstream in(text);
    long long pid = 0;
    unsigned long long start = 0;
    if (!(in >> pid >> start) || pid <= 1) {
        return std::nullopt;
    }
    return ProcessRecord{static_cast<pid_t>(pid), start};
}

namespace {

// Fields of /proc/PID/stat after the command name (which may contain spaces and parentheses).
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/stat", pid));
    std::string line;
    if (!f || !std::getline(f, line)) {
        return std::nullopt;
    }
    const auto close = line.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream in(line.substr(close + 1));
    std::vector<std::string> out;
    for (std::string w; in >> w;) {
        out.push_back(w);
    }
    return out;
}

} // namespace

std::optional<unsigned long long> process_start_time(pid_t pid) {
    auto f = stat_fields(pid);
    // After "pid (comm)": field 3 (state) is index 0, field 22 (starttime) index 19.
    if (!f || f->size() < 20) {
        return std::nullopt;
    }
    return std::stoull((*f)[19]);
}

bool is_running(const ProcessRecord& r, int* exit_status) {
    int st = 0;
    if (waitpid(r.pid, &st, WNOHANG) == r.pid) {
        if (exit_status) {
            *exit_status = decode_status(st);
        }
        return false;   // our child, and it has just been reaped
    }
    auto f = stat_fields(r.pid);
    if (!f || f->size() < 20) {
        return false;
    }
    if ((*f)[0] == "Z" || (*f)[0] == "X") {
        return false;
    }
    return std::stoull((*f)[19]) == r.start_time;
}

ProcessRecord spawn_detached(const std::vector<std::string>& argv, const std::string& netns, const fs::path& log) {
    Argv args(argv);
    UniqueFd ns = netns.empty() ? UniqueFd() : open_netns(netns);
    UniqueFd logfd(open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!logfd) {
        throw LabError(fmt::format("log file {}: {}", log.string(), errno_text(errno)));
    }
    UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
    Pipe status;
    pid_t pid = fork();
    if (pid < 0) {
        throw LabError(fmt::format("fork for {}: {}", shell_words(argv), errno_text(errno)));
    }
    if (pid == 0) {
        child_reset_signals();
        setsid();   // no controlling terminal: a Ctrl-C meant for us does not reach the agent
        if (ns && setns(ns.get(), CLONE_NEWNET) < 0) {
            child_fail(status.w.get(), errno);
        }
        if (dup2(devnull.get(), 0) < 0 || dup2(logfd.get(), 1) < 0 || dup2(logfd.get(), 2) < 0) {
            child_fail(status.w.get(), errno);
        }
        // Nothing else of ours: an inherited pipe would keep whoever reads our output waiting
        // for as long as the agent lives.
        const unsigned sfd = static_cast<unsigned>(status.w.get());
        if (sfd > 3) {
            close_range(3, sfd - 1, 0);
        }
        close_range(sfd + 1, ~0U, 0);
        execvp(args.ptrs[0], args.ptrs.data());
        child_fail(status.w.get(), errno);
    }
    status.w.reset();
    if (auto e = exec_error(status.r.get())) {
        int st = 0;
        waitpid(pid, &st, 0);
        throw LabError(fmt::format("cannot start {}{}: {}", argv[0], netns.empty() ? "" : " in " + netns,
                                   errno_text(*e)));
    }
    auto start = process_start_time(pid);
    return ProcessRecord{pid, start.value_or(0)};
}

// --- namespaces ------------------------------------------------------------------------------

NetnsScope::NetnsScope(const std::string& name) {
    UniqueFd target = open_netns(name);
    home_.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home_) {
        throw LabError(fmt::format("our own network namespace: {}", errno_text(errno)));
    }
    if (setns(target.get(), CLONE_NEWNET) < 0) {
        throw LabError(fmt::format("entering network namespace {}: {}", name, errno_text(errno)));
    }
}

NetnsScope::~NetnsScope() {
    if (setns(home_.get(), CLONE_NEWNET) < 0) {
        // Carrying on in the wrong namespace would configure the wrong links.
        fmt::print(stderr, "xpmip lab: cannot return to our network namespace: {}\n", errno_text(errno));
        std::abort();
    }
}

bool netns_exists(const std::string& name) {
    std::error_code ec;
    return fs::exists(fs::path("/run/netns") / name, ec);
}

std::vector<std::string> list_netns() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
        out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void write_sysctl(const std::string& key, const std::string& value) {
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    std::ofstream f(path);
    f << value << "\n";
    f.flush();
    if (!f) {
        throw LabError(fmt::format("sysctl {}={}: cannot write {}", key, value, path));
    }
}

// --- files and programs ----------------------------------------------------------------------

std::optional<fs::path> find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    dirs += ":/usr/sbin:/sbin";
    std::istringstream in(dirs);
    for (std::string d; std::getline(in, d, ':');) {
        if (d.empty()) {
            continue;
        }
        fs::path p = fs::path(d) / name;
        if (access(p.c_str(), X_OK) == 0) {
            return p;
        }
    }
    return std::nullopt;
}

void require_program(const std::string& name, const std::string& package) {
    if (!find_program(name)) {
        throw LabError(fmt::format("{} is not installed (Debian package {}: apt-get install {})", name, package,
                                   package));
    }
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc);
    f << text;
    f.flush();
    if (!f) {
        throw LabError(fmt::format("cannot write {}", path.string()));
    }
}

std::string read_file(const fs::path& path) {
    std::ifstream f(path);
    if (!f) {
        throw LabError(fmt::format("cannot read {}", path.string()));
    }
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string tail_file(const fs::path& path, std::size_t lines) {
    std::ifstream f(path);
    if (!f) {
        return "(no log at " + path.string() + ")\n";
    }
    std::deque<std::string> last;
    for (std::string line; std::getline(f, line);) {
        last.push_back(line);
        if (last.size() > lines) {
            last.pop_front();
        }
    }
    std::string out;
    for (const auto& l : last) {
        out += "    " + l + "\n";
    }
    return out.empty() ? "    (empty)\n" : out;
}

fs::path resolve_executable(const std::string& path) {
    std::error_code ec;
    auto real = fs::read_symlink(path, ec);   // /proc/self/exe -> the binary
    if (ec) {
        real = fs::canonical(path, ec);
    }
    if (ec || real.empty()) {
        throw LabError(fmt::format("cannot resolve the xpmip binary {}: {}", path, ec.message()));
    }
    return real;
}

} // namespace xpmip::lab
