#include "lma/journal.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

namespace xpmip::lma {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'X', 'P', 'M', 'I', 'P', 'J', 'N', 'L'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kHeaderSize = 24;
constexpr std::size_t kRecordHeader = 8;
constexpr std::uint32_t kMaxPayload = 1u << 20;
constexpr char kPut = 'P';
constexpr char kErase = 'E';

// ---- the payload codec: little-endian, every field in a fixed order -----------------------

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) { uint(v, 2); }
    void u32(std::uint32_t v) { uint(v, 4); }
    void u64(std::uint64_t v) { uint(v, 8); }
    void flag(bool v) { u8(v ? 1 : 0); }
    void bytes(std::string_view s) {
        u16(static_cast<std::uint16_t>(s.size()));
        out_.append(s);
    }
    template <std::size_t N>
    void raw(const std::array<std::uint8_t, N>& a) {
        out_.append(reinterpret_cast<const char*>(a.data()), N);
    }
    void address(const IpAddress& a) {
        if (const auto* v4 = std::get_if<Ipv4Address>(&a)) {
            u8(4);
            raw(v4->bytes);
        } else {
            u8(6);
            raw(std::get<Ipv6Address>(a).bytes);
        }
    }
    template <class T, class F>
    void optional(const std::optional<T>& v, F&& write) {
        flag(v.has_value());
        if (v) {
            write(*v);
        }
    }

private:
    void uint(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) {
            out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        }
    }
    std::string& out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    std::uint8_t u8(const char* field) { return static_cast<std::uint8_t>(uint(1, field)); }
    std::uint16_t u16(const char* field) { return static_cast<std::uint16_t>(uint(2, field)); }
    std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(uint(4, field)); }
    std::uint64_t u64(const char* field) { return uint(8, field); }
    bool flag(const char* field) {
        const auto v = u8(field);
        if (v > 1) {
            throw JournalError(fmt::format("{}: {} is not 0 or 1 (offset {})", field, v, at_ - 1));
        }
        return v == 1;
    }
    std::string bytes(const char* field) {
        const auto n = u16(field);
        need(n, field);
        std::string s(in_.substr(at_, n));
        at_ += n;
        return s;
    }
    template <std::size_t N>
    void raw(std::array<std::uint8_t, N>& a, const char* field) {
        need(N, field);
        std::memcpy(a.data(), in_.data() + at_, N);
        at_ += N;
    }
    IpAddress address(const char* field) {
        const auto family = u8(field);
        if (family == 4) {
            Ipv4Address a;
            raw(a.bytes, field);
            return a;
        }
        if (family != 6) {
            throw JournalError(fmt::format("{}: address family {} is not 4 or 6 (offset {})", field, family, at_ - 1));
        }
        Ipv6Address a;
        raw(a.bytes, field);
        return a;
    }
    template <class F>
    auto optional(const char* field, F&& read) -> std::optional<decltype(read())> {
        if (!flag(field)) {
            return std::nullopt;
        }
        return read();
    }
    void end() const {
        if (at_ != in_.size()) {
            throw JournalError(fmt::format("{} octets after the last field (offset {})", in_.size() - at_, at_));
        }
    }

private:
    void need(std::size_t n, const char* field) const {
        if (in_.size() - at_ < n) {
            throw JournalError(fmt::format("{}: cut short at offset {} ({} of {} octets)", field, at_, in_.size() - at_, n));
        }
    }
    std::uint64_t uint(int n, const char* field) {
        need(static_cast<std::size_t>(n), field);
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) {
            v |= std::uint64_t{static_cast<std::uint8_t>(in_[at_ + i])} << (8 * i);
        }
        at_ += static_cast<std::size_t>(n);
        return v;
    }
    std::string_view in_;
    std::size_t at_ = 0;
};

