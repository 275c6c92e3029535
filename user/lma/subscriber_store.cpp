#include "lma/subscriber_store.hpp"

#include <fmt/format.h>
#include <lmdb.h>

#include <cstring>

namespace xpmip::lma {

namespace {

constexpr std::uint8_t kRecordVersion = 1;
constexpr std::size_t kRecordSize = 29;
// Virtual address space only: the file grows as profiles are written. 16 GiB is ~150 M profiles.
constexpr std::size_t kMapSize = std::size_t{16} << 30;

enum Flags : std::uint8_t {
    kIpv4 = 1, kIpv6 = 2, kMultipath = 4, kHasHoa = 8, kHasHnp = 16, kHasGre = 32, kHasTlv = 64, kHasUdp = 128,
};
enum Values : std::uint8_t { kTlv = 1, kUdp = 2 };

void check(int rc, const std::string& path, const char* what) {
    if (rc != MDB_SUCCESS) {
        throw std::runtime_error(fmt::format("subscriber store {}: {}: {}", path, what, mdb_strerror(rc)));
    }
}

MDB_val val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view view(const MDB_val& v) {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// The statics table's keys: realm (4 octets, big-endian), family (4 or 6), the address (and for a
// prefix its length). A key maps to the MN-ID holding it.
std::string realm_key(std::uint32_t realm, char family) {
    std::string k(5, '\0');
    for (int i = 0; i < 4; ++i) {
        k[static_cast<std::size_t>(i)] = static_cast<char>(realm >> (24 - 8 * i));
    }
    k[4] = family;
    return k;
}

std::string static_key(std::uint32_t realm, const Ipv4Address& a) {
    return realm_key(realm, 4) + std::string(a.bytes.begin(), a.bytes.end());
}

std::string static_key(std::uint32_t realm, const Ipv6Prefix& p) {
    return realm_key(realm, 6) + std::string(p.address.bytes.begin(), p.address.bytes.end()) +
           static_cast<char>(p.length);
}

} // namespace

void check_subscriber(const MobileNodeProfile& m, const LmaConfig& c) {
    if (m.id.empty() || m.id.size() > 255) {
        throw SubscriberError("id", "must be 1..255 octets (an NAI, RFC 4283)");
    }
    const Realm* realm = c.realm(m.realm);
    if (!realm) {
        throw SubscriberError("realm", fmt::format("realm {} is not defined in realms", m.realm));
    }
    if (!m.ipv4 && !m.ipv6) {
        throw SubscriberError("ipv4", "is authorized for neither IPv4 nor IPv6");
    }
    if (m.ipv4 && !m.ipv4_home_address && !realm->ipv4_pool) {
        throw SubscriberError("ipv4", fmt::format("realm {} has no ipv4_pool: give an ipv4_home_address or ipv4 false",
                                                  m.realm));
    }
    if (m.ipv6 && !m.home_network_prefix && !realm->ipv6_pool) {
        throw SubscriberError("ipv6", fmt::format("realm {} has no ipv6_pool: give a home_network_prefix or ipv6 false",
                                                  m.realm));
    }
    if (m.ipv4_home_address && realm->ipv4_default_router && *m.ipv4_home_address == *realm->ipv4_default_router) {
        throw SubscriberError("ipv4_home_address", fmt::format("{} is realm {}'s default router",
                                                               m.ipv4_home_address->to_string(), m.realm));
    }
    if (c.listed_mobile_node(m.id)) {
        throw SubscriberError("id", fmt::format("'{}' is in the configuration's mobile_nodes, which take precedence: "
                                                "remove it there first", m.id));
    }
}

std::string encode_subscriber(const MobileNodeProfile& m) {
    std::string r(kRecordSize, '\0');
    auto* p = reinterpret_cast<std::uint8_t*>(r.data());
    p[0] = kRecordVersion;
    p[1] = static_cast<std::uint8_t>((m.ipv4 ? kIpv4 : 0) | (m.ipv6 ? kIpv6 : 0) | (m.multipath ? kMultipath : 0) |
                                     (m.ipv4_home_address ? kHasHoa : 0) | (m.home_network_prefix ? kHasHnp : 0) |
                                     (m.policy.gre ? kHasGre : 0) | (m.policy.tlv_header ? kHasTlv : 0) |
                                     (m.policy.udp ? kHasUdp : 0));
    p[2] = static_cast<std::uint8_t>((m.policy.tlv_header.value_or(false) ? kTlv : 0) |
                                     (m.policy.udp.value_or(false) ? kUdp : 0));
    p[3] = m.policy.gre ? static_cast<std::uint8_t>(*m.policy.gre) : 0;
    std::memcpy(p + 4, &m.realm, 4);
    if (m.ipv4_home_address) {
        std::memcpy(p + 8, m.ipv4_home_address->bytes.data(), 4);
    }
    if (m.home_network_prefix) {
        std::memcpy(p + 12, m.home_network_prefix->address.bytes.data(), 16);
        p[28] = m.home_network_prefix->length;
    }
    return r;
}

void decode_subscriber(std::string_view record, MobileNodeProfile& m) {
    if (record.size() != kRecordSize || static_cast<std::uint8_t>(record[0]) != kRecordVersion) {
        throw std::runtime_error(fmt::format("subscriber record of {} octets, version {}: this agent reads version {} "
                                             "({} octets)", record.size(),
                                             record.empty() ? 0 : static_cast<unsigned>(record[0]), kRecordVersion,
                                             kRecordSize));
    }
    const auto* p = reinterpret_cast<const std::uint8_t*>(record.data());
    m.ipv4 = p[1] & kIpv4;
    m.ipv6 = p[1] & kIpv6;
    m.multipath = p[1] & kMultipath;
    m.policy.gre = (p[1] & kHasGre) ? std::optional(static_cast<GrePolicy>(p[3])) : std::nullopt;
    m.policy.tlv_header = (p[1] & kHasTlv) ? std::optional<bool>(p[2] & kTlv) : std::nullopt;
    m.policy.udp = (p[1] & kHasUdp) ? std::optional<bool>(p[2] & kUdp) : std::nullopt;
    std::memcpy(&m.realm, p + 4, 4);
    m.ipv4_home_address.reset();
    if (p[1] & kHasHoa) {
        m.ipv4_home_address.emplace();
        std::memcpy(m.ipv4_home_address->bytes.data(), p + 8, 4);
    }
    m.home_network_prefix.reset();
    if (p[1] & kHasHnp) {
        m.home_network_prefix.emplace();
        std::memcpy(m.home_network_prefix->address.bytes.data(), p + 12, 16);
        m.home_network_prefix->length = p[28];
    }
}

SubscriberStore::SubscriberStore(const std::string& path) : path_(path) {
    check(mdb_env_create(&env_), path_, "create");
    try {
        check(mdb_env_set_maxdbs(env_, 2), path_, "set_maxdbs");
        check(mdb_env_set_mapsize(env_, kMapSize), path_, "set_mapsize");
        check(mdb_env_open(env_, path_.c_str(), MDB_NOSUBDIR, 0640), path_, "open");
        MDB_txn* txn = nullptr;
        check(mdb_txn_begin(env_, nullptr, 0, &txn), path_, "begin");
        int rc = mdb_dbi_open(txn, "profiles", MDB_CREATE, &profiles_);
        if (rc == MDB_SUCCESS) {
            rc = mdb_dbi_open(txn, "statics", MDB_CREATE, &statics_);
        }
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            check(rc, path_, "open its tables");
        }
        check(mdb_txn_commit(txn), path_, "commit");
        check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &reader_), path_, "begin a read transaction");
        mdb_txn_reset(reader_);
    } catch (...) {
        mdb_env_close(env_);
        throw;
    }
}

