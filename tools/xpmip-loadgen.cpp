// xpmip-loadgen: a PBU load generator for benchmarking an LMA (bench/registrations.py drives it).
//
//   xpmip-loadgen register --lma ADDR --mag ADDR [--mag ADDR]... --count N [--window W] ...
//       Acts as one MAG per --mag address and registers N mobile nodes (MN i: NAI from --nai with
//       {} replaced by i, behind MAG i mod #MAGs) at the LMA, keeping W PBUs outstanding. Every
//       PBA is decoded with xpmip's codec and checked against the PBU it answers: the sequence
//       number of an outstanding PBU of that MAG, the MN-ID echoed, and for status 0 a lifetime
//       and what was asked for (home network prefix, IPv4 home address, uplink GRE key).
//       Prints one JSON object: accepted PBAs per second, statuses by code, time-outs, round
//       trip times, the progress over time (with --watch-pid, with the LMA's CPU time).
//   xpmip-loadgen echo --listen ADDR
//       A stand-in LMA without registration logic: the same socket (raw MH for IPv6, UDP 5436
//       for IPv4) and codec, answering every PBU with the PBA an LMA would send (status 0, the
//       same options), until SIGINT/SIGTERM; then prints {"answered": N}. It measures how fast
//       the generator and the sockets go when the LMA costs (almost) nothing.
//
// The transport follows the LMA's address: IPv4 -> IPv4/UDP 5436 (RFC 5844, MH checksum 0),
// IPv6 -> the Mobility Header over IPv6 on a raw socket (the kernel fills the checksum).
// Errors go to stderr with exit status 1.
#include "wire/error.hpp"
#include "wire/messages.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using nlohmann::json;
using namespace xpmip;
using namespace xpmip::wire;

namespace {

using Clock = std::chrono::steady_clock;

struct LoadgenError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void fail_errno(const std::string& what) {
    throw LoadgenError(fmt::format("{}: {}", what, std::strerror(errno)));
}

constexpr std::size_t kBatch = 64;          // datagrams per recvmmsg
constexpr std::size_t kMaxDatagram = 2048;  // a PBA is far smaller
constexpr int kSocketBuffer = 8 << 20;      // the generator's own buffers never drop

// A socket address of either family.
struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

SockAddr sockaddr_of(const IpAddress& a, std::uint16_t port) {
    SockAddr s;
    if (const auto* v4 = std::get_if<Ipv4Address>(&a)) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&s.ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        std::memcpy(&sin->sin_addr, v4->bytes.data(), 4);
        s.len = sizeof(sockaddr_in);
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&s.ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = 0;   // raw sockets: the port field holds nothing
        std::memcpy(&sin6->sin6_addr, std::get<Ipv6Address>(a).bytes.data(), 16);
        s.len = sizeof(sockaddr_in6);
    }
    return s;
}

// The signaling socket of one family: UDP (to/from 5436 on the LMA's side) or raw MH.
UniqueFd open_socket(const IpAddress& local, std::uint16_t local_port) {
    const bool v4 = is_ipv4(local);
    UniqueFd fd(v4 ? socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                   : socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, kIpProtoMobilityHeader));
    if (!fd) {
        fail_errno(v4 ? "UDP socket" : "raw IPv6 socket for the Mobility Header (protocol 135; root?)");
    }
    for (int opt : {SO_RCVBUFFORCE, SO_SNDBUFFORCE}) {
        setsockopt(fd.get(), SOL_SOCKET, opt, &kSocketBuffer, sizeof(kSocketBuffer));   // best effort
    }
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const SockAddr a = sockaddr_of(local, local_port);
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) {
        fail_errno(fmt::format("bind {}{}", to_string(local), v4 ? fmt::format(":{}", local_port) : ""));
    }
    return fd;
}

IpAddress parse_address(const std::string& option, const std::string& text) {
    try {
        return parse_ip_address(text);
    } catch (const std::exception&) {
        throw LoadgenError(fmt::format("{}: '{}' is not an IPv4 or IPv6 address", option, text));
    }
}

// Receives up to kBatch datagrams at once; the buffers stay valid until the next call.
class BatchReceiver {
public:
    BatchReceiver() : bufs_(kBatch * kMaxDatagram) {}

