// The record log both roles journal to (user/state/record_log.hpp), where the disk is full:
// RLIMIT_FSIZE makes write(2) fail with EFBIG as a full disk fails with ENOSPC.
#include "state/record_log.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sys/resource.h>
#include <thread>

using namespace xpmip::state;
namespace fs = std::filesystem;

namespace {

struct StateDir {
    fs::path dir;
    StateDir() {
        char tmpl[] = "/tmp/xpmip-record-log-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~StateDir() { fs::remove_all(dir); }
};

// Files may grow to `octets` at most while it lives (SIGXFSZ ignored: write(2) says EFBIG).
struct FileSizeLimit {
    rlimit old{};
    explicit FileSizeLimit(rlim_t octets) {
        std::signal(SIGXFSZ, SIG_IGN);
        ::getrlimit(RLIMIT_FSIZE, &old);
        rlimit l = old;
        l.rlim_cur = octets;
        ::setrlimit(RLIMIT_FSIZE, &l);
    }
    ~FileSizeLimit() { ::setrlimit(RLIMIT_FSIZE, &old); }
};

// A key and a value, as a put's payload (the key first, as the log requires).
std::map<std::string, std::uint32_t> replay_into(const fs::path& dir, ReplaySummary* summary = nullptr) {
    std::map<std::string, std::uint32_t> state;
    RecordLog log(dir, "test log",
                  ReplayHandlers{.put =
                                     [&](std::string_view p) {
                                         Reader r(p);
                                         auto k = r.bytes("key");
                                         state[k] = r.u32("value");
                                         r.end();
                                     },
                                 .erase = [&](const std::string& k) { state.erase(k); }});
    if (summary) {
        *summary = log.replayed();
    }
    return state;
}

RecordLog open_log(const fs::path& dir) {
    return RecordLog(dir, "test log", ReplayHandlers{.put = [](std::string_view) {}, .erase = [](const std::string&) {}});
}

void put(RecordLog& log, const std::string& key, std::uint32_t value) {
    log.put([&](std::string& out) {
        Writer w(out);
        w.bytes(key);
        w.u32(value);
    });
}

std::string key_of(int i) {
    return "mn" + std::to_string(i) + "@op.example" + std::string(40, 'x');
}

} // namespace

BOOST_AUTO_TEST_SUITE(state_record_log)

BOOST_AUTO_TEST_CASE(a_failed_write_keeps_the_records_and_goes_on_in_a_new_generation) {
    StateDir d;
    {
        auto log = open_log(d.dir);
        for (int i = 0; i < 10; ++i) {
            put(log, key_of(i), static_cast<std::uint32_t>(i));
        }
        log.flush();
        const auto g = log.generation();
        {
            FileSizeLimit full(fs::file_size(d.dir / ("journal-" + std::to_string(g))) + 100);
            for (int i = 10; i < 20; ++i) {
                put(log, key_of(i), static_cast<std::uint32_t>(i));
            }
            BOOST_CHECK_THROW(log.flush(), RecordError);
            BOOST_TEST(log.pending_octets() > 0u, "kept for the next flush");
        }
        log.flush();   // the disk takes writes again
        BOOST_TEST(log.pending_octets() == 0u);
        BOOST_TEST(log.generation() > g, "after a torn write, a new file");
    }
    ReplaySummary s;
    const auto state = replay_into(d.dir, &s);
    BOOST_TEST(state.size() == 20u, "every record, the ones written while the disk was full included");
    BOOST_TEST(state.at(key_of(19)) == 19u);
    BOOST_TEST(!s.losses.empty(), "the torn tails of the full files are reported");
}

BOOST_AUTO_TEST_CASE(past_max_pending_the_queue_goes_and_a_snapshot_makes_the_state_whole) {
    StateDir d;
    std::map<std::string, std::uint32_t> live;
    {
        auto log = open_log(d.dir);
        log.set_max_pending(2000);
        for (int i = 0; i < 5; ++i) {
            put(log, key_of(i), static_cast<std::uint32_t>(i));
            live[key_of(i)] = static_cast<std::uint32_t>(i);
        }
        log.flush();
        BOOST_TEST(!log.wants_compaction());
        {
            FileSizeLimit full(fs::file_size(d.dir / ("journal-" + std::to_string(log.generation()))));
            for (int i = 5; i < 100; ++i) {
                put(log, key_of(i), static_cast<std::uint32_t>(i));
                live[key_of(i)] = static_cast<std::uint32_t>(i);
            }
            BOOST_CHECK_THROW(log.flush(), RecordError);
            BOOST_TEST(log.pending_octets() == 0u, "bounded: dropped past max_pending");
            BOOST_TEST(log.needs_snapshot());
            BOOST_TEST(log.wants_compaction(), "a snapshot is asked for at once");
        }
        log.compact(live.size(), [&](const RecordLog::Emit& emit) {
            for (const auto& [k, v] : live) {
                std::string p;
                Writer w(p);
                w.bytes(k);
                w.u32(v);
                emit(p);
            }
        });
        BOOST_TEST(!log.needs_snapshot());
        for (int i = 0; i < 500 && log.compacting(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            log.poll();
        }
        BOOST_TEST(log.compactions() == 1u);
    }
    BOOST_TEST((replay_into(d.dir) == live), "the snapshot holds what the dropped records said");
}

BOOST_AUTO_TEST_SUITE_END()
