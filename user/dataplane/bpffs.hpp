// bpffs where the pins go. `ip netns exec` runs its command in a new mount namespace with a fresh
// /sys, which has no bpffs: pins made there would be invisible to the host (bpftool, a restarted
// agent) or fail. ensure_bpffs makes the pin root's mount point bpffs before anything is pinned:
//   - already bpffs: nothing to do;
//   - a mount namespace other than the caller's (ip netns exec): join the nearest ancestor's whose
//     /sys/fs/bpf is bpffs (a mount cannot be bound across namespaces), keeping the working
//     directory, so the pins are the host's own;
//   - the host's mount namespace with nothing mounted: mount bpffs (as tools/bootstrap.sh does).
// Otherwise it throws, saying what to run instead. A pin root other than /sys/fs/bpf/... must
// already be on bpffs.
#pragma once

#include <filesystem>

namespace xpmip::dataplane {

void ensure_bpffs(const std::filesystem::path& pin_root);

} // namespace xpmip::dataplane
