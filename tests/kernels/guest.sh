#!/bin/bash
# Runs inside the guest kernel (virtme-ng): the kernel test tier against the
# host's checkout, which the guest sees read-only over 9p. SQLite WAL does not
# work on 9p, so everything written goes to tmpfs (/dev/shm).
# usage: guest.sh OUTDIR [PYTEST ARGS...]
set -u
out=$1; shift
cd "$(dirname "$0")/../.."
export TMPDIR=/dev/shm/tmp CI=true PYTHONDONTWRITEBYTECODE=1 HOME=/dev/shm/home
mkdir -p "$TMPDIR" "$HOME"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null
echo "guest kernel $(uname -r), $(nproc) CPUs"
.venv/bin/opensre doctor > "$out/doctor.txt" 2>&1
echo "doctor rc=$?"; cat "$out/doctor.txt"
.venv/bin/python -m pytest -q -p no:cacheprovider --basetemp=/dev/shm/pytest \
    --junitxml="$out/junit.xml" "${@:-tests/kernel}" > "$out/pytest.txt" 2>&1
rc=$?
tail -n 30 "$out/pytest.txt"
echo "$rc" > "$out/rc"
