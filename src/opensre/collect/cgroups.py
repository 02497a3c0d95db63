"""cgroup id -> path. A cgroup's id is the inode number of its directory in
cgroupfs (kernfs), so a walk of the hierarchy maps ids to paths. Supports the v2
(unified) hierarchy and the v1 memory hierarchy of hybrid hosts. Root injectable."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cgroup_mounts(mountinfo: str) -> dict[str, Path]:
    """Mount points from /proc/self/mountinfo text: 'v2' for the unified hierarchy,
    and each v1 controller we read ('memory', 'cpu', 'cpuset') by name."""
    out: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        parts = line.split()
        try:
            sep = parts.index("-")
        except ValueError:
            continue
        fstype, opts = parts[sep + 1], parts[sep + 3] if len(parts) > sep + 3 else ""
        if fstype == "cgroup2":
            out.setdefault("v2", Path(parts[4]))
        elif fstype == "cgroup":
            for c in ("memory", "cpu", "cpuset"):
                if c in opts.split(","):
                    out.setdefault(c, Path(parts[4]))
    return out


def _mounts(mountinfo: str) -> tuple[Path | None, Path | None]:
    """(v2 mount point, v1 memory mount point)."""
    m = cgroup_mounts(mountinfo)
    return m.get("v2"), m.get("memory")


class CgroupResolver:
    """Caches id -> path per hierarchy; rescans on a miss, since new cgroups appear all
    the time (containers, Slurm steps). A cgroup's id is its kernfs node id, which only
    grows: a miss above the largest id the last scan saw is a cgroup made since, and is
    rescanned for at once (its process may be gone by the next scan: an OOM-killed job
    in a fresh cgroup). A miss below it is a cgroup already gone; those rescan at most
    every RESCAN_INTERVAL_S."""

    RESCAN_INTERVAL_S = 0.5

    def __init__(self, v2_root: str | Path | None = None, v1_memory_root: str | Path | None = None,
                 mountinfo: str = "/proc/self/mountinfo"):
        if v2_root is None and v1_memory_root is None:
            try:
                v2_root, v1_memory_root = _mounts(Path(mountinfo).read_text())
            except OSError:
                pass
        self.roots = {"v2": Path(v2_root) if v2_root else None,
                      "v1": Path(v1_memory_root) if v1_memory_root else None}
        self._cache: dict[str, dict[int, str]] = {"v2": {}, "v1": {}}
        self._scanned: dict[str, float] = {"v2": 0.0, "v1": 0.0}
        self._newest: dict[str, int] = {"v2": 0, "v1": 0}  # the largest id the last scan saw

    def _scan(self, h: str) -> None:
        root = self.roots[h]
        self._scanned[h] = time.monotonic()
        if root is None:
            return
        cache = self._cache[h]
        for dirpath, dirnames, _ in os.walk(root):
            try:
                ino = os.stat(dirpath).st_ino
            except OSError:
                continue
            rel = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else "/"
            cache[ino] = rel.replace("/./", "/") if rel != "/." else "/"
            self._newest[h] = max(self._newest[h], ino)

    def path(self, cgroup_id: int, hierarchy: str = "v2") -> str | None:
        if not cgroup_id:
            return None
        cache = self._cache[hierarchy]
        p = cache.get(cgroup_id)
        if p is None and (cgroup_id > self._newest[hierarchy]
                          or time.monotonic() - self._scanned[hierarchy] > self.RESCAN_INTERVAL_S):
            self._scan(hierarchy)
            p = cache.get(cgroup_id)
        return p

    def effective(self, v2_id: int, v1_memory_id: int) -> tuple[int | None, str | None]:
        """The cgroup that says most about where a process runs: the v2 cgroup when
        it is not the root, else the v1 memory cgroup (hybrid hosts), else the root."""
        p2 = self.path(v2_id, "v2") if v2_id else None
        if v2_id and p2 not in (None, "/"):
            return v2_id, p2
        if v1_memory_id:
            p1 = self.path(v1_memory_id, "v1")
            if p1 is not None:
                return v1_memory_id, p1
        return (v2_id or None), p2