SubscriberStore::~SubscriberStore() {
    if (reader_) {
        mdb_txn_abort(reader_);
    }
    mdb_env_close(env_);
}

bool SubscriberStore::find(std::string_view id, MobileNodeProfile& out) const {
    // A read transaction per lookup: it sees the last committed write, and holding none between
    // lookups lets writers reuse freed pages.
    check(mdb_txn_renew(reader_), path_, "renew a read transaction");
    MDB_val k = val(id), v{};
    const int rc = mdb_get(reader_, profiles_, &k, &v);
    try {
        if (rc == MDB_SUCCESS) {
            decode_subscriber(view(v), out);
        }
    } catch (...) {
        mdb_txn_reset(reader_);
        throw;
    }
    mdb_txn_reset(reader_);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        check(rc, path_, "look a profile up");
    }
    return rc == MDB_SUCCESS;
}

std::optional<MobileNodeProfile> SubscriberStore::get(std::string_view id) const {
    MobileNodeProfile m;
    if (!find(id, m)) {
        return std::nullopt;
    }
    m.id = std::string(id);
    return m;
}

std::uint64_t SubscriberStore::generation() const {
    MDB_envinfo info{};
    check(mdb_env_info(env_, &info), path_, "env_info");
    return info.me_last_txnid;
}

