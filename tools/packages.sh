# Debian package helpers, sourced by tools/bootstrap.sh and vmtest/run (bash; safe under
# `set -euo pipefail`). Every package a script or test needs is listed in tools/packages.txt and
# installed up front by the bootstrap; xpmip_need is the one place a script may install from, so
# that a script run on its own still works, and tests/tools/test_packages.sh checks that every
# package named in an xpmip_need call is in the list.

# The packages among "$@" that are not installed, one per line. dpkg-query exits non-zero when any
# of them is unknown to dpkg: that is an answer ("missing"), never a reason to stop the script.
xpmip_missing_packages() {
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=''
        [[ $status == *' ok installed' ]] || printf '%s\n' "$p"
    done
}

# Read tools/packages.txt (or $1): one package per line, '#' comments and blank lines ignored.
xpmip_package_list() {
    local line
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [[ -n $line ]] && printf '%s\n' "$line"
    done <"$1"
}

# Install the packages among "$@" that are missing (apt-get; lists refreshed once when the first
# attempt fails). Returns non-zero, with apt's output on stderr, when they cannot be installed.
xpmip_need() {
    local missing=() log rc=0
    mapfile -t missing < <(xpmip_missing_packages "$@")
    ((${#missing[@]})) || return 0
    if [[ $EUID -ne 0 ]]; then
        echo "missing packages (${missing[*]}): run as root to install them" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    log=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt-get update -qq >"$log" 2>&1 || true   # a fresh machine has no package lists yet
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        apt-get update -qq >>"$log" 2>&1 || true
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || rc=$?
    fi
    ((rc == 0)) || cat "$log" >&2
    rm -f "$log"
    return "$rc"
}
