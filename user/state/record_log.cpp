#include "state/record_log.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

namespace xpmip::state {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'X', 'P', 'M', 'I', 'P', 'J', 'N', 'L'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kHeaderSize = 24;
constexpr std::size_t kRecordHeader = 8;
constexpr std::uint32_t kMaxPayload = 1u << 20;
constexpr char kPut = 'P';
constexpr char kErase = 'E';
// A failed compaction (the disk is full) is tried again this much later, not at every wake-up.
constexpr auto kCompactionRetry = std::chrono::seconds(10);

std::string header(std::uint64_t generation) {
    std::string h(kMagic, sizeof kMagic);
    Writer w(h);
    w.u32(kFormatVersion);
    w.u32(0);
    w.u64(generation);
    return h;
}

std::uint32_t crc_of(std::string_view s) {
    return static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

void write_all(int fd, std::string_view data, const fs::path& path) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw RecordError(fmt::format("{}: write failed: {}", path.string(), n < 0 ? std::strerror(errno) : "no space"));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string read_file(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        throw RecordError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
    }
    std::string out;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw RecordError(fmt::format("{}: read failed: {}", path.string(), std::strerror(errno)));
        }
        if (n == 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// One file's records to the handlers; its generation, and a line saying what was lost if its
// tail could not be read.
struct FileReplay {
    std::uint64_t generation = 0;
    std::size_t records = 0;
    std::optional<std::string> loss;
};

// Why the record `body` cannot be replayed (empty: it was).
std::string replay_record(std::string_view body, const ReplayHandlers& h) {
    try {
        if (body[0] == kErase) {
            Reader r(body.substr(1));
            const auto key = r.bytes("key");
            r.end();
            h.erase(key);
        } else if (body[0] == kPut) {
            h.put(body.substr(1));
        } else {
            return fmt::format("kind {} is not P or E", int(body[0]));
        }
    } catch (const RecordError& ex) {
        return ex.what();
    }
    return {};
}

FileReplay replay(const fs::path& path, const ReplayHandlers& h) {
    FileReplay out;
    const std::string data = read_file(path);
    if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
        out.loss = fmt::format("{}: not a journal file ({} octets, no header): all of it ignored", path.string(),
                               data.size());
        return out;
    }
    Reader hr(std::string_view(data).substr(sizeof kMagic, kHeaderSize - sizeof kMagic));
    const auto version = hr.u32("version");
    hr.u32("reserved");
    out.generation = hr.u64("generation");
    if (version != kFormatVersion) {
        out.loss = fmt::format("{}: format version {} (this agent reads {}): all of it ignored", path.string(),
                               version, kFormatVersion);
        return out;
    }
    std::size_t at = kHeaderSize;
    while (at < data.size()) {
        std::string why;
        if (data.size() - at < kRecordHeader) {
            why = "its header is cut short";
        } else {
            Reader rh(std::string_view(data).substr(at, kRecordHeader));
            const auto len = rh.u32("length");
            const auto crc = rh.u32("crc");
            if (len == 0 || len > kMaxPayload) {
                why = fmt::format("length {} is out of range", len);
            } else if (data.size() - at - kRecordHeader < len) {
                why = fmt::format("cut short ({} of {} octets)", data.size() - at - kRecordHeader, len);
            } else {
                const std::string_view body = std::string_view(data).substr(at + kRecordHeader, len);
                why = crc_of(body) != crc ? "its CRC does not match" : replay_record(body, h);
                if (why.empty()) {
                    at += kRecordHeader + len;
                    ++out.records;
                    continue;
                }
            }
        }
        out.loss = fmt::format("{}: record {} at offset {}: {}; it and the {} octets after it are lost", path.string(),
                               out.records + 1, at, why, data.size() - at);
        break;
    }
    return out;
}

// journal-<g> files of `dir` by generation.
std::map<std::uint64_t, fs::path> journal_files(const fs::path& dir) {
    std::map<std::uint64_t, fs::path> out;
    for (const auto& f : fs::directory_iterator(dir)) {
        const std::string name = f.path().filename().string();
        if (name.rfind("journal-", 0) != 0) {
            continue;
        }
        std::uint64_t g = 0;
        const char* b = name.data() + 8;
        const char* e = name.data() + name.size();
        auto [p, ec] = std::from_chars(b, e, g);
        if (ec == std::errc{} && p == e && g > 0) {
            out.emplace(g, f.path());
        }
    }
    return out;
}

fs::path journal_path(const fs::path& dir, std::uint64_t g) {
    return dir / fmt::format("journal-{}", g);
}

void fsync_path(const fs::path& path, const fs::path& name_for_errors) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) {
        throw RecordError(fmt::format("{}: fsync failed: {}", name_for_errors.string(), std::strerror(errno)));
    }
}

