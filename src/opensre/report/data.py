"""`report_data()`: everything the report page shows, as plain JSON-able data.

One pass over the processes, then each section in turn: tasks (or a collection's
detected runs), tool invocations, time series, the process table, events, the
header. Every list has a cap (`ReportLimits`): the rows kept are the ones that
matter, each cap that bites is named in `notes`, totals are over everything.
Times in the page are integer microseconds from the run's start (`t0_ns`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..model import Run, Task, tool_label
from ..store import Store
from .compare import compare_section
from .rows import (F_FAILED, F_OOM, F_PARTIAL, F_RUNNING, PROC_COLS, TASK_COLS, TOOL_COLS, SlimProcess,
                   collection_rows, failed, page_constants, select_processes, slim, tree_rows)
from .series import SERIES_COLS, downsample, host_series, interval_ns, ticks
from .summary import exit_text
from .tune_section import tune_section

__all__ = ["ReportLimits", "Progress", "report_data"]

Progress = Callable[[str, int, int], None]


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


@dataclass
class _Build:
    """One report being built: its inputs, its notes, the run's time window."""
    store: Store
    run: Run
    lim: ReportLimits
    prog: Progress
    notes: list[str] = field(default_factory=list)
    t0: int = 0
    t_end: int = 0

    def us(self, t):  # a process already running when a collection started is drawn from its start
        return None if t is None else max(0, t - self.t0) // 1000


@dataclass
class _Procs:
    """The processes pass: the slim rows and every total the header and tables need."""
    rows: list[SlimProcess] = field(default_factory=list)
    sums: dict = field(default_factory=lambda: dict.fromkeys(
        ("cpu_u", "cpu_s", "read", "write", "tx", "rx", "runq", "blocked", "truncated"), 0))
    peak: SlimProcess | None = None
    by_tool: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0, 0]))
    waits: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))  # per task: runq, blocked, tx, rx


def _process_pass(b: _Build) -> _Procs:
    out = _Procs()
    sums, total = out.sums, b.run.process_count or 0
    for i, p in enumerate(b.store.processes(b.run.run_id)):
        s_ = slim(p, b.lim.argv_chars)
        out.rows.append(s_)
        w = out.waits[p.task_id]
        w[0] += p.runq_wait_ns or 0
        w[1] += p.blocked_io_ns or 0
        w[2] += p.net_tx_bytes or 0
        w[3] += p.net_rx_bytes or 0
        sums["cpu_u"] += p.cpu_user_ns or 0
        sums["cpu_s"] += p.cpu_system_ns or 0
        sums["runq"] += p.runq_wait_ns or 0
        sums["blocked"] += p.blocked_io_ns or 0
        sums["tx"] += p.net_tx_bytes or 0
        sums["rx"] += p.net_rx_bytes or 0
        sums["read"] += s_.read
        sums["write"] += s_.write
        sums["truncated"] += p.argv_truncated
        if out.peak is None or s_.rss > out.peak.rss:
            out.peak = s_
        a = out.by_tool[s_.tool]
        a[0] += 1
        a[1] += s_.cpu_ns
        a[2] = max(a[2], s_.rss)
        a[3] += s_.read
        a[4] += s_.write
        a[5] += bool(s_.flags & (F_FAILED | F_OOM))
        if i % 10_000 == 0:
            b.prog("processes", i, max(total, i))
    b.prog("processes", len(out.rows), len(out.rows))
    return out


def _window(run: Run, procs: list[SlimProcess]) -> tuple[int, int]:
    if run.mode == "collect" and run.start_time_ns:
        t0 = run.start_time_ns  # its window: what ran before it started is not part of it
    elif run.start_time_ns:
        t0 = min([run.start_time_ns] + [p.start for p in procs[:1]])
    else:
        t0 = procs[0].start if procs else 0
    ends = [p.end for p in procs if p.end]
    return t0, run.end_time_ns or max(ends, default=t0)


def _shown_tasks(b: _Build, tasks: list[Task]) -> list[Task]:
    """Failed, OOM-killed and running tasks first, then by CPU; the page sorts by start."""
    if len(tasks) <= b.lim.tasks:
        return tasks
    keep = sorted(tasks, key=lambda t: (not (failed(t) or t.oom_killed or t.end_time_ns is None), -t.cpu_ns))
    keep = sorted(keep[:b.lim.tasks], key=lambda t: (t.start_time_ns, t.task_id))
    b.notes.append(f"timeline and task table: {len(keep):,} of {len(tasks):,} tasks (failed, OOM-killed and "
                   f"unfinished ones first, then those with the most CPU); totals cover all tasks")
    return keep


