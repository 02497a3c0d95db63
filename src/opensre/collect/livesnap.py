"""The live snapshot of a running collection, for `opensre top` (store/live.py
writes and reads the files): its live processes and their latest counters,
argv bounded as the store bounds it."""

from __future__ import annotations

import os
import time

from ..model import Process, Run
from .sampling import Key


def rows(live: dict[Key, Process], cum: dict[Key, tuple], first_argv: dict[Key, list[str]]) -> list[list]:
    """One row per live process, in store/live.py's FIELDS order."""
    from ..store.live import ARGV_ITEMS, FIRST_ARGV_CHARS

    out = []
    for key, p in live.items():
        c = cum.get(key)
        first = first_argv.get(key)
        out.append([p.pid, p.start_time_ns, p.ppid, p.parent_start_time_ns, p.exe, p.comm,
                    [a[:200] for a in p.argv[:ARGV_ITEMS]],
                    *((c[0], c[8], c[1], c[2], c[3], c[4]) if c else (0, 0, 0, 0, 0, 0)), p.exec_count,
                    [a[:FIRST_ARGV_CHARS] for a in first[:ARGV_ITEMS]] if first else None])
    return out


def snapshot(run: Run, interval_s: float, finished: int, processes: list[list]) -> dict:
    """The document written: the run, now, and the rows of rows()."""
    return {"run_id": run.run_id, "name": run.name, "mode": run.mode,
            "command": run.command, "start_time_ns": run.start_time_ns, "t_ns": time.time_ns(),
            "interval_s": interval_s, "collector_pid": os.getpid(),
            "finished_processes": finished, "drops": run.drops, "processes": processes}