void append_framed(std::string& out, char kind, std::string_view payload) {
    Writer w(out);
    w.u32(static_cast<std::uint32_t>(payload.size() + 1));
    std::string body(1, kind);
    body.append(payload);
    w.u32(crc_of(body));
    out += body;
}

// The child of a compaction: every live record into the snapshot of `generation`, through a
// temporary file, fsync and rename. Nothing here logs or touches the data plane.
int write_snapshot(const fs::path& dir, std::uint64_t generation, const RecordLog::Walk& walk) {
    // Out of the event loop's way: any CPU (the agent may be pinned to one), lowest priority.
    cpu_set_t all;
    CPU_ZERO(&all);
    for (long c = 0; c < ::sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; ++c) {
        CPU_SET(static_cast<int>(c), &all);
    }
    (void)::sched_setaffinity(0, sizeof all, &all);
    (void)::nice(19);
    try {
        const fs::path tmp = dir / fmt::format("snapshot.tmp.{}", ::getpid());
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd) {
            return 2;
        }
        std::string buf = header(generation);
        walk([&](std::string_view payload) {
            append_framed(buf, kPut, payload);
            if (buf.size() >= (1u << 20)) {
                write_all(fd.get(), buf, tmp);
                buf.clear();
            }
        });
        write_all(fd.get(), buf, tmp);
        if (::fsync(fd.get()) != 0) {
            return 3;
        }
        fd.reset();
        fs::rename(tmp, dir / "snapshot");
        fsync_path(dir, dir);
    } catch (...) {
        return 4;
    }
    return 0;
}

} // namespace

RecordLog::RecordLog(fs::path dir, std::string what, const ReplayHandlers& handlers)
    : dir_(std::move(dir)), what_(std::move(what)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_)) {
        throw RecordError(fmt::format("state directory {}: cannot create it: {}", dir_.string(), ec.message()));
    }
    // A snapshot a killed compaction left half-written is nothing (and a child of the previous
    // process still writing one just fails its rename: the journals it would replace stay).
    for (const auto& f : fs::directory_iterator(dir_)) {
        if (f.path().filename().string().rfind("snapshot.tmp", 0) == 0) {
            std::error_code ignored;
            fs::remove(f.path(), ignored);
        }
    }
    auto take = [&](const FileReplay& r) {
        replayed_.records += r.records;
        if (r.loss) {
            replayed_.losses.push_back(*r.loss);
        }
    };
    std::uint64_t from = 0;   // the snapshot's generation: older journals are in it
    if (fs::exists(dir_ / "snapshot")) {
        const auto snap = replay(dir_ / "snapshot", handlers);
        from = snap.generation;
        take(snap);
    }
    std::uint64_t last = std::max<std::uint64_t>(from, 1);
    for (const auto& [g, path] : journal_files(dir_)) {
        if (g < from) {
            continue;   // (left by a compaction that ended before it could remove it)
        }
        take(replay(path, handlers));
        last = std::max(last, g);
    }
    // A new generation: whatever a crashed write left at the old one's tail stays behind it.
    open_generation(replayed_.records == 0 && replayed_.losses.empty() ? last : last + 1);
    replayed_.generation = generation_;
}

RecordLog::~RecordLog() {
    try {
        flush();
    } catch (const std::exception& ex) {
        spdlog::error("{}: {}", what_, ex.what());
    }
    if (child_ > 0) {
        int status = 0;
        ::waitpid(child_, &status, 0);   // its snapshot is as good as the log: let it finish
    }
}

void RecordLog::open_generation(std::uint64_t g) {
    const fs::path path = journal_path(dir_, g);
    // (a header cut short by a full disk is written again)
    const bool fresh = !fs::exists(path) || fs::file_size(path) < kHeaderSize;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0600));
    if (!fd) {
        throw RecordError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
    }
    if (fresh) {
        write_all(fd.get(), header(g), path);
    }
    log_ = std::move(fd);
    log_path_ = path;
    generation_ = g;
}

