#include "dataplane/dataplane.hpp"
#include "dataplane/bpffs.hpp"

#include "netlink/interfaces.hpp"

#include "xdp_gateway.skel.h"
#include "tc_egress.skel.h"
#include "tc_ingress.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <functional>

namespace xpmip::dataplane {

namespace fs = std::filesystem;

namespace {

int libbpf_log(enum libbpf_print_level level, const char* fmt_str, va_list args) {
    if (level == LIBBPF_DEBUG) {
        return 0;
    }
    // Whole, not cut at a buffer's size: a verifier's refusal is the last lines of a long log.
    va_list copy;
    va_copy(copy, args);
    const int n = vsnprintf(nullptr, 0, fmt_str, copy);
    va_end(copy);
    std::string msg(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
    if (n > 0) {
        vsnprintf(msg.data(), msg.size() + 1, fmt_str, args);
    }
    constexpr std::size_t kKeepHead = 2048, kKeepTail = 24576;   // of a verifier log of megabytes
    if (msg.size() > kKeepHead + kKeepTail + 64) {
        msg = msg.substr(0, kKeepHead) + "\n[... " + std::to_string(msg.size() - kKeepHead - kKeepTail) +
              " octets of the log left out ...]\n" + msg.substr(msg.size() - kKeepTail);
    }
    while (!msg.empty() && msg.back() == '\n') {
        msg.pop_back();
    }
    // Expected when a clsact qdisc already exists or an egress filter of ours is absent.
    if (msg.find("Exclusivity flag on") != std::string::npos ||
        msg.find("Cannot find specified filter chain") != std::string::npos) {
        return 0;
    }
    if (level == LIBBPF_WARN) {
        spdlog::warn("libbpf: {}", msg);
    } else {
        spdlog::debug("libbpf: {}", msg);
    }
    return 0;
}

// libbpf option structs: zeroed, with .sz set (what the C macro LIBBPF_OPTS does).
template <class Opts>
Opts libbpf_opts() {
    Opts o;
    std::memset(&o, 0, sizeof o);
    o.sz = sizeof o;
    return o;
}

bpf_tc_hook tc_hook(int ifindex, bpf_tc_attach_point point) {
    auto h = libbpf_opts<bpf_tc_hook>();
    h.ifindex = ifindex;
    h.attach_point = point;
    return h;
}

template <class Skel>
struct SkelDeleter {
    void (*destroy)(Skel*);
    void operator()(Skel* s) const {
        if (s) {
            destroy(s);
        }
    }
};
template <class Skel>
using SkelPtr = std::unique_ptr<Skel, SkelDeleter<Skel>>;

// The limit a map's size comes from (0: fixed in the object).
std::uint32_t limit_value(const std::string& map, const Limits& l) {
    if (map == "sessions") return l.sessions;
    if (map == "session_paths") return l.multipath_sessions;
    if (map == "ifaces") return l.interfaces;
    if (map == "policies") return l.policies;
    if (map == "nexthops") return l.nexthops;
    if (map == "tunnel_keys") return l.tunnel_keys;
    if (map == "tunnel_keyless") return l.keyless;
    if (map == "mn_routes4" || map == "mn_routes6") return l.routes;
    if (map == "mn_prefixes4" || map == "mn_prefixes6") return l.prefixes;
    if (map == "stations") return l.stations;
    if (map == "route_cache") return l.route_cache;
    return 0;  // fixed in the object
}

std::uint32_t wanted_entries(const std::string& map, const Limits& l) {
    const auto n = limit_value(map, l);
    return map == "sessions" && n ? n + 1 : n;   // sessions: index 0 unused
}

void size_maps(bpf_object* obj, const Limits& limits) {
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
        const std::string name = bpf_map__name(map);
        if (const auto n = wanted_entries(name, limits)) {
            if (int err = bpf_map__set_max_entries(map, n)) {
                throw DataplaneError(fmt::format("map {}: cannot size to {} entries: {}", name, n, std::strerror(-err)));
            }
        }
    }
}

// A map pinned by another build whose key or value differs from this build's would be misread
// (libbpf only refuses it with EINVAL): name it and its sizes before loading.
void check_pinned_layout(bpf_object* obj, const fs::path& pin_dir) {
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, obj) {
        const fs::path path = pin_dir / bpf_map__name(map);
        if (!fs::exists(path)) {
            continue;
        }
        UniqueFd fd(bpf_obj_get(path.c_str()));
        bpf_map_info info{};
        std::uint32_t len = sizeof(info);
        if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
            continue;   // (libbpf's own error follows)
        }
        if (info.key_size != bpf_map__key_size(map) || info.value_size != bpf_map__value_size(map) ||
            info.type != static_cast<std::uint32_t>(bpf_map__type(map))) {
            throw DataplaneError(fmt::format(
                "pinned map {} was made by another build: key {} / value {} octets (type {}), this build's are "
                "{} / {} (type {}); the map layout changed, so its entries cannot be kept across this upgrade "
                "(`xpmip-dp -i <instance> unload` removes them; the agents then register every MN again)",
                path.string(), info.key_size, info.value_size, info.type, bpf_map__key_size(map),
                bpf_map__value_size(map), static_cast<unsigned>(bpf_map__type(map))));
        }
    }
}