    // Datagrams waiting on `fd` (none when none is waiting), with their sources.
    std::size_t receive(int fd) {
        for (std::size_t i = 0; i < kBatch; ++i) {
            iov_[i] = {bufs_.data() + i * kMaxDatagram, kMaxDatagram};
            hdrs_[i] = {};
            hdrs_[i].msg_hdr.msg_iov = &iov_[i];
            hdrs_[i].msg_hdr.msg_iovlen = 1;
            hdrs_[i].msg_hdr.msg_name = &from_[i];
            hdrs_[i].msg_hdr.msg_namelen = sizeof(from_[i]);
        }
        const int n = recvmmsg(fd, hdrs_.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return 0;
            }
            fail_errno("recvmmsg");
        }
        return static_cast<std::size_t>(n);
    }
    ByteView data(std::size_t i) const { return {bufs_.data() + i * kMaxDatagram, hdrs_[i].msg_len}; }
    const sockaddr_storage& from(std::size_t i) const { return from_[i]; }
    socklen_t from_len(std::size_t i) const { return hdrs_[i].msg_hdr.msg_namelen; }

private:
    std::vector<std::uint8_t> bufs_;
    std::array<iovec, kBatch> iov_{};
    std::array<mmsghdr, kBatch> hdrs_{};
    std::array<sockaddr_storage, kBatch> from_{};
};

// ---------------------------------------------------------------------------------------------
// register

struct RegisterOptions {
    std::string lma;
    std::vector<std::string> mags;
    std::uint64_t count = 0;
    std::uint64_t first = 0;
    std::string nai = "mn{}@bench.example";
    unsigned window = 64;
    double timeout = 5.0;
    unsigned lifetime = 3600;
    bool hnp = true;
    bool ipv4 = true;
    bool gre_keys = true;
    bool timestamps = false;
    std::uint32_t key_base = 0x10000000;
    double progress_interval = 1.0;
    int watch_pid = 0;   // sample this process's CPU time with the progress (0: none)
    bool malformed = false;   // each PBU's MN-ID option with the reserved Subtype 0: no answer
    std::string accepted_out;   // a JSON line per accepted MN: what it was given (empty: none)
    double rate = 0;            // PBUs per second at most (0: as fast as the window allows)
};

// What an accepted PBA gave the MN, as one JSON line (--accepted-out).
json accepted_line(const std::string& mn, const ProxyBindingAcknowledgement& pba) {
    json j{{"mn", mn}};
    if (const auto* h = pba.options.find<HomeNetworkPrefixOption>()) {
        j["hnp"] = fmt::format("{}/{}", h->prefix.to_string(), h->prefix_length);
    }
    if (const auto* r = pba.options.find<Ipv4HomeAddressReplyOption>()) {
        j["hoa"] = r->address.to_string();
    }
    if (const auto* g = pba.options.find<GreKeyOption>(); g && g->key) {
        j["key_uplink"] = *g->key;
    }
    return j;
}

// CPU time of a process so far, all its threads, user and system: the scheduler's count in
// /proc/PID/task/TID/schedstat (nanoseconds). The LMA runs in another network namespace, not in
// another PID namespace.
double cpu_seconds(int pid) {
    std::uint64_t ns = 0;
    const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream f(t.path() / "schedstat");
        std::uint64_t v = 0;
        if (f >> v) {
            ns += v;
        }
    }
    if (ec) {
        throw LoadgenError(fmt::format("--watch-pid {}: {}: {}", pid, tasks.string(), ec.message()));
    }
    return static_cast<double>(ns) / 1e9;
}

// One MAG: its socket toward the LMA and the PBUs it has outstanding, by sequence number.
struct Mag {
    IpAddress address;
    UniqueFd fd;
    std::uint16_t next_sequence = 1;
    struct Slot {
        bool busy = false;
        std::uint64_t mn = 0;        // the MN's index
        Clock::time_point sent{};
    };
    std::vector<Slot> slots = std::vector<Slot>(65536);
};

struct Outstanding {   // in send order, hence in deadline order
    std::size_t mag;
    std::uint16_t sequence;
    std::uint64_t mn;
};

struct Tally {
    std::uint64_t sent = 0, accepted = 0, timed_out = 0, malformed = 0, unmatched = 0, wrong_mn = 0,
                  incomplete = 0, send_errors = 0;
    std::map<int, std::uint64_t> statuses;   // every status received, 0 included
    std::vector<float> rtt_us;               // accepted PBAs only
};

