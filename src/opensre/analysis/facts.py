"""Stored run -> TaskFacts: the per-task figures every analysis works from.
Pure reads of the store: no root, works on a copied store file."""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from functools import lru_cache

from ..model import Run
from ..store import Store
from .classify import efficiency
from .result import Given, TaskFacts
from .sizeflags import size_flags
from .workflow import Rule, match_rule, rule_from_argv

IDLE_CPU_FRACTION = 0.01   # under 1% of a core and no I/O in an interval: no progress
MIN_CELL_NS = 50_000_000   # peak cores: the shortest stretch a task's CPU time is divided by


def _progress(rows, ends: dict[str, tuple[int, int]], width_ns: int = 1_000_000_000,
              origin_ns: int = 0) -> tuple[dict[str, float], dict[str, int]]:
    """Per task: the most cores used in one interval of the time series, and the
    longest stretch without progress (CPU or I/O) between its start and end.

    Each row's cpu_ns is the delta over (previous row of that process, t_ns]; it is
    spread evenly over that stretch and the task's CPU-ns are summed per interval of
    a common grid (the sampling interval, from `origin_ns`), then divided by the
    part of the interval the task was alive. CPU time summed per interval can only
    exceed the machine by as much as the spreading smooths, which the caller caps
    (host, cpuset, quota). Rows must come grouped by process, in time order."""
    cells: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))   # partial cells
    runs_: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))   # whole cells: diff array
    moving: dict[str, list[int]] = defaultdict(list)
    W = max(int(width_ns), 1)
    prev_key, prev_t = None, 0
    for tid, pid, start, t, cpu, io in rows:
        k = (pid, start)
        if k != prev_key:
            prev_key, prev_t = k, start
        a, b = prev_t, t
        prev_t = max(prev_t, t)
        if b <= a:
            continue
        cpu = cpu or 0
        if cpu > IDLE_CPU_FRACTION * (b - a) or io:
            moving[tid].append(t)
        if cpu <= 0 or tid is None:
            continue
        rate = cpu / (b - a)
        i0, i1 = (a - origin_ns) // W, (b - 1 - origin_ns) // W
        c = cells[tid]
        if i0 == i1:
            c[i0] += cpu
            continue
        c[i0] += rate * (origin_ns + (i0 + 1) * W - a)
        c[i1] += rate * (b - (origin_ns + i1 * W))
        if i1 > i0 + 1:  # the whole cells in between get rate x W each
            d = runs_[tid]
            d[i0 + 1] += rate * W
            d[i1] -= rate * W
    peak: dict[str, float] = {}
    for tid in set(cells) | set(runs_):
        s, e = ends.get(tid, (None, None))
        c, d = cells.get(tid, {}), runs_.get(tid, {})
        level, best = 0.0, 0.0
        keys = sorted(set(c) | set(d))
        for n, i in enumerate(keys):
            level += d.get(i, 0.0)
            for j, v in ((i, level + c.get(i, 0.0)),) + (((i + 1, level),) if n + 1 < len(keys) and keys[n + 1] > i + 1 else ()):
                lo, hi = origin_ns + j * W, origin_ns + (j + 1) * W
                if s is not None:
                    lo, hi = max(lo, s), min(hi, max(e, s + 1))
                # a sliver at either end of the task would magnify the clocks' jitter
                best = max(best, v / max(hi - lo, min(MIN_CELL_NS, W), 1))
        peak[tid] = best
    stall: dict[str, int] = {}
    for tid, (s, e) in ends.items():
        ts = sorted(moving.get(tid, ()))
        pts = [s] + [t for t in ts if s <= t <= e] + [e]
        stall[tid] = max((b - a for a, b in zip(pts, pts[1:])), default=0)
    return peak, stall