template <class Skel>
SkelPtr<Skel> load_skeleton(Skel* (*open_opts)(const bpf_object_open_opts*), int (*load)(Skel*),
                            void (*destroy)(Skel*), const char* what, const fs::path& pin_dir, const Limits& limits,
                            const std::function<void(Skel&)>& before_load = {}) {
    const std::string pin_root = pin_dir.string();
    auto opts = libbpf_opts<bpf_object_open_opts>();
    opts.pin_root_path = pin_root.c_str();
    SkelPtr<Skel> skel(open_opts(&opts), SkelDeleter<Skel>{destroy});
    if (!skel) {
        throw DataplaneError(fmt::format("cannot open the {} BPF object: {}", what, std::strerror(errno)));
    }
    size_maps(skel->obj, limits);
    check_pinned_layout(skel->obj, pin_dir);
    if (before_load) {
        before_load(*skel);
    }
    if (int err = load(skel.get())) {
        throw DataplaneError(fmt::format(
            "cannot load the {} BPF program: {} (the kernel log above says why; pinned maps under {} that "
            "were created with other sizes must be removed with `unload` first)",
            what, std::strerror(-err), pin_root));
    }
    return skel;
}

int ifindex_of(const std::string& name) {
    const unsigned idx = if_nametoindex(name.c_str());
    if (idx == 0) {
        throw DataplaneError(fmt::format("interface '{}' does not exist", name));
    }
    return static_cast<int>(idx);
}

fs::path xdp_link_pin(const fs::path& pin_dir, const std::string& ifname) { return pin_dir / "links" / ("xdp_" + ifname); }

void tc_attach(int ifindex, bpf_tc_attach_point point, int prog_fd, const std::string& ifname) {
    auto hook = tc_hook(ifindex, point);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) {
        throw DataplaneError(fmt::format("interface {}: cannot create the clsact qdisc: {}", ifname, std::strerror(-err)));
    }
    auto opts = libbpf_opts<bpf_tc_opts>();
    opts.handle = kTcHandle;
    opts.priority = 1;
    opts.prog_fd = prog_fd;
    opts.flags = BPF_TC_F_REPLACE;
    if ((err = bpf_tc_attach(&hook, &opts))) {
        throw DataplaneError(fmt::format("interface {}: cannot attach the tc {} program: {}", ifname,
                                         point == BPF_TC_INGRESS ? "ingress" : "egress", std::strerror(-err)));
    }
}

