"""`opensre report`: one self-contained HTML file for a stored run.

Two halves: `report_data()` reads the store and prepares a plain dict (capped,
downsampled, compact rows), `render_html()` inlines that dict as JSON together
with the page's script, styles and the vendored uPlot (MIT, assets/uPlot.LICENSE).
The page needs no network: everything it shows is in the file.

Big runs stay usable because every list has a cap (`ReportLimits`): the rows kept
are the ones that matter (failed, OOM-killed, incomplete first, then by CPU), each
cap that bites is named in `data["notes"]`, and totals are always over everything.
Time series are bucketed per task to at most `points_per_task` points and
`points_total` over all tasks; times are integer microseconds from the run's start.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from ..errors import OpenSREError
from ..model import Process, Run, Task
from ..model import failed as failed_exit
from ..store import Store
from .summary import exit_text, fmt_bytes, fmt_s

__all__ = ["ReportLimits", "report_data", "render_html", "write_report", "downsample", "compare_rows",
           "select_processes"]

Progress = Callable[[str, int, int], None]

# process / task / tool flags (one int per row; the page decodes them)
F_RUNNING, F_PARTIAL, F_OOM, F_FAILED, F_TRUNCATED = 1, 2, 4, 8, 16

TASK_COLS = ["id", "name", "engine", "kind", "start", "end", "procs", "cpu", "rss", "read", "write", "exit", "flags",
             "cls", "runq", "blocked", "tx", "rx", "given_cpus", "given_mem", "mem_limit",
             "mem_peak", "href"]
TOOL_COLS = ["task", "label", "pid", "start", "end", "cpu", "rss", "exit", "flags"]
PROC_COLS = ["parent", "depth", "pid", "task", "tool", "cmd", "start", "dur", "cpu", "rss", "read", "write", "exit",
             "flags"]
SERIES = ["cpu", "rss", "read", "write", "tx", "rx", "runq", "blocked"]  # per bucket; see downsample()
SERIES_COLS = ["start", "step", "n"] + SERIES  # a task's series in the page: one array in this order


@dataclass
class ReportLimits:
    tasks: int = 20_000            # tasks in the timeline and the task table
    tools: int = 40_000            # tool invocations in the timeline
    tools_per_task: int = 50
    processes: int = 20_000        # rows of the process table
    points_per_task: int = 240     # time-series buckets per task
    points_total: int = 150_000    # ... and over all tasks together
    findings: int = 1_000
    events: int = 500
    argv_chars: int = 300


# -- small pure helpers (unit-tested) ------------------------------------------------

def failed(x) -> bool:
    return failed_exit(x.exit_code, x.exit_signal)


def task_type(name: str) -> str:
    """The grouping key of `--compare`: the task name without a Nextflow work-dir
    suffix (`fastqc [ab/cdef12]` and `fastqc [12/34abcd]` are one type)."""
    if name.endswith("]") and " [" in name:
        return name[:name.rindex(" [")]
    return name


def bucket_plan(start_ns: int, end_ns: int, interval_ns: int, max_points: int) -> tuple[int, int]:
    """(bucket width ns, bucket count) covering [start, end]: the sampling interval,
    widened so that there are at most max_points buckets."""
    span = max(end_ns - start_ns, 1)
    width = max(interval_ns, math.ceil(span / max(max_points, 1)))
    return width, max(1, math.ceil(span / width))


def downsample(samples_by_proc: dict, procs: dict, start_ns: int, end_ns: int, interval_ns: int,
               max_points: int, ticks: list[int] | None = None, on_grid: bool = False) -> dict:
    """Bucket the samples of a set of processes into at most max_points intervals.

    samples_by_proc: (pid, start) -> [(t_ns, cpu_ns, rss, read, write, tx, rx, runq, blocked), ...] sorted by t;
    procs: (pid, start) -> (start_ns, end_ns or None, peak_rss).
    Counters are deltas over the interval before t, spread evenly over it; the result
    is a rate per second. The interval starts at the sampling pass before t (`ticks`:
    the times of every pass, sorted; a late pass makes a longer interval), else at
    most one sampling interval back (an idle process emits no row). `on_grid` (the
    whole run's series): every delta is spread over the whole interval between the
    passes around it, an exit's too, so that no point shows more than the processes
    could use together (a short process placed exactly beside long ones spread
    evenly would add up to more CPUs than the host has). RSS is a gauge held until the next sample, summed over processes (each
    process's largest value within a bucket). Returns {"start", "step" (ns), "n",
    cpu (cores), rss (bytes), read/write/tx/rx (bytes/s), runq/blocked (threads waiting)}.
    """
    width, n = bucket_plan(start_ns, end_ns, interval_ns, max_points)
    acc = {k: [0.0] * n for k in SERIES}
    counters = [("cpu", 1), ("read", 3), ("write", 4), ("tx", 5), ("rx", 6), ("runq", 7), ("blocked", 8)]
    rss = acc["rss"]

    def bucket(t: int) -> int:
        return min(n - 1, max(0, (t - start_ns) // width))

    for key, ss in samples_by_proc.items():
        pstart, pend, peak = procs.get(key, (ss[0][0], ss[-1][0], 0))
        prev = pstart
        own: dict[int, float] = {}  # bucket -> this process's largest RSS there
        last_rss, last_t = None, pstart
        for s in ss:
            t = s[0]
            if ticks:
                k = bisect_left(ticks, t)
                lo = max(prev, ticks[k - 1] if k else t - interval_ns, pstart)
                if on_grid:
                    lo = ticks[k - 1] if k else lo
                    if k < len(ticks):
                        t = ticks[k]  # an exit between two passes: its share of that interval
            else:
                lo = max(prev, t - interval_ns, pstart)
            if t <= lo:
                lo = t - 1
            b0, b1 = bucket(lo), bucket(t - 1)
            span = t - lo
            # what falls outside [start, end) is not drawn (a last pass after the end),
            # never piled into the edge bucket
            inside = lo >= start_ns and t <= end_ns
            for name, i in counters:
                v = s[i]
                if not v:
                    continue
                if b0 == b1 and inside:
                    acc[name][b0] += v
                else:  # spread over the buckets [lo, t) covers
                    for b in range(b0, b1 + 1):
                        a = max(lo, start_ns + b * width)
                        z = min(t, start_ns + (b + 1) * width, end_ns)
                        if z > a:
                            acc[name][b] += v * (z - a) / span
            r = s[2]
            if r is None:  # a process that lived within one tick: its peak over its life
                r = peak or 0
                last_t = pstart
            hold = last_rss if last_rss is not None else r
            for b in range(bucket(last_t), bucket(t) + 1):
                if own.get(b, -1) < hold:
                    own[b] = hold
            if own.get(bucket(t), -1) < r:
                own[bucket(t)] = r
            last_rss, last_t, prev = r, t, t
        if last_rss is not None and pend and pend > last_t:
            for b in range(bucket(last_t), bucket(pend) + 1):
                if own.get(b, -1) < last_rss:
                    own[b] = last_rss
        for b, v in own.items():
            rss[b] += v
    # rates over the time each bucket covers: the last one usually ends with the task
    # (a burner that stops mid-bucket used a full core, not half of one)
    dur = [max(min(end_ns, start_ns + (b + 1) * width) - (start_ns + b * width), 1) for b in range(n)]
    out = {"start": start_ns, "step": width, "n": n}
    for k in SERIES:
        if k == "rss":
            out[k] = [int(v) for v in acc[k]]
        elif k in ("cpu", "runq", "blocked"):  # ns per ns: cores / threads; milli-units keep the JSON small
            out[k] = [round(v / d, 3) for v, d in zip(acc[k], dur)]
        else:
            out[k] = [int(v * 1e9 / d) for v, d in zip(acc[k], dur)]
    return out


def select_processes(procs: list, cap: int) -> tuple[list, int]:
    """The rows of the process table: all of them up to cap, else the flagged ones
    (failed, OOM, incomplete, partial) then those with the most CPU. Returns (kept, dropped)."""
    if len(procs) <= cap:
        return list(procs), 0
    flagged = [p for p in procs if p.flags]
    rest = sorted((p for p in procs if not p.flags), key=lambda p: -p.cpu_ns)
    kept = (flagged[:cap] + rest)[:cap]
    return kept, len(procs) - len(kept)


def compare_rows(tasks_a: list[Task], tasks_b: list[Task], run_a: Run, run_b: Run,
                 procs_a: tuple[int, int] = (0, 0), procs_b: tuple[int, int] = (0, 0)) -> list[dict]:
    """Per task type: count, mean duration, total CPU and the largest peak RSS in
    each run, and B - A. The first row is the whole run (procs_*: (cpu_ns, peak_rss))."""

    def agg(tasks):
        g: dict[str, dict] = {}
        for t in tasks:
            if t.kind != "task":
                key = "(engine)"
            else:
                key = task_type(t.task_name)
            a = g.setdefault(key, {"n": 0, "dur": 0, "cpu": 0, "rss": 0, "failed": 0})
            a["n"] += 1
            a["dur"] += (t.end_time_ns - t.start_time_ns) if t.end_time_ns else 0
            a["cpu"] += t.cpu_ns
            a["rss"] = max(a["rss"], t.peak_rss_bytes)
            a["failed"] += failed(t) or t.oom_killed
        for a in g.values():
            a["dur"] = a["dur"] / a["n"]
        return g

    def wall(r):
        return (r.end_time_ns - r.start_time_ns) if r.end_time_ns else None

    rows = [{"type": "(whole run)", "a": {"n": 1, "dur": wall(run_a), "cpu": procs_a[0], "rss": procs_a[1]},
             "b": {"n": 1, "dur": wall(run_b), "cpu": procs_b[0], "rss": procs_b[1]}}]
    ga, gb = agg(tasks_a), agg(tasks_b)
    keys = sorted(set(ga) | set(gb), key=lambda k: -max(ga.get(k, {}).get("cpu", 0), gb.get(k, {}).get("cpu", 0)))
    rows += [{"type": k, "a": ga.get(k), "b": gb.get(k)} for k in keys]
    for r in rows:
        for m in ("dur", "cpu", "rss"):
            va = r["a"][m] if r["a"] else None
            vb = r["b"][m] if r["b"] else None
            r[f"d_{m}"] = (vb - va) if va is not None and vb is not None else None
            r[f"r_{m}"] = (vb / va) if va and vb is not None else None
    return rows


# -- reading the store -------------------------------------------------------------

@dataclass
class _P:
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


def _slim(p: Process, argv_chars: int) -> _P:
    flags = ((not p.complete) * F_RUNNING | (p.observed_since_ns is not None) * F_PARTIAL | p.oom_killed * F_OOM
             | failed(p) * F_FAILED | p.argv_truncated * F_TRUNCATED)
    cmd = " ".join(p.argv) if p.argv else p.comm
    return _P((p.pid, p.start_time_ns), p.pid, p.ppid, p.parent_start_time_ns, p.task_id, p.tool or "?",
              cmd[:argv_chars], p.start_time_ns, p.end_time_ns, p.cpu_ns, p.peak_rss_bytes or 0, p.read_bytes or 0,
              p.write_bytes or 0, exit_text(p), flags)


def _collection_rows(store: Store, run: Run, procs: list[_P], waits: dict) -> list[Task]:
    """A host-wide collection's rows: each run detected in it (its tasks summed),
    then the processes in none of them. Each process's `task` becomes its row's id."""
    rows, row_of = [], {}
    for d in store.detected_runs(run.run_id):
        ts = store.tasks(d.run_id)
        if not ts:
            continue
        row_of.update((t.task_id, d.run_id) for t in ts)
        rows.append(Task(
            run_id=run.run_id, task_id=d.run_id, task_name=d.name or " ".join(d.command or [])[:160] or d.run_id,
            engine="run", start_time_ns=d.start_time_ns, end_time_ns=d.end_time_ns,
            process_count=sum(t.process_count for t in ts), cpu_ns=sum(t.cpu_ns for t in ts),
            peak_rss_bytes=max(t.peak_rss_bytes for t in ts), read_bytes=sum(t.read_bytes for t in ts),
            write_bytes=sum(t.write_bytes for t in ts), exit_code=d.exit_code, exit_signal=d.exit_signal,
            oom_killed=any(t.oom_killed for t in ts), root_pid=d.root_pid,
            runq_wait_ns=sum(t.runq_wait_ns for t in ts), blocked_io_ns=sum(t.blocked_io_ns for t in ts),
            net_tx_bytes=sum(t.net_tx_bytes for t in ts), net_rx_bytes=sum(t.net_rx_bytes for t in ts),
            memory_peak_bytes=max((t.memory_peak_bytes or 0) for t in ts) or None))
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


def _host_series(series: dict, host: list[dict]) -> None:
    """The host's own figures on the run's buckets: busy cores and memory in use
    (each bucket holds the last host sample at or before its end)."""
    if not host:
        return
    n, start, step = series["n"], series["start"], series["step"]
    cpu, mem = [None] * n, [None] * n
    j, last = 0, None
    for b in range(n):
        end = start + (b + 1) * step
        while j < len(host) and host[j]["t_ns"] <= end:
            last = host[j]
            j += 1
        if last is not None:
            if last.get("cpu_util") is not None:
                cpu[b] = round(last["cpu_util"] * last["cpu_count"], 3)
            mem[b] = last.get("mem_used_bytes")
    series["host_cpu"], series["host_mem"] = cpu, mem


def _tune(store: Store, run_ids: list[str], limits: ReportLimits, options: dict) -> dict:
    """The tune section. tune is optional here: without it the report still renders."""
    try:
        from .. import analysis

        tune, emit = analysis.tune, analysis.emit
    except (ImportError, AttributeError) as e:
        return {"available": False, "message": f"tune unavailable ({e})"}
    try:
        res = tune(store, run_ids, **options)
    except OpenSREError as e:
        return {"available": False, "message": f"tune: {e.one_line()}"}
    except Exception as e:  # an analysis bug must not cost the user the rest of the report
        return {"available": False, "message": f"tune failed: {type(e).__name__}: {e}"}
    d = res.to_json()
    snippets = {}
    for fmt in ("nextflow", "snakemake", "slurm", "k8s"):
        try:
            snippets[fmt] = emit(res, fmt)
        except Exception as e:  # noqa: BLE001 - one format failing leaves the others
            snippets[fmt] = f"# {fmt}: {type(e).__name__}: {e}"
    given = {}
    for t in d.get("tasks") or []:
        g = t.get("given") or {}
        given[t["task_id"]] = (g.get("cpus"), g.get("memory_bytes"), t.get("task_type"), t.get("oom_limit_bytes"))
    cost = d.get("cost")
    if isinstance(cost, dict):  # per-task and per-tool prices: the 50 dearest of each
        cost = dict(cost)
        for k in ("tasks_usd", "tools_usd"):
            if isinstance(cost.get(k), dict) and len(cost[k]) > 50:
                cost[k] = dict(sorted(cost[k].items(), key=lambda kv: -(kv[1] or 0))[:50])
    findings = d.get("findings") or []
    tool_findings = d.get("tool_findings") or []
    out = {"available": True, "message": "", "findings": findings[:limits.findings],
           "tool_findings": tool_findings[:limits.findings], "recommendations": d.get("recommendations") or [],
           "cost": cost, "comparison": d.get("comparison"), "host": d.get("host"),
           "options": d.get("options"), "snippets": snippets, "_given": given,
           "findings_total": len(findings), "tool_findings_total": len(tool_findings)}
    return out


def _interval_ns(samples_by_proc: dict) -> int:
    """The sampling interval of a run from a store that did not record it. One sampling pass stamps
    every live process with the same t_ns, so the times several processes share are
    the ticks; a process's exit sample has a time of its own. 1 s when nothing says."""
    seen: dict[int, int] = defaultdict(int)
    for ss in samples_by_proc.values():
        for s in ss:
            seen[s[0]] += 1
    ticks = sorted(t for t, n in seen.items() if n >= 2)
    gaps = sorted(b - a for a, b in zip(ticks, ticks[1:]) if b > a)
    if len(gaps) < 3:  # one process at a time: its own gaps (idle ticks are skipped: take the smallest usual one)
        gaps = sorted(b[0] - a[0] for ss in samples_by_proc.values() for a, b in zip(ss, ss[1:]) if b[0] > a[0])
        if len(gaps) < 3:
            return 1_000_000_000
        return max(50_000_000, gaps[len(gaps) // 4])
    return max(50_000_000, gaps[len(gaps) // 2])


def _ticks(samples_by_proc: dict, host_samples: list[dict]) -> list[int]:
    """The times of the run's sampling passes: each pass stamps the host sample and
    every process it saw moving with the same t_ns (a process's exit sample has a
    time of its own, shared with no other)."""
    seen: dict[int, int] = defaultdict(int)
    for ss in samples_by_proc.values():
        for x in ss:
            seen[x[0]] += 1
    return sorted({t for t, n in seen.items() if n >= 2} | {h["t_ns"] for h in host_samples})


def report_data(store: Store, run: Run, compare: Run | None = None, limits: ReportLimits | None = None,
                progress: Progress | None = None, tune_options: dict | None = None,
                links: dict[str, str] | None = None) -> dict:
    """Everything the page shows, as plain JSON-able data. tune_options go to
    `opensre.analysis.tune` (e.g. price_per_hour, instance_type for the cost).
    A host-wide collection's rows are the runs detected in it (`links`: run_id ->
    the href of that run's own report) and the processes in none of them."""
    lim = limits or ReportLimits()
    prog = progress or (lambda stage, done, total: None)
    notes: list[str] = []
    rid = run.run_id
    host = store.host(run.host_id)

    # processes, one pass
    total = run.process_count or 0
    procs: list[_P] = []
    cpu_u = cpu_s = rb = wb = tx = rx = rq = bl = 0
    peak: _P | None = None
    by_tool: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    truncated = 0
    waits: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # per task: runq, blocked, tx, rx
    for i, p in enumerate(store.processes(rid)):
        s = _slim(p, lim.argv_chars)
        procs.append(s)
        w = waits[p.task_id]
        w[0] += p.runq_wait_ns or 0
        w[1] += p.blocked_io_ns or 0
        w[2] += p.net_tx_bytes or 0
        w[3] += p.net_rx_bytes or 0
        cpu_u += p.cpu_user_ns or 0
        cpu_s += p.cpu_system_ns or 0
        rq += p.runq_wait_ns or 0
        bl += p.blocked_io_ns or 0
        tx += p.net_tx_bytes or 0
        rx += p.net_rx_bytes or 0
        rb += s.read
        wb += s.write
        truncated += p.argv_truncated
        if peak is None or s.rss > peak.rss:
            peak = s
        a = by_tool[s.tool]
        a[0] += 1
        a[1] += s.cpu_ns
        a[2] = max(a[2], s.rss)
        a[3] += s.read
        a[4] += s.write
        a[5] += bool(s.flags & (F_FAILED | F_OOM))
        if i % 10_000 == 0:
            prog("processes", i, max(total, i))
    prog("processes", len(procs), len(procs))
    collection = run.mode == "collect"
    if collection and run.start_time_ns:
        t0 = run.start_time_ns  # its window: what ran before it started is not part of it
    elif run.start_time_ns:
        t0 = min([run.start_time_ns] + [p.start for p in procs[:1]])
    else:
        t0 = procs[0].start if procs else 0
    ends = [p.end for p in procs if p.end]
    t_end = run.end_time_ns or max(ends, default=t0)

    def us(t):  # a process already running when a collection started is drawn from its start
        return None if t is None else max(0, t - t0) // 1000

    prog("tune", 0, 0)
    tune = _tune(store, [rid], lim, tune_options or {})
    given = tune.pop("_given", {}) if tune.get("available") else {}
    cls_of: dict[str, str] = {}
    for f in (tune.get("findings") or []):
        cls_of.setdefault(f.get("task_id"), f.get("classification"))

    # tasks: keep failed/OOM/running ones, then by CPU; the page sorts by start
    tasks = _collection_rows(store, run, procs, waits) if collection else store.tasks(rid)
    links = links or {}
    prog("tasks", len(tasks), len(tasks))
    if len(tasks) > lim.tasks:
        keep = sorted(tasks, key=lambda t: (not (failed(t) or t.oom_killed or t.end_time_ns is None), -t.cpu_ns))
        keep = sorted(keep[:lim.tasks], key=lambda t: (t.start_time_ns, t.task_id))
        notes.append(f"timeline and task table: {len(keep):,} of {len(tasks):,} tasks (failed, OOM-killed and "
                     f"unfinished ones first, then those with the most CPU); totals cover all tasks")
        shown_tasks = keep
    else:
        shown_tasks = tasks
    task_idx = {t.task_id: i for i, t in enumerate(shown_tasks)}
    oom_limit: dict[str, int] = {}
    events = list(store.events(rid))
    task_of_proc = {p.key: p.task for p in procs}
    for e in events:
        if e.kind == "oom_kill" and e.data.get("memcg_limit_bytes"):
            tid = task_of_proc.get((e.pid, e.start_time_ns))
            if tid:
                oom_limit[tid] = e.data["memcg_limit_bytes"]
    trows = []
    for t in shown_tasks:
        fl = (t.end_time_ns is None) * F_RUNNING | t.oom_killed * F_OOM | failed(t) * F_FAILED
        g = given.get(t.task_id, (None, None, None, None))
        cls = cls_of.get(t.task_id) or ("oom_killed" if t.oom_killed else "failed" if failed(t) else "")
        trows.append([t.task_id, t.task_name, t.engine, t.kind, us(t.start_time_ns), us(t.end_time_ns),
                      t.process_count, t.cpu_ns // 1000, t.peak_rss_bytes, t.read_bytes, t.write_bytes, exit_text(t),
                      fl, cls, t.runq_wait_ns // 1000, t.blocked_io_ns // 1000, t.net_tx_bytes, t.net_rx_bytes,
                      g[0], g[1], oom_limit.get(t.task_id) or g[3],
                      max(t.memory_peak_bytes or 0, t.peak_rss_bytes or 0), links.get(t.task_id)])

    # tool invocations under their task
    tools = store.tools(rid)
    prog("tools", len(tools), len(tools))
    per_task: dict[str, list] = defaultdict(list)
    for u in tools:
        if u.task_id in task_idx:
            per_task[u.task_id].append(u)
    urows, cut_per_task = [], 0
    labels: dict[str, int] = {}  # tool labels repeat thousands of times: sent once
    for tid, us_ in per_task.items():
        if len(us_) > lim.tools_per_task:
            cut_per_task += len(us_) - lim.tools_per_task
            us_ = sorted(us_, key=lambda u: (not failed(u), -u.cpu_ns))[:lim.tools_per_task]
        for u in us_:
            label = f"{u.tool} {u.subcommand}" if u.subcommand else u.tool
            fl = (u.end_time_ns is None) * F_RUNNING | failed(u) * F_FAILED
            urows.append([task_idx[tid], labels.setdefault(label, len(labels)), u.pid, us(u.start_time_ns), us(u.end_time_ns), u.cpu_ns // 1000,
                          u.peak_rss_bytes, exit_text(u), fl])
    if cut_per_task:
        notes.append(f"timeline: at most {lim.tools_per_task} tool invocations per task "
                     f"({cut_per_task:,} more not drawn: failed ones and those with the most CPU are kept)")
    if len(urows) > lim.tools:
        urows.sort(key=lambda r: (not r[8] & F_FAILED, -r[5]))
        notes.append(f"timeline: {lim.tools:,} of {len(urows):,} tool invocations drawn (most CPU first)")
        urows = urows[:lim.tools]
    urows.sort(key=lambda r: (r[0], r[3]))
    # a tool invocation is OOM-killed when its process was (tools carry no flag of their own)
    oom_pids = {(e.pid, e.start_time_ns) for e in events if e.kind == "oom_kill"}
    oom_by_pid = {(p.pid, p.start) for p in procs if p.flags & F_OOM} | oom_pids
    if oom_by_pid:
        pid_start = {(u.pid, u.start_time_ns) for u in tools}
        hit = {k[0] for k in oom_by_pid & pid_start}
        for r in urows:
            if r[2] in hit:
                r[8] |= F_OOM

    # time series per task
    prog("samples", 0, 0)
    samples_by_proc: dict[tuple, list] = defaultdict(list)
    nsamp = 0
    for s in store.samples(rid):
        samples_by_proc[(s.pid, s.start_time_ns)].append(
            (s.t_ns, s.cpu_ns, s.rss_bytes, s.read_bytes or 0, s.write_bytes or 0, s.net_tx_bytes, s.net_rx_bytes,
             s.runq_wait_ns, s.blocked_io_ns))
        nsamp += 1
        if nsamp % 100_000 == 0:
            prog("samples", nsamp, 0)
    prog("samples", nsamp, nsamp)
    # the resolution the run was recorded with; stores before schema v7 did not keep it
    interval = int(run.sample_interval_s * 1e9) if run.sample_interval_s else _interval_ns(samples_by_proc)
    host_samples = store.host_samples(rid)
    ticks = _ticks(samples_by_proc, host_samples)
    pinfo = {p.key: (p.start, p.end, p.rss) for p in procs}
    by_task_keys: dict[str, list] = defaultdict(list)
    for p in procs:
        if p.key in samples_by_proc:
            by_task_keys[p.task].append(p.key)
    per_task_pts = max(4, min(lim.points_per_task, lim.points_total // max(len(shown_tasks), 1)))
    series = []
    for i, t in enumerate(shown_tasks):
        keys = by_task_keys.get(t.task_id)
        if not keys:
            series.append(None)
            continue
        end = t.end_time_ns or t_end
        d = downsample({k: samples_by_proc[k] for k in keys}, pinfo, t.start_time_ns, max(end, t.start_time_ns + 1),
                       interval, per_task_pts, ticks)
        d["start"] = us(d["start"])
        d["step"] = d["step"] // 1000
        series.append([d[k] for k in SERIES_COLS])
        if i % 2000 == 0:
            prog("series", i, len(shown_tasks))
    run_series = None
    if samples_by_proc:
        run_series = downsample(samples_by_proc, pinfo, t0, max(t_end, t0 + 1), interval, 600, ticks, on_grid=True)
        _host_series(run_series, host_samples)
        run_series["start"], run_series["step"] = 0, run_series["step"] // 1000
    if len(shown_tasks) and per_task_pts < lim.points_per_task:
        notes.append(f"time series: at most {per_task_pts} points per task ({len(shown_tasks):,} tasks); "
                     f"each point is the average over its interval")
    del samples_by_proc

    # process table
    cap = lim.processes
    for _ in range(4):  # the rows are the kept processes plus their ancestors: shrink until they fit
        kept, dropped = select_processes(procs, cap)
        prows = _tree_rows(kept, procs, task_idx, us)
        if len(prows) <= lim.processes or cap < 10:
            break
        cap = int(cap * lim.processes / len(prows) * 0.98)
    if dropped:
        notes.append(f"process table: {len(prows):,} of {len(procs):,} processes (failed, OOM-killed, unfinished "
                     f"and partially observed ones first, then those with the most CPU, each with its ancestors). "
                     f"The per-tool table covers all of them")

    # events
    ooms = [e for e in events if e.kind == "oom_kill"]
    conns = [e for e in events if e.kind == "tcp_connection"]
    erows = [{"kind": e.kind, "t": us(e.t_ns), "pid": e.pid, "task": task_idx.get(task_of_proc.get((e.pid, e.start_time_ns))),
              **{k: v for k, v in e.data.items() if isinstance(v, (int, float, str)) or v is None}}
             for e in (ooms + conns)[:lim.events]]
    if len(ooms) + len(conns) > lim.events:
        notes.append(f"events: {lim.events} of {len(ooms) + len(conns):,} shown (OOM kills first)")

    wall = (t_end - t0) if t_end else None
    header = {
        "run_id": rid, "name": run.name, "mode": run.mode, "command": run.command, "status": run.status,
        "exit": exit_text(run), "exit_code": run.exit_code, "exit_signal": run.exit_signal,
        "start_ns": run.start_time_ns, "end_ns": run.end_time_ns, "wall_ns": wall,
        "cpu_ns": cpu_u + cpu_s, "cpu_user_ns": cpu_u, "cpu_system_ns": cpu_s,
        "peak_rss": peak.rss if peak else None, "peak_tool": peak.tool if peak else None,
        "peak_pid": peak.pid if peak else None, "read": rb, "write": wb, "tx": tx, "rx": rx, "runq_ns": rq,
        "blocked_ns": bl, "processes": len(procs), "tasks": len(tasks), "tools": len(tools),
        "incomplete": sum(1 for p in procs if p.flags & F_RUNNING),
        "partial": sum(1 for p in procs if p.flags & F_PARTIAL),
        "failed": sum(1 for p in procs if p.flags & F_FAILED), "oom_kills": len(ooms) or
        sum(1 for p in procs if p.flags & F_OOM), "argv_truncated": truncated, "drops": run.drops,
        "drop_detail": run.drop_detail, "probes_missing": run.degraded_probes(), "samples": nsamp, "interval_ns": interval if nsamp else None,
        "tcp_connections": len(conns), "cost": tune.get("cost"),
        "detected_runs": sum(t.kind == "task" for t in tasks) if collection else None,
        "host": asdict(host) if host else {"host_id": run.host_id},
    }
    data = {
        "schema": 1, "generated_ns": time.time_ns(), "version": __import__("opensre").__version__,
        "t0_ns": t0, "header": header, "notes": notes, "limits": asdict(lim),
        "task_cols": TASK_COLS, "tasks": trows, "tool_cols": TOOL_COLS, "tools": urows, "tool_labels": list(labels),
        "series_cols": SERIES_COLS, "series": series, "run_series": run_series,
        "proc_cols": PROC_COLS, "procs": prows,
        "tool_totals": sorted(([k, *v] for k, v in by_tool.items()), key=lambda r: -r[2]),
        "events": erows, "tune": tune, "compare": None,
    }
    if compare is not None:
        prog("compare", 0, 0)
        data["compare"] = _compare(store, run, compare, cpu_u + cpu_s, peak.rss if peak else 0)
    return data


def _compare(store: Store, a: Run, b: Run, cpu_a: int, rss_a: int) -> dict:
    cpu_b = rss_b = 0
    n_b = 0
    for p in store.processes(b.run_id):
        cpu_b += p.cpu_ns
        rss_b = max(rss_b, p.peak_rss_bytes or 0)
        n_b += 1
    rows = compare_rows(store.tasks(a.run_id), store.tasks(b.run_id), a, b, (cpu_a, rss_a), (cpu_b, rss_b))
    return {"a": {"run_id": a.run_id, "name": a.name, "command": a.command, "start_ns": a.start_time_ns},
            "b": {"run_id": b.run_id, "name": b.name, "command": b.command, "start_ns": b.start_time_ns,
                  "processes": n_b, "exit": exit_text(b), "status": b.status},
            "rows": rows}


def _tree_rows(kept: list[_P], allp: list[_P], task_idx: dict, us) -> list[list]:
    """Rows in tree order (depth first, children by start), the kept processes plus
    their ancestors so that every row hangs under its real parent."""
    by_key = {p.key: p for p in allp}
    by_pid: dict[int, list[_P]] = defaultdict(list)
    for p in allp:
        by_pid[p.pid].append(p)

    def parent(p: _P) -> _P | None:
        if p.pstart is not None:
            return by_key.get((p.ppid, p.pstart))
        best = None
        for q in by_pid.get(p.ppid, ()):
            if q is not p and q.start <= p.start and (best is None or q.start > best.start):
                best = q
        return best

    par: dict[tuple, _P | None] = {}
    want = set()
    for p in kept:
        q = p
        while q is not None and q.key not in want:
            want.add(q.key)
            if q.key not in par:
                par[q.key] = parent(q)
            q = par[q.key]
    children: dict[tuple | None, list[_P]] = defaultdict(list)
    for k in want:
        p = by_key[k]
        pp = par.get(k)
        children[pp.key if pp is not None else None].append(p)
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


# -- rendering -----------------------------------------------------------------

def _asset(name: str) -> str:
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


def _json_for_html(data: dict) -> str:
    # inside <script type="application/json">: only "</script" could end it; escape every "<"
    return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str).replace("<", "\\u003c")


def render_html(data: dict) -> str:
    h = data["header"]
    title = f"opensre report {h['run_id']}" + (f" ({h['name']})" if h.get("name") else "")
    import html as _html

    page = _asset("report.html")
    parts = {
        "TITLE": _html.escape(title),
        "STYLE": _asset("uPlot.min.css") + "\n" + _asset("report.css"),
        "UPLOT": _asset("uPlot.iife.min.js"),
        "SCRIPT": _asset("report.js"),
        "DATA": _json_for_html(data),
        "SUMMARY": _html.escape(_text_summary(data)),
    }
    for k, v in parts.items():  # one replacement each, in order; values may contain anything
        page = page.replace("{{" + k + "}}", v.replace("{{", "{\u200b{") if k in ("TITLE", "SUMMARY") else v, 1)
    return page


def _text_summary(data: dict) -> str:
    """The header as text, in the page's <noscript> and for readers without a browser."""
    h = data["header"]
    return (f"run {h['run_id']} {h['status']}, exit {h['exit']}, wall {fmt_s(h['wall_ns'])}, "
            f"{h['processes']} processes, CPU {fmt_s(h['cpu_ns'])}, peak RSS {fmt_bytes(h['peak_rss'])}")


@dataclass
class ReportFile:
    path: Path
    bytes: int
    processes: int
    seconds: float
    notes: list[str]


MAX_DETECTED_PAGES = 50


def _detected_pages(store: Store, run: Run, path: Path) -> list[tuple[Run, Path]]:
    """A collection's detected runs that get a page of their own: PATH's stem plus
    the run id (report.html -> report.RUNID.html), the most CPU-hungry first."""
    if run.mode != "collect":
        return []
    runs = store.detected_runs(run.run_id)
    if len(runs) > MAX_DETECTED_PAGES:
        cpu = {r.run_id: sum(t.cpu_ns for t in store.tasks(r.run_id)) for r in runs}
        runs = sorted(runs, key=lambda r: -cpu[r.run_id])[:MAX_DETECTED_PAGES]
    return [(r, path.with_name(f"{path.stem}.{r.run_id}{path.suffix or '.html'}")) for r in runs]


def write_report(store: Store, run_ref: str, path: str | Path, compare: str | None = None,
                 limits: ReportLimits | None = None, progress: Progress | None = None,
                 tune_options: dict | None = None) -> ReportFile:
    t = time.perf_counter()
    run = store.resolve_run(run_ref)
    other = store.resolve_run(compare) if compare else None
    path = Path(path)
    detected = _detected_pages(store, run, path)
    data = report_data(store, run, other, limits, progress, tune_options,
                       links={d.run_id: f.name for d, f in detected})
    if len(detected) < len(store.detected_runs(run.run_id)):
        data["notes"].append(f"detected runs: the {len(detected)} with the most CPU have a report of their own "
                             f"(`opensre report RUN` writes any other)")
    for d, f in detected:  # each detected run's own page beside this one, linked from its row
        write_report(store, d.run_id, f, limits=limits, tune_options=tune_options)
    text = render_html(data)
    from ..safefile import write_output

    size = write_output(path, text, "report")  # unique temp beside it, then renamed; never through a link
    return ReportFile(path, size, data["header"]["processes"], time.perf_counter() - t,
                      data["notes"])
