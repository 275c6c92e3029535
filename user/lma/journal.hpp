// The Binding Cache journal (issue 17: a restart loses no binding). An append-only log of
// binding changes (create, handoff, key, address, path, de-registration hold, delete; not plain
// lifetime refreshes) and a snapshot that compaction writes from a forked copy of the process, so
// the event loop never waits for it.
//
// Files in the state directory:
//   snapshot       every entry at the start of a generation (absent before the first compaction)
//   journal-<g>    the changes of generation g, appended as they happen
// Each file starts with a header (magic, format version, generation); each record is
// [u32 length][u32 CRC-32 of the payload][payload]. Recovery reads the snapshot, then every
// journal-<g> with g at least the snapshot's generation, in order; a record that is cut short or
// fails its CRC ends the file's replay (what came before it is kept, the rest reported lost).
//
// Writes reach the kernel (write(2)) once per event-loop wake-up, before the PBAs of that
// wake-up are sent, which is what survives `kill -9`; they are not fsync'ed (a power loss may
// lose the last changes: the MAGs' next refreshes register them again).
#pragma once

#include "common/fd.hpp"
#include "lma/binding_cache.hpp"

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <vector>

namespace xpmip::lma {

class JournalError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One entry as the journal holds it: the MN-ID, the peer's name and the entry. Times are not
// kept (the process's clock means nothing after a restart): recovery gives every binding its
// granted lifetime again from the restart, and a de-registered one its deletion hold.
struct JournalRecord {
    std::string mn_id;
    std::string peer;
    BindingCacheEntry entry;
};

// The payload codec. `with_freshness` false leaves out what a refresh changes (sequence numbers,
// timestamps): two entries that encode alike so differ only by a refresh.
std::string encode_entry(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e,
                         bool with_freshness = true);
void encode_entry_into(std::string& out, const std::string& mn_id, const std::string& peer,
                       const BindingCacheEntry& e, bool with_freshness);
JournalRecord decode_entry(std::string_view payload);   // throws JournalError naming the field

struct JournalRecovery {
    std::vector<JournalRecord> entries;   // what the files say is there now, by MN-ID
    std::uint64_t generation = 1;         // the generation to append to
    std::size_t records = 0;              // records read, all files
    std::vector<std::string> losses;      // one line per file whose tail could not be read
};

class BindingJournal {
public:
    // Read what `dir` holds (created if missing) and open the current generation for appending.
    explicit BindingJournal(std::filesystem::path dir);
    ~BindingJournal();
    BindingJournal(const BindingJournal&) = delete;
    BindingJournal& operator=(const BindingJournal&) = delete;

    // What the files held when opened (moved out once).
    JournalRecovery take_recovery() { return std::move(recovery_); }

    // Queue a change; flush() writes the queue.
    void put(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e);
    void erase(const std::string& mn_id);
    void flush();   // throws JournalError when the write fails (disk full: named with the path)

    // Compaction, when the log has grown past `threshold` records since the last snapshot (and
    // no compaction is running): a child process writes the snapshot of `cache` as it is now
    // while this one goes on appending to the next generation. poll() reaps a finished child.
    bool wants_compaction() const;
    void compact(const BindingCache& cache);
    void poll();
    bool compacting() const { return child_ > 0; }

    std::uint64_t generation() const { return generation_; }
    std::uint64_t records_since_snapshot() const { return since_snapshot_; }
    std::uint64_t compactions() const { return compactions_; }
    const std::filesystem::path& directory() const { return dir_; }
    void set_threshold(std::uint64_t records) { threshold_ = records; }

private:
    void open_generation(std::uint64_t g);
    void append(char kind, std::string_view payload);

    std::filesystem::path dir_;
    JournalRecovery recovery_;
    std::uint64_t generation_ = 1;
    UniqueFd log_;
    std::filesystem::path log_path_;   // (for errors: not formatted per write)
    std::string pending_;
    std::uint64_t since_snapshot_ = 0;
    std::uint64_t live_at_snapshot_ = 0;
    std::uint64_t threshold_ = 1u << 16;
    pid_t child_ = -1;
    std::uint64_t child_generation_ = 0;
    std::uint64_t compactions_ = 0;
};

} // namespace xpmip::lma
