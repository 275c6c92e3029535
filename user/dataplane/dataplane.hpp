// Loading, sizing, pinning and attaching the data plane of one instance (an LMA or a MAG).
//
//   /sys/fs/bpf/xpmip/<instance>/<map>          maps (LIBBPF_PIN_BY_NAME), reused on restart
//   /sys/fs/bpf/xpmip/<instance>/links/xdp_<if> XDP links, replaced atomically on restart
//
// tc programs are attached as clsact filters (handle kTcHandle, priority 1) and replaced with
// BPF_TC_F_REPLACE. Attachments and maps outlive the process; unload() removes them all.
#pragma once

#include "dataplane/maps.hpp"
#include "dataplane/session_table.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace xpmip::dataplane {

inline constexpr std::uint32_t kTcHandle = 0x7870;  // "xp"
inline const std::filesystem::path kDefaultPinRoot = "/sys/fs/bpf/xpmip";

struct DataplaneOptions {
    std::string instance = "default";
    Role role = Role::Lma;
    Limits limits;
    std::filesystem::path pin_root = kDefaultPinRoot;
    // CPUs tunnel ingress is spread over (README "Every core for one tunnel"); none: every
    // packet is handled on the CPU that received it.
    std::vector<unsigned> spread_cpus;
    // The LMA uplink's route cache (README "Route cache"); off: a FIB lookup per packet.
    bool route_cache = true;
    std::uint32_t route_cache_ttl_ms = XPMIP_ROUTE_CACHE_TTL_MS;   // how long an entry may serve
};

struct InterfaceConfig {
    std::string name;
    InterfaceKind kind = InterfaceKind::Tunnel;
    std::uint32_t realm = 0;     // core/access: the realm; tunnel: key scope
    bool generic_xdp = false;    // native XDP unless asked for explicitly
    // No MAG or LMA is on this side: signaling arriving here is dropped in XDP (issue 17).
    bool refuse_signaling = false;
};

struct AttachedInterface {
    std::string name;
    int ifindex = 0;
    xpmip_iface config{};
    bool xdp = false;            // an XDP link of ours is pinned for it
};

class Dataplane {
public:
    // Load the programs (reusing the instance's pinned maps, which must have been created with
    // the same role and sizes: a mismatch is an error that says which and how to fix it).
    explicit Dataplane(const DataplaneOptions& options);
    ~Dataplane();
    Dataplane(const Dataplane&) = delete;
    Dataplane& operator=(const Dataplane&) = delete;

    Role role() const { return options_.role; }
    const std::filesystem::path& pin_dir() const { return pin_dir_; }
    const MapSet& maps() const { return maps_; }
    SessionTable& sessions() { return sessions_; }

    // Attach to an interface (native XDP on ingress, tc ingress, and tc egress on tunnel
    // interfaces), replacing an earlier attachment of this instance atomically.
    void attach(const InterfaceConfig& iface);
    // Re-read the interface's MAC, MTU and addresses into the ifaces map.
    void refresh_interface(const std::string& name);
    void detach(const std::string& name);
    std::vector<AttachedInterface> interfaces() const;

    // Routes, neighbours or links changed: the route cache's entries are stale (README "Route cache").
    void invalidate_routes();

    // Detach from every interface, unpin every map and link, remove the instance directory.
    void unload();

private:
    struct Skeletons;
    void configure_spread();
    DataplaneOptions options_;
    std::filesystem::path pin_dir_;
    std::unique_ptr<Skeletons> skel_;
    MapSet maps_;
    SessionTable sessions_;
};

// Open an instance's pinned maps without loading programs (tools, `xpmip show`).
struct PinnedInstance {
    MapSet maps;
    Role role;
    SessionTable sessions() const { return SessionTable(maps, role); }
};
PinnedInstance open_pinned(const std::string& instance, const std::filesystem::path& pin_root = kDefaultPinRoot);
// Move the route cache's generation: every entry is stale (README "Route cache").
void invalidate_routes(const MapSet& maps);
// Unload a pinned instance without loading programs: detach and unpin everything.
void unload_pinned(const std::string& instance, const std::filesystem::path& pin_root = kDefaultPinRoot);

} // namespace xpmip::dataplane
