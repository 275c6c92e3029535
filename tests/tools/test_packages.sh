#!/usr/bin/env bash
# The package set-up (tools/packages.sh, tools/bootstrap.sh, vmtest/run) against a machine where
# packages are missing, with fake dpkg-query / apt-get first on PATH, and a check that every
# package a script installs lazily is in tools/packages.txt (so that the bootstrap installs it up
# front and no test depends on a lazy install).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PASS=0 FAIL=0
ok() { echo "PASS: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL + 1)); }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

# ---- fakes: "installed" lists what dpkg knows; apt-get logs its arguments, fails when told to ----
mkdir -p "$W/bin"
cat >"$W/bin/dpkg-query" <<'FAKE'
#!/bin/bash
# dpkg-query -W -f=FORMAT PKG...: as dpkg-query does, exit 1 when any package is not installed
rc=0
for p in "$@"; do
  case $p in -*) continue ;; esac
  if grep -qx -- "$p" "$FAKE_DIR/installed"; then printf 'install ok installed'; else
    echo "dpkg-query: no packages found matching $p" >&2; rc=1; fi
done
exit $rc
FAKE
cat >"$W/bin/apt-get" <<'FAKE'
#!/bin/bash
echo "$*" >>"$FAKE_DIR/apt.log"
[ "${FAKE_APT_FAIL:-0}" = 0 ] || { echo "E: Unable to locate package" >&2; exit 100; }
exit 0
FAKE
chmod +x "$W/bin/"*
export FAKE_DIR=$W PATH="$W/bin:$PATH"
printf 'bash\ncoreutils\n' >"$W/installed"

# 1. xpmip_missing_packages under set -euo pipefail: the missing ones, in order, and no exit.
out=$(bash -c 'set -euo pipefail; source "$1/tools/packages.sh"; xpmip_missing_packages bash qemu-system-x86 coreutils cpio; echo done' _ "$REPO" 2>&1)
if [ "$out" = $'qemu-system-x86\ncpio\ndone' ]; then ok "missing packages listed, script goes on"; else
  bad "xpmip_missing_packages printed: $out"; fi

# 2. xpmip_need installs exactly the missing ones (as root), or says which are missing (not root).
: >"$W/apt.log"
out=$(bash -c 'set -euo pipefail; source "$1/tools/packages.sh"; xpmip_need bash qemu-system-x86 kmod; echo rc=$?' _ "$REPO" 2>&1)
if [ "$(id -u)" = 0 ]; then
  if grep -q 'install -y -qq --no-install-recommends qemu-system-x86 kmod$' "$W/apt.log" && [[ $out == *rc=0* ]]; then
    ok "xpmip_need installs the missing packages"; else bad "xpmip_need: out=$out apt=$(cat "$W/apt.log")"; fi
else
  if [[ $out == *"missing packages (qemu-system-x86 kmod)"* ]]; then ok "xpmip_need names the missing packages"; else
    bad "xpmip_need (not root): $out"; fi
fi
# 2b. nothing missing: apt-get is not called at all.
: >"$W/apt.log"
bash -c 'set -euo pipefail; source "$1/tools/packages.sh"; xpmip_need bash coreutils' _ "$REPO" >/dev/null 2>&1
if [ ! -s "$W/apt.log" ]; then ok "nothing missing: no apt-get"; else bad "apt-get called: $(cat "$W/apt.log")"; fi

# 3. vmtest/run on a machine without qemu gets as far as installing it (the bug: it died in
#    dpkg-query with exit 1). Here the install fails: vmtest says so and exits 125.
if [ "$(id -u)" = 0 ]; then
  : >"$W/apt.log"
  out=$(FAKE_APT_FAIL=1 VMTEST_VNG=0 VMTEST_CACHE="$W/cache" "$REPO/vmtest/run" true 2>&1); rc=$?
  if [ $rc = 125 ] && [[ $out == *"vmtest: could not install qemu-system-x86 busybox-static kmod cpio"* ]] &&
     grep -q 'qemu-system-x86' "$W/apt.log"; then
    ok "vmtest/run without qemu tries to install it and says why it stops (exit 125)"
  else
    bad "vmtest/run without qemu: rc=$rc out=$out"
  fi
fi

# 4. Every package installed lazily is in tools/packages.txt; nothing else calls apt-get install.
source "$REPO/tools/packages.sh"
mapfile -t listed < <(xpmip_package_list "$REPO/tools/packages.txt")
cd "$REPO"
scripts=()
while IFS= read -r f; do
  case $f in *.md|*.cpp|*.hpp|*.h|*.c|*.txt|*.yaml|tools/packages.sh|tests/tools/*) continue ;; esac
  # shell scripts: *.sh, or a bash/sh shebang
  [ -f "$f" ] || continue
  [[ $f == *.sh ]] || head -n1 "$f" | grep -qE '^#!.*\b(ba)?sh\b' || continue
  scripts+=("$f")
done < <(git ls-files 2>/dev/null || find . -type f -not -path './.git/*' -not -path './build*' | sed 's|^\./||')
lazy=0
for f in "${scripts[@]}"; do
  while IFS= read -r line; do
    rest=${line#*xpmip_need }; rest=${rest%%||*}; rest=${rest%%;*}
    for p in $rest; do
      [[ $p == \"* || $p == \$* ]] && continue
      lazy=$((lazy + 1))
      printf '%s\n' "${listed[@]}" | grep -qx -- "$p" || bad "$f installs $p lazily, but tools/packages.txt does not list it"
    done
  done < <(grep -E '^[^#]*\bxpmip_need [a-z0-9]' "$f")
  if grep -nE '^[^#]*apt-get +install' "$f" >/dev/null; then
    bad "$f calls apt-get install itself (use xpmip_need from tools/packages.sh): $(grep -nE '^[^#]*apt-get +install' "$f" | head -1)"
  fi
done
if [ $lazy -gt 0 ]; then ok "$lazy lazily installed package names, all in tools/packages.txt"; else
  bad "found no xpmip_need call (vmtest/run has some): the scan is broken"; fi

echo "$PASS passed, $FAIL failed"
[ $FAIL = 0 ]
