// xpmip-bench: the native half of the benchmark suite (bench/run drives it; see bench/README.md).
//
//   xpmip-bench testrun < spec.json      per-packet cost: BPF_PROG_TEST_RUN with a large repeat
//   xpmip-bench fill -i INST --count N --template FILE|-    write N sessions through SessionTable
//   xpmip-bench send --interface IF --frame HEX [--frame HEX]... --cpus 0,1 --seconds S
//                    [--generator afpacket|xdp]   AF_PACKET (TPACKET_V2 TX ring, qdisc bypass) or
//                                        XDP live-frame (xdp_frames, no skb) traffic generator
//                    [--vary-offset OFF --vary-count N]  xdp: N flows from one thread
//   xpmip-bench count IF --warmup S --seconds S    packets/s seen by bench_sink.bpf.c on IF
//   xpmip-bench memlat --mib 256         ns per cache-missing dependent load (context for scale)
//   xpmip-bench census -i INST           entries in the instance's session and lookup maps
//   xpmip-bench forward IF --to OUT --dmac MAC   attach bench_forward.bpf.c (bare XDP_REDIRECT) to IF
//
// Every subcommand prints one JSON object on stdout; errors go to stderr with exit status 1.
#include "bench_forward.skel.h"
#include "bench_testrun.skel.h"

#include "dataplane/json.hpp"
#include "dataplane/dataplane.hpp"

#include <CLI/CLI.hpp>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

using nlohmann::json;
using namespace xpmip;
using namespace xpmip::dataplane;