std::size_t SubscriberStore::size() const {
    check(mdb_txn_renew(reader_), path_, "renew a read transaction");
    MDB_stat st{};
    const int rc = mdb_stat(reader_, profiles_, &st);
    mdb_txn_reset(reader_);
    check(rc, path_, "stat");
    return st.ms_entries;
}

namespace {

// A cursor over one table in `txn`, closed with it.
class Cursor {
public:
    Cursor(MDB_txn* txn, unsigned dbi, const std::string& path) { check(mdb_cursor_open(txn, dbi, &c_), path, "cursor"); }
    ~Cursor() { mdb_cursor_close(c_); }
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    int get(MDB_val& k, MDB_val& v, MDB_cursor_op op) { return mdb_cursor_get(c_, &k, &v, op); }

private:
    MDB_cursor* c_ = nullptr;
};

// Runs `fn` inside the reader transaction, which is reset whatever happens.
template <typename Fn>
void with_reader(MDB_txn* reader, const std::string& path, Fn&& fn) {
    check(mdb_txn_renew(reader), path, "renew a read transaction");
    try {
        fn();
    } catch (...) {
        mdb_txn_reset(reader);
        throw;
    }
    mdb_txn_reset(reader);
}

} // namespace

std::vector<MobileNodeProfile> SubscriberStore::page(std::string_view after, std::size_t limit) const {
    std::vector<MobileNodeProfile> out;
    with_reader(reader_, path_, [&] {
        Cursor cur(reader_, profiles_, path_);
        MDB_val k = val(after), v{};
        int rc = after.empty() ? cur.get(k, v, MDB_FIRST) : cur.get(k, v, MDB_SET_RANGE);
        if (rc == MDB_SUCCESS && !after.empty() && view(k) == after) {
            rc = cur.get(k, v, MDB_NEXT);
        }
        for (; rc == MDB_SUCCESS && out.size() < limit; rc = cur.get(k, v, MDB_NEXT)) {
            MobileNodeProfile m;
            decode_subscriber(view(v), m);
            m.id = std::string(view(k));
            out.push_back(std::move(m));
        }
    });
    return out;
}

bool SubscriberStore::holds_static_key(const std::string& key) const {
    bool found = false;
    with_reader(reader_, path_, [&] {
        MDB_val k = val(key), v{};
        found = mdb_get(reader_, statics_, &k, &v) == MDB_SUCCESS;
    });
    return found;
}

bool SubscriberStore::holds_static(std::uint32_t realm, const Ipv4Address& a) const {
    return holds_static_key(static_key(realm, a));
}

bool SubscriberStore::holds_static(std::uint32_t realm, const Ipv6Prefix& p) const {
    return holds_static_key(static_key(realm, p));
}

