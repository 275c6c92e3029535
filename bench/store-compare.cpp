// Which embedded database holds the LMA's subscribers (issue 16): SQLite or LMDB, measured the
// way the LMA uses it. For N profiles (MN-ID -> a ~60-octet record): the import in one
// transaction, the open as an LMA starts, a random lookup per registration (each its own read
// transaction, as a live store needs so the LMA sees changes), and the RSS and file size after.
// Prints one JSON object per store; bench/registrations.py puts them in the table.
#include <CLI/CLI.hpp>
#include <lmdb.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// RssAnon is the process's own memory; RssFile the database pages it has mapped (page cache the
// kernel may reclaim, shared with every reader).
long status_kib(const char* field) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind(field, 0) == 0) {
            return std::stol(line.substr(std::strlen(field)));
        }
    }
    return -1;
}

std::string mn_id(std::size_t i) {
    return "mn" + std::to_string(i) + "@operator.example";
}

// The import sorts its records first (as `xpmip subscribers import` does): LMDB then appends to
// full pages, and SQLite's B-tree fills in order too.
std::vector<std::size_t> import_order(std::size_t n) {
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [](std::size_t a, std::size_t b) { return mn_id(a) < mn_id(b); });
    return order;
}

// A profile's size on disk: realm, flags, static IPv4, static /64, GRE policy.
std::string record(std::size_t i) {
    std::string r(40, '\0');
    std::memcpy(r.data(), &i, sizeof i);
    return r;
}

struct Result {
    double import_s = 0, open_s = 0, lookup_ns = 0;
    long anon_kib = 0, file_kib = 0;
    std::uintmax_t file_bytes = 0;
};

void check_sqlite(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
    }
}

