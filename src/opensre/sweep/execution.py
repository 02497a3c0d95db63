"""Findings from execution data: processes a finished run left alive (`left_running`).
A stored process is the live one only when the pid AND its start time match: /proc's
starttime (field 22 of /proc/PID/stat, clock ticks since boot) turned into epoch ns the
way the collector stores it (boot time + realtime-boottime offset), within a tolerance
(one tick of starttime resolution plus clock slew since the run). A reused pid has
another start time; names are never compared. Runs of an earlier boot are skipped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .finding import Evidence, Finding

TOLERANCE_NS = 1_000_000_000
# modes whose runs end: a host-wide collection's processes are the host's, not left behind
RUN_MODES = ("run", "detected")


def boot_offset_ns() -> int:
    """realtime - boottime now (the collector's offset; read back to back)."""
    b0 = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    r = time.time_ns()
    b1 = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return r - (b0 + b1) // 2


class LiveProcs:
    """The live process table under `root` (injectable: tests give a fixture tree)."""

    def __init__(self, root: str | Path = "/proc", offset_ns: int | None = None):
        self.root = Path(root)
        self.offset = boot_offset_ns() if offset_ns is None else offset_ns
        self.tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        try:
            self.boot_id = (self.root / "sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            self.boot_id = ""

    def stat(self, pid: int) -> dict | None:
        """start_ns (epoch), cpu_s, rss_pages and comm of a live pid; None when gone."""
        try:
            text = (self.root / str(pid) / "stat").read_text()
        except OSError:
            return None
        rp = text.rindex(")")  # comm may hold spaces and ')'
        f = text[rp + 2:].split()  # f[0] is field 3 (state)
        if f[0] in ("Z", "X"):
            return None  # a zombie is not running anything
        return {"start_ns": int(f[19]) * self.tick_ns + self.offset, "cpu_s": (int(f[11]) + int(f[12])) * self.tick_ns / 1e9,
                "rss_pages": int(f[21]), "comm": text[text.index("(") + 1:rp], "state": f[0]}


def left_running(reader, live: LiveProcs, now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    out = []
    for run in reader.runs():
        if run.status == "running" or run.mode not in RUN_MODES or run.end_time_ns is None:
            continue
        host = reader.host(run.host_id)
        if host is not None and host.boot_id and live.boot_id and host.boot_id != live.boot_id:
            continue  # rebooted since: nothing of it can still run
        alive = {}
        for p in reader.processes(run.run_id):
            if p.end_time_ns is not None:
                continue
            st = live.stat(p.pid)
            if st and abs(st["start_ns"] - p.start_time_ns) <= TOLERANCE_NS:
                alive[p.pid] = (p, st)
        out.extend(_findings(run, host, alive, now))
    return out


def _findings(run, host, alive: dict, now: float) -> list[Finding]:
    """One finding per tree left behind (a process whose parent was not left too)."""
    out = []
    where = host.hostname if host else run.host_id
    for pid, (p, st) in sorted(alive.items()):
        if p.ppid in alive:
            continue
        tree = [q for q in alive if _descends(q, pid, alive)]
        src = f"store:run {run.run_id} processes"
        ev = (Evidence("run", f"{run.run_id} {run.name or ' '.join(run.command)[:60]}", "store:runs"),
              Evidence("run_ended", _iso(run.end_time_ns / 1e9), "store:runs"),
              Evidence("pid", pid, src), Evidence("start_time_ns", p.start_time_ns, src),
              Evidence("live_start_time_ns", st["start_ns"], f"/proc/{pid}/stat field 22"),
              Evidence("argv", " ".join(p.argv)[:200] or p.comm, src),
              Evidence("cpu_s_so_far", round(st["cpu_s"], 2), f"/proc/{pid}/stat fields 14-15", "s"),
              Evidence("pids_in_tree", sorted(tree), src))
        out.append(Finding("left_running", f"{where}:pid {pid}", "local", now, run.end_time_ns / 1e9, ev, 0.0,
                           f"check and end pid {pid} ({p.comm}) left by run {run.run_id}, e.g. `kill {pid}`",
                           "high", None, "no price: a process's share of its host",
                           {"pid": pid, "run_id": run.run_id, "comm": p.comm, "host": where}))
    return out


def _descends(pid: int, root: int, alive: dict) -> bool:
    seen = set()
    while pid in alive and pid not in seen:
        if pid == root:
            return True
        seen.add(pid)
        pid = alive[pid][0].ppid
    return False


def _iso(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
