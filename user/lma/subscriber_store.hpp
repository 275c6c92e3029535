// The subscriber store (issue 16): per-MN profiles for a million mobile nodes in an LMDB file the
// LMA reads in place (README "Subscribers"). LMDB rather than SQLite by measurement
// (bench/store-compare.cpp): a lookup in its own read transaction costs about 1.4 us against 9 us,
// a sorted import of 1 M profiles 0.5 s against 3.3 s, and the LMA starts with nothing to load (the
// file is mapped, its pages are the kernel's page cache, shared with `xpmip subscribers`).
//
// Each `xpmip subscribers` command is one write transaction: the LMA, which looks a profile up in
// a fresh read transaction per registration, sees a change from its next PBU on, and never sees a
// half-done import.
#pragma once

#include "lma/lma_config.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct MDB_env;
struct MDB_txn;

namespace xpmip::lma {

// A record the store refuses, with the field at fault ("ipv4_home_address", "realm", ...).
class SubscriberError : public std::invalid_argument {
public:
    SubscriberError(std::string field, const std::string& message)
        : std::invalid_argument(field.empty() ? message : field + ": " + message), field_(std::move(field)) {}
    const std::string& field() const { return field_; }

private:
    std::string field_;
};

// What a profile must satisfy against the LMA's configuration (the same rules as a `mobile_nodes:`
// entry): its realm exists, each service it is authorized for has a pool or a static address, the
// static IPv4 address is not the realm's default router. Throws SubscriberError.
void check_subscriber(const MobileNodeProfile& m, const LmaConfig& c);

// A profile as stored (version 1, 29 octets; the MN-ID is the key).
std::string encode_subscriber(const MobileNodeProfile& m);
void decode_subscriber(std::string_view record, MobileNodeProfile& m);   // all but m.id

class SubscriberStore {
public:
    // Opens the store at `path` (one file, plus LMDB's `<path>-lock`), creating it empty if absent.
    explicit SubscriberStore(const std::string& path);
    ~SubscriberStore();
    SubscriberStore(const SubscriberStore&) = delete;
    SubscriberStore& operator=(const SubscriberStore&) = delete;

    const std::string& path() const { return path_; }

    // The profile of `id` into `out` (all fields but out.id), in a read transaction of its own.
    bool find(std::string_view id, MobileNodeProfile& out) const;
    std::optional<MobileNodeProfile> get(std::string_view id) const;

    // Changes with every committed write (LMDB's last transaction id): the LMA polls it.
    std::uint64_t generation() const;
    std::size_t size() const;

    // Up to `limit` profiles with an MN-ID above `after`, in MN-ID order (paged `show`).
    std::vector<MobileNodeProfile> page(std::string_view after, std::size_t limit) const;

    // Whether a profile holds this address statically: the LMA's pools skip it (Ipv4Pool::
    // set_static_check), and every stored profile that has static addresses in `fn`.
    bool holds_static(std::uint32_t realm, const Ipv4Address& a) const;
    bool holds_static(std::uint32_t realm, const Ipv6Prefix& p) const;
    void for_each_static(const std::function<void(const MobileNodeProfile&)>& fn) const;

    // One write transaction: nothing is visible to readers until commit().
    class Writer {
    public:
        explicit Writer(SubscriberStore& store);
        ~Writer();
        Writer(const Writer&) = delete;
        Writer& operator=(const Writer&) = delete;
        // Adds or replaces a profile; a static address another MN holds is a SubscriberError.
        // `append` (an empty store, ids in ascending order) fills pages in order.
        void put(const MobileNodeProfile& m, bool append = false);
        bool remove(std::string_view id);
        void clear();
        void commit();

    private:
        void claim_static(const MobileNodeProfile& m);
        void release_static(std::string_view id, const MobileNodeProfile& old);
        SubscriberStore& store_;
        MDB_txn* txn_ = nullptr;
    };

private:
    friend class Writer;
    bool holds_static_key(const std::string& key) const;
    std::string path_;
    MDB_env* env_ = nullptr;
    unsigned profiles_ = 0, statics_ = 0;   // MDB_dbi
    mutable MDB_txn* reader_ = nullptr;     // reset between lookups, renewed for each
};

} // namespace xpmip::lma
