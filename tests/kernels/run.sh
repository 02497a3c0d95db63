#!/usr/bin/env bash
# `make test-kernels`: boot each kernel of tests/kernels/kernels.txt under qemu
# (virtme-ng, the host's root filesystem read-only over 9p) and run the kernel
# test tier inside it; one summary line per kernel. As root (modules go to
# /lib/modules, the guest loads BPF). Extra arguments go to pytest in the guest.
#
# Facts this relies on (../shared/reference/kernels.md): nested KVM does not work
# on our machines, so qemu runs TCG (~25-50 s to boot); SQLite WAL fails on 9p,
# so the guest writes only to tmpfs and to the --rwdir result folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/build/kernels
venv=$root/.venv
mkdir -p "$work"

[ "$(id -u)" = 0 ] || { echo "make test-kernels needs root (it installs kernel modules and loads BPF)" >&2; exit 1; }
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v depmod >/dev/null || [ ! -x /bin/busybox ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 kmod busybox-static >/dev/null
fi
[ -x "$venv/bin/vng" ] || "$venv/bin/python" -m pip install -q virtme-ng
# vng runs virtme-run by name: the venv's bin must be on PATH
export PATH="$venv/bin:$PATH"

# a pattern's newest package: `*` stands for the Debian ABI number
newest() {
  local re="^$(sed -e 's/[.]/\\./g' -e 's/\*/[0-9]+/g' <<<"$1")\$"
  local pre="${1%%\**}"
  apt-cache pkgnames "$pre" | grep -E "$re" | sort -V | tail -n 1
}

status=0
summary=()
# the guest tier takes ~5 minutes under TCG, the whole kernel tier (ARGS=tests/kernel) ~30
limit=$([ $# -gt 0 ] && echo 3600 || echo 900)
while read -r pattern; do
  case "$pattern" in ''|'#'*) continue ;; esac
  pkg=$(newest "$pattern")
  if [ -z "$pkg" ]; then
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; pkg=$(newest "$pattern"); }
  fi
  [ -n "$pkg" ] || { summary+=("$pattern: no such package in the apt sources"); status=1; continue; }
  dir=$work/$pkg
  if [ ! -d "$dir/boot" ]; then
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && apt-get download -qq "$pkg" 2>/dev/null && dpkg -x ./*.deb root && rm -f ./*.deb)
    mv "$dir.tmp/root" "$dir" && rm -rf "$dir.tmp"
  fi
  vmlinuz=$(ls "$dir"/boot/vmlinuz-* | head -n 1)
  ver=${vmlinuz##*/vmlinuz-}
  # virtme-ng loads the guest's 9p/virtio modules from the host's /lib/modules
  if [ ! -e "/lib/modules/$ver/modules.dep" ]; then
    mkdir -p /lib/modules
    rm -rf "/lib/modules/$ver" && cp -a "$dir/lib/modules/$ver" "/lib/modules/$ver"
    depmod "$ver"
  fi
  [ -e "$dir/lib/modules/$ver/modules.dep.bin" ] || depmod -b "$dir" "$ver"  # the guest's modprobe -d
  # A wedged guest kernel (a lockup, an RCU stall, a task stuck in D) panics and
  # qemu exits with its stack on the console (--verbose: the kernel's messages are
  # kept there), instead of idling out the timeout.
  # A guest that ends without a result is booted again (three boots at most): the
  # summary names each such boot's fate and keeps its console, so an intermittent hang
  # stays visible (one was seen in about one boot of six under TCG, never on the host).
  out=""
  for boot in 1 2 3; do
    out=$work/out-$ver$([ $boot = 1 ] || echo ".boot$boot")
    rm -rf "$out" && mkdir -p "$out"
    t0=$(date +%s)
    echo "== booting $ver ($pkg), boot $boot"
    # the guest gets fresh tmpfs on /tmp and /var/tmp: hand it the checkout (wherever
    # it is) read-only, and the result folder read-write at /mnt (a mount inside the
    # read-only one would be hidden by it)
    mkdir -p /mnt
    timeout "${KERNEL_TEST_TIMEOUT:-$limit}" "$venv/bin/vng" --run "$vmlinuz" --user root --disable-kvm \
        --cpus 2 --memory 4G --rodir "$root" --rwdir "/mnt=$out" \
        --verbose --append "panic=-1 softlockup_panic=1 hung_task_panic=1 sysctl.kernel.hung_task_timeout_secs=240 sysctl.kernel.panic_on_rcu_stall=1" \
        --exec "bash $root/tests/kernels/guest.sh /mnt $dir $*" > "$out/console.txt" 2>&1 || true
    secs=$(( $(date +%s) - t0 ))
    [ ! -f "$out/rc" ] || break
    tail -n 40 "$out/console.txt" >&2
    [ -f "$out/pytest.txt" ] && { echo "-- the guest's pytest so far:"; tail -n 60 "$out/pytest.txt"; } >&2
    stuck=$(grep -E '^tests/.*::' "$out/pytest.txt" 2>/dev/null | tail -n 1 | grep -v -E 'PASSED|FAILED|ERROR|SKIPPED' || true)
    summary+=("$ver: boot $boot did not finish after ${secs}s${stuck:+, in ${stuck%% *}} (console: $out/console.txt)")
  done
  if [ ! -f "$out/rc" ]; then
    status=1
    continue
  fi
  tail -n 25 "$out/pytest.txt"
  counts=$("$venv/bin/python" - "$out/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s[0]
n, f, e, k = (int(s.get(x, 0)) for x in ("tests", "failures", "errors", "skipped"))
print(f"{n - f - e - k} passed, {f + e} failed, {k} skipped")
EOF
)
  fails=$(grep -c '^\[FAIL\]' "$out/doctor.txt" || true)
  summary+=("$ver: $counts; doctor $fails FAIL; ${secs}s")
  # the workload truth test's figures against the workload's own (getrusage, VmHWM, bytes it moved)
  [ ! -f "$out/accuracy.json" ] || summary+=("$ver: $("$venv/bin/python" - "$out/accuracy.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("accuracy vs the workload's own: " + ", ".join(f"{k} {100 * (a - b) / b:+.2f}%" for k, (a, b) in d.items()))
EOF
)")
  [ "$(cat "$out/rc")" = 0 ] && [ "$fails" = 0 ] || status=1
done < tests/kernels/kernels.txt

echo
echo "== kernel test summary"
printf '  %s\n' "${summary[@]}"
exit $status
