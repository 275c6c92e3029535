#!/usr/bin/env bash
# Shared set-up for ./run-lab and ./run-tests: install what is missing (Debian bookworm, apt),
# make sure bpffs is mounted, then configure and build with CMake + Ninja.
# Sourced, not executed: it defines xpmip_bootstrap and leaves the build in $XPMIP_BUILD.
set -euo pipefail

XPMIP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XPMIP_BUILD=${XPMIP_BUILD:-$XPMIP_ROOT/build}

xpmip_log() { printf '\033[1m[xpmip]\033[0m %s\n' "$*" >&2; }

source "$XPMIP_ROOT/tools/packages.sh"

xpmip_install_packages() {
    local all=()
    mapfile -t all < <(xpmip_package_list "$XPMIP_ROOT/tools/packages.txt")
    xpmip_need "${all[@]}" || { xpmip_log "could not install the packages of tools/packages.txt"; exit 1; }
}

xpmip_mount_bpffs() {
    mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

xpmip_build() {
    # clang for C++ too: BPF needs it anyway and the libFuzzer target lives in the same build.
    if [[ ! -f "$XPMIP_BUILD/build.ninja" ]]; then
        CC=clang CXX=clang++ cmake -S "$XPMIP_ROOT" -B "$XPMIP_BUILD" -G Ninja \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build "$XPMIP_BUILD" -j"$(nproc)"
}

xpmip_bootstrap() {
    xpmip_install_packages
    xpmip_mount_bpffs
    xpmip_build
}