void tc_detach(int ifindex, bpf_tc_attach_point point) {
    auto hook = tc_hook(ifindex, point);
    auto opts = libbpf_opts<bpf_tc_opts>();
    opts.handle = kTcHandle;
    opts.priority = 1;
    bpf_tc_detach(&hook, &opts);  // ENOENT: nothing of ours there
}

xpmip_config read_config(const MapSet& maps) {
    const std::uint32_t zero = 0;
    xpmip_config c{};
    maps.lookup(MapId::Config, &zero, &c);
    return c;
}

void detach_all(const MapSet& maps, const fs::path& pin_dir) {
    for (const auto& k : maps.keys(MapId::Ifaces, sizeof(std::uint32_t))) {
        std::uint32_t ifindex;
        std::memcpy(&ifindex, k.data(), sizeof ifindex);
        tc_detach(static_cast<int>(ifindex), BPF_TC_INGRESS);
        tc_detach(static_cast<int>(ifindex), BPF_TC_EGRESS);
        maps.erase(MapId::Ifaces, &ifindex);
    }
    std::error_code ec;
    // Removing a link's last reference (its pin; our fds are closed) detaches the program.
    fs::remove_all(pin_dir / "links", ec);
}

void remove_instance_dir(const fs::path& pin_dir) {
    std::error_code ec;
    for (std::size_t i = 0; i < kMapCount; ++i) {
        fs::remove(pin_dir / map_name(static_cast<MapId>(i)), ec);
    }
    fs::remove_all(pin_dir, ec);
    fs::remove(pin_dir.parent_path(), ec);  // only when empty
}

} // namespace

struct Dataplane::Skeletons {
    SkelPtr<xdp_gateway> xdp{nullptr, {xdp_gateway__destroy}};
    SkelPtr<tc_ingress> ingress{nullptr, {tc_ingress__destroy}};
    SkelPtr<tc_egress> egress{nullptr, {tc_egress__destroy}};
};

