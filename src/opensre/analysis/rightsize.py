"""Recommended CPUs and memory per task type, from the true peaks of its tasks
across one or more runs (method and numbers explained in docs/tune.md).

Memory: the p95 of per-task peak memory (the concurrent footprint: the largest
sum of its live processes' RSS, never less than its largest process; the maximum when there are fewer than
MIN_SAMPLES tasks), plus HEADROOM, rounded up to 64 MiB; with few samples the
headroom is larger. A type with an OOM kill gets at least OOM_FACTOR x the limit
it was killed at (like a retry with task.attempt x memory), never less.
CPUs: how many cores the tasks wanted, on-CPU + run-queue wait over wall (so
starved tasks are not shrunk further), p90, rounded to whole CPUs, capped by the
threads they ran."""

from __future__ import annotations

import math
from collections import defaultdict

from ..model import failed
from .result import Recommendation, TaskFacts

MIN_SAMPLES = 5
HEADROOM = 0.20
HEADROOM_FEW = 0.50
OOM_FACTOR = 2.0
ROUND_MEM = 64 << 20
MIN_MEM = 128 << 20
FLAG_OVERHEAD = 1.15  # a JVM's RSS goes beyond -Xmx (metaspace, threads, GC)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: the figure is one that happened)."""
    v = sorted(values)
    if not v:
        return 0.0
    return v[max(0, math.ceil(q * len(v)) - 1)]


def _round_up(n: float, step: int) -> int:
    return int(math.ceil(n / step) * step)


def recommend(facts: list[TaskFacts]) -> list[Recommendation]:
    by_type: dict[str, list[TaskFacts]] = defaultdict(list)
    for t in facts:
        by_type[t.task_type].append(t)
    out = []
    for ttype, ts in sorted(by_type.items()):
        ok = [t for t in ts if not t.oom_killed]
        n = len(ts)
        peaks = [t.memory_bytes for t in ts]  # what the task held at once, not its largest process
        few = n < MIN_SAMPLES
        peak_p95 = percentile(peaks, 0.95)
        base = max(peaks) if few else peak_p95
        headroom = HEADROOM_FEW if few else HEADROOM
        mem = max(_round_up(base * (1 + headroom), ROUND_MEM), MIN_MEM)
        reason = [f"peak memory {'max' if few else 'p95'} {base / 2**20:.0f} MiB over {n} task(s) "
                  f"+ {int(headroom * 100)}% headroom"]
        ooms = [t for t in ts if t.oom_killed]
        if ooms:
            lim = max((t.oom_limit_bytes or t.given.memory_bytes or t.memory_bytes) for t in ooms)
            floor = _round_up(lim * OOM_FACTOR, ROUND_MEM)
            if floor > mem:
                mem = floor
            reason.append(f"{len(ooms)} OOM kill(s) at a {lim / 2**20:.0f} MiB limit: at least {OOM_FACTOR:g}x that")
        retried = _retried(ts)
        if retried and not ooms:
            reason.append(f"{retried} failed attempt(s) retried: sized from every attempt's peak")

        wall = [t for t in (ok or ts) if t.wall_ns > 0]
        demand = [(t.cpu_ns + t.runq_wait_ns) / t.wall_ns for t in wall]
        d = percentile(demand, 0.9) if demand else 1.0
        threads = max([t.max_threads for t in ts])  # ts is never empty
        cpus = max(1, min(math.ceil(d - 0.15), max(threads, 1)))
        reason.append(f"CPU demand (on-CPU + run-queue wait) / wall p90 {d:.2f} cores, "
                      f"{threads} thread(s) at most")

        cur_cpus = _common([t.given.cpus for t in ts if t.given.cpus_source != "host"])
        cur_mem = _common([t.given.memory_bytes for t in ts if t.given.memory_source != "host"])
        warnings = []
        for f in _flags(ts):
            if "memory_bytes" in f and mem < f["memory_bytes"] * FLAG_OVERHEAD:
                need = _round_up(f["memory_bytes"] * FLAG_OVERHEAD, ROUND_MEM)
                warnings.append(f"{f['tool']} sizes itself with {f['text']} ({f['memory_bytes'] / 2**30:.2f} GiB): "
                                f"the recommended {mem / 2**30:.2f} GiB would cut below it; lower the flag to match "
                                f"(peak was {max(peaks) / 2**30:.2f} GiB) or keep at least {need / 2**30:.2f} GiB")
            if "cpus" in f and cpus < f["cpus"]:
                warnings.append(f"{f['tool']} starts {f['cpus']} threads ({f['text']}): with {cpus} CPU(s) they "
                                f"will time-share; lower the flag to {cpus} too")
        single = [t.peak_rss_bytes for t in ts]
        evidence = {"tasks": n, "runs": len({t.run_id for t in ts}), "memory_peak_bytes_max": max(peaks),
                    "memory_peak_bytes_p95": peak_p95, "peak_rss_bytes_max": max(single),
                    "peak_rss_bytes_p95": percentile(single, 0.95), "cpu_demand_p90": round(d, 3),
                    "peak_cores_max": max([t.peak_cores for t in ts]), "max_threads": threads,
                    "wall_s_p95": round(percentile([t.wall_ns for t in ts], 0.95) / 1e9, 3),
                    "oom_kills": len(ooms), "few_samples": few}
        out.append(Recommendation(ttype, cpus, mem, "; ".join(reason), evidence, warnings, cur_cpus, cur_mem))
    return out


def _common(vals):
    vals = [v for v in vals if v]
    return max(vals) if vals else None


def _flags(ts: list[TaskFacts]) -> list[dict]:
    seen, out, met = set(), [], set()
    for t in ts:
        for f in t.size_flags:
            if id(f) in met:  # tasks of a pipeline share their flags' dicts: each looked at once
                continue
            met.add(id(f))
            k = (f["tool"], f["text"])
            if k not in seen:
                seen.add(k)
                out.append(f)
    return out


def _retried(ts: list[TaskFacts]) -> int:
    """Failed tasks of this type followed by a task of the same name (a retry): in
    each (run, name), the failed ones except the one started last (of those started
    at the same time, the last listed), in one pass."""
    groups: dict[tuple, list] = {}  # (run_id, task_name) -> [failed, start of the last, whether it failed]
    for t in ts:
        f = bool((t.exit_code or t.exit_signal) and failed(t.exit_code, t.exit_signal))
        g = groups.get((t.run_id, t.task_name))
        if g is None:
            groups[(t.run_id, t.task_name)] = [f, t.start_time_ns, f]
        else:
            g[0] += f
            if t.start_time_ns >= g[1]:
                g[1], g[2] = t.start_time_ns, f
    return sum(g[0] - g[2] for g in groups.values())
