#!/usr/bin/env bash
# vmtest/run on a host whose /dev/kvm opens but whose guests die under KVM (seen on an Intel Xeon
# cloud VM): a fake qemu-system-x86_64 first on PATH hangs silently (or prints qemu's "KVM internal
# error") when given -accel kvm and runs the real qemu otherwise. vmtest/run must probe, fall back
# to TCG and run the command; a guest that dies under KVM mid-run must stop the run at once.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
[ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null || { echo "skipped: no /dev/kvm here, so vmtest/run never tries KVM"; exit 77; }
REAL=$(command -v qemu-system-x86_64) || { echo "FAIL: qemu-system-x86_64 is not installed (tools/packages.txt)"; exit 1; }
PASS=0 FAIL=0
ok() { echo "PASS: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL + 1)); }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bin"
cat >"$W/bin/qemu-system-x86_64" <<FAKE
#!/bin/bash
if [[ " \$* " == *" -accel kvm "* ]]; then
  [ "\${FAKE_KVM:-silent}" = silent ] || echo "KVM internal error. Suberror: 1" >&2
  exec sleep 600
fi
exec "$REAL" "\$@"
FAKE
chmod +x "$W/bin/qemu-system-x86_64"
export PATH="$W/bin:$PATH" VMTEST_VNG=0

# 1. Auto: the probe finds KVM dead, the command runs under TCG (a dead guest would time out: 125).
out=$(VMTEST_KVM_MEMO="$W/memo" "$REPO/vmtest/run" --timeout 600 'echo guest-ran-$((6 * 7))' 2>&1); rc=$?
if [ $rc = 0 ] && [[ $out == *guest-ran-42* ]] && [[ $out == *"KVM does not run guests on this host"* ]]; then
  ok "dead KVM probed, command ran under TCG"
else
  bad "auto accel: rc=$rc out=$out"
fi
[ "$(sed -n 2p "$W/memo" 2>/dev/null)" = 0 ] && ok "the verdict is remembered" || bad "memo: $(cat "$W/memo" 2>&1)"

# 2. Forced KVM whose guest dies with qemu's message: stopped at once (exit 125, says why), not at
#    the 600 s timeout (the ctest limit of this test is far below it).
out=$(FAKE_KVM=error VMTEST_ACCEL=kvm VMTEST_KVM_MEMO="$W/memo2" "$REPO/vmtest/run" --timeout 600 true 2>&1); rc=$?
if [ $rc = 125 ] && [[ $out == *"the guest died under KVM"* ]]; then ok "a guest dying under KVM ends the run"; else
  bad "forced kvm: rc=$rc out=$out"; fi

# 3. A bad VMTEST_ACCEL is refused by name.
out=$(VMTEST_ACCEL=fast "$REPO/vmtest/run" true 2>&1); rc=$?
[ $rc = 125 ] && [[ $out == *"VMTEST_ACCEL must be kvm, tcg or auto: fast"* ]] && ok "bad VMTEST_ACCEL refused" ||
  bad "VMTEST_ACCEL=fast: rc=$rc out=$out"
echo "$PASS passed, $FAIL failed"
[ $FAIL = 0 ]
