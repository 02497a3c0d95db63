"""Test cgroups under our own memory cgroup: the v1 memory hierarchy on hybrid
hosts, the unified hierarchy on pure v2 hosts. Real cgroupfs, no fakes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def memory_root() -> tuple[Path, str]:
    """(mount point, our cgroup path) of the hierarchy that carries the memory controller."""
    v1 = v2 = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            v1 = path
        elif hid == "0":
            v2 = path
    if v1 is not None and Path("/sys/fs/cgroup/memory").is_dir():
        return Path("/sys/fs/cgroup/memory"), v1
    base = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.controllers").exists() \
        else Path("/sys/fs/cgroup")
    return base, v2 or "/"


class CgroupSandbox:
    """Creates cgroups below ours; removes them (deepest first) on close."""

    def __init__(self):
        self.mount, self.own = memory_root()
        self.v1 = self.mount.name == "memory"
        self.made: list[Path] = []

    def make(self, rel: str, limit_bytes: int | None = None) -> Path:
        path = self.mount / self.own.lstrip("/") / rel.lstrip("/")
        parts = path.relative_to(self.mount).parts
        cur = self.mount
        for part in parts:
            cur = cur / part
            if not cur.exists():
                cur.mkdir()
                self.made.append(cur)
                if not self.v1:
                    parent_ctl = cur.parent / "cgroup.subtree_control"
                    try:
                        parent_ctl.write_text("+memory")
                    except OSError:
                        pass
        if limit_bytes is not None:
            if self.v1:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                (path / "memory.swappiness").write_text("0")
            else:
                (path / "memory.max").write_text(str(limit_bytes))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
        return path

    def close(self):
        for p in reversed(self.made):
            for _ in range(50):
                try:
                    os.rmdir(p)
                    break
                except OSError:
                    time.sleep(0.1)


@pytest.fixture
def cgroups():
    """A CgroupSandbox, cleaned up after the test (import it into the test module)."""
    cg = CgroupSandbox()
    yield cg
    cg.close()