std::string nai_of(const std::string& format, std::uint64_t i) {
    std::string out = format;
    const auto at = out.find("{}");
    return at == std::string::npos ? out : out.replace(at, 2, std::to_string(i));
}

ProxyBindingUpdate make_pbu(const RegisterOptions& o, std::uint64_t mn, std::uint16_t sequence) {
    ProxyBindingUpdate pbu;
    pbu.sequence = sequence;
    pbu.lifetime = static_cast<std::uint16_t>(o.lifetime / kLifetimeUnitSeconds);
    pbu.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, nai_of(o.nai, mn)});
    if (o.hnp) {
        pbu.options.add(HomeNetworkPrefixOption{});   // ::/0: assign one (RFC 5213 §6.9.1.1)
    }
    if (o.ipv4) {
        pbu.options.add(Ipv4HomeAddressRequestOption{});   // 0.0.0.0: assign one (RFC 5844 §3.3.1)
    }
    pbu.options.add(HandoffIndicatorOption{static_cast<std::uint8_t>(HandoffIndicator::NewInterface)});
    pbu.options.add(AccessTechnologyTypeOption{4});   // IEEE 802.11a/b/g
    if (o.timestamps) {
        pbu.options.add(TimestampOption{timestamp_now()});
    }
    if (o.gre_keys) {
        pbu.options.add(GreKeyOption{static_cast<std::uint32_t>(o.key_base + mn)});   // downlink key
    }
    return pbu;
}

// What an accepted PBA must carry for what the PBU asked.
bool complete(const RegisterOptions& o, const ProxyBindingAcknowledgement& pba) {
    if (pba.lifetime == 0) {
        return false;
    }
    if (o.hnp) {
        const auto* h = pba.options.find<HomeNetworkPrefixOption>();
        if (!h || h->prefix_length == 0 || h->prefix.is_unspecified()) {
            return false;
        }
    }
    if (o.ipv4) {
        const auto* r = pba.options.find<Ipv4HomeAddressReplyOption>();
        if (!r || r->status != ipv4_hoa_status::kSuccess || r->address.is_unspecified()) {
            return false;
        }
    }
    if (o.gre_keys) {
        const auto* g = pba.options.find<GreKeyOption>();
        if (!g || !g->key || *g->key == 0) {
            return false;
        }
    }
    return true;
}