dataplane::Encapsulation encapsulation(std::uint8_t v, const char* field) {
    switch (v) {
    case XPMIP_ENCAP_IPIP:
    case XPMIP_ENCAP_UDP:
    case XPMIP_ENCAP_GRE:
    case XPMIP_ENCAP_UDP_TLV_GRE:
        return static_cast<dataplane::Encapsulation>(v);
    default:
        throw JournalError(fmt::format("{}: {} is not an encapsulation", field, v));
    }
}

void write_binding(Writer& w, const MultipathBinding& b, bool with_freshness) {
    w.u8(b.bid);
    w.u8(b.label);
    w.u8(b.if_att);
    w.address(b.proxy_coa);
    w.address(b.lma_address);
    w.u32(b.ifindex);
    w.u16(with_freshness ? b.last_sequence : 0);
    w.optional(with_freshness ? b.last_timestamp : std::nullopt, [&](auto v) { w.u64(v); });
    w.flag(b.gre);
    w.optional(b.key_downlink, [&](auto v) { w.u32(v); });
    w.optional(b.key_uplink, [&](auto v) { w.u32(v); });
    w.flag(b.tlv_header);
    w.u8(static_cast<std::uint8_t>(b.encap));
    w.flag(b.path_up);
    w.u8(b.weight);
}

MultipathBinding read_binding(Reader& r) {
    MultipathBinding b;
    b.bid = r.u8("binding.bid");
    b.label = r.u8("binding.label");
    b.if_att = r.u8("binding.if_att");
    b.proxy_coa = r.address("binding.proxy_coa");
    b.lma_address = r.address("binding.lma_address");
    b.ifindex = r.u32("binding.ifindex");
    b.last_sequence = r.u16("binding.last_sequence");
    b.last_timestamp = r.optional("binding.last_timestamp", [&] { return r.u64("binding.last_timestamp"); });
    b.gre = r.flag("binding.gre");
    b.key_downlink = r.optional("binding.key_downlink", [&] { return r.u32("binding.key_downlink"); });
    b.key_uplink = r.optional("binding.key_uplink", [&] { return r.u32("binding.key_uplink"); });
    b.tlv_header = r.flag("binding.tlv_header");
    b.encap = encapsulation(r.u8("binding.encap"), "binding.encap");
    b.path_up = r.flag("binding.path_up");
    b.weight = r.u8("binding.weight");
    return b;
}

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
            throw JournalError(fmt::format("{}: write failed: {}", path.string(), std::strerror(errno)));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string read_file(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        throw JournalError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
    }
    std::string out;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw JournalError(fmt::format("{}: read failed: {}", path.string(), std::strerror(errno)));
        }
        if (n == 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// One file's records into `state`; its generation, and a line saying what was lost if its
// tail could not be read.
struct FileReplay {
    std::uint64_t generation = 0;
    std::size_t records = 0;
    std::optional<std::string> loss;
};

FileReplay replay(const fs::path& path, std::map<std::string, JournalRecord>& state) {
    FileReplay out;
    const std::string data = read_file(path);
    if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
        out.loss = fmt::format("{}: not a journal file ({} octets, no header): all of it ignored", path.string(),
                               data.size());
        return out;
    }
    Reader h(std::string_view(data).substr(sizeof kMagic, kHeaderSize - sizeof kMagic));
    const auto version = h.u32("version");
    h.u32("reserved");
    out.generation = h.u64("generation");
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
                const std::string_view payload = std::string_view(data).substr(at + kRecordHeader, len);
                if (crc_of(payload) != crc) {
                    why = "its CRC does not match";
                } else {
                    try {
                        if (payload[0] == kErase) {
                            Reader r(payload.substr(1));
                            const auto id = r.bytes("mn_id");
                            r.end();
                            state.erase(id);
                        } else if (payload[0] == kPut) {
                            auto rec = decode_entry(payload.substr(1));
                            std::string id = rec.mn_id;
                            state.insert_or_assign(std::move(id), std::move(rec));
                        } else {
                            throw JournalError(fmt::format("kind {} is not P or E", int(payload[0])));
                        }
                    } catch (const JournalError& ex) {
                        why = ex.what();
                    }
                }
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
        throw JournalError(fmt::format("{}: fsync failed: {}", name_for_errors.string(), std::strerror(errno)));
    }
}