def _task_rows(b: _Build, shown: list[Task], tune: dict, events: list, task_of_proc: dict,
               links: dict) -> list[list]:
    given = tune.pop("_given", {}) if tune.get("available") else {}
    cls_of: dict[str, str] = {}
    for f in (tune.get("findings") or []):
        cls_of.setdefault(f.get("task_id"), f.get("classification"))
    oom_limit: dict[str, int] = {}
    for e in events:
        if e.kind == "oom_kill" and e.data.get("memcg_limit_bytes"):
            tid = task_of_proc.get((e.pid, e.start_time_ns))
            if tid:
                oom_limit[tid] = e.data["memcg_limit_bytes"]
    us, trows = b.us, []
    for t in shown:
        fl = (t.end_time_ns is None) * F_RUNNING | t.oom_killed * F_OOM | failed(t) * F_FAILED
        g = given.get(t.task_id, (None, None, None, None))
        cls = cls_of.get(t.task_id) or ("oom_killed" if t.oom_killed else "failed" if failed(t) else "")
        trows.append([t.task_id, t.task_name, t.engine, t.kind, us(t.start_time_ns), us(t.end_time_ns),
                      t.process_count, t.cpu_ns // 1000, t.peak_rss_bytes, t.read_bytes, t.write_bytes, exit_text(t),
                      fl, cls, t.runq_wait_ns // 1000, t.blocked_io_ns // 1000, t.net_tx_bytes, t.net_rx_bytes,
                      g[0], g[1], oom_limit.get(t.task_id) or g[3],
                      max(t.memory_peak_bytes or 0, t.peak_rss_bytes or 0), links.get(t.task_id)])
    return trows


def _tool_rows(b: _Build, tools: list, task_idx: dict) -> tuple[list[list], list[str]]:
    """Tool invocations under their task (at most tools_per_task each, lim.tools in all),
    and their labels: a label repeats thousands of times, so it is sent once."""
    lim, us = b.lim, b.us
    per_task: dict[str, list] = defaultdict(list)
    for u in tools:
        if u.task_id in task_idx:
            per_task[u.task_id].append(u)
    urows, cut_per_task = [], 0
    labels: dict[str, int] = {}
    for tid, us_ in per_task.items():
        if len(us_) > lim.tools_per_task:
            cut_per_task += len(us_) - lim.tools_per_task
            us_ = sorted(us_, key=lambda u: (not failed(u), -u.cpu_ns))[:lim.tools_per_task]
        for u in us_:
            label = tool_label(u.tool, u.subcommand)
            fl = (u.end_time_ns is None) * F_RUNNING | failed(u) * F_FAILED
            urows.append([task_idx[tid], labels.setdefault(label, len(labels)), u.pid, us(u.start_time_ns), us(u.end_time_ns), u.cpu_ns // 1000,
                          u.peak_rss_bytes, exit_text(u), fl])
    if cut_per_task:
        b.notes.append(f"timeline: at most {lim.tools_per_task} tool invocations per task "
                       f"({cut_per_task:,} more not drawn: failed ones and those with the most CPU are kept)")
    if len(urows) > lim.tools:
        urows.sort(key=lambda r: (not r[8] & F_FAILED, -r[5]))
        b.notes.append(f"timeline: {lim.tools:,} of {len(urows):,} tool invocations drawn (most CPU first)")
        urows = urows[:lim.tools]
    urows.sort(key=lambda r: (r[0], r[3]))
    return urows, list(labels)


def _mark_oom_tools(urows: list[list], tools: list, procs: list[SlimProcess], events: list) -> None:
    """A tool invocation is OOM-killed when its process was (tools carry no flag of their own)."""
    oom_pids = {(e.pid, e.start_time_ns) for e in events if e.kind == "oom_kill"}
    oom_by_pid = {(p.pid, p.start) for p in procs if p.flags & F_OOM} | oom_pids
    if oom_by_pid:
        pid_start = {(u.pid, u.start_time_ns) for u in tools}
        hit = {k[0] for k in oom_by_pid & pid_start}
        for r in urows:
            if r[2] in hit:
                r[8] |= F_OOM