double percentile(std::vector<float>& v, double p) {
    if (v.empty()) {
        return 0.0;
    }
    const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

int cmd_register(const RegisterOptions& o) {
    if (o.count == 0) {
        throw LoadgenError("--count: must be at least 1");
    }
    if (o.window == 0 || o.window > 32768) {
        throw LoadgenError(fmt::format("--window: {} is not in 1..32768", o.window));
    }
    if (o.mags.empty()) {
        throw LoadgenError("--mag: at least one MAG address is required");
    }
    if (o.nai.find("{}") == std::string::npos) {
        throw LoadgenError(fmt::format("--nai: '{}' has no {{}} for the MN's number", o.nai));
    }
    const IpAddress lma = parse_address("--lma", o.lma);
    const SockAddr to = sockaddr_of(lma, kUdpPortPmipControl);
    std::vector<Mag> mags(o.mags.size());
    for (std::size_t i = 0; i < o.mags.size(); ++i) {
        mags[i].address = parse_address("--mag", o.mags[i]);
        if (is_ipv4(mags[i].address) != is_ipv4(lma)) {
            throw LoadgenError(fmt::format("--mag: {} is not of the LMA's family ({})", o.mags[i], o.lma));
        }
        mags[i].fd = open_socket(mags[i].address, 0);
        // Connected: send() without an address, and only the LMA's datagrams come in.
        if (connect(mags[i].fd.get(), reinterpret_cast<const sockaddr*>(&to.ss), to.len) < 0) {
            fail_errno(fmt::format("connect {} to {}", o.mags[i], o.lma));
        }
    }

    Tally t;
    t.rtt_us.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(o.count, 1u << 24)));
    std::deque<Outstanding> outstanding;
    std::uint64_t next_mn = 0, in_flight = 0;
    const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout));
    const auto start = Clock::now();
    Clock::time_point last_answer = start;
    json timeline = json::array();
    auto next_progress = start;
    BatchReceiver rx;
    std::vector<pollfd> fds;
    for (const auto& m : mags) {
        fds.push_back({m.fd.get(), POLLIN, 0});
    }

    // [seconds since the start, accepted so far(, the watched process's CPU seconds)]
    auto sample = [&](Clock::time_point now) {
        json point = {std::chrono::duration<double>(now - start).count(), t.accepted};
        if (o.watch_pid > 0) {
            point.push_back(cpu_seconds(o.watch_pid));
        }
        return point;
    };

    std::unique_ptr<std::FILE, int (*)(std::FILE*)> accepted_out(nullptr, &std::fclose);
    if (!o.accepted_out.empty()) {
        accepted_out.reset(std::fopen(o.accepted_out.c_str(), "a"));
        if (!accepted_out) {
            throw LoadgenError(fmt::format("--accepted-out: cannot open {}: {}", o.accepted_out, std::strerror(errno)));
        }
    }
    auto handle = [&](std::size_t mi, ByteView data, Clock::time_point now) {
        MobilityMessage msg;
        try {
            msg = decode(data);
        } catch (const WireError&) {
            ++t.malformed;
            return;
        }
        const auto* pba = std::get_if<ProxyBindingAcknowledgement>(&msg);
        if (!pba) {
            ++t.malformed;
            return;
        }
        Mag::Slot& slot = mags[mi].slots[pba->sequence];
        if (!slot.busy) {
            ++t.unmatched;   // no PBU of this MAG with that sequence number is outstanding
            return;
        }
        const auto* id = pba->options.find<MobileNodeIdentifierOption>();
        if (!id || id->identifier != nai_of(o.nai, o.first + slot.mn)) {
            ++t.wrong_mn;    // the sequence number of another MN's PBU: left to time out
            return;
        }
        slot.busy = false;
        --in_flight;
        last_answer = now;
        ++t.statuses[pba->status];
        if (pba->status == static_cast<std::uint8_t>(Status::Accepted)) {
            if (complete(o, *pba)) {
                ++t.accepted;
                if (accepted_out) {
                    const auto line = accepted_line(id->identifier, *pba).dump() + "\n";
                    std::fputs(line.c_str(), accepted_out.get());
                    std::fflush(accepted_out.get());   // (read while this runs)
                }
                t.rtt_us.push_back(std::chrono::duration<float, std::micro>(now - slot.sent).count());
            } else {
                ++t.incomplete;
            }
        }
    };

    while (next_mn < o.count || in_flight > 0) {
        auto now = Clock::now();
        // Outstanding PBUs past their time: counted, their slots freed.
        while (!outstanding.empty()) {
            const auto& f = outstanding.front();
            Mag::Slot& slot = mags[f.mag].slots[f.sequence];
            if (slot.busy && slot.mn == f.mn) {
                if (now - slot.sent < timeout) {
                    break;
                }
                slot.busy = false;
                --in_flight;
                ++t.timed_out;
            }
            outstanding.pop_front();
        }
        // Fill the window (at --rate at most).
        auto paced = [&] {
            return o.rate <= 0 ||
                   static_cast<double>(next_mn) < o.rate * std::chrono::duration<double>(Clock::now() - start).count();
        };
        while (next_mn < o.count && in_flight < o.window && paced()) {
            const std::uint64_t mn = next_mn++;
            const std::size_t mi = mn % mags.size();
            Mag& m = mags[mi];
            const std::uint16_t seq = m.next_sequence++;
            if (m.slots[seq].busy) {
                throw LoadgenError(fmt::format("MAG {}: sequence number {} still outstanding after 65536 PBUs",
                                               o.mags[mi], seq));
            }
            Bytes mh = encode(make_pbu(o, o.first + mn, seq));
            if (o.malformed) {
                // MH header (6) and PBU fields (6), then the MN-ID option (type, length, subtype):
                // the receiver parses that far and finds Subtype 0, reserved (RFC 7330).
                mh.at(14) = 0;
                if (send(m.fd.get(), mh.data(), mh.size(), 0) < 0) {
                    ++t.send_errors;
                } else {
                    ++t.sent;
                }
                if (t.sent % o.window == 0) {
                    std::this_thread::sleep_for(std::chrono::microseconds(500));   // no answers to pace by
                }
                continue;
            }
            now = Clock::now();
            if (send(m.fd.get(), mh.data(), mh.size(), 0) < 0) {
                ++t.send_errors;   // e.g. ENOBUFS: this MN is not registered, counted apart
                continue;
            }
            ++t.sent;
            m.slots[seq] = {true, mn, now};
            ++in_flight;
            outstanding.push_back({mi, seq, mn});
        }
        if (now >= next_progress) {
            timeline.push_back(sample(now));
            next_progress += std::chrono::duration_cast<Clock::duration>(
                std::chrono::duration<double>(o.progress_interval));
        }
        if (in_flight == 0) {
            if (next_mn < o.count) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));   // (paced: the next PBU is not due)
            }
            continue;
        }
        // Wait for PBAs, at most until the oldest outstanding PBU times out.
        const auto wait = outstanding.empty() ? Clock::duration::zero()
                                              : mags[outstanding.front().mag].slots[outstanding.front().sequence].sent +
                                                    timeout - now;
        const int ms = static_cast<int>(std::clamp<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(wait).count() + 1, 0, 1000));
        if (poll(fds.data(), fds.size(), std::min(ms, o.rate > 0 ? 1 : 100)) < 0 && errno != EINTR) {
            fail_errno("poll");
        }
        for (std::size_t mi = 0; mi < mags.size(); ++mi) {
            if (!(fds[mi].revents & POLLIN)) {
                continue;
            }
            for (std::size_t n; (n = rx.receive(mags[mi].fd.get())) > 0;) {
                const auto at = Clock::now();
                for (std::size_t i = 0; i < n; ++i) {
                    handle(mi, rx.data(i), at);
                }
            }
        }
    }
    const auto end = Clock::now();
    timeline.push_back(sample(end));
    const double seconds = std::chrono::duration<double>(last_answer - start).count();
    json statuses = json::object();
    for (const auto& [s, n] : t.statuses) {
        statuses[fmt::format("{}", s)] = {{"name", std::string(status_name(static_cast<std::uint8_t>(s)))},
                                          {"count", n}};
    }
    std::cout << json{{"transport", is_ipv4(lma) ? "ipv4-udp" : "ipv6-mh"},
                      {"lma", o.lma},
                      {"mags", o.mags},
                      {"count", o.count},
                      {"first", o.first},
                      {"window", o.window},
                      {"sent", t.sent},
                      {"accepted", t.accepted},
                      {"statuses", statuses},
                      {"timed_out", t.timed_out},
                      {"malformed", t.malformed},
                      {"unmatched", t.unmatched},
                      {"wrong_mn", t.wrong_mn},
                      {"incomplete", t.incomplete},
                      {"send_errors", t.send_errors},
                      {"seconds", seconds},
                      {"per_second", seconds > 0 ? static_cast<double>(t.accepted) / seconds : 0.0},
                      {"rtt_us", {{"p50", percentile(t.rtt_us, 0.5)},
                                  {"p99", percentile(t.rtt_us, 0.99)},
                                  {"max", percentile(t.rtt_us, 1.0)}}},
                      {"timeline", timeline}}
                     .dump()
              << "\n";
    return 0;
}