Dataplane::Dataplane(const DataplaneOptions& options)
    : options_(options), pin_dir_(options.pin_root / options.instance), skel_(std::make_unique<Skeletons>()),
      sessions_(maps_, options.role) {
    libbpf_set_print(libbpf_log);
    options_.limits = options.limits.resolved();
    if (options_.instance.empty() || options_.instance.find('/') != std::string::npos) {
        throw DataplaneError(fmt::format("instance name '{}' must be a non-empty name without '/'", options_.instance));
    }
    ensure_bpffs(options_.pin_root);
    std::error_code ec;
    fs::create_directories(pin_dir_ / "links", ec);
    if (ec) {
        throw DataplaneError(fmt::format("cannot create {}: {} (is bpffs mounted on {}?)", pin_dir_.string(),
                                         ec.message(), options.pin_root.parent_path().string()));
    }
    // A restarted instance finds its maps: check they fit this configuration before libbpf does.
    if (MapSet::pinned(pin_dir_)) {
        const auto pinned = MapSet::open_pinned(pin_dir_);
        const auto cfg = read_config(pinned);
        if (cfg.role && cfg.abi_version != XPMIP_MAP_ABI_VERSION) {
            throw DataplaneError(fmt::format(
                "instance '{}': its pinned maps have map ABI version {}, this build's is {}: they cannot be kept "
                "across this upgrade (`xpmip-dp -i {} unload` removes them and their sessions; the agents then "
                "register every MN again)",
                options_.instance, cfg.abi_version, XPMIP_MAP_ABI_VERSION, options_.instance));
        }
        if (cfg.role && cfg.role != static_cast<std::uint32_t>(options_.role)) {
            throw DataplaneError(fmt::format("instance '{}' was loaded as {}; unload it before loading it as {}",
                                             options_.instance, to_string(static_cast<Role>(cfg.role)),
                                             to_string(options_.role)));
        }
        for (std::size_t i = 0; i < kMapCount; ++i) {
            const auto id = static_cast<MapId>(i);
            const auto want = wanted_entries(map_name(id), options_.limits);
            if (want && pinned.max_entries(id) != want) {
                // In the limit's own units (the sessions array has one more entry: index 0 unused).
                const auto reserved = want - limit_value(map_name(id), options_.limits);
                throw DataplaneError(fmt::format(
                    "instance '{}': pinned map {} is sized for {} but the configuration asks for {} (limits.{}); "
                    "unload the instance to resize it, or keep the old size",
                    options_.instance, map_name(id), pinned.max_entries(id) - reserved, want - reserved,
                    limit_name(id)));
            }
        }
    }
    // The cpumap program only when spreading: verifying it doubles the XDP object's load time.
    const bool spread = !options_.spread_cpus.empty();
    skel_->xdp = load_skeleton<xdp_gateway>(
        xdp_gateway__open_opts, xdp_gateway__load, xdp_gateway__destroy, "XDP", pin_dir_, options_.limits,
        [spread](xdp_gateway& s) { bpf_program__set_autoload(s.progs.xpmip_xdp_cpumap, spread); });
    skel_->ingress = load_skeleton<tc_ingress>(tc_ingress__open_opts, tc_ingress__load, tc_ingress__destroy,
                                               "tc ingress", pin_dir_, options_.limits);
    skel_->egress = load_skeleton<tc_egress>(tc_egress__open_opts, tc_egress__load, tc_egress__destroy,
                                             "tc egress", pin_dir_, options_.limits);
    maps_ = MapSet::from_object(skel_->xdp->obj);
    const std::uint32_t zero = 0;
    configure_spread();
    // A restart keeps counting generations: entries the previous agent cached become stale.
    const auto previous = read_config(maps_);
    const xpmip_config cfg{static_cast<std::uint32_t>(options_.role), options_.limits.sessions + 1,
                           static_cast<std::uint32_t>(options_.spread_cpus.size()), previous.route_generation + 1,
                           options_.route_cache ? static_cast<std::uint32_t>(XPMIP_CONFIG_ROUTE_CACHE) : 0u,
                           options_.route_cache_ttl_ms, XPMIP_MAP_ABI_VERSION};
    maps_.update(MapId::Config, &zero, &cfg);
}

void Dataplane::invalidate_routes() { dataplane::invalidate_routes(maps_); }

void invalidate_routes(const MapSet& maps) {
    const std::uint32_t zero = 0;
    auto cfg = read_config(maps);
    ++cfg.route_generation;
    maps.update(MapId::Config, &zero, &cfg);
}

// The cpumap entries (one kernel thread and queue per CPU, running xpmip_xdp_cpumap) and the
// slots the XDP program's flow hash picks from; CPUs no longer listed lose their entry.
void Dataplane::configure_spread() {
    constexpr std::uint32_t kQueueSize = 2048;   // frames queued per CPU (the kernel samples' default)
    const auto& cpus = options_.spread_cpus;
    const int ncpus = possible_cpus();
    std::vector<bool> wanted(XPMIP_MAX_SPREAD_CPUS, false);
    for (const unsigned cpu : cpus) {
        if (cpu >= XPMIP_MAX_SPREAD_CPUS || static_cast<int>(cpu) >= ncpus) {
            throw DataplaneError(fmt::format("spread_cpus: CPU {} does not exist (this host has CPUs 0-{}{})", cpu,
                                             ncpus - 1, ncpus > XPMIP_MAX_SPREAD_CPUS ? ", of which 0-255 can spread" : ""));
        }
        wanted[cpu] = true;
    }
    const int prog_fd = cpus.empty() ? -1 : bpf_program__fd(skel_->xdp->progs.xpmip_xdp_cpumap);
    for (std::uint32_t cpu = 0; cpu < XPMIP_MAX_SPREAD_CPUS; ++cpu) {
        if (wanted[cpu]) {
            bpf_cpumap_val v{};
            v.qsize = kQueueSize;
            v.bpf_prog.fd = prog_fd;
            if (bpf_map_update_elem(maps_.fd(MapId::CpuMap), &cpu, &v, BPF_ANY) != 0) {
                throw DataplaneError(fmt::format("spread_cpus: cannot start the cpumap queue of CPU {}: {}", cpu,
                                                 std::strerror(errno)));
            }
        } else {
            maps_.erase(MapId::CpuMap, &cpu);
        }
    }
    for (std::uint32_t slot = 0; slot < cpus.size(); ++slot) {
        const std::uint32_t cpu = cpus[slot];
        maps_.update(MapId::SpreadCpus, &slot, &cpu);
    }
}