std::string framed(char kind, std::string_view payload) {
    std::string body(1, kind);
    body.append(payload);
    std::string out;
    Writer w(out);
    w.u32(static_cast<std::uint32_t>(body.size()));
    w.u32(crc_of(body));
    out += body;
    return out;
}

} // namespace

std::string encode_entry(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e,
                         bool with_freshness) {
    std::string out;
    out.reserve(160);
    encode_entry_into(out, mn_id, peer, e, with_freshness);
    return out;
}

void encode_entry_into(std::string& out, const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e,
                       bool with_freshness) {
    Writer w(out);
    w.bytes(mn_id);
    w.bytes(peer);
    w.u32(e.session_id);
    w.u32(e.realm);
    w.address(e.proxy_coa);
    w.address(e.lma_address);
    w.u8(e.transport == wire::Transport::Ipv6 ? 6 : 4);
    w.u16(e.mag_port);
    w.optional(e.hnp, [&](const Ipv6Prefix& p) {
        w.raw(p.address.bytes);
        w.u8(p.length);
    });
    w.optional(e.ipv4_hoa, [&](const Ipv4Address& a) { w.raw(a.bytes); });
    w.u8(e.ipv4_hoa_length);
    w.u8(e.att);
    w.u8(e.handoff_indicator);
    w.bytes(e.mn_ll_id);
    w.optional(e.link_local, [&](const Ipv6Address& a) { w.raw(a.bytes); });
    w.u32(static_cast<std::uint32_t>(e.lifetime.count()));
    w.u16(with_freshness ? e.last_sequence : 0);
    w.optional(with_freshness ? e.last_timestamp : std::nullopt, [&](auto v) { w.u64(v); });
    w.flag(e.deregistered);
    w.flag(e.gre);
    w.optional(e.key_downlink, [&](auto v) { w.u32(v); });
    w.optional(e.key_uplink, [&](auto v) { w.u32(v); });
    w.flag(e.tlv_header);
    w.flag(e.force_udp);
    w.flag(e.in_dataplane);
    w.flag(e.serves_hnp);
    w.flag(e.serves_hoa);
    w.flag(e.gre_keys);
    w.u8(static_cast<std::uint8_t>(e.encap));
    w.u8(e.policy);
    w.flag(static_cast<bool>(e.multipath));
    if (e.multipath) {
        w.bytes(e.multipath->mag_id);
        w.u8(static_cast<std::uint8_t>(e.multipath->bindings.size()));
        for (const auto& [bid, b] : e.multipath->bindings) {
            write_binding(w, b, with_freshness);
        }
    }
}

