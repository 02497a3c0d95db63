"""Workloads with a known bottleneck, for tune's tests. Flags such as --threads
and -Xmx are accepted and ignored on purpose: the point is a tool that asks for
more than it uses.

  burn S [--threads N]      one thread on a CPU for S seconds
  fsync S DIR               4 KiB writes, each followed by fsync, for S seconds
  sleep S                   nothing at all for S seconds
  alloc MIB [-Xmx2g]        touch MIB MiB, hold it briefly
  hog                       allocate until something stops it (OOM)
"""

import os
import sys
import time


def burn(s: float) -> None:
    end = time.process_time() + s
    x = 0
    while time.process_time() < end:
        x += 1
    # the kernel's figures for this process, for tests to judge tune's against:
    # on-CPU ns (schedstat), lifetime so far (boot-time clock minus start), threads
    cpu_ns = int(open("/proc/self/schedstat").read().split()[0])
    start_s = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    life_ns = int((time.clock_gettime(time.CLOCK_BOOTTIME) - start_s) * 1e9)
    threads = int(open("/proc/self/status").read().split("Threads:")[1].split()[0])
    print(f"burn cpu_ns={cpu_ns} life_ns={life_ns} threads={threads}", flush=True)


def fsync(s: float, d: str) -> None:
    path = os.path.join(d, f"fsync.{os.getpid()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    end = time.monotonic() + s
    buf = b"x" * 4096
    while time.monotonic() < end:
        os.write(fd, buf)
        os.fsync(fd)
    os.close(fd)
    os.unlink(path)


def alloc(mib: int) -> None:
    b = bytearray(mib << 20)
    for i in range(0, len(b), 4096):
        b[i] = 1
    time.sleep(0.3)


def hog() -> None:
    keep = []
    while True:
        b = bytearray(16 << 20)
        for i in range(0, len(b), 4096):
            b[i] = 1
        keep.append(b)


if __name__ == "__main__":
    mode, args = sys.argv[1], [a for a in sys.argv[2:] if not a.startswith("-")]
    if mode == "burn":
        burn(float(args[0]))
    elif mode == "fsync":
        fsync(float(args[0]), args[1])
    elif mode == "sleep":
        time.sleep(float(args[0]))
    elif mode == "alloc":
        alloc(int(args[0]))
    elif mode == "hog":
        hog()