void check_lmdb(int rc, const char* what) {
    if (rc != MDB_SUCCESS) {
        throw std::runtime_error(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
    }
}

Result measure_sqlite(const std::string& dir, const std::vector<std::size_t>& order,
                      const std::vector<std::size_t>& probes) {
    const std::string file = dir + "/subscribers.sqlite";
    std::filesystem::remove(file);
    Result res;
    auto t0 = Clock::now();
    {
        sqlite3* db = nullptr;
        check_sqlite(sqlite3_open(file.c_str(), &db), db, "open");
        check_sqlite(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE s(id TEXT PRIMARY KEY, p BLOB) WITHOUT ROWID;"
                                      "BEGIN", nullptr, nullptr, nullptr), db, "create");
        sqlite3_stmt* ins = nullptr;
        check_sqlite(sqlite3_prepare_v2(db, "INSERT INTO s VALUES(?,?)", -1, &ins, nullptr), db, "prepare");
        for (std::size_t i : order) {
            const std::string id = mn_id(i), p = record(i);
            sqlite3_bind_text(ins, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
            sqlite3_bind_blob(ins, 2, p.data(), static_cast<int>(p.size()), SQLITE_TRANSIENT);
            check_sqlite(sqlite3_step(ins), db, "insert");
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        check_sqlite(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
        sqlite3_close(db);
    }
    res.import_s = seconds_since(t0);
    t0 = Clock::now();
    sqlite3* db = nullptr;
    check_sqlite(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), db, "open");
    sqlite3_stmt* get = nullptr;
    check_sqlite(sqlite3_prepare_v2(db, "SELECT p FROM s WHERE id=?", -1, &get, nullptr), db, "prepare");
    res.open_s = seconds_since(t0);
    std::size_t found = 0;
    t0 = Clock::now();
    for (std::size_t i : probes) {
        const std::string id = mn_id(i);
        sqlite3_bind_text(get, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
        found += sqlite3_step(get) == SQLITE_ROW && sqlite3_column_bytes(get, 0) == 40;
        sqlite3_reset(get);
    }
    res.lookup_ns = seconds_since(t0) * 1e9 / static_cast<double>(probes.size());
    if (found != probes.size()) {
        throw std::runtime_error("sqlite: a lookup missed");
    }
    res.anon_kib = status_kib("RssAnon:");
    res.file_kib = status_kib("RssFile:");
    sqlite3_finalize(get);
    sqlite3_close(db);
    res.file_bytes = std::filesystem::file_size(file);
    return res;
}

Result measure_lmdb(const std::string& dir, const std::vector<std::size_t>& order,
                    const std::vector<std::size_t>& probes) {
    const std::string file = dir + "/subscribers.lmdb";
    std::filesystem::remove(file);
    std::filesystem::remove(file + "-lock");
    Result res;
    auto t0 = Clock::now();
    MDB_env* env = nullptr;
    MDB_dbi dbi = 0;
    {
        check_lmdb(mdb_env_create(&env), "env_create");
        check_lmdb(mdb_env_set_mapsize(env, std::size_t{4} << 30), "set_mapsize");
        check_lmdb(mdb_env_open(env, file.c_str(), MDB_NOSUBDIR, 0644), "env_open");
        MDB_txn* txn = nullptr;
        check_lmdb(mdb_txn_begin(env, nullptr, 0, &txn), "txn_begin");
        check_lmdb(mdb_dbi_open(txn, nullptr, 0, &dbi), "dbi_open");
        for (std::size_t i : order) {
            std::string id = mn_id(i), p = record(i);
            MDB_val k{id.size(), id.data()}, v{p.size(), p.data()};
            check_lmdb(mdb_put(txn, dbi, &k, &v, MDB_APPEND), "put");
        }
        check_lmdb(mdb_txn_commit(txn), "commit");
        mdb_env_close(env);
    }
    res.import_s = seconds_since(t0);
    t0 = Clock::now();
    check_lmdb(mdb_env_create(&env), "env_create");
    check_lmdb(mdb_env_set_mapsize(env, std::size_t{4} << 30), "set_mapsize");
    check_lmdb(mdb_env_open(env, file.c_str(), MDB_NOSUBDIR | MDB_RDONLY, 0644), "env_open");
    MDB_txn* txn = nullptr;
    check_lmdb(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "txn_begin");
    check_lmdb(mdb_dbi_open(txn, nullptr, 0, &dbi), "dbi_open");
    mdb_txn_reset(txn);
    res.open_s = seconds_since(t0);
    std::size_t found = 0;
    t0 = Clock::now();
    for (std::size_t i : probes) {
        std::string id = mn_id(i);
        check_lmdb(mdb_txn_renew(txn), "txn_renew");
        MDB_val k{id.size(), id.data()}, v{};
        found += mdb_get(txn, dbi, &k, &v) == MDB_SUCCESS && v.mv_size == 40;
        mdb_txn_reset(txn);
    }
    res.lookup_ns = seconds_since(t0) * 1e9 / static_cast<double>(probes.size());
    if (found != probes.size()) {
        throw std::runtime_error("lmdb: a lookup missed");
    }
    res.anon_kib = status_kib("RssAnon:");
    res.file_kib = status_kib("RssFile:");
    mdb_txn_abort(txn);
    mdb_env_close(env);
    res.file_bytes = std::filesystem::file_size(file);
    return res;
}

void print(const char* store, std::size_t n, const Result& r) {
    std::printf("{\"store\":\"%s\",\"subscribers\":%zu,\"import_s\":%.3f,\"open_s\":%.6f,\"lookup_ns\":%.0f,"
                "\"anon_kib\":%ld,\"file_kib\":%ld,\"file_bytes\":%ju}\n",
                store, n, r.import_s, r.open_s, r.lookup_ns, r.anon_kib, r.file_kib, r.file_bytes);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"SQLite or LMDB for a million subscribers: import, open, lookup, memory"};
    std::size_t n = 1'000'000, lookups = 200'000;
    std::string dir = "/tmp", store = "both";
    app.add_option("-n,--subscribers", n, "profiles to import");
    app.add_option("--lookups", lookups, "random lookups to time");
    app.add_option("--dir", dir, "where the database files go (removed after)");
    app.add_option("--store", store, "sqlite, lmdb or both")->check(CLI::IsMember({"sqlite", "lmdb", "both"}));
    CLI11_PARSE(app, argc, argv);
    std::mt19937_64 rng(16);
    std::vector<std::size_t> probes(lookups);
    for (auto& p : probes) {
        p = rng() % n;
    }
    const auto order = import_order(n);
    try {
        // Each store in its own process (bench/registrations.py runs this twice) keeps one's RSS out
        // of the other's figure.
        if (store != "lmdb") {
            print("sqlite", n, measure_sqlite(dir, order, probes));
            std::filesystem::remove(dir + "/subscribers.sqlite");
        }
        if (store != "sqlite") {
            print("lmdb", n, measure_lmdb(dir, order, probes));
            std::filesystem::remove(dir + "/subscribers.lmdb");
            std::filesystem::remove(dir + "/subscribers.lmdb-lock");
        }
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "xpmip-store-compare: %s\n", ex.what());
        return 1;
    }
    return 0;
}
