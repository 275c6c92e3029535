// The Binding Cache journal (issue 17: a restart loses no binding): every binding change (create,
// handoff, key, address, path, de-registration hold, delete; not plain lifetime refreshes) in the
// agents' record log (user/state/record_log.hpp: files, format, recovery, compaction, a full
// disk), with the entry codec below.
#pragma once

#include "lma/binding_cache.hpp"
#include "state/record_log.hpp"

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <vector>

namespace xpmip::lma {

using JournalError = state::RecordError;

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

    // What the files held when opened (moved out once).
    JournalRecovery take_recovery() { return std::move(recovery_); }

    // Queue a change; flush() writes the queue (throws JournalError when the write fails).
    void put(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e);
    void erase(const std::string& mn_id) { log_->erase(mn_id); }
    void flush() { log_->flush(); }

    // Compaction (state::RecordLog): the snapshot of `cache` as it is now, from a child process.
    bool wants_compaction() const { return log_->wants_compaction(); }
    void compact(const BindingCache& cache);
    // Once per wake-up (state::RecordLog::tend): written, compacted when due, errors logged.
    void tend(const BindingCache& cache);
    void poll() { log_->poll(); }
    bool compacting() const { return log_->compacting(); }

    std::uint64_t generation() const { return log_->generation(); }
    std::uint64_t records_since_snapshot() const { return log_->records_since_snapshot(); }
    std::uint64_t compactions() const { return log_->compactions(); }
    const std::filesystem::path& directory() const { return log_->directory(); }
    void set_threshold(std::uint64_t records) { log_->set_threshold(records); }
    state::RecordLog& log() { return *log_; }

private:
    std::optional<state::RecordLog> log_;
    JournalRecovery recovery_;
};

} // namespace xpmip::lma