// ---------------------------------------------------------------------------------------------
// echo

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
    g_stop = 1;
}

// The PBA an LMA sends for an accepted PBU (RFC 5213 §5.3.6, RFC 5844 §3.2.3, RFC 5845 §5.1), with
// placeholder addresses and key: the same size and options, none of the registration logic.
ProxyBindingAcknowledgement answer(const ProxyBindingUpdate& pbu) {
    ProxyBindingAcknowledgement pba;
    pba.sequence = pbu.sequence;
    pba.lifetime = pbu.lifetime;
    pba.status = static_cast<std::uint8_t>(Status::Accepted);
    for (const auto& option : pbu.options.items) {
        if (std::holds_alternative<MobileNodeIdentifierOption>(option) ||
            std::holds_alternative<HandoffIndicatorOption>(option) ||
            std::holds_alternative<AccessTechnologyTypeOption>(option) ||
            std::holds_alternative<TimestampOption>(option)) {
            pba.options.add(option);
        }
    }
    if (pbu.options.find<HomeNetworkPrefixOption>()) {
        pba.options.add(HomeNetworkPrefixOption{64, Ipv6Address::parse("2001:db8:1:2::")});
    }
    if (pbu.options.find<Ipv4HomeAddressRequestOption>()) {
        pba.options.add(Ipv4HomeAddressReplyOption{ipv4_hoa_status::kSuccess, 8, Ipv4Address::parse("10.0.0.2")});
        pba.options.add(Ipv4DefaultRouterAddressOption{Ipv4Address::parse("10.0.0.1")});
    }
    if (pbu.options.find<GreKeyOption>()) {
        pba.options.add(GreKeyOption{1});
    }
    return pba;
}

