// The Binding Update List journal (issue 17: a MAG restart loses no binding): every change of an
// MN's entry (attach, registration with its keys and addresses, a path added or gone,
// de-registration, removal; not plain refreshes) in the agents' record log
// (user/state/record_log.hpp), with the entry codec below. What is timing only (retransmission
// state, expiry) is not kept: a restored entry registers again at once.
#pragma once

#include "mag/mag.hpp"
#include "state/record_log.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::mag {

// `with_sequence` false leaves out what every PBU changes: two entries that encode alike so
// differ only by a refresh.
void encode_bul_entry_into(std::string& out, const BindingUpdateListEntry& e, bool with_sequence);
std::string encode_bul_entry(const BindingUpdateListEntry& e, bool with_sequence = true);
BindingUpdateListEntry decode_bul_entry(std::string_view payload);   // throws state::RecordError naming the field

struct BulRecovery {
    std::vector<BindingUpdateListEntry> entries;   // by MN-ID
    std::size_t records = 0;
    std::vector<std::string> losses;
};

class BulJournal : public BulJournalSink {
public:
    explicit BulJournal(std::filesystem::path dir);
    BulRecovery take_recovery() { return std::move(recovery_); }

    void put(const BindingUpdateListEntry& primary) override;
    void erase(const std::string& mn_id) override { log_->erase(mn_id); }
    // Once per wake-up, before the PBUs of that wake-up leave: written, compacted when due.
    void tend(const std::map<std::string, BindingUpdateListEntry>& bul);
    state::RecordLog& log() { return *log_; }

private:
    std::optional<state::RecordLog> log_;
    BulRecovery recovery_;
};

} // namespace xpmip::mag
