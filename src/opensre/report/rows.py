"""The report's rows: what it keeps of each process, the flag bits every row
carries, the classes the page colours tasks by, a collection's rows (its detected
runs) and the process table in tree order. The page decodes flags and classes
from the JSON (`page_constants()`), so Python is their only owner."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..analysis.result import CLASSIFICATIONS
from ..model import Process, Run, Task
from ..model import failed as failed_exit
from ..store import Store
from .summary import exit_text

__all__ = ["F_RUNNING", "F_PARTIAL", "F_OOM", "F_FAILED", "F_TRUNCATED", "TASK_COLS", "TOOL_COLS", "PROC_COLS",
           "CLASS_COLORS", "CLASS_LABELS", "page_constants", "failed", "SlimProcess", "slim", "collection_rows",
           "select_processes", "tree_rows"]

# process / task / tool flags (one int per row; the page decodes them)
F_RUNNING, F_PARTIAL, F_OOM, F_FAILED, F_TRUNCATED = 1, 2, 4, 8, 16

TASK_COLS = ["id", "name", "engine", "kind", "start", "end", "procs", "cpu", "rss", "read", "write", "exit", "flags",
             "cls", "runq", "blocked", "tx", "rx", "given_cpus", "given_mem", "mem_limit",
             "mem_peak", "href"]
TOOL_COLS = ["task", "label", "pid", "start", "end", "cpu", "rss", "exit", "flags"]
PROC_COLS = ["parent", "depth", "pid", "task", "tool", "cmd", "start", "dur", "cpu", "rss", "read", "write", "exit",
             "flags"]

# a task's colour in the timeline and legend, by its classification (in the legend's
# order); "" an unclassified task, "engine" the engine's own processes
_PALETTE = {
    "cpu_bound": "#3b78c4", "io_bound": "#e8871e", "cpu_starved": "#a05195", "memory_bound": "#1b9aaa",
    "idle": "#b9b2a8", "failed": "#d62728", "oom_killed": "#7a0010", "overallocated_cpu": "#4f9d3a",
    "overallocated_memory": "#8f8a2e",
}
CLASS_COLORS = {**{c: _PALETTE[c] for c in CLASSIFICATIONS}, "": "#7f97b2", "engine": "#c4c9d1"}
CLASS_LABELS = {"": "unclassified", "engine": "engine"}  # the others: their name


def page_constants() -> dict:
    """The flag bits and classes, as the page reads them from the report's JSON."""
    return {"flags": {"running": F_RUNNING, "partial": F_PARTIAL, "oom": F_OOM, "failed": F_FAILED,
                      "truncated": F_TRUNCATED},
            "class_colors": CLASS_COLORS, "class_labels": CLASS_LABELS}


def failed(x) -> bool:
    return failed_exit(x.exit_code, x.exit_signal)


@dataclass
class SlimProcess:
    """What the report keeps of a process (a Process is ~50 fields; 100k of them add up)."""
    key: tuple
    pid: int
    ppid: int
    pstart: int | None
    task: str | None
    tool: str
    cmd: str
    start: int
    end: int | None
    cpu_ns: int
    rss: int
    read: int
    write: int
    exit: str
    flags: int


def slim(p: Process, argv_chars: int) -> SlimProcess:
    flags = ((not p.complete) * F_RUNNING | (p.observed_since_ns is not None) * F_PARTIAL | p.oom_killed * F_OOM
             | failed(p) * F_FAILED | p.argv_truncated * F_TRUNCATED)
    cmd = " ".join(p.argv) if p.argv else p.comm
    return SlimProcess((p.pid, p.start_time_ns), p.pid, p.ppid, p.parent_start_time_ns, p.task_id, p.tool or "?",
                       cmd[:argv_chars], p.start_time_ns, p.end_time_ns, p.cpu_ns, p.peak_rss_bytes or 0,
                       p.read_bytes or 0, p.write_bytes or 0, exit_text(p), flags)


def _detected_row(run: Run, d: Run, ts: list[Task]) -> Task:
    """A detected run as one row: its tasks summed."""
    return Task(
        run_id=run.run_id, task_id=d.run_id, task_name=d.name or " ".join(d.command or [])[:160] or d.run_id,
        engine="run", start_time_ns=d.start_time_ns, end_time_ns=d.end_time_ns,
        process_count=sum(t.process_count for t in ts), cpu_ns=sum(t.cpu_ns for t in ts),
        peak_rss_bytes=max(t.peak_rss_bytes for t in ts), read_bytes=sum(t.read_bytes for t in ts),
        write_bytes=sum(t.write_bytes for t in ts), exit_code=d.exit_code, exit_signal=d.exit_signal,
        oom_killed=any(t.oom_killed for t in ts), root_pid=d.root_pid,
        runq_wait_ns=sum(t.runq_wait_ns for t in ts), blocked_io_ns=sum(t.blocked_io_ns for t in ts),
        net_tx_bytes=sum(t.net_tx_bytes for t in ts), net_rx_bytes=sum(t.net_rx_bytes for t in ts),
        memory_peak_bytes=max((t.memory_peak_bytes or 0) for t in ts) or None)