int cmd_echo(const std::string& listen) {
    const IpAddress local = parse_address("--listen", listen);
    UniqueFd fd = open_socket(local, kUdpPortPmipControl);
    struct sigaction sa{};
    sa.sa_handler = on_signal;   // no SA_RESTART: poll returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    BatchReceiver rx;
    std::uint64_t answered = 0, dropped = 0;
    std::cerr << "xpmip-loadgen echo: answering PBUs on " << listen << "\n";
    while (!g_stop) {
        pollfd p{fd.get(), POLLIN, 0};
        if (poll(&p, 1, 200) < 0 && errno != EINTR) {
            fail_errno("poll");
        }
        for (std::size_t n; (n = rx.receive(fd.get())) > 0;) {
            for (std::size_t i = 0; i < n; ++i) {
                try {
                    const auto msg = decode(rx.data(i));
                    const auto* pbu = std::get_if<ProxyBindingUpdate>(&msg);
                    if (!pbu) {
                        ++dropped;
                        continue;
                    }
                    const Bytes mh = encode(answer(*pbu));
                    if (sendto(fd.get(), mh.data(), mh.size(), 0, reinterpret_cast<const sockaddr*>(&rx.from(i)),
                               rx.from_len(i)) < 0) {
                        ++dropped;
                        continue;
                    }
                    ++answered;
                } catch (const WireError&) {
                    ++dropped;
                }
            }
        }
    }
    std::cout << json{{"answered", answered}, {"dropped", dropped}}.dump() << "\n";
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"PBU load generator: registers N mobile nodes at an LMA and measures registrations/s"};
    app.require_subcommand(1);

    RegisterOptions o;
    auto* reg = app.add_subcommand("register", "Register N MNs at an LMA as one or more MAGs; print JSON");
    reg->add_option("--lma", o.lma, "the LMA's address (IPv4: UDP 5436, IPv6: Mobility Header)")->required();
    reg->add_option("--mag", o.mags, "a MAG's (proxy CoA) address to send from; repeat for several MAGs")
        ->required();
    reg->add_option("--count", o.count, "number of MNs to register")->required();
    reg->add_option("--first", o.first, "number of the first MN");
    reg->add_option("--nai", o.nai, "MN-ID of MN i: {} is replaced by i");
    reg->add_option("--window", o.window, "PBUs outstanding at most (all MAGs together)");
    reg->add_option("--timeout", o.timeout, "seconds without a PBA before a PBU counts as timed out");
    reg->add_option("--lifetime", o.lifetime, "requested lifetime in seconds");
    reg->add_option("--key-base", o.key_base, "downlink GRE key of MN i: key-base + i");
    reg->add_option("--progress-interval", o.progress_interval, "seconds between timeline samples");
    reg->add_option("--watch-pid", o.watch_pid, "add this process's CPU seconds (the LMA's) to each timeline sample");
    reg->add_flag("!--no-hnp", o.hnp, "do not ask for a home network prefix");
    reg->add_flag("!--no-ipv4", o.ipv4, "do not ask for an IPv4 home address");
    reg->add_flag("!--no-gre-keys", o.gre_keys, "no GRE Key option (IP-in-IP tunnels)");
    reg->add_option("--rate", o.rate, "PBUs per second at most (default: as fast as --window allows)");
    reg->add_option("--accepted-out", o.accepted_out,
                    "append a JSON line per accepted MN to this file: mn, hnp, hoa, key_uplink");
    reg->add_flag("--timestamps", o.timestamps, "Timestamp option (RFC 5213 §5.5) instead of sequence numbers");
    reg->add_flag("--malformed", o.malformed,
                  "send malformed PBUs (MN-ID Subtype 0), --window at a time with a 0.5 ms pause, expecting no answer");

    std::string listen;
    auto* echo = app.add_subcommand("echo", "Answer every PBU with a status-0 PBA, no registration logic");
    echo->add_option("--listen", listen, "the address to answer on (IPv4: UDP 5436, IPv6: Mobility Header)")
        ->required();

    CLI11_PARSE(app, argc, argv);
    try {
        return reg->parsed() ? cmd_register(o) : cmd_echo(listen);
    } catch (const std::exception& e) {
        std::cerr << "xpmip-loadgen: " << e.what() << "\n";
        return 1;
    }
}
