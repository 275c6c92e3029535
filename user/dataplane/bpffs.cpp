#include "dataplane/bpffs.hpp"

#include "dataplane/dataplane.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace xpmip::dataplane {

namespace fs = std::filesystem;

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;   // BPF_FS_MAGIC, linux/magic.h

bool is_bpffs(const fs::path& dir) {
    struct statfs st {};
    return statfs(dir.c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
}

std::string mount_namespace(const std::string& pid) {
    std::error_code ec;
    auto ns = fs::read_symlink("/proc/" + pid + "/ns/mnt", ec);
    return ec ? std::string() : ns.string();
}

std::string parent_of(const std::string& pid) {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) {
        return {};
    }
    std::istringstream rest(line.substr(close + 1));
    std::string state, ppid;
    rest >> state >> ppid;
    return ppid;
}

// Our ancestors (ip netns exec's caller first), then init: the processes whose mount namespace
// may hold the host's bpffs.
std::vector<std::string> ancestors() {
    std::vector<std::string> out;
    for (std::string pid = parent_of("self"); !pid.empty() && pid != "0" && out.size() < 64; pid = parent_of(pid)) {
        out.push_back(pid);
        if (pid == "1") {
            return out;
        }
    }
    out.push_back("1");
    return out;
}

// A mount cannot be bound from another mount namespace; joining the caller's is what works. The
// agent needs nothing of the fresh /sys ip netns exec made (it asks netlink, of its own network
// namespace); the working directory is kept.
void join_mount_namespace(const std::string& pid, const fs::path& dir) {
    const int ns = open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
    const int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    const bool joined = ns >= 0 && setns(ns, CLONE_NEWNS) == 0;
    const int err = errno;
    if (cwd >= 0) {
        if (fchdir(cwd) != 0) {
            spdlog::warn("keeping the working directory after joining the host's mount namespace failed: {}",
                         std::strerror(errno));
        }
        close(cwd);
    }
    if (ns >= 0) {
        close(ns);
    }
    if (!joined || !is_bpffs(dir)) {
        throw DataplaneError(fmt::format("{} is not bpffs in this mount namespace (ip netns exec remounts /sys) and "
                                         "joining the caller's failed ({}): run as `nsenter --net=/run/netns/NAME "
                                         "xpmip ...` instead", dir.string(),
                                         joined ? "no bpffs there either" : std::strerror(err)));
    }
    spdlog::info("{} was not bpffs in this mount namespace (ip netns exec remounts /sys): joined the caller's mount "
                 "namespace, so the pins are the host's", dir.string());
}

} // namespace

void ensure_bpffs(const fs::path& pin_root) {
    // Only the default place is mounted or bound; a pin root elsewhere is the operator's to mount.
    if (is_bpffs(pin_root.parent_path()) || (fs::exists(pin_root) && is_bpffs(pin_root))) {
        return;
    }
    const fs::path dir = pin_root.parent_path();
    if (dir != kDefaultPinRoot.parent_path()) {
        throw DataplaneError(fmt::format("{} is not on bpffs: mount it first (mount -t bpf bpf {})",
                                         pin_root.string(), dir.string()));
    }
    // ip netns exec: the caller's mount namespace (or init's) still has the host's bpffs.
    const std::string ours = mount_namespace("self");
    bool other_namespace = false;
    for (const auto& pid : ancestors()) {
        const std::string theirs = mount_namespace(pid);
        if (theirs.empty() || theirs == ours) {
            continue;
        }
        other_namespace = true;
        if (is_bpffs(fs::path("/proc") / pid / "root" / dir.relative_path())) {
            join_mount_namespace(pid, dir);
            return;
        }
    }
    if (!other_namespace) {
        // The host's own mount namespace without bpffs (as on a fresh machine): mount it.
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (mount("bpf", dir.c_str(), "bpf", 0, "mode=0700") == 0) {
            spdlog::info("mounted bpffs on {}", dir.string());
            return;
        }
        throw DataplaneError(fmt::format("{} is not bpffs and mounting it failed: {} (mount -t bpf bpf {})",
                                         dir.string(), std::strerror(errno), dir.string()));
    }
    throw DataplaneError(fmt::format(
        "{} is not bpffs in this mount namespace, and the host's is not reachable: run as "
        "`nsenter --net=/run/netns/NAME xpmip ...` (ip netns exec remounts /sys), or mount bpffs there first",
        dir.string()));
}

} // namespace xpmip::dataplane