Dataplane::~Dataplane() = default;

namespace {

// What the kernel says of the link: its MAC, MTU and first addresses.
void copy_link_state(xpmip_iface& v, const netlink::InterfaceInfo& info) {
    std::memcpy(v.mac, info.mac.bytes.data(), 6);
    v.mtu = static_cast<std::uint16_t>(std::min(info.mtu, 65535u));
    std::memset(v.addr4, 0, sizeof v.addr4);
    std::memset(v.addr6, 0, sizeof v.addr6);
    if (!info.ipv4.empty()) {
        std::memcpy(v.addr4, info.ipv4.front().bytes.data(), 4);
    }
    if (!info.ipv6.empty()) {
        std::memcpy(v.addr6, info.ipv6.front().bytes.data(), 16);
    }
}

} // namespace

void Dataplane::refresh_interface(const std::string& name) {
    const auto info = netlink::query_interface(name);
    const std::uint32_t ifindex = static_cast<std::uint32_t>(info.ifindex);
    xpmip_iface v{};
    if (!maps_.lookup(MapId::Ifaces, &ifindex, &v)) {
        throw DataplaneError(fmt::format("interface {} is not attached to instance '{}'", name, options_.instance));
    }
    copy_link_state(v, info);
    maps_.update(MapId::Ifaces, &ifindex, &v);
}

void Dataplane::attach(const InterfaceConfig& iface) {
    if (options_.role == Role::Lma && iface.kind == InterfaceKind::Access) {
        throw DataplaneError(fmt::format("interface {}: an LMA has no access interfaces (kinds: core, core-l2, tunnel)",
                                         iface.name));
    }
    if (options_.role == Role::Mag && (iface.kind == InterfaceKind::Core || iface.kind == InterfaceKind::CoreL2)) {
        throw DataplaneError(fmt::format("interface {}: a MAG has no core interfaces (kinds: access, tunnel)", iface.name));
    }
    const int ifindex = ifindex_of(iface.name);
    const std::uint32_t key = static_cast<std::uint32_t>(ifindex);
    // One write of the whole entry: a restarted agent overwrites the entry its predecessor's
    // program is reading, and an entry without its MAC for an instant makes that program pass
    // frames sent to us up to the stack (lost: issue 17).
    xpmip_iface v{};
    v.kind = static_cast<std::uint32_t>(iface.kind);
    v.realm = iface.realm;
    v.flags = iface.refuse_signaling ? XPMIP_IFACE_NO_SIGNALING : 0;
    copy_link_state(v, netlink::query_interface(iface.name));
    maps_.update(MapId::Ifaces, &key, &v);

    // XDP: replace our earlier program atomically, or attach anew in the asked-for mode.
    const int prog_fd = bpf_program__fd(skel_->xdp->progs.xpmip_xdp);
    const auto pin = xdp_link_pin(pin_dir_, iface.name);
    if (fs::exists(pin)) {
        UniqueFd link(bpf_obj_get(pin.c_str()));
        if (link && bpf_link_update(link.get(), prog_fd, nullptr) == 0) {
            spdlog::debug("interface {}: XDP program replaced", iface.name);
        } else {
            std::error_code ec;
            fs::remove(pin, ec);  // stale (interface re-created): attach anew below
        }
    }
    if (!fs::exists(pin)) {
        auto opts = libbpf_opts<bpf_link_create_opts>();
        opts.flags = iface.generic_xdp ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
        UniqueFd link(bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts));
        if (!link) {
            const int err = errno;
            maps_.erase(MapId::Ifaces, &key);
            if (err == EOPNOTSUPP || err == EINVAL) {
                throw DataplaneError(fmt::format(
                    "interface {}: its driver has no native XDP; attach in generic mode explicitly "
                    "(generic_xdp / --generic) if that is what you want", iface.name));
            }
            if (err == EBUSY || err == EEXIST) {
                throw DataplaneError(fmt::format("interface {} already has an XDP program that is not this instance's "
                                                 "(`ip link set dev {} xdp off` removes it)", iface.name, iface.name));
            }
            throw DataplaneError(fmt::format("interface {}: cannot attach XDP: {}", iface.name, std::strerror(err)));
        }
        if (bpf_obj_pin(link.get(), pin.c_str())) {
            throw DataplaneError(fmt::format("cannot pin the XDP link at {}: {}", pin.string(), std::strerror(errno)));
        }
    }
    tc_attach(ifindex, BPF_TC_INGRESS, bpf_program__fd(skel_->ingress->progs.xpmip_tc_ingress), iface.name);
    if (iface.kind == InterfaceKind::Tunnel) {
        tc_attach(ifindex, BPF_TC_EGRESS, bpf_program__fd(skel_->egress->progs.xpmip_tc_egress), iface.name);
    } else {
        tc_detach(ifindex, BPF_TC_EGRESS);
    }
}