namespace {

using Clock = std::chrono::steady_clock;

struct BenchError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string errno_text() { return std::strerror(errno); }

std::vector<std::uint8_t> from_hex(const std::string& hex) {
    if (hex.size() % 2) {
        throw BenchError(fmt::format("hex frame has an odd number of digits ({})", hex.size()));
    }
    std::vector<std::uint8_t> out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

std::string to_hex(const std::uint8_t* p, std::size_t n) {
    std::string s;
    s.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        s += fmt::format("{:02x}", p[i]);
    }
    return s;
}

int ifindex_of(const std::string& name) {
    const int i = static_cast<int>(if_nametoindex(name.c_str()));
    if (!i) {
        throw BenchError(fmt::format("interface '{}' does not exist in this network namespace", name));
    }
    return i;
}

UniqueFd xdp_program_on(const std::string& ifname) {
    bpf_xdp_query_opts q;
    std::memset(&q, 0, sizeof q);
    q.sz = sizeof q;
    if (bpf_xdp_query(ifindex_of(ifname), 0, &q) != 0) {
        throw BenchError(fmt::format("XDP query on {}: {}", ifname, errno_text()));
    }
    const std::uint32_t id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
    if (!id) {
        throw BenchError(fmt::format("interface {} has no XDP program", ifname));
    }
    UniqueFd fd(bpf_prog_get_fd_by_id(id));
    if (!fd) {
        throw BenchError(fmt::format("XDP program {} on {}: {}", id, ifname, errno_text()));
    }
    return fd;
}

// ---------------------------------------------------------------------------------------------
// testrun

struct bench_vary {
    std::uint32_t off = 0, csum_off = 0;
};
struct bench_config {
    std::uint32_t len, count, copy;
    std::int32_t delta;
    std::uint32_t vary_count, pad;
    bench_vary vary[2];
};
static_assert(sizeof(bench_config) == 40);
struct ref_value {
    std::uint8_t smac[6], dmac[6];
    std::uint32_t ifindex;
};
struct bench_state {
    std::uint64_t runs, mismatches;
};
constexpr std::size_t kCopyMax = 256;

struct RunCase {
    std::string name;
    std::string ifname;      // the interface whose XDP program runs (and the context's ingress)
    std::string target;      // "attached", "xdp_tx", "ref_encap" or "ref_decap"
    bool wrap = true;
    std::uint32_t vary_count = 0;   // >0: the wrapper varies the `vary` fields over this many values
    bench_vary vary[2];
    std::uint32_t repeat = 0;  // 0: the spec's
    std::vector<std::vector<std::uint8_t>> frames;
    std::int32_t delta = 0;
    // results
    std::vector<double> rounds;          // ns per run: this thread's CPU time / repeat
    std::vector<double> kernel_rounds;   // ns per run as the kernel reports it (whole ns)
    std::uint32_t retval = 0;
    std::vector<std::uint8_t> output;
    std::uint64_t runs = 0, mismatches = 0;
};

double thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct SkelDeleter {
    void operator()(bench_testrun* s) const { bench_testrun__destroy(s); }
};

double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct TestRunner {
    bench_testrun* skel;
    std::uint32_t zero = 0;

    struct Once {
        double cpu_ns;            // this thread's CPU time for the whole syscall
        std::uint32_t duration;   // the kernel's ns per run (whole ns)
        std::uint32_t retval;
        std::vector<std::uint8_t> output;
        bench_state state{};
    };

    // Prepare the wrapper (tail call slot, frames) or not, then one BPF_PROG_TEST_RUN.
    Once run(RunCase& c, std::uint32_t repeat) {
        UniqueFd attached;
        int target_fd = bpf_program__fd(skel->progs.xpmip_bench_xdp_tx);
        if (c.target == "attached") {
            attached = xdp_program_on(c.ifname);
            target_fd = attached.get();
        } else if (c.target == "ref_encap") {
            target_fd = bpf_program__fd(skel->progs.xpmip_bench_ref_encap);
        } else if (c.target == "ref_decap") {
            target_fd = bpf_program__fd(skel->progs.xpmip_bench_ref_decap);
        } else if (c.target != "xdp_tx") {
            throw BenchError(fmt::format("case {}: target '{}' is not attached, xdp_tx, ref_encap or ref_decap",
                                         c.name, c.target));
        }
        const int ifindex = ifindex_of(c.ifname);
        const auto& frame0 = c.frames[0];
        int run_fd = target_fd;
        if (c.wrap) {
            if (bpf_map_update_elem(bpf_map__fd(skel->maps.target), &zero, &target_fd, BPF_ANY) != 0) {
                throw BenchError(fmt::format("case {}: tail call slot: {} (is the program an XDP program "
                                             "of the same kind?)", c.name, errno_text()));
            }
            const bench_config cfg{static_cast<std::uint32_t>(frame0.size()),
                                   static_cast<std::uint32_t>(c.frames.size()),
                                   static_cast<std::uint32_t>(std::min(frame0.size(), kCopyMax)), c.delta,
                                   c.vary_count, 0, {c.vary[0], c.vary[1]}};
            bpf_map_update_elem(bpf_map__fd(skel->maps.config), &zero, &cfg, BPF_ANY);
            const bench_state st{0, 0};
            bpf_map_update_elem(bpf_map__fd(skel->maps.state), &zero, &st, BPF_ANY);
            for (std::uint32_t i = 0; i < c.frames.size(); ++i) {
                std::uint8_t buf[kCopyMax] = {};
                std::memcpy(buf, c.frames[i].data(), std::min(c.frames[i].size(), kCopyMax));
                if (bpf_map_update_elem(bpf_map__fd(skel->maps.frames), &i, buf, BPF_ANY) != 0) {
                    throw BenchError(fmt::format("case {}: frames map: {}", c.name, errno_text()));
                }
            }
            run_fd = bpf_program__fd(skel->progs.xpmip_bench_wrap);
        }
        std::vector<std::uint8_t> out(frame0.size() + 512);
        bpf_test_run_opts o;
        std::memset(&o, 0, sizeof o);
        o.sz = sizeof o;
        o.data_in = frame0.data();
        o.data_size_in = static_cast<std::uint32_t>(frame0.size());
        o.data_out = out.data();
        o.data_size_out = static_cast<std::uint32_t>(out.size());
        o.repeat = repeat;
        xdp_md ctx{};
        ctx.data_end = static_cast<std::uint32_t>(frame0.size());
        ctx.ingress_ifindex = static_cast<std::uint32_t>(ifindex);
        o.ctx_in = &ctx;
        o.ctx_size_in = sizeof ctx;
        const double cpu0 = thread_cpu_ns();
        if (bpf_prog_test_run_opts(run_fd, &o) != 0) {
            throw BenchError(fmt::format("case {}: BPF_PROG_TEST_RUN: {}", c.name, errno_text()));
        }
        Once r{thread_cpu_ns() - cpu0, o.duration, o.retval, {}, {}};
        out.resize(o.data_size_out);
        r.output = std::move(out);
        if (c.wrap) {
            bpf_map_lookup_elem(bpf_map__fd(skel->maps.state), &zero, &r.state);
        } else {
            r.state.runs = repeat;
        }
        return r;
    }
};

// The minimal decap's table: keys first..first+count-1, each with the same MACs.
void fill_ref_keys(bench_testrun* skel, std::uint32_t count, std::uint32_t first) {
    constexpr std::uint32_t kBatch = 8192;
    std::vector<std::uint32_t> keys;
    std::vector<ref_value> values;
    const ref_value v{{2, 0, 0, 0, 0xc0, 1}, {2, 0, 0, 0, 0xc0, 0x10}, 1};
    for (std::uint32_t done = 0; done < count;) {
        const std::uint32_t n = std::min(kBatch, count - done);
        keys.resize(n);
        values.assign(n, v);
        for (std::uint32_t i = 0; i < n; ++i) {
            keys[i] = first + done + i;
        }
        std::uint32_t written = n;
        if (bpf_map_update_batch(bpf_map__fd(skel->maps.ref_keys), keys.data(), values.data(), &written, nullptr) != 0) {
            throw BenchError(fmt::format("ref_keys: batch update at {}: {}", done, errno_text()));
        }
        done += n;
    }
}

// Timing: the thread's CPU time around each BPF_PROG_TEST_RUN, less the syscall's fixed cost,
// divided by the repeat count. CPU time rather than wall time, because the kernel reschedules
// inside a long test run and time given to other tasks must not count; rather than the kernel's
// own `duration`, because that one is whole nanoseconds (it is kept in the output as a check).
// The fixed cost is large here (~1 ms: with repeat > 1 the kernel switches the XDP dispatcher to
// the program and back), so it is measured first (repeat 2) and each case's repeat is chosen so
// one round takes `target_ms`.
int cmd_testrun(std::istream& in) {
    const json spec = json::parse(in);
    const double target_ms = spec.value("target_ms", 50.0);
    const int rounds = spec.value("rounds", 5);
    std::vector<RunCase> cases;
    std::size_t max_frames = 1;
    for (const auto& c : spec.at("cases")) {
        RunCase r;
        r.name = c.at("name").get<std::string>();
        r.ifname = c.value("ifname", std::string("lo"));
        r.target = c.value("target", std::string("attached"));
        r.wrap = c.value("wrap", true);
        r.delta = c.value("delta", 0);
        r.repeat = c.value("repeat", 0u);
        if (c.contains("vary")) {
            r.vary_count = c["vary"].at("count").get<std::uint32_t>();
            const auto& fields = c["vary"].at("fields");
            if (fields.size() > 2 || !r.wrap || r.vary_count == 0) {
                throw BenchError(fmt::format("case {}: vary: 1 or 2 fields, a count > 0, with the wrapper", r.name));
            }
            for (std::size_t i = 0; i < fields.size(); ++i) {
                r.vary[i].off = fields[i].at("offset").get<std::uint32_t>();
                r.vary[i].csum_off = fields[i].value("checksum_offset", 0u);
            }
        }
        for (const auto& h : c.at("frames")) {
            r.frames.push_back(from_hex(h.get<std::string>()));
        }
        if (r.frames.empty()) {
            throw BenchError(fmt::format("case {}: no frames", r.name));
        }
        for (const auto& f : r.frames) {
            if (f.size() != r.frames[0].size()) {
                throw BenchError(fmt::format("case {}: frames of one case must have one length", r.name));
            }
            if (f.size() < 14) {
                throw BenchError(fmt::format("case {}: a frame shorter than an Ethernet header", r.name));
            }
        }
        if (!r.wrap && r.frames.size() > 1) {
            throw BenchError(fmt::format("case {}: several frames need the wrapper", r.name));
        }
        max_frames = std::max(max_frames, r.frames.size());
        cases.push_back(std::move(r));
    }

    std::unique_ptr<bench_testrun, SkelDeleter> skel(bench_testrun__open());
    if (!skel) {
        throw BenchError(fmt::format("bench_testrun: open: {}", errno_text()));
    }
    bpf_map__set_max_entries(skel->maps.frames, static_cast<std::uint32_t>(max_frames));
    const json ref = spec.value("ref_keys", json::object());
    const std::uint32_t ref_count = ref.value("count", 0u);
    bpf_map__set_max_entries(skel->maps.ref_keys, std::max(1u, ref_count));
    if (int err = bench_testrun__load(skel.get())) {
        throw BenchError(fmt::format("bench_testrun: load: {}", std::strerror(-err)));
    }
    fill_ref_keys(skel.get(), ref_count, ref.value("first", 0u));
    TestRunner runner{skel.get()};

    // The syscall's fixed cost: repeat 2 of the bare program.
    RunCase probe;
    probe.name = "fixed cost probe";
    probe.ifname = "lo";
    probe.target = "xdp_tx";
    probe.wrap = false;
    probe.frames.push_back(std::vector<std::uint8_t>(64, 0));
    std::vector<double> fixed;
    for (int i = 0; i < 15; ++i) {
        fixed.push_back(runner.run(probe, 2).cpu_ns);
    }
    const double fixed_ns = median_of(fixed);

    // Each case's repeat: so that one round takes about target_ms.
    for (auto& c : cases) {
        if (!c.repeat) {
            const auto cal = runner.run(c, 20000);
            const double per_run = std::max(1.0, (cal.cpu_ns - fixed_ns) / 20000);
            c.repeat = static_cast<std::uint32_t>(std::clamp(target_ms * 1e6 / per_run, 20000.0, 1e9));
        }
    }

    for (int round = 0; round < rounds; ++round) {
        for (auto& c : cases) {
            auto r = runner.run(c, c.repeat);
            c.rounds.push_back(std::max(0.0, r.cpu_ns - fixed_ns) / c.repeat);
            c.kernel_rounds.push_back(r.duration);
            c.runs += r.state.runs;
            c.mismatches += r.state.mismatches;
            if (round == rounds - 1) {
                c.retval = r.retval;
                c.output = std::move(r.output);
            }
        }
    }
    json out = json::array();
    for (const auto& c : cases) {
        out.push_back({{"name", c.name}, {"retval", c.retval}, {"output", to_hex(c.output.data(), c.output.size())},
                       {"rounds_ns", c.rounds}, {"kernel_rounds_ns", c.kernel_rounds},
                       {"median_ns", median_of(c.rounds)}, {"kernel_median_ns", median_of(c.kernel_rounds)},
                       {"repeat", c.repeat}, {"runs", c.runs}, {"mismatches", c.mismatches},
                       {"frames", c.frames.size()}});
    }
    std::cout << json{{"rounds", rounds}, {"fixed_cost_ns", fixed_ns}, {"cases", out}}.dump() << "\n";
    return 0;
}

// ---------------------------------------------------------------------------------------------
// fill

Ipv4Address add(Ipv4Address a, std::uint32_t n) {
    std::uint32_t v = (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
                      (std::uint32_t{a.bytes[2]} << 8) | a.bytes[3];
    v += n;
    return Ipv4Address{{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                        static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}};
}

int cmd_fill(const std::string& instance, const std::string& pin_root, std::uint32_t count, std::uint32_t first,
             const std::string& template_file) {
    json tmpl;
    if (template_file == "-" || template_file.empty()) {
        tmpl = json::parse(std::cin);
    } else {
        std::ifstream f(template_file);
        if (!f) {
            throw BenchError(fmt::format("cannot open {}", template_file));
        }
        tmpl = json::parse(f);
    }
    // One template session; session i (0-based) gets id first+i, HoA +i, HNP's 64-bit prefix +i,
    // GRE keys +i and MAC +i: every lookup key distinct.
    const SessionConfig base = session_from_json(tmpl);
    auto pinned = open_pinned(instance, pin_root);
    auto table = pinned.sessions();
    std::uint64_t retries = 0;
    const auto t0 = Clock::now();
    for (std::uint32_t i = 0; i < count; ++i) {
        SessionConfig s = base;
        s.id = first + i;
        if (s.hoa) {
            s.hoa->address = add(base.hoa->address, i);
        }
        if (s.hnp) {
            std::uint64_t hi = 0;
            for (int b = 0; b < 8; ++b) hi = (hi << 8) | s.hnp->address.bytes[b];
            hi += i;
            for (int b = 7; b >= 0; --b, hi >>= 8) s.hnp->address.bytes[b] = static_cast<std::uint8_t>(hi);
        }
        if (s.mn_mac) {
            std::uint32_t low = (std::uint32_t{s.mn_mac->bytes[3]} << 16) | (std::uint32_t{s.mn_mac->bytes[4]} << 8) |
                                s.mn_mac->bytes[5];
            low += i;
            s.mn_mac->bytes[3] = static_cast<std::uint8_t>(low >> 16);
            s.mn_mac->bytes[4] = static_cast<std::uint8_t>(low >> 8);
            s.mn_mac->bytes[5] = static_cast<std::uint8_t>(low);
        }
        for (auto& p : s.paths) {
            if (p.key_uplink) p.key_uplink += i;
            if (p.key_downlink) p.key_downlink += i;
        }
        for (int tries = 0;; ++tries) {
            try {
                table.upsert(s);
                break;
            } catch (const DataplaneError&) {
                if (tries >= 100) {
                    throw;
                }
                ++retries;   // rolled back: try again once the allocator has caught up
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cout << json{{"count", count}, {"seconds", secs}, {"per_second", secs > 0 ? count / secs : 0.0},
                      {"upsert_retries", retries}}.dump()
              << "\n";
    return 0;
}

// ---------------------------------------------------------------------------------------------
// send: one thread per CPU, each with its own AF_PACKET socket and TX ring, sending its frame
// (frame i of the list for thread i, round robin) as fast as the ring drains.

struct SenderResult {
    std::uint64_t sent = 0;
    std::string error;
};

void pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        throw BenchError(fmt::format("cannot pin a sender thread to CPU {}", cpu));
    }
}

void sender(int ifindex, int cpu, const std::vector<std::uint8_t>& frame, Clock::time_point deadline,
            std::atomic<bool>& go, SenderResult& res) {
    try {
        pin_to_cpu(cpu);
        UniqueFd fd(socket(AF_PACKET, SOCK_RAW, 0));   // protocol 0: receives nothing
        if (!fd) {
            throw BenchError(fmt::format("AF_PACKET socket: {}", errno_text()));
        }
        int v = TPACKET_V2;
        if (setsockopt(fd.get(), SOL_PACKET, PACKET_VERSION, &v, sizeof v) != 0) {
            throw BenchError(fmt::format("PACKET_VERSION: {}", errno_text()));
        }
        int one = 1;
        if (setsockopt(fd.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0) {
            throw BenchError(fmt::format("PACKET_QDISC_BYPASS: {}", errno_text()));
        }
        tpacket_req req{};
        req.tp_frame_size = 2048;
        req.tp_block_size = 1 << 16;
        req.tp_block_nr = 8;
        req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;   // 256
        if (setsockopt(fd.get(), SOL_PACKET, PACKET_TX_RING, &req, sizeof req) != 0) {
            throw BenchError(fmt::format("PACKET_TX_RING: {}", errno_text()));
        }
        const std::size_t ring_size = std::size_t{req.tp_block_size} * req.tp_block_nr;
        void* ring = mmap(nullptr, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        if (ring == MAP_FAILED) {
            throw BenchError(fmt::format("mmap TX ring: {}", errno_text()));
        }
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_ifindex = ifindex;
        sll.sll_protocol = 0;
        if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
            munmap(ring, ring_size);
            throw BenchError(fmt::format("bind: {}", errno_text()));
        }
        auto* base = static_cast<std::uint8_t*>(ring);
        const std::size_t data_off = TPACKET2_HDRLEN - sizeof(sockaddr_ll);
        for (std::uint32_t i = 0; i < req.tp_frame_nr; ++i) {
            std::memcpy(base + std::size_t{i} * req.tp_frame_size + data_off, frame.data(), frame.size());
        }
        while (!go.load()) {
            std::this_thread::yield();
        }
        std::uint32_t next = 0;
        while (Clock::now() < deadline) {
            unsigned queued = 0;
            for (std::uint32_t n = 0; n < req.tp_frame_nr; ++n) {
                auto* h = reinterpret_cast<tpacket2_hdr*>(base + std::size_t{next} * req.tp_frame_size);
                if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
                    break;
                }
                h->tp_len = static_cast<std::uint32_t>(frame.size());
                __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
                next = (next + 1) % req.tp_frame_nr;
                ++queued;
            }
            if (send(fd.get(), nullptr, 0, 0) < 0 && errno != ENOBUFS && errno != EAGAIN) {
                munmap(ring, ring_size);
                throw BenchError(fmt::format("send: {}", errno_text()));
            }
            res.sent += queued;
        }
        munmap(ring, ring_size);
    } catch (const std::exception& e) {
        res.error = e.what();
    }
}

// The XDP generator: BPF_PROG_TEST_RUN in live-frame mode (BPF_F_TEST_XDP_LIVE_FRAMES, the
// mechanism of xdp-trafficgen) of xpmip_bench_gen, which rewrites its CPU's frame into the
// (recycled) page and returns XDP_TX, with the context's ingress
// interface the sending one: the kernel turns XDP_TX into a redirect out of that interface, so
// every frame leaves as an xdp_frame from a page pool, without an skb. Out of a veth, frames land
// in the peer's XDP receive ring (the peer needs an XDP program).
void xdp_sender(int ifindex, int cpu, const std::vector<std::uint8_t>& frame, int prog_fd,
                Clock::time_point deadline, std::atomic<bool>& go, SenderResult& res) {
    try {
        pin_to_cpu(cpu);
        while (!go.load()) {
            std::this_thread::yield();
        }
        // Each call sets up and tears down a page pool and memory model, which can sleep for an
        // RCU grace period (tens of ms in this VM, with the other CPU idle): one thread then
        // idled most of the time at 16 k frames per call. So calls grow to about 200 ms of
        // sending, the last one cut to the time left.
        std::uint32_t chunk = 16384;
        constexpr double kCallSeconds = 0.2;
        while (Clock::now() < deadline) {
            const auto t0 = Clock::now();
            bpf_test_run_opts o;
            std::memset(&o, 0, sizeof o);
            o.sz = sizeof o;
            o.data_in = frame.data();
            o.data_size_in = static_cast<std::uint32_t>(frame.size());
            xdp_md ctx{};
            ctx.data_end = static_cast<std::uint32_t>(frame.size());
            ctx.ingress_ifindex = static_cast<std::uint32_t>(ifindex);
            o.ctx_in = &ctx;
            o.ctx_size_in = sizeof ctx;
            o.repeat = chunk;
            o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
            o.batch_size = 64;
            if (bpf_prog_test_run_opts(prog_fd, &o) != 0) {
                throw BenchError(fmt::format("BPF_PROG_TEST_RUN (live frames): {}", errno_text()));
            }
            res.sent += chunk;
            const auto now = Clock::now();
            const double took = std::chrono::duration<double>(now - t0).count();
            const double left = std::chrono::duration<double>(deadline - now).count();
            const double rate = took > 0 ? chunk / took : 0;
            const double want = rate * std::min(kCallSeconds, std::max(left, 0.0));
            chunk = static_cast<std::uint32_t>(std::clamp(want, 4096.0, 16.0 * 1024 * 1024));
        }
    } catch (const std::exception& e) {
        res.error = e.what();
    }
}

int cmd_send(const std::string& ifname, const std::vector<std::string>& frames_hex, const std::vector<int>& cpus,
             double seconds, const std::string& mode, const bench_vary& vary, std::uint32_t vary_count) {
    if (frames_hex.empty()) {
        throw BenchError("send: give at least one --frame");
    }
    std::vector<std::vector<std::uint8_t>> frames;
    for (const auto& h : frames_hex) {
        frames.push_back(from_hex(h));
        if (frames.back().size() < 14 || frames.back().size() > 2048 - TPACKET2_HDRLEN) {
            throw BenchError(fmt::format("send: frame of {} octets (14..{})", frames.back().size(),
                                         2048 - TPACKET2_HDRLEN));
        }
    }
    const int ifindex = ifindex_of(ifname);
    std::vector<SenderResult> results(cpus.size());
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    const auto start = Clock::now() + std::chrono::milliseconds(50);
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    std::unique_ptr<bench_testrun, SkelDeleter> skel;
    if (mode == "xdp") {
        // frames[cpu] is the frame of the thread pinned to that CPU (xpmip_bench_gen).
        const int ncpu = *std::max_element(cpus.begin(), cpus.end()) + 1;
        skel.reset(bench_testrun__open());
        if (!skel) {
            throw BenchError(fmt::format("bench_testrun: open: {}", errno_text()));
        }
        bpf_map__set_max_entries(skel->maps.frames, static_cast<std::uint32_t>(ncpu));
        if (int err = bench_testrun__load(skel.get())) {
            throw BenchError(fmt::format("bench_testrun: load: {}", std::strerror(-err)));
        }
        const std::uint32_t zero = 0;
        for (std::size_t i = 0; i < cpus.size(); ++i) {
            const auto& f = frames[i % frames.size()];
            if (f.size() != frames[0].size()) {
                throw BenchError("send: with the xdp generator all frames must have one length");
            }
            std::uint8_t buf[kCopyMax] = {};
            std::memcpy(buf, f.data(), std::min(f.size(), kCopyMax));
            const std::uint32_t key = static_cast<std::uint32_t>(cpus[i]);
            bpf_map_update_elem(bpf_map__fd(skel->maps.frames), &key, buf, BPF_ANY);
        }
        const bench_config cfg{static_cast<std::uint32_t>(frames[0].size()), static_cast<std::uint32_t>(ncpu),
                               static_cast<std::uint32_t>(std::min(frames[0].size(), kCopyMax)), 0, vary_count, 0,
                               {vary, {}}};
        bpf_map_update_elem(bpf_map__fd(skel->maps.config), &zero, &cfg, BPF_ANY);
    } else if (mode != "afpacket") {
        throw BenchError(fmt::format("send: generator '{}' is not xdp or afpacket", mode));
    } else if (vary_count) {
        throw BenchError("send: --vary-offset needs the xdp generator");
    }
    for (std::size_t i = 0; i < cpus.size(); ++i) {
        if (skel) {
            threads.emplace_back(xdp_sender, ifindex, cpus[i], std::cref(frames[i % frames.size()]),
                                 bpf_program__fd(skel->progs.xpmip_bench_gen), deadline, std::ref(go),
                                 std::ref(results[i]));
        } else {
            threads.emplace_back(sender, ifindex, cpus[i], std::cref(frames[i % frames.size()]), deadline,
                                 std::ref(go), std::ref(results[i]));
        }
    }
    std::this_thread::sleep_until(start);
    const auto t0 = Clock::now();
    go = true;
    for (auto& t : threads) {
        t.join();
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::uint64_t sent = 0;
    json per_thread = json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (!results[i].error.empty()) {
            throw BenchError(fmt::format("sender on CPU {}: {}", cpus[i], results[i].error));
        }
        sent += results[i].sent;
        per_thread.push_back(results[i].sent);
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    std::cout << json{{"sent", sent}, {"seconds", secs}, {"pps", sent / secs}, {"per_thread", per_thread},
                      {"user_cpu_s", tv(ru.ru_utime)}, {"system_cpu_s", tv(ru.ru_stime)}}.dump()
              << "\n";
    return 0;
}

// ---------------------------------------------------------------------------------------------
// count

std::pair<std::uint64_t, std::uint64_t> read_sink(int map_fd) {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<std::uint64_t> v(static_cast<std::size_t>(ncpu));
    std::uint64_t sums[2] = {0, 0};
    for (std::uint32_t k = 0; k < 2; ++k) {
        if (bpf_map_lookup_elem(map_fd, &k, v.data()) != 0) {
            throw BenchError(fmt::format("sink_counts lookup: {}", errno_text()));
        }
        for (auto x : v) sums[k] += x;
    }
    return {sums[0], sums[1]};
}

UniqueFd sink_map(const std::string& ifname) {
    auto prog = xdp_program_on(ifname);
    bpf_prog_info info{};
    std::uint32_t len = sizeof info;
    std::uint32_t ids[8] = {};
    info.nr_map_ids = 8;
    info.map_ids = reinterpret_cast<std::uint64_t>(ids);
    if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) {
        throw BenchError(fmt::format("program info on {}: {}", ifname, errno_text()));
    }
    for (std::uint32_t i = 0; i < std::min<std::uint32_t>(info.nr_map_ids, 8); ++i) {
        UniqueFd m(bpf_map_get_fd_by_id(ids[i]));
        bpf_map_info mi{};
        std::uint32_t ml = sizeof mi;
        if (m && bpf_obj_get_info_by_fd(m.get(), &mi, &ml) == 0 && std::string(mi.name) == "sink_counts") {
            return m;
        }
    }
    throw BenchError(fmt::format("the XDP program on {} is not bench_sink (no sink_counts map)", ifname));
}

// ---------------------------------------------------------------------------------------------
// forward: the bare XDP_REDIRECT reference of the forwarding benchmark, attached natively to
// `ifname` (it stays attached when this process exits: `ip link set IF xdpdrv off` removes it).

MacAddress mac_of(const std::string& ifname) {
    std::ifstream f("/sys/class/net/" + ifname + "/address");
    std::string text;
    if (!(f >> text)) {
        throw BenchError(fmt::format("interface {}: cannot read its MAC", ifname));
    }
    return MacAddress::parse(text);
}

int cmd_forward(const std::string& ifname, const std::string& to, const std::string& dmac) {
    struct Deleter {
        void operator()(bench_forward* s) const { bench_forward__destroy(s); }
    };
    std::unique_ptr<bench_forward, Deleter> skel(bench_forward__open_and_load());
    if (!skel) {
        throw BenchError(fmt::format("bench_forward: load: {}", errno_text()));
    }
    struct {
        std::uint32_t ifindex;
        std::uint8_t smac[6], dmac[6];
    } value{static_cast<std::uint32_t>(ifindex_of(to)), {}, {}};
    const auto smac = mac_of(to);
    const auto d = MacAddress::parse(dmac);
    std::memcpy(value.smac, smac.bytes.data(), 6);
    std::memcpy(value.dmac, d.bytes.data(), 6);
    const std::uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.forward), &zero, &value, BPF_ANY) != 0) {
        throw BenchError(fmt::format("bench_forward: forward map: {}", errno_text()));
    }
    if (bpf_xdp_attach(ifindex_of(ifname), bpf_program__fd(skel->progs.xpmip_bench_forward), XDP_FLAGS_DRV_MODE,
                       nullptr) != 0) {
        throw BenchError(fmt::format("bench_forward: attach to {}: {}", ifname, errno_text()));
    }
    std::cout << json{{"interface", ifname}, {"to", to}, {"dmac", dmac}}.dump() << "\n";
    return 0;
}

