#!/bin/bash
# Runs inside the guest kernel (virtme-ng): the kernel test tier against the
# host's checkout, which the guest sees read-only over 9p. SQLite WAL does not
# work on 9p, so everything written goes to tmpfs (/dev/shm).
# usage: guest.sh OUTDIR MODROOT [PYTEST ARGS...]
#   MODROOT: the unpacked kernel package (MODROOT/lib/modules/<ver>, depmod'ed);
#   virtme-ng's own /lib/modules in the guest holds only its boot modules
set -u
out=$1 modroot=$2; shift 2
cd "$(dirname "$0")/../.."
# the I/O tests need a block device under their files (tmpfs has no storage
# I/O to account): an ext4 image on a loop device, itself in tmpfs
disk=/dev/shm/disk
mkdir -p $disk
truncate -s 768M /dev/shm/disk.img
mkfs.ext4 -q -F /dev/shm/disk.img
modprobe -d "$modroot" -a loop ext4
# the network attribution test: a veth pair into a namespace, a shaped link
modprobe -d "$modroot" -a veth sch_tbf
mount -o loop /dev/shm/disk.img $disk || { echo "cannot mount the test disk" >&2; exit 1; }
export TMPDIR=$disk/tmp CI=true PYTHONDONTWRITEBYTECODE=1 HOME=$disk/home OPENSRE_ACCURACY_OUT=$out/accuracy.json
mkdir -p "$TMPDIR" "$HOME"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null
echo "guest kernel $(uname -r), $(nproc) CPUs"
.venv/bin/opensre doctor > "$out/doctor.txt" 2>&1
echo "doctor rc=$?"; cat "$out/doctor.txt"
[ $# -gt 0 ] || set -- -m guest tests/kernel
# the guest runs the tests marked `guest`: those whose probes differ by kernel (TCG
# makes each test ~10x slower, the whole tier would take half an hour). -v writes each
# test's name as it starts. Each takes 5-30 s here: one stuck for 90 s gets its stacks
# dumped and fails at 2 minutes (the others still run).
.venv/bin/python -m pytest -v -p no:cacheprovider --basetemp=$disk/pytest -o faulthandler_timeout=90 \
    --timeout=120 \
    --junitxml="$out/junit.xml" "$@" > "$out/pytest.txt" 2>&1
rc=$?
tail -n 30 "$out/pytest.txt"
echo "$rc" > "$out/rc"