void SubscriberStore::for_each_static(const std::function<void(const MobileNodeProfile&)>& fn) const {
    with_reader(reader_, path_, [&] {
        Cursor cur(reader_, statics_, path_);
        MDB_val k{}, v{};
        for (int rc = cur.get(k, v, MDB_FIRST); rc == MDB_SUCCESS; rc = cur.get(k, v, MDB_NEXT)) {
            MDB_val pk = v, pv{};
            if (mdb_get(reader_, profiles_, &pk, &pv) == MDB_SUCCESS) {
                MobileNodeProfile m;
                decode_subscriber(view(pv), m);
                m.id = std::string(view(v));
                fn(m);
            }
        }
    });
}

SubscriberStore::Writer::Writer(SubscriberStore& store) : store_(store) {
    check(mdb_txn_begin(store_.env_, nullptr, 0, &txn_), store_.path_, "begin a write transaction");
}

SubscriberStore::Writer::~Writer() {
    if (txn_) {
        mdb_txn_abort(txn_);
    }
}

void SubscriberStore::Writer::claim_static(const MobileNodeProfile& m) {
    auto claim = [&](const std::string& key, const char* field, const std::string& text) {
        MDB_val k = val(key), v = val(m.id);
        const int rc = mdb_put(txn_, store_.statics_, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST && view(v) != m.id) {
            throw SubscriberError(field, fmt::format("{} is already mobile node '{}''s in realm {}", text, view(v),
                                                     m.realm));
        }
        if (rc != MDB_KEYEXIST) {
            check(rc, store_.path_, "write a static address");
        }
    };
    if (m.ipv4_home_address) {
        claim(static_key(m.realm, *m.ipv4_home_address), "ipv4_home_address", m.ipv4_home_address->to_string());
    }
    if (m.home_network_prefix) {
        claim(static_key(m.realm, *m.home_network_prefix), "home_network_prefix", m.home_network_prefix->to_string());
    }
}

void SubscriberStore::Writer::release_static(std::string_view id, const MobileNodeProfile& old) {
    auto release = [&](const std::string& key) {
        MDB_val k = val(key), v{};
        if (mdb_get(txn_, store_.statics_, &k, &v) == MDB_SUCCESS && view(v) == id) {
            check(mdb_del(txn_, store_.statics_, &k, nullptr), store_.path_, "delete a static address");
        }
    };
    if (old.ipv4_home_address) {
        release(static_key(old.realm, *old.ipv4_home_address));
    }
    if (old.home_network_prefix) {
        release(static_key(old.realm, *old.home_network_prefix));
    }
}

void SubscriberStore::Writer::put(const MobileNodeProfile& m, bool append) {
    const std::string record = encode_subscriber(m);
    MDB_val k = val(m.id), v{};
    if (!append && mdb_get(txn_, store_.profiles_, &k, &v) == MDB_SUCCESS) {
        MobileNodeProfile old;
        decode_subscriber(view(v), old);
        release_static(m.id, old);
    }
    claim_static(m);
    k = val(m.id);
    v = val(record);
    check(mdb_put(txn_, store_.profiles_, &k, &v, append ? MDB_APPEND : 0), store_.path_,
          append ? "append a profile (ids must ascend)" : "write a profile");
}

bool SubscriberStore::Writer::remove(std::string_view id) {
    MDB_val k = val(id), v{};
    if (mdb_get(txn_, store_.profiles_, &k, &v) != MDB_SUCCESS) {
        return false;
    }
    MobileNodeProfile old;
    decode_subscriber(view(v), old);
    release_static(id, old);
    k = val(id);
    check(mdb_del(txn_, store_.profiles_, &k, nullptr), store_.path_, "delete a profile");
    return true;
}

void SubscriberStore::Writer::clear() {
    check(mdb_drop(txn_, store_.profiles_, 0), store_.path_, "empty the profiles");
    check(mdb_drop(txn_, store_.statics_, 0), store_.path_, "empty the static addresses");
}

void SubscriberStore::Writer::commit() {
    const int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    check(rc, store_.path_, "commit");
}

} // namespace xpmip::lma