int cmd_count(const std::string& ifname, double warmup, double seconds) {
    auto map = sink_map(ifname);
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    const auto [all0, matched0] = read_sink(map.get());
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const auto [all1, matched1] = read_sink(map.get());
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cout << json{{"all", all1 - all0}, {"matched", matched1 - matched0}, {"seconds", secs},
                      {"matched_pps", (matched1 - matched0) / secs}, {"all_pps", (all1 - all0) / secs},
                      {"total_all", all1}, {"total_matched", matched1}}.dump()
              << "\n";
    return 0;
}

// ---------------------------------------------------------------------------------------------
// memlat: latency of a dependent load that misses the caches (a random pointer chase through
// `mib` MiB), the unit in which lookups in large maps pay.

int cmd_memlat(std::uint32_t mib) {
    const std::size_t lines = std::size_t{mib} * 1024 * 1024 / 64;
    std::vector<std::uint64_t> a(lines * 8);
    std::vector<std::uint32_t> order(lines);
    for (std::uint32_t i = 0; i < lines; ++i) order[i] = i;
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (std::size_t i = lines - 1; i > 0; --i) {   // Fisher-Yates with xorshift
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::swap(order[i], order[x % (i + 1)]);
    }
    for (std::size_t i = 0; i < lines; ++i) {
        a[std::size_t{order[i]} * 8] = std::size_t{order[(i + 1) % lines]} * 8;
    }
    std::uint64_t p = 0;
    const std::size_t steps = 2'000'000;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) p = a[p];
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / steps;
    std::cout << json{{"mib", mib}, {"ns_per_load", ns}, {"end", p}}.dump() << "\n";
    return 0;
}