def collection_rows(store: Store, run: Run, procs: list[SlimProcess], waits: dict) -> list[Task]:
    """A host-wide collection's rows: each run detected in it (its tasks summed),
    then the processes in none of them. Each process's `task` becomes its row's id."""
    rows, row_of = [], {}
    for d in store.detected_runs(run.run_id):
        ts = store.tasks(d.run_id)
        if not ts:
            continue
        row_of.update((t.task_id, d.run_id) for t in ts)
        rows.append(_detected_row(run, d, ts))
    rest = [p for p in procs if p.task not in row_of]
    if rest:
        w = [sum(waits[k][i] for k in waits if k not in row_of) for i in range(4)]
        rows.append(Task(
            run_id=run.run_id, task_id="unattributed", task_name="(in no detected run)", engine="host",
            kind="engine", start_time_ns=max(run.start_time_ns or 0, min(p.start for p in rest)),
            end_time_ns=run.end_time_ns, process_count=len(rest), cpu_ns=sum(p.cpu_ns for p in rest),
            peak_rss_bytes=max(p.rss for p in rest), read_bytes=sum(p.read for p in rest),
            write_bytes=sum(p.write for p in rest), runq_wait_ns=w[0], blocked_io_ns=w[1], net_tx_bytes=w[2],
            net_rx_bytes=w[3]))
    for p in procs:
        p.task = row_of.get(p.task, "unattributed")
    return sorted(rows, key=lambda t: (t.start_time_ns, t.task_id))


def select_processes(procs: list, cap: int) -> tuple[list, int]:
    """The rows of the process table: all of them up to cap, else the flagged ones
    (failed, OOM, incomplete, partial) then those with the most CPU. Returns (kept, dropped)."""
    if len(procs) <= cap:
        return list(procs), 0
    flagged = [p for p in procs if p.flags]
    rest = sorted((p for p in procs if not p.flags), key=lambda p: -p.cpu_ns)
    kept = (flagged[:cap] + rest)[:cap]
    return kept, len(procs) - len(kept)


def _children(kept: list[SlimProcess], allp: list[SlimProcess]) -> dict:
    """parent key (None: a root) -> children, over the kept processes and their ancestors."""
    by_key = {p.key: p for p in allp}
    by_pid: dict[int, list[SlimProcess]] = defaultdict(list)
    for p in allp:
        by_pid[p.pid].append(p)

    def parent(p: SlimProcess) -> SlimProcess | None:
        if p.pstart is not None:
            return by_key.get((p.ppid, p.pstart))
        best = None
        for q in by_pid.get(p.ppid, ()):
            if q is not p and q.start <= p.start and (best is None or q.start > best.start):
                best = q
        return best

    par: dict[tuple, SlimProcess | None] = {}
    want = set()
    for p in kept:
        q = p
        while q is not None and q.key not in want:
            want.add(q.key)
            if q.key not in par:
                par[q.key] = parent(q)
            q = par[q.key]
    children: dict[tuple | None, list[SlimProcess]] = defaultdict(list)
    for k in want:
        pp = par.get(k)
        children[pp.key if pp is not None else None].append(by_key[k])
    return children


def tree_rows(kept: list[SlimProcess], allp: list[SlimProcess], task_idx: dict, us) -> list[list]:
    """Rows in tree order (depth first, children by start), the kept processes plus
    their ancestors so that every row hangs under its real parent."""
    children = _children(kept, allp)
    rows: list[list] = []
    index: dict[tuple, int] = {}
    stack = [(p, 0, -1) for p in sorted(children[None], key=lambda q: q.start, reverse=True)]
    while stack:  # iterative: a 10,000-deep chain of forks must not hit the recursion limit
        p, depth, pi = stack.pop()
        index[p.key] = len(rows)
        rows.append([pi, depth, p.pid, task_idx.get(p.task, -1), p.tool, p.cmd, us(p.start),
                     (p.end - p.start) // 1000 if p.end else None, p.cpu_ns // 1000, p.rss, p.read, p.write,
                     p.exit, p.flags])
        for c in sorted(children.get(p.key, ()), key=lambda q: q.start, reverse=True):
            stack.append((c, depth + 1, index[p.key]))
    return rows
