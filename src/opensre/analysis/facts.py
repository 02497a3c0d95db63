"""Stored run -> TaskFacts: the per-task figures every analysis works from.
Pure reads of the store: no root, works on a copied store file."""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from functools import lru_cache

from ..model import Run
from ..store import TASK_FACT_COLUMNS, Store
from .classify import efficiency
from .compare import task_type
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


def _given(stats: dict, root_cgroup: str | None, flags: list[dict], rule: Rule | None, host) -> Given:
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


AGGREGATES_VERSION = 1   # bump when what task_aggregates computes changes: stored rows of another version
                         # are ignored (computed on the fly) until the run is correlated again


def task_aggregates(store: Store, run: Run, ends: dict[str, tuple[int, int]] | None = None,
                    series: bool = True, *, samples: list | None = None,
                    task_of: dict | None = None) -> dict[str, dict]:
    """Per task (not the engine's), the figures tune computes from its processes, command
    lines and time series rather than reads from its task row: sleep, major faults, most
    threads, cgroups and their limits, sizing flags in argv, the rule named by
    `--target-jobs`, peak cores (before the capacity cap; None without samples) and the
    longest stretch without progress, over the task's span (`end_ns`: its end, else the
    run's). Correlation keeps them in the store (`store_aggregates`); series=False leaves
    out the time series (peak_cores None, longest_stall_ns 0). `ends`: task_id ->
    (start, end), else from the stored tasks. `samples` (store.samples() of the run)
    and `task_of` (its processes' stored task ids), when the caller has them already."""
    if ends is None:
        ends = {r[0]: (r[3], r[4] or run.end_time_ns or r[3])
                for r in store.task_fact_rows(run.run_id, AGGREGATES_VERSION)}
    if not ends:
        return {}
    stats = store.task_process_stats(run.run_id)
    flags_of: dict[str, list[dict]] = defaultdict(list)
    targets: dict[str, list[list[str]]] = defaultdict(list)
    for tid, a in store.task_argvs(run.run_id):
        flags_of[tid] += _flags(a)
        if a and "--target-jobs" in a:
            targets[tid].append(json.loads(a))
    if series:
        task_of = store.task_ids(run.run_id) if task_of is None else task_of
        rows = ((task_of.get((x.pid, x.start_time_ns)), x.pid, x.start_time_ns, x.t_ns, x.cpu_ns,
                 (x.read_bytes or 0) + (x.write_bytes or 0))
                for x in (store.samples(run.run_id) if samples is None else samples))
        width = int((run.sample_interval_s or 1.0) * 1e9)
        peak, stall = _progress(rows, ends, width, run.start_time_ns)
    else:
        peak, stall = {}, {}
    out = {}
    for tid, (_, end) in ends.items():
        s = stats.get(tid, {})
        out[tid] = {
            "end_ns": end, "sleep_ns": s.get("sleep_ns", 0), "major_faults": s.get("major_faults", 0),
            "max_threads": s.get("max_threads", 0), "cgroups": s.get("cgroups", []),
            "size_flags": flags_of.get(tid, []), "target_rule": rule_from_argv(targets.get(tid, [])),
            "peak_cores": peak.get(tid), "longest_stall_ns": stall.get(tid, 0)}
    return out


def _keepable(store: Store, run: Run) -> bool:
    """A finished run on a writable store: its aggregates can be kept (a running
    run's series still grows)."""
    return not store.readonly and run.status != "running" and run.end_time_ns is not None


def store_aggregates(store: Store, run: Run | str, **known) -> bool:
    """Compute a finished run's per-task aggregates and keep them in the store
    (correlation calls this; tune then reads them instead of every process, command
    line and sample). False when there is nothing to keep: the run is still running,
    or the store is read-only or older than schema v10. `known`: task_aggregates'
    samples= and task_of= when the caller has them."""
    if isinstance(run, str):
        run = store.resolve_run(run)
    if not _keepable(store, run):
        return False
    return store.put_task_aggregates(run.run_id, AGGREGATES_VERSION, task_aggregates(store, run, **known))


_AGG_AT = TASK_FACT_COLUMNS.index("end_ns")
_AGG_KEYS = TASK_FACT_COLUMNS[_AGG_AT:]
_AGG_JSON = ("cgroups", "size_flags")


