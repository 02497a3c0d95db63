"""Host-level samples (CPU utilisation, memory, PSI) from /proc, to put per-process records
in context: a slow task on a saturated or memory-starved host is a different finding from a
slow task on an idle one. The /proc root is injectable for fixture tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostSample:
    t_ns: int                         # time.time_ns() at sampling
    cpu_util: float | None            # 0..1 busy share of all CPUs since the previous sample
    cpu_count: int                    # online CPUs (cpuN lines in /proc/stat)
    mem_total_bytes: int
    mem_used_bytes: int               # MemTotal - MemAvailable
    psi_cpu_some_us: int | None       # cumulative stall time; None when PSI is absent
    psi_memory_some_us: int | None
    psi_memory_full_us: int | None
    psi_io_some_us: int | None
    psi_io_full_us: int | None


def parse_stat_cpu(text: str) -> tuple[int, int, int]:
    """(busy ticks, total ticks, cpu count) from /proc/stat text.

    Columns: user nice system idle iowait irq softirq steal guest guest_nice. guest and
    guest_nice are already included in user and nice, so only the first eight are summed.
    iowait counts as idle: the CPU was free to run something else."""
    busy = total = count = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            vals = [int(v) for v in line.split()[1:9]]
            vals += [0] * (8 - len(vals))  # very old kernels lack steal etc.
            total = sum(vals)
            busy = total - vals[3] - vals[4]
        elif line.startswith("cpu") and line[3:4].isdigit():
            count += 1
    return busy, total, count


def parse_meminfo(text: str) -> tuple[int, int]:
    """(total bytes, used bytes). MemAvailable exists since Linux 3.14; before it, the
    usual approximation is free + buffers + page cache."""
    kb: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            kb[key] = int(parts[0])
    total = kb.get("MemTotal", 0)
    avail = kb.get("MemAvailable")
    if avail is None:
        avail = kb.get("MemFree", 0) + kb.get("Buffers", 0) + kb.get("Cached", 0)
    return total * 1024, max(0, total - avail) * 1024


def parse_psi(text: str) -> dict[str, int]:
    """{"some": total_us, "full": total_us} from a /proc/pressure/* file."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        kind, *fields = line.split() or [""]
        for f in fields:
            if f.startswith("total="):
                out[kind] = int(f[6:])
    return out


class HostSampler:
    """Stateful: keeps the previous /proc/stat totals, because utilisation is only
    defined over an interval."""

    def __init__(self, proc_root: str | Path = "/proc"):
        self.root = Path(proc_root)
        self._prev: tuple[int, int] | None = None  # (busy, total) ticks at the last sample

    def _psi(self, resource: str) -> dict[str, int]:
        # Missing without CONFIG_PSI; unreadable (EOPNOTSUPP) when booted with psi=0.
        try:
            return parse_psi((self.root / "pressure" / resource).read_text())
        except (OSError, ValueError):
            return {}

    def sample(self, t_ns: int | None = None) -> HostSample:
        """Raises OSError only if /proc/stat or /proc/meminfo are unreadable (no /proc)."""
        t_ns = time.time_ns() if t_ns is None else t_ns
        busy, total, count = parse_stat_cpu((self.root / "stat").read_text())
        util = None
        if self._prev is not None:
            d_total = total - self._prev[1]
            if d_total > 0:
                # Clamp: per-CPU iowait can go backwards on NO_HZ kernels, skewing busy.
                util = min(1.0, max(0.0, (busy - self._prev[0]) / d_total))
        if util is not None or self._prev is None:
            self._prev = (busy, total)
        # else: no tick elapsed; keep the older baseline so the next interval is measurable.
        mem_total, mem_used = parse_meminfo((self.root / "meminfo").read_text())
        cpu, mem, io = self._psi("cpu"), self._psi("memory"), self._psi("io")
        return HostSample(
            t_ns=t_ns, cpu_util=util, cpu_count=count,
            mem_total_bytes=mem_total, mem_used_bytes=mem_used,
            psi_cpu_some_us=cpu.get("some"),
            psi_memory_some_us=mem.get("some"), psi_memory_full_us=mem.get("full"),
            psi_io_some_us=io.get("some"), psi_io_full_us=io.get("full"),
        )
