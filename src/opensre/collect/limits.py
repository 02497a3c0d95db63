"""What a cgroup gives its processes: CPU quota, cpuset size and memory limit,
read once per distinct cgroup when its first process is seen (cgroups of
containers, Slurm steps and pods vanish with them, so tune cannot read them later).

A limit is the tightest along the path to the root (limits are hierarchical).
v2: memory.max, cpu.max, cpuset.cpus.effective. v1: memory.limit_in_bytes,
cpu.cfs_quota_us/cpu.cfs_period_us, cpuset.effective_cpus. Roots injectable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .cgroups import cgroup_mounts

_UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages, ~2^63 bytes


@dataclass(frozen=True)
class Limits:
    cpu_limit_cores: float | None = None   # quota / period
    cpuset_cpus: int | None = None         # CPUs the cpuset allows, when fewer than the host has
    memory_limit_bytes: int | None = None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _chain(root: Path, rel: str):
    """The cgroup directory and its ancestors up to the hierarchy's root."""
    d = root / rel.strip("/")
    while True:
        yield d
        if d == root or root not in d.parents:
            return
        d = d.parent


def _cpus_in(spec: str) -> int:
    n = 0
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            n += int(b) - int(a) + 1
        elif part:
            n += 1
    return n


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


class LimitReader:
    def __init__(self, mountinfo: str = "/proc/self/mountinfo", host_cpus: int | None = None,
                 mounts: dict[str, Path] | None = None):
        if mounts is None:
            try:
                mounts = cgroup_mounts(Path(mountinfo).read_text())
            except OSError:
                mounts = {}
        self.mounts = mounts
        self.host_cpus = host_cpus or os.cpu_count() or 1

    def of_pid(self, pid: int, fallback: dict[str, str] | None = None) -> Limits:
        """Limits of a process's cgroups (from /proc/PID/cgroup); `fallback` gives
        controller -> path when the process is already gone."""
        paths = dict(fallback or {})
        text = _read(Path(f"/proc/{pid}/cgroup"))
        if text:
            for line in text.splitlines():
                hid, ctrls, path = line.split(":", 2)
                if hid == "0":
                    paths["v2"] = path
                for c in ctrls.split(","):
                    if c in ("memory", "cpu", "cpuset"):
                        paths[c] = path
        return self.of_paths(paths)

    def of_paths(self, paths: dict[str, str]) -> Limits:
        mem = cpu = cpuset = None
        v2root, v2 = self.mounts.get("v2"), paths.get("v2")
        if v2root is not None and v2 is not None:
            for d in _chain(v2root, v2):
                m = _read(d / "memory.max")
                if m and m != "max":
                    mem = _min(mem, int(m))
                c = _read(d / "cpu.max")
                if c and not c.startswith("max"):
                    q, p = c.split()
                    cpu = _min(cpu, int(q) / int(p))
            s = _read(v2root / v2.strip("/") / "cpuset.cpus.effective")
            if s:
                cpuset = _cpus_in(s)
        for ctrl, files in (("memory", ("memory.limit_in_bytes",)), ("cpu", ("cpu.cfs_quota_us", "cpu.cfs_period_us")),
                            ("cpuset", ("cpuset.effective_cpus",))):
            root, rel = self.mounts.get(ctrl), paths.get(ctrl)
            if root is None or rel is None:
                continue
            if ctrl == "cpuset":
                s = _read(root / rel.strip("/") / files[0])
                if s:
                    cpuset = _min(cpuset, _cpus_in(s))
                continue
            for d in _chain(root, rel):
                if ctrl == "memory":
                    m = _read(d / files[0])
                    if m and int(m) < _UNLIMITED_V1:
                        mem = _min(mem, int(m))
                else:
                    q, p = _read(d / files[0]), _read(d / files[1])
                    if q and p and int(q) > 0:
                        cpu = _min(cpu, int(q) / int(p))
        if cpuset is not None and cpuset >= self.host_cpus:
            cpuset = None
        return Limits(cpu, cpuset, mem)