JournalRecord decode_entry(std::string_view payload) {
    Reader r(payload);
    JournalRecord rec;
    BindingCacheEntry& e = rec.entry;
    rec.mn_id = r.bytes("mn_id");
    rec.peer = r.bytes("peer");
    e.session_id = r.u32("session_id");
    e.realm = r.u32("realm");
    e.proxy_coa = r.address("proxy_coa");
    e.lma_address = r.address("lma_address");
    const auto transport = r.u8("transport");
    if (transport != 4 && transport != 6) {
        throw JournalError(fmt::format("transport: {} is not 4 or 6", transport));
    }
    e.transport = transport == 6 ? wire::Transport::Ipv6 : wire::Transport::Ipv4Udp;
    e.mag_port = r.u16("mag_port");
    e.hnp = r.optional("hnp", [&] {
        Ipv6Prefix p;
        r.raw(p.address.bytes, "hnp");
        p.length = r.u8("hnp.length");
        return p;
    });
    e.ipv4_hoa = r.optional("ipv4_hoa", [&] {
        Ipv4Address a;
        r.raw(a.bytes, "ipv4_hoa");
        return a;
    });
    e.ipv4_hoa_length = r.u8("ipv4_hoa_length");
    e.att = r.u8("att");
    e.handoff_indicator = r.u8("handoff_indicator");
    e.mn_ll_id = r.bytes("mn_ll_id");
    e.link_local = r.optional("link_local", [&] {
        Ipv6Address a;
        r.raw(a.bytes, "link_local");
        return a;
    });
    e.lifetime = std::chrono::seconds(r.u32("lifetime"));
    e.last_sequence = r.u16("last_sequence");
    e.last_timestamp = r.optional("last_timestamp", [&] { return r.u64("last_timestamp"); });
    e.deregistered = r.flag("deregistered");
    e.gre = r.flag("gre");
    e.key_downlink = r.optional("key_downlink", [&] { return r.u32("key_downlink"); });
    e.key_uplink = r.optional("key_uplink", [&] { return r.u32("key_uplink"); });
    e.tlv_header = r.flag("tlv_header");
    e.force_udp = r.flag("force_udp");
    e.in_dataplane = r.flag("in_dataplane");
    e.serves_hnp = r.flag("serves_hnp");
    e.serves_hoa = r.flag("serves_hoa");
    e.gre_keys = r.flag("gre_keys");
    e.encap = encapsulation(r.u8("encap"), "encap");
    e.policy = r.u8("policy");
    if (r.flag("multipath")) {
        MultipathState& mp = e.multipath.get_or_emplace();
        mp.mag_id = r.bytes("mag_id");
        const auto n = r.u8("bindings");
        for (unsigned i = 0; i < n; ++i) {
            MultipathBinding b = read_binding(r);
            const auto bid = b.bid;
            if (!mp.bindings.emplace(bid, std::move(b)).second) {
                throw JournalError(fmt::format("binding {}: Binding-Id {} twice", i, bid));
            }
        }
    }
    r.end();
    return rec;
}

BindingJournal::BindingJournal(fs::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_)) {
        throw JournalError(fmt::format("state directory {}: cannot create it: {}", dir_.string(), ec.message()));
    }
    // A snapshot a killed compaction left half-written is nothing (and a child of the previous
    // process still writing one just fails its rename: the journals it would replace stay).
    for (const auto& f : fs::directory_iterator(dir_)) {
        if (f.path().filename().string().rfind("snapshot.tmp", 0) == 0) {
            std::error_code ignored;
            fs::remove(f.path(), ignored);
        }
    }
    std::map<std::string, JournalRecord> state;
    std::uint64_t from = 0;   // the snapshot's generation: older journals are in it
    if (fs::exists(dir_ / "snapshot")) {
        const auto snap = replay(dir_ / "snapshot", state);
        from = snap.generation;
        recovery_.records += snap.records;
        if (snap.loss) {
            recovery_.losses.push_back(*snap.loss);
        }
    }
    std::uint64_t last = std::max<std::uint64_t>(from, 1);
    for (const auto& [g, path] : journal_files(dir_)) {
        if (g < from) {
            continue;   // (left by a compaction that ended before it could remove it)
        }
        const auto r = replay(path, state);
        recovery_.records += r.records;
        if (r.loss) {
            recovery_.losses.push_back(*r.loss);
        }
        last = std::max(last, g);
    }
    for (auto& [id, rec] : state) {
        recovery_.entries.push_back(std::move(rec));
    }
    live_at_snapshot_ = recovery_.entries.size();
    // A new generation: whatever a crashed write left at the old one's tail stays behind it.
    open_generation(recovery_.records == 0 && recovery_.losses.empty() ? last : last + 1);
    recovery_.generation = generation_;
}

BindingJournal::~BindingJournal() {
    try {
        flush();
    } catch (const std::exception& ex) {
        spdlog::error("binding journal: {}", ex.what());
    }
    if (child_ > 0) {
        int status = 0;
        ::waitpid(child_, &status, 0);   // its snapshot is as good as the log: let it finish
    }
}

