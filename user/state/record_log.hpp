// An agent's state that outlives the process (issue 17): an append-only log of records and a
// snapshot that compaction writes from a forked copy of the process, so the event loop never
// waits for it. The LMA's Binding Cache journal and the MAG's Binding Update List journal are
// this log with a codec of their own.
//
// Files in the state directory:
//   snapshot       every live record at the start of a generation (absent before the first compaction)
//   journal-<g>    the changes of generation g, appended as they happen
// Each file starts with a header (magic, format version, generation); each record is
// [u32 length][u32 CRC-32 of the body][body], the body a kind ('P' put, 'E' erase) and its
// payload. A put's payload starts with its key (a length-prefixed string, the codec's `bytes`),
// an erase's payload is the key alone. Recovery reads the snapshot, then every journal-<g> with
// g at least the snapshot's generation, in order; a record that is cut short, fails its CRC or
// that the codec refuses ends that file's replay (what came before it is kept, the rest is
// reported lost).
//
// Writes reach the kernel (write(2)) at flush(), which the agents call once per event-loop
// wake-up before that wake-up's answers leave: what survives `kill -9`. They are not fsync'ed
// (a power loss may lose the last changes; the peers' next messages bring them back).
// A failed write (disk full) keeps the records queued and makes the next flush start a new
// generation (the failed file's torn tail stays behind it). Past `max_pending` octets queued the
// queue is dropped and a snapshot of the whole state is asked for instead (wants_compaction()).
#pragma once

#include "common/fd.hpp"
#include "state/record_codec.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace xpmip::state {

// What replay hands the log's owner: every put's payload (throw RecordError to refuse it, which
// ends that file's replay) and every erased key.
struct ReplayHandlers {
    std::function<void(std::string_view payload)> put;
    std::function<void(const std::string& key)> erase;
};

struct ReplaySummary {
    std::uint64_t generation = 1;         // the generation appended to from now on
    std::size_t records = 0;              // records read, all files
    std::vector<std::string> losses;      // one line per file whose tail could not be read
};

class RecordLog {
public:
    // Emits one live record's payload into the snapshot (compaction, in the child).
    using Emit = std::function<void(std::string_view payload)>;
    using Walk = std::function<void(const Emit&)>;

    // Replay what `dir` holds (created if missing) and open a generation for appending. `what`
    // names the log in messages ("binding journal").
    RecordLog(std::filesystem::path dir, std::string what, const ReplayHandlers& replay);
    ~RecordLog();
    RecordLog(const RecordLog&) = delete;
    RecordLog& operator=(const RecordLog&) = delete;

    const ReplaySummary& replayed() const { return replayed_; }

    // Queue a put whose payload `encode_into(std::string&)` appends (in place: no copy), or an erase.
    template <class Encode>
    void put(Encode&& encode_into) {
        const std::size_t at = begin_record('P');
        encode_into(pending_);
        end_record(at);
    }
    void erase(std::string_view key);
    // Write the queue; throws RecordError naming the file when the write fails (the records stay
    // queued, up to max_pending octets).
    void flush();

    // Compaction: when the log has grown past `threshold` records since the last snapshot and
    // past the live records then, or the queue had to be dropped. `walk` emits every live record
    // in a child process while this one goes on appending to the next generation; poll() reaps
    // the child.
    bool wants_compaction() const;
    void compact(std::size_t live, const Walk& walk);
    void poll();
    // Once per event-loop wake-up: flush, reap a finished compaction, start one that is due.
    // Errors are logged (at most one line per 10 s while they last), never thrown.
    void tend(std::size_t live, const Walk& walk);
    bool compacting() const { return child_ > 0; }

    std::uint64_t generation() const { return generation_; }
    std::uint64_t records_since_snapshot() const { return since_snapshot_; }
    std::uint64_t compactions() const { return compactions_; }
    std::size_t pending_octets() const { return pending_.size(); }
    bool needs_snapshot() const { return resync_; }
    const std::filesystem::path& directory() const { return dir_; }
    void set_threshold(std::uint64_t records) { threshold_ = records; }
    void set_max_pending(std::size_t octets) { max_pending_ = octets; }

private:
    std::size_t begin_record(char kind);
    void end_record(std::size_t at);
    void open_generation(std::uint64_t g);

    std::filesystem::path dir_;
    std::string what_;
    ReplaySummary replayed_;
    std::uint64_t generation_ = 1;
    UniqueFd log_;
    std::filesystem::path log_path_;   // (for errors: not formatted per write)
    std::string pending_;
    bool broken_ = false;              // the last write failed: the next flush opens a new generation
    bool resync_ = false;              // queued records were dropped: only a snapshot is whole again
    bool child_resync_ = false;        // the running compaction is that snapshot
    std::size_t max_pending_ = std::size_t{64} << 20;
    std::uint64_t since_snapshot_ = 0;
    std::uint64_t live_at_snapshot_ = 0;
    std::uint64_t threshold_ = 1u << 16;
    pid_t child_ = -1;
    std::uint64_t child_generation_ = 0;
    std::uint64_t compactions_ = 0;
    std::chrono::steady_clock::time_point retry_compaction_{};
    std::chrono::steady_clock::time_point last_error_log_{};
    std::uint64_t errors_unlogged_ = 0;
};

} // namespace xpmip::state