def cpu_capacity(stats: dict, host) -> float | None:
    """The most cores a task could have used at once: the host's CPUs, or less where
    every cgroup its processes ran in is held by a CPU quota or a cpuset (summed over
    those cgroups: a task spread over two quota'd cgroups could use both)."""
    host_cpus = float(host.cpus) if host is not None and host.cpus else None
    caps = []
    for cg in stats.get("cgroups", ()):
        lims = [x for x in (cg.get("cpu_limit_cores"), cg.get("cpuset_cpus")) if x]
        if not lims:
            return host_cpus
        caps.append(float(min(lims)))
    if not caps:
        return host_cpus
    total = sum(caps)
    return min(total, host_cpus) if host_cpus else total


def _pressure(host_samples: list[dict], start: int, end: int, key: str = "psi_memory_some_us") -> float | None:
    """Share of [start, end] during which some task on the host stalled on memory
    (PSI is host-wide: it says the host was short, not that this task was)."""
    pts = [(h["t_ns"], h[key]) for h in host_samples if h.get(key) is not None]
    if len(pts) < 2:
        return None
    ts = [t for t, _ in pts]
    i, j = max(bisect.bisect_right(ts, start) - 1, 0), min(bisect.bisect_left(ts, end), len(pts) - 1)
    if j <= i or pts[j][0] <= pts[i][0]:
        return None
    return round(min((pts[j][1] - pts[i][1]) * 1000 / (pts[j][0] - pts[i][0]), 1.0), 4)


def _given(t, stats: dict, root_cgroup: str | None, flags: list[dict], rule: Rule | None, host) -> Given:
    """What the task was given, most specific source first: its own cgroup's
    limits, the workflow definition, thread/memory flags in argv, the run's cgroup,
    the host."""
    g = Given()
    own = [c for c in stats.get("cgroups", ()) if c["path"] != root_cgroup]
    run_cg = [c for c in stats.get("cgroups", ()) if c["path"] == root_cgroup]
    for cands, tag in ((own, "task cgroup"), (run_cg, "run cgroup")):
        if g.cpus is None:
            q = [c["cpu_limit_cores"] for c in cands if c["cpu_limit_cores"]]
            s = [c["cpuset_cpus"] for c in cands if c["cpuset_cpus"]]
            if q:
                g.cpus, g.cpus_source = min(q), f"{tag} cpu quota"
            elif s:
                g.cpus, g.cpus_source = float(min(s)), f"{tag} cpuset"
        if g.memory_bytes is None:
            m = [c["memory_limit_bytes"] for c in cands if c["memory_limit_bytes"]]
            if m:
                g.memory_bytes, g.memory_source = min(m), f"{tag} memory limit"
        if tag == "task cgroup":  # the workflow and argv flags rank above the run's cgroup
            if rule is not None and g.cpus is None and rule.threads:
                g.cpus, g.cpus_source = float(rule.threads), f"Snakefile threads ({rule.name})"
            if rule is not None and g.memory_bytes is None and rule.memory_bytes:
                g.memory_bytes, g.memory_source = rule.memory_bytes, f"Snakefile resources ({rule.name})"
            if g.cpus is None:
                c = [f for f in flags if "cpus" in f]
                if c:
                    best = max(c, key=lambda f: f["cpus"])
                    g.cpus, g.cpus_source = float(best["cpus"]), f"argv {best['text']} ({best['tool']})"
    if g.cpus is None and host is not None and host.cpus:
        g.cpus, g.cpus_source = float(host.cpus), "host"
    if g.memory_bytes is None and host is not None and host.mem_bytes:
        g.memory_bytes, g.memory_source = host.mem_bytes, "host"
    return g