def task_facts(store: Store, run: Run, rules: dict[str, Rule] | None = None, series: bool = True,
               cache: dict | None = None) -> list[TaskFacts]:
    """Facts for the tasks (not the engine's own processes) of one run. series=False
    skips the time series (peak cores, stalls): cross-run sizing needs only totals.
    The per-task aggregates come from the store where correlation kept them for the
    same span; else they are computed here (and kept, on a writable store). `cache`:
    shared by the calls of one analysis (hosts; what tasks with the same cgroups and
    flags were given)."""
    rows = store.task_fact_rows(run.run_id, AGGREGATES_VERSION)
    if not rows:
        return []
    ends = {r[0]: (r[3], r[4] or run.end_time_ns or r[3]) for r in rows}
    if any(r[_AGG_AT] != ends[r[0]][1] for r in rows):  # none kept, another version, or another span
        keep = _keepable(store, run)
        agg = task_aggregates(store, run, ends, series or keep)
        if keep:
            store.put_task_aggregates(run.run_id, AGGREGATES_VERSION, agg)
        rows = [r[:_AGG_AT] + tuple(json.dumps(agg[r[0]][k]) if k in _AGG_JSON else agg[r[0]][k] for k in _AGG_KEYS)
                for r in rows]  # as the store keeps them
    cache = {} if cache is None else cache
    hosts = cache.setdefault("hosts", {})
    if run.host_id not in hosts:
        hosts[run.host_id] = store.host(run.host_id) if run.host_id else None
    host = hosts[run.host_id]
    argvs: dict[str, list[list[str]]] = defaultdict(list)
    if rules:
        for tid, a in store.task_argvs(run.run_id):
            argvs[tid].append(json.loads(a) if a else [])
    root_cg = store.process_cgroup(run.run_id, run.root_pid, run.start_time_ns) if run.root_pid else None
    ooms = {}
    for ev in store.events(run.run_id, "oom_kill"):
        ooms[(ev.pid, ev.start_time_ns)] = ev.data.get("memcg_limit_bytes")
    oom_by_task: dict[str, int | None] = {}
    if ooms:
        owner = store.task_ids(run.run_id)
        for k, lim in ooms.items():
            if k in owner:
                oom_by_task[owner[k]] = lim
    host_samples = store.host_samples(run.run_id) if series else []
    given = cache.setdefault("given", {})
    out = []
    rid = run.run_id
    for (tid, name, engine, start, end_t, cpu, rss, mem, rd, wr, rq, blk, code, sig, oom, tools,
         end, sleep, majf, threads, cg, fl, target, peak, stall) in rows:
        rule = match_rule(rules, argvs.get(tid, [])) if rules else None
        # a pipeline's tasks repeat the same few cgroups and flags: decoded, and what
        # they were given worked out, once per distinct set
        key = (cg, fl, rule.name if rule else None, root_cg, run.host_id)
        hit = given.get(key)
        if hit is None:
            s, flags = {"cgroups": _decoded(cg)}, _decoded(fl)
            hit = given[key] = (cpu_capacity(s, host), _given(s, root_cg, flags, rule, host), flags)
        cap, g, flags = hit
        wall = max(end - start, 0)
        pk = peak if series and peak is not None else (cpu / wall) if wall else 0.0
        if cap:
            pk = min(pk, cap)
        rss = rss or 0
        threads = threads or 1
        f = TaskFacts(  # positional (TaskFacts' field order): 100,000 of these for --pipeline
            rid, tid, name, (rule.name if rule else target) or task_type(name), engine,
            start, end_t, wall, cpu, rq or 0, blk or 0, sleep,         # ..., runq_wait_ns, blocked_io_ns, sleep_ns
            rss, rd or 0, wr or 0, majf, threads, round(pk, 3),         # peak_rss_bytes, ..., max_threads, peak_cores
            stall if series else 0, code, sig, bool(oom),               # longest_stall_ns, exit_code/signal, oom_killed
            oom_by_task.get(tid), None,                                # oom_limit_bytes, parallel_efficiency
            _pressure(host_samples, start, end) if host_samples else None,           # host_memory_pressure
            Given(g.cpus, g.cpus_source, g.memory_bytes, g.memory_source), list(flags), list(_decoded(tools)),
            max(mem or 0, rss), cap)                                    # memory_peak_bytes, cpu_capacity
        f.parallel_efficiency = efficiency(f)
        out.append(f)
    return out


@lru_cache(maxsize=1 << 14)
def _decoded(text: str | None):
    """Stored JSON (tools, cgroups, flags), decoded once per distinct text; shared: read only."""
    return json.loads(text) if text else []


@lru_cache(maxsize=1 << 16)
def _flags(raw: str | None) -> tuple:
    """Sizing flags of one stored argv (JSON): pipelines rerun the same command lines
    across runs, so each distinct one is parsed once."""
    return tuple(size_flags(json.loads(raw))) if raw else ()