// ---------------------------------------------------------------------------------------------
// census: how many entries each lookup map of an instance holds (what an agent wrote), counted
// by walking the keys in the kernel.

int cmd_census(const std::string& instance, const std::string& pin_root) {
    auto pinned = open_pinned(instance, pin_root);
    json out = json::object();
    // The sessions array has every index: its live sessions are those whose slot names them.
    out[map_name(MapId::Sessions)] = pinned.sessions().list().size();
    for (MapId id : {MapId::SessionPaths, MapId::TunnelKeys, MapId::TunnelKeyless, MapId::RoutesV4, MapId::RoutesV6,
                     MapId::PrefixesV4, MapId::PrefixesV6, MapId::Stations}) {
        const int fd = pinned.maps.fd(id);
        bpf_map_info info{};
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
            throw BenchError(fmt::format("{}: map info: {}", map_name(id), errno_text()));
        }
        std::vector<std::uint8_t> key(info.key_size), next(info.key_size);
        std::uint64_t n = 0;
        for (void* prev = nullptr; bpf_map_get_next_key(fd, prev, next.data()) == 0; prev = key.data()) {
            key.swap(next);
            ++n;
        }
        if (errno != ENOENT) {
            throw BenchError(fmt::format("{}: walking the keys: {}", map_name(id), errno_text()));
        }
        out[map_name(id)] = n;
    }
    std::cout << out.dump() << "\n";
    return 0;
}