def task_facts(store: Store, run: Run, rules: dict[str, Rule] | None = None, series: bool = True) -> list[TaskFacts]:
    """Facts for the tasks (not the engine's own processes) of one run. series=False
    skips the time series (peak cores, stalls): cross-run sizing needs only totals."""
    tasks = [t for t in store.tasks(run.run_id) if t.kind == "task"]
    if not tasks:
        return []
    host = store.host(run.host_id) if run.host_id else None
    stats = store.task_process_stats(run.run_id)
    argvs: dict[str, list[list[str]]] = defaultdict(list)
    flags_of: dict[str, list[dict]] = defaultdict(list)
    for tid, a in store.task_argvs(run.run_id):
        flags_of[tid] += _flags(a)
        if rules or (a and "--target-jobs" in a):
            argvs[tid].append(json.loads(a) if a else [])
    root_cg = store.process_cgroup(run.run_id, run.root_pid, run.start_time_ns) if run.root_pid else None
    ooms = {}
    for ev in store.events(run.run_id):
        if ev.kind == "oom_kill":
            ooms[(ev.pid, ev.start_time_ns)] = ev.data.get("memcg_limit_bytes")
    oom_by_task: dict[str, int | None] = {}
    if ooms:
        owner = store.task_ids(run.run_id)
        for k, lim in ooms.items():
            if k in owner:
                oom_by_task[owner[k]] = lim
    ends = {t.task_id: (t.start_time_ns, t.end_time_ns or run.end_time_ns or t.start_time_ns) for t in tasks}
    if series:
        task_of = store.task_ids(run.run_id)
        rows = ((task_of.get((x.pid, x.start_time_ns)), x.pid, x.start_time_ns, x.t_ns, x.cpu_ns,
                 (x.read_bytes or 0) + (x.write_bytes or 0)) for x in store.samples(run.run_id))
        width = int((run.sample_interval_s or 1.0) * 1e9)
        peak, stall = _progress(rows, ends, width, run.start_time_ns)
    else:
        peak, stall = {}, {}
    host_samples = store.host_samples(run.run_id) if series else []
    out = []
    for t in tasks:
        s = stats.get(t.task_id, {})
        flags = flags_of.get(t.task_id, [])
        rule = match_rule(rules, argvs.get(t.task_id, [])) if rules else None
        named = rule.name if rule else rule_from_argv(argvs.get(t.task_id, []))
        end = ends[t.task_id][1]
        wall = max(end - t.start_time_ns, 0)
        cap = cpu_capacity(s, host)
        pk = peak.get(t.task_id, (t.cpu_ns / wall) if wall else 0.0)
        if cap:
            pk = min(pk, cap)
        out.append(TaskFacts(
            run_id=run.run_id, task_id=t.task_id, task_name=t.task_name,
            task_type=named or t.task_name, engine=t.engine,
            start_time_ns=t.start_time_ns, end_time_ns=t.end_time_ns, wall_ns=wall, cpu_ns=t.cpu_ns,
            runq_wait_ns=t.runq_wait_ns or 0, blocked_io_ns=t.blocked_io_ns or 0, sleep_ns=s.get("sleep_ns", 0),
            peak_rss_bytes=t.peak_rss_bytes or 0,
            memory_peak_bytes=max(t.memory_peak_bytes or 0, t.peak_rss_bytes or 0), read_bytes=t.read_bytes or 0, write_bytes=t.write_bytes or 0,
            major_faults=s.get("major_faults", 0), max_threads=s.get("max_threads", 0) or 1,
            peak_cores=round(pk, 3), cpu_capacity=cap,
            longest_stall_ns=stall.get(t.task_id, 0), exit_code=t.exit_code, exit_signal=t.exit_signal,
            oom_killed=bool(t.oom_killed), oom_limit_bytes=oom_by_task.get(t.task_id),
            host_memory_pressure=_pressure(host_samples, t.start_time_ns, end) if host_samples else None,
            given=_given(t, s, root_cg, flags, rule, host), size_flags=flags, tools=list(t.tools)))
    for f in out:
        f.parallel_efficiency = efficiency(f)
    return out


@lru_cache(maxsize=1 << 16)
def _flags(raw: str | None) -> tuple:
    """Sizing flags of one stored argv (JSON): pipelines rerun the same command lines
    across runs, so each distinct one is parsed once."""
    return tuple(size_flags(json.loads(raw))) if raw else ()