void Dataplane::detach(const std::string& name) {
    const int ifindex = ifindex_of(name);
    tc_detach(ifindex, BPF_TC_INGRESS);
    tc_detach(ifindex, BPF_TC_EGRESS);
    std::error_code ec;
    fs::remove(xdp_link_pin(pin_dir_, name), ec);
    const std::uint32_t key = static_cast<std::uint32_t>(ifindex);
    maps_.erase(MapId::Ifaces, &key);
}

std::vector<AttachedInterface> Dataplane::interfaces() const {
    std::vector<AttachedInterface> out;
    for (const auto& k : maps_.keys(MapId::Ifaces, sizeof(std::uint32_t))) {
        AttachedInterface a;
        std::uint32_t ifindex;
        std::memcpy(&ifindex, k.data(), sizeof ifindex);
        a.ifindex = static_cast<int>(ifindex);
        a.name = netlink::interface_name(a.ifindex);
        maps_.lookup(MapId::Ifaces, &ifindex, &a.config);
        a.xdp = !a.name.empty() && fs::exists(xdp_link_pin(pin_dir_, a.name));
        out.push_back(a);
    }
    return out;
}

void Dataplane::unload() {
    detach_all(maps_, pin_dir_);
    remove_instance_dir(pin_dir_);
}

PinnedInstance open_pinned(const std::string& instance, const fs::path& pin_root) {
    ensure_bpffs(pin_root);
    auto maps = MapSet::open_pinned(pin_root / instance);
    const auto cfg = read_config(maps);
    if (cfg.role != XPMIP_ROLE_LMA && cfg.role != XPMIP_ROLE_MAG) {
        throw DataplaneError(fmt::format("instance '{}' has no role configured", instance));
    }
    return PinnedInstance{std::move(maps), static_cast<Role>(cfg.role)};
}

void unload_pinned(const std::string& instance, const fs::path& pin_root) {
    ensure_bpffs(pin_root);
    const auto dir = pin_root / instance;
    if (MapSet::pinned(dir)) {
        const auto maps = MapSet::open_pinned(dir);
        detach_all(maps, dir);
    }
    remove_instance_dir(dir);
}

} // namespace xpmip::dataplane