std::size_t RecordLog::begin_record(char kind) {
    // The header is filled in once the payload's length is known (end_record).
    const std::size_t at = pending_.size();
    pending_.append(kRecordHeader, '\0');
    pending_.push_back(kind);
    return at;
}

void RecordLog::end_record(std::size_t at) {
    const std::string_view body = std::string_view(pending_).substr(at + kRecordHeader);
    std::string h;
    Writer w(h);
    w.u32(static_cast<std::uint32_t>(body.size()));
    w.u32(crc_of(body));
    pending_.replace(at, kRecordHeader, h);
    ++since_snapshot_;
}

void RecordLog::erase(std::string_view key) {
    const std::size_t at = begin_record(kErase);
    Writer(pending_).bytes(key);
    end_record(at);
}

void RecordLog::flush() {
    if (pending_.empty()) {
        return;
    }
    try {
        if (broken_) {
            open_generation(generation_ + 1);   // (the failed file's torn tail stays behind)
            broken_ = false;
        }
        write_all(log_.get(), pending_, log_path_);
    } catch (const RecordError&) {
        broken_ = true;
        if (pending_.size() > max_pending_) {
            spdlog::error("{} {}: {} octets of records could not be written: dropped; a snapshot of the whole "
                          "state will be written as soon as the disk takes it", what_, dir_.string(), pending_.size());
            pending_.clear();
            resync_ = true;
        }
        throw;
    }
    pending_.clear();
}

bool RecordLog::wants_compaction() const {
    if (compacting() || std::chrono::steady_clock::now() < retry_compaction_) {
        return false;
    }
    return resync_ || (since_snapshot_ >= threshold_ && since_snapshot_ >= live_at_snapshot_);
}

void RecordLog::compact(std::size_t live, const Walk& walk) {
    flush();
    const std::uint64_t next = generation_ + 1;
    open_generation(next);   // from here on the parent appends to the next generation
    const pid_t pid = ::fork();
    if (pid < 0) {
        retry_compaction_ = std::chrono::steady_clock::now() + kCompactionRetry;
        throw RecordError(fmt::format("{}: compaction: fork failed: {}", what_, std::strerror(errno)));
    }
    if (pid == 0) {
        ::_exit(write_snapshot(dir_, next, walk));   // (glibc's malloc is fork-safe)
    }
    child_ = pid;
    child_generation_ = next;
    live_at_snapshot_ = live;
    since_snapshot_ = 0;
    child_resync_ = resync_;
    resync_ = false;
}

void RecordLog::poll() {
    if (child_ <= 0) {
        return;
    }
    int status = 0;
    const pid_t r = ::waitpid(child_, &status, WNOHANG);
    if (r == 0) {
        return;
    }
    child_ = -1;
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        spdlog::error("{} {}: the compaction to generation {} failed (status {}); the journals it would have "
                      "replaced stay, and it is tried again in {} s", what_, dir_.string(), child_generation_, status,
                      kCompactionRetry.count());
        retry_compaction_ = std::chrono::steady_clock::now() + kCompactionRetry;
        since_snapshot_ = std::max(since_snapshot_, threshold_);
        resync_ = resync_ || child_resync_;   // (what was dropped is in no file until a snapshot succeeds)
        return;
    }
    ++compactions_;
    for (const auto& [g, path] : journal_files(dir_)) {
        if (g < child_generation_) {
            std::error_code ec;
            fs::remove(path, ec);
        }
    }
    spdlog::info("{} {}: snapshot of generation {} written ({} entries)", what_, dir_.string(), child_generation_,
                 live_at_snapshot_);
}

void RecordLog::tend(std::size_t live, const Walk& walk) {
    try {
        flush();
        poll();
        if (wants_compaction()) {
            compact(live, walk);
        }
    } catch (const std::exception& ex) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_error_log_ < std::chrono::seconds(10)) {
            ++errors_unlogged_;
            return;
        }
        spdlog::error("{}: {} ({} octets queued for the next try{}; {} more such error(s) since the last line)", what_,
                      ex.what(), pending_.size(), resync_ ? ", and a snapshot is due" : "", errors_unlogged_);
        last_error_log_ = now;
        errors_unlogged_ = 0;
    }
}

} // namespace xpmip::state