std::vector<int> parse_cpus(const std::string& s) {
    std::vector<int> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(std::stoi(item));
    }
    if (out.empty()) {
        throw BenchError(fmt::format("--cpus '{}': expected a list like 0 or 0,1", s));
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xpmip benchmark helper (bench/run drives it)"};
    app.require_subcommand(1);
    auto* testrun = app.add_subcommand("testrun", "BPF_PROG_TEST_RUN timings; JSON spec on stdin");

    std::string instance = "default", pin_root = kDefaultPinRoot.string(), tmpl = "-";
    std::uint32_t count = 0, first = 1;
    auto* fill = app.add_subcommand("fill", "Write N sessions derived from a template through the session API");
    fill->add_option("-i,--instance", instance, "instance name");
    fill->add_option("--pin-root", pin_root, "bpffs directory of all instances");
    fill->add_option("--count", count, "number of sessions")->required();
    fill->add_option("--first", first, "id of the first session");
    fill->add_option("--template", tmpl, "template session JSON ('-': stdin)");

    std::string ifname, cpus = "0", generator = "afpacket";
    std::vector<std::string> frames;
    double seconds = 1.0, warmup = 0.0;
    auto* send = app.add_subcommand("send", "AF_PACKET traffic generator");
    send->add_option("--interface", ifname, "interface to send on")->required();
    send->add_option("--frame", frames, "Ethernet frame in hex (thread i sends frame i mod N)")->required();
    send->add_option("--cpus", cpus, "one sender thread pinned to each of these CPUs, e.g. 0,1");
    send->add_option("--seconds", seconds, "how long to send");
    send->add_option("--generator", generator, "afpacket (TX ring, skbs) or xdp (live-frame test run, xdp_frames)");
    bench_vary send_vary{};
    std::uint32_t send_vary_count = 0;
    send->add_option("--vary-offset", send_vary.off,
                     "xdp generator: add a random index to the 32-bit big-endian field at this offset");
    send->add_option("--vary-checksum", send_vary.csum_off, "the IPv4 header checksum over that field (0: none)");
    send->add_option("--vary-count", send_vary_count, "the index is below this (flows)");

    auto* cnt = app.add_subcommand("count", "Rate seen by bench_sink.bpf.c on an interface");
    cnt->add_option("interface", ifname, "interface with bench_sink attached")->required();
    cnt->add_option("--warmup", warmup, "seconds to wait before the first reading");
    cnt->add_option("--seconds", seconds, "seconds between the two readings");

    std::uint32_t mib = 256;
    auto* memlat = app.add_subcommand("memlat", "Latency of a cache-missing dependent load (ns)");
    memlat->add_option("--mib", mib, "working set in MiB");

    auto* census = app.add_subcommand("census", "Entries in an instance's session and lookup maps");
    census->add_option("-i,--instance", instance, "instance name");
    census->add_option("--pin-root", pin_root, "bpffs directory of all instances");

    std::string to, dmac;
    auto* fwd = app.add_subcommand("forward", "Attach the bare XDP_REDIRECT forwarder (reference)");
    fwd->add_option("interface", ifname, "interface to attach to")->required();
    fwd->add_option("--to", to, "interface to redirect to")->required();
    fwd->add_option("--dmac", dmac, "destination MAC of forwarded frames")->required();

    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);
    libbpf_set_print([](enum libbpf_print_level level, const char* f, va_list ap) {
        return level == LIBBPF_WARN ? vfprintf(stderr, f, ap) : 0;
    });
    try {
        if (testrun->parsed()) return cmd_testrun(std::cin);
        if (fill->parsed()) return cmd_fill(instance, pin_root, count, first, tmpl);
        if (send->parsed()) {
            return cmd_send(ifname, frames, parse_cpus(cpus), seconds, generator, send_vary,
                            send_vary.off ? std::max(send_vary_count, 1u) : 0);
        }
        if (cnt->parsed()) return cmd_count(ifname, warmup, seconds);
        if (memlat->parsed()) return cmd_memlat(mib);
        if (census->parsed()) return cmd_census(instance, pin_root);
        if (fwd->parsed()) return cmd_forward(ifname, to, dmac);
    } catch (const std::exception& e) {
        std::cerr << "xpmip-bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