def _samples(b: _Build) -> tuple[dict, int]:
    """(pid, start) -> its samples as downsample() takes them, and their count."""
    b.prog("samples", 0, 0)
    samples_by_proc: dict[tuple, list] = defaultdict(list)
    nsamp = 0
    for s in b.store.samples(b.run.run_id):
        samples_by_proc[(s.pid, s.start_time_ns)].append(
            (s.t_ns, s.cpu_ns, s.rss_bytes, s.read_bytes or 0, s.write_bytes or 0, s.net_tx_bytes, s.net_rx_bytes,
             s.runq_wait_ns, s.blocked_io_ns))
        nsamp += 1
        if nsamp % 100_000 == 0:
            b.prog("samples", nsamp, 0)
    b.prog("samples", nsamp, nsamp)
    return samples_by_proc, nsamp


def _series(b: _Build, procs: list[SlimProcess], shown: list[Task]) -> tuple[list, dict | None, int, int]:
    """(per task series, the whole run's series, samples, the sampling interval ns)."""
    lim, run = b.lim, b.run
    samples_by_proc, nsamp = _samples(b)
    # the resolution the run was recorded with; stores before schema v7 did not keep it
    interval = int(run.sample_interval_s * 1e9) if run.sample_interval_s else interval_ns(samples_by_proc)
    host_samples = b.store.host_samples(run.run_id)
    tks = ticks(samples_by_proc, host_samples)
    pinfo = {p.key: (p.start, p.end, p.rss) for p in procs}
    by_task_keys: dict[str, list] = defaultdict(list)
    for p in procs:
        if p.key in samples_by_proc:
            by_task_keys[p.task].append(p.key)
    per_task_pts = max(4, min(lim.points_per_task, lim.points_total // max(len(shown), 1)))
    series = []
    for i, t in enumerate(shown):
        keys = by_task_keys.get(t.task_id)
        if not keys:
            series.append(None)
            continue
        end = t.end_time_ns or b.t_end
        d = downsample({k: samples_by_proc[k] for k in keys}, pinfo, t.start_time_ns, max(end, t.start_time_ns + 1),
                       interval, per_task_pts, tks)
        d["start"] = b.us(d["start"])
        d["step"] = d["step"] // 1000
        series.append([d[k] for k in SERIES_COLS])
        if i % 2000 == 0:
            b.prog("series", i, len(shown))
    run_series = None
    if samples_by_proc:
        run_series = downsample(samples_by_proc, pinfo, b.t0, max(b.t_end, b.t0 + 1), interval, 600, tks, on_grid=True)
        host_series(run_series, host_samples)
        run_series["start"], run_series["step"] = 0, run_series["step"] // 1000
    if len(shown) and per_task_pts < lim.points_per_task:
        b.notes.append(f"time series: at most {per_task_pts} points per task ({len(shown):,} tasks); "
                       f"each point is the average over its interval")
    return series, run_series, nsamp, interval


def _process_table(b: _Build, procs: list[SlimProcess], task_idx: dict) -> list[list]:
    lim = b.lim
    cap = lim.processes
    for _ in range(4):  # the rows are the kept processes plus their ancestors: shrink until they fit
        kept, dropped = select_processes(procs, cap)
        prows = tree_rows(kept, procs, task_idx, b.us)
        if len(prows) <= lim.processes or cap < 10:
            break
        cap = int(cap * lim.processes / len(prows) * 0.98)
    if dropped:
        b.notes.append(f"process table: {len(prows):,} of {len(procs):,} processes (failed, OOM-killed, unfinished "
                       f"and partially observed ones first, then those with the most CPU, each with its ancestors). "
                       f"The per-tool table covers all of them")
    return prows


def _event_rows(b: _Build, ooms: list, conns: list, task_idx: dict, task_of_proc: dict) -> list[dict]:
    lim, us = b.lim, b.us
    erows = [{"kind": e.kind, "t": us(e.t_ns), "pid": e.pid, "task": task_idx.get(task_of_proc.get((e.pid, e.start_time_ns))),
              **{k: v for k, v in e.data.items() if isinstance(v, (int, float, str)) or v is None}}
             for e in (ooms + conns)[:lim.events]]
    if len(ooms) + len(conns) > lim.events:
        b.notes.append(f"events: {lim.events} of {len(ooms) + len(conns):,} shown (OOM kills first)")
    return erows


def _header(b: _Build, ps: _Procs, counts: dict, ooms: list, conns: list, cost, host) -> dict:
    """counts: tasks, tools, samples, interval_ns, detected_runs."""
    run, procs, s, peak = b.run, ps.rows, ps.sums, ps.peak
    wall = (b.t_end - b.t0) if b.t_end else None
    return {
        "run_id": run.run_id, "name": run.name, "mode": run.mode, "command": run.command, "status": run.status,
        "exit": exit_text(run), "exit_code": run.exit_code, "exit_signal": run.exit_signal,
        "start_ns": run.start_time_ns, "end_ns": run.end_time_ns, "wall_ns": wall,
        "cpu_ns": s["cpu_u"] + s["cpu_s"], "cpu_user_ns": s["cpu_u"], "cpu_system_ns": s["cpu_s"],
        "peak_rss": peak.rss if peak else None, "peak_tool": peak.tool if peak else None,
        "peak_pid": peak.pid if peak else None, "read": s["read"], "write": s["write"], "tx": s["tx"],
        "rx": s["rx"], "runq_ns": s["runq"],
        "blocked_ns": s["blocked"], "processes": len(procs), "tasks": counts["tasks"], "tools": counts["tools"],
        "incomplete": sum(1 for p in procs if p.flags & F_RUNNING),
        "partial": sum(1 for p in procs if p.flags & F_PARTIAL),
        "failed": sum(1 for p in procs if p.flags & F_FAILED), "oom_kills": len(ooms) or
        sum(1 for p in procs if p.flags & F_OOM), "argv_truncated": s["truncated"], "drops": run.drops,
        "drop_detail": run.drop_detail, "probes_missing": run.degraded_probes(), "samples": counts["samples"],
        "interval_ns": counts["interval_ns"] if counts["samples"] else None,
        "tcp_connections": len(conns), "cost": cost, "detected_runs": counts["detected_runs"],
        "host": asdict(host) if host else {"host_id": run.host_id},
    }


def report_data(store: Store, run: Run, compare: Run | None = None, limits: ReportLimits | None = None,
                progress: Progress | None = None, tune_options: dict | None = None,
                links: dict[str, str] | None = None) -> dict:
    """Everything the page shows, as plain JSON-able data. tune_options go to
    `opensre.analysis.tune` (e.g. price_per_hour, instance_type for the cost).
    A host-wide collection's rows are the runs detected in it (`links`: run_id ->
    the href of that run's own report) and the processes in none of them."""
    b = _Build(store, run, limits or ReportLimits(), progress or (lambda stage, done, total: None))
    rid, collection = run.run_id, run.mode == "collect"
    ps = _process_pass(b)
    procs = ps.rows
    b.t0, b.t_end = _window(run, procs)
    b.prog("tune", 0, 0)
    tune = tune_section(store, [rid], b.lim.findings, tune_options or {})
    tasks = collection_rows(store, run, procs, ps.waits) if collection else store.tasks(rid)
    b.prog("tasks", len(tasks), len(tasks))
    shown = _shown_tasks(b, tasks)
    task_idx = {t.task_id: i for i, t in enumerate(shown)}
    events = list(store.events(rid))
    task_of_proc = {p.key: p.task for p in procs}
    trows = _task_rows(b, shown, tune, events, task_of_proc, links or {})
    tools = store.tools(rid)
    b.prog("tools", len(tools), len(tools))
    urows, labels = _tool_rows(b, tools, task_idx)
    _mark_oom_tools(urows, tools, procs, events)
    series, run_series, nsamp, interval = _series(b, procs, shown)
    prows = _process_table(b, procs, task_idx)
    ooms = [e for e in events if e.kind == "oom_kill"]
    conns = [e for e in events if e.kind == "tcp_connection"]
    erows = _event_rows(b, ooms, conns, task_idx, task_of_proc)
    counts = {"tasks": len(tasks), "tools": len(tools), "samples": nsamp, "interval_ns": interval,
              "detected_runs": sum(t.kind == "task" for t in tasks) if collection else None}
    header = _header(b, ps, counts, ooms, conns, tune.get("cost"), store.host(run.host_id))
    data = {
        "schema": 1, "generated_ns": time.time_ns(), "version": __import__("opensre").__version__,
        "t0_ns": b.t0, "header": header, "notes": b.notes, "limits": asdict(b.lim), **page_constants(),
        "task_cols": TASK_COLS, "tasks": trows, "tool_cols": TOOL_COLS, "tools": urows, "tool_labels": labels,
        "series_cols": SERIES_COLS, "series": series, "run_series": run_series,
        "proc_cols": PROC_COLS, "procs": prows,
        "tool_totals": sorted(([k, *v] for k, v in ps.by_tool.items()), key=lambda r: -r[2]),
        "events": erows, "tune": tune, "compare": None,
    }
    if compare is not None:
        b.prog("compare", 0, 0)
        data["compare"] = compare_section(store, run, compare, header["cpu_ns"], ps.peak.rss if ps.peak else 0)
    return data