void BindingJournal::open_generation(std::uint64_t g) {
    const fs::path path = journal_path(dir_, g);
    const bool fresh = !fs::exists(path) || fs::file_size(path) == 0;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) {
        throw JournalError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
    }
    if (fresh) {
        write_all(fd.get(), header(g), path);
    }
    log_ = std::move(fd);
    log_path_ = path;
    generation_ = g;
}

void BindingJournal::put(const std::string& mn_id, const std::string& peer, const BindingCacheEntry& e) {
    // Encoded in place after a header filled in once the payload's length is known (no copies:
    // this runs once per registration that changes something).
    const std::size_t at = pending_.size();
    pending_.append(kRecordHeader, '\0');
    pending_.push_back(kPut);
    encode_entry_into(pending_, mn_id, peer, e, true);
    const std::string_view body = std::string_view(pending_).substr(at + kRecordHeader);
    std::string h;
    Writer w(h);
    w.u32(static_cast<std::uint32_t>(body.size()));
    w.u32(crc_of(body));
    pending_.replace(at, kRecordHeader, h);
    ++since_snapshot_;
}

void BindingJournal::erase(const std::string& mn_id) {
    std::string payload;
    Writer(payload).bytes(mn_id);
    pending_ += framed(kErase, payload);
    ++since_snapshot_;
}

void BindingJournal::flush() {
    if (pending_.empty()) {
        return;
    }
    write_all(log_.get(), pending_, log_path_);
    pending_.clear();
}

bool BindingJournal::wants_compaction() const {
    return !compacting() && since_snapshot_ >= threshold_ && since_snapshot_ >= live_at_snapshot_;
}

void BindingJournal::compact(const BindingCache& cache) {
    flush();
    const std::uint64_t next = generation_ + 1;
    open_generation(next);   // from here on the parent appends to the next generation
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw JournalError(fmt::format("compaction: fork failed: {}", std::strerror(errno)));
    }
    if (pid == 0) {
        // The child: the cache as it was at the fork, into the snapshot of generation `next`.
        // Nothing here logs or touches the data plane; glibc's malloc is fork-safe.
        int code = 0;
        // Out of the event loop's way: any CPU (the agent may be pinned to one), lowest priority.
        cpu_set_t all;
        CPU_ZERO(&all);
        for (long c = 0; c < ::sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; ++c) {
            CPU_SET(static_cast<int>(c), &all);
        }
        (void)::sched_setaffinity(0, sizeof all, &all);
        (void)::nice(19);
        try {
            const fs::path tmp = dir_ / fmt::format("snapshot.tmp.{}", ::getpid());
            UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
            if (!fd) {
                ::_exit(2);
            }
            std::string buf = header(next);
            for (const auto& [id, e] : cache.entries()) {
                buf += framed(kPut, encode_entry(id, cache.peer_name(e), e));
                if (buf.size() >= (1u << 20)) {
                    write_all(fd.get(), buf, tmp);
                    buf.clear();
                }
            }
            write_all(fd.get(), buf, tmp);
            if (::fsync(fd.get()) != 0) {
                ::_exit(3);
            }
            fd.reset();
            fs::rename(tmp, dir_ / "snapshot");
            fsync_path(dir_, dir_);
        } catch (...) {
            code = 4;
        }
        ::_exit(code);
    }
    child_ = pid;
    child_generation_ = next;
    live_at_snapshot_ = cache.size();
    since_snapshot_ = 0;
}

void BindingJournal::poll() {
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
        spdlog::error("binding journal {}: the compaction to generation {} failed (status {}); the journals it "
                      "would have replaced stay", dir_.string(), child_generation_, status);
        return;
    }
    ++compactions_;
    for (const auto& [g, path] : journal_files(dir_)) {
        if (g < child_generation_) {
            std::error_code ec;
            fs::remove(path, ec);
        }
    }
    spdlog::info("binding journal {}: snapshot of generation {} written ({} entries)", dir_.string(),
                 child_generation_, live_at_snapshot_);
}

} // namespace xpmip::lma
