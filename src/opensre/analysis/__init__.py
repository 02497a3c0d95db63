"""Analysis over a stored run: classification, right-sizing, comparison, cost.
Pure Python over the store: runs without root, on a copied store file; never
imports the collector or the loader."""

from __future__ import annotations

import functools
import gc

from ..model import Run, failed
from ..store import Store
from .changes import what_changed
from .classify import Thresholds, classify
from .compare import Floors, compare
from .cost import cheapest_fit, host_arch, instance, run_cost, shape_differences
from .emit import FORMATS, emit
from .facts import task_facts
from .result import CLASSIFICATIONS, Delta, Finding, Given, Recommendation, TaskFacts, TuneResult
from .rightsize import recommend
from .workflow import read_snakefile

__all__ = ["tune", "emit", "FORMATS", "CLASSIFICATIONS", "Thresholds", "Floors", "TuneResult", "Finding",
           "Recommendation", "TaskFacts", "Delta", "Given"]

MIN_TOOL_WALL_S = 0.5  # tools shorter than this are not classified on their own


def _tool_findings(store: Store, run: Run, facts: list[TaskFacts], th: Thresholds) -> list[Finding]:
    names = {t.task_id: t for t in facts}
    out = []
    for (tid, tool, sub, pid, start, end, cpu, peak, code, sig, rq, blk, threads, oom) in store.tool_waits(run.run_id):
        t = names.get(tid)
        if t is None or end is None or (end - start) < MIN_TOOL_WALL_S * 1e9:
            continue
        name = f"{tool} {sub}" if sub else tool
        wall = end - start
        tf = TaskFacts(run.run_id, tid, t.task_name, t.task_type, t.engine, start, end, wall, cpu or 0, rq or 0,
                       blk or 0, 0, peak or 0, 0, 0, 0, threads or 1, round((cpu or 0) / wall, 3), 0, code, sig,
                       bool(oom), None)
        for f in classify(tf, th):
            if f.classification in ("cpu_bound", "io_bound", "cpu_starved", "failed", "oom_killed"):
                f.tool = name
                f.evidence["pid"] = pid
                out.append(f)
    return out


def _resolve(store: Store, refs) -> list[Run]:
    runs, seen = [], set()
    for ref in refs:
        r = store.resolve_run(ref)
        if r.run_id not in seen:
            seen.add(r.run_id)
            runs.append(r)
    return runs


def _without_gc(fn):
    """The cyclic collector paused while `fn` runs: --pipeline builds 100,000 facts,
    and each collection that triggers walks all those built so far (a third of
    tune's time) for nothing: facts hold no reference cycles, and reference
    counting still frees them."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kw)
        finally:
            if was:
                gc.enable()
    return wrapper


def _findings(store: Store, runs: list[Run], rules, cache: dict,
              th: Thresholds) -> tuple[list[TaskFacts], list[Finding], list[Finding]]:
    """The facts of the runs reported on, their findings per task and per tool."""
    facts: list[TaskFacts] = []
    findings: list[Finding] = []
    tool_findings: list[Finding] = []
    for run in runs:
        fs = task_facts(store, run, rules, cache=cache)
        facts += fs
        for t in fs:
            findings += classify(t, th)
        tool_findings += _tool_findings(store, run, fs, th)
    return facts, findings, tool_findings


def _instance_suggestion(recs: list[Recommendation], arch: str | None) -> dict | None:
    """The cheapest bundled type that fits the largest recommendation."""
    need_c = max(r.cpus for r in recs)
    need_m = max(r.memory_bytes for r in recs)
    fit = cheapest_fit(need_c, need_m, arch)
    return None if fit is None else {
        "instance_type": fit.name, "vcpus": fit.vcpus, "memory_gib": fit.memory_gib,
        "usd_per_hour": fit.usd_per_hour, "arch": fit.arch,
        "reason": f"cheapest {arch + ' ' if arch else ''}type in the bundled table with >= {need_c} "
                  f"vCPUs and >= {need_m / 2**30:.1f} GiB (the largest recommendation)"
                  + ("" if arch else "; the host's architecture is unknown (stored before schema v11): "
                                      "check the type runs your binaries")}


def _cost(store: Store, runs: list[Run], host, facts: list[TaskFacts], recs: list[Recommendation],
          price_per_hour: float | None, instance_type: str | None) -> dict:
    # the cores the run had are the observed host's, whatever type is named for the price
    it = instance(instance_type) if instance_type else None
    cpus = host.cpus if host and host.cpus else (it.vcpus if it else 1)
    if it:
        price, src = it.usd_per_hour, f"{it.name} on-demand (bundled table)"
    else:
        price, src = price_per_hour, "--price-per-hour"
    wall = sum(((r.end_time_ns or r.start_time_ns) - r.start_time_ns) / 1e9 for r in runs)
    tools = [u for r in runs for u in store.tools(r.run_id)]
    cost = run_cost(wall, cpus, price, facts, tools, recs, src)
    arch = host_arch(host)
    cost["host_arch"] = arch
    if it:
        diff = shape_differences(it, host)
        cost["instance"] = {"instance_type": it.name, "vcpus": it.vcpus, "memory_gib": it.memory_gib,
                            "arch": it.arch, "usd_per_hour": it.usd_per_hour, "matches_host": not diff}
        cost["shape_note"] = None if not diff else (
            f"{it.name} differs from the observed host ({'; '.join(diff)}): its price is used, "
            f"split over the host's {cpus} CPUs the run had")
    if recs:
        cost["instance_suggestion"] = _instance_suggestion(recs, arch)
    return cost


@_without_gc
def tune(store: Store, run_ids: list[str], *, workflow: str | None = None, thresholds: Thresholds | None = None,
         price_per_hour: float | None = None, instance_type: str | None = None,
         compare_with: list[str] | None = None, floors: Floors | None = None,
         sizing_runs: list[str] | None = None, baseline: list[str] | None = None) -> TuneResult:
    """Analyse runs. Findings and cost are for the runs reported on: `run_ids`, or
    with `compare_with` those (the "after" side: `run_ids` are then the "before",
    the baseline); recommendations come from them plus `sizing_runs` (other runs of
    the same pipeline); with `baseline` (earlier runs of the pipeline) `run_ids` are
    compared against it. A comparison says per task type what changed: executables,
    flags, bytes read (`changes`)."""
    th = thresholds or Thresholds()
    before_refs = list(run_ids) if compare_with else None
    if compare_with:  # report on the after runs; the before runs are their baseline
        run_ids, baseline = list(compare_with), list(run_ids)
    rules = read_snakefile(workflow) if workflow else None
    runs = _resolve(store, run_ids)
    cache: dict = {}  # hosts, what tasks were given: shared by every run's facts
    totals: dict[str, list[TaskFacts]] = {}  # series=False facts by run: sizing and the baseline share them

    def totals_of(run: Run) -> list[TaskFacts]:
        if run.run_id not in totals:
            totals[run.run_id] = task_facts(store, run, rules, series=False, cache=cache)
        return totals[run.run_id]

    facts, findings, tool_findings = _findings(store, runs, rules, cache, th)
    sizing = list(facts)
    ours = {r.run_id for r in runs}
    extra = [r for r in _resolve(store, sizing_runs or []) if r.run_id not in ours]
    for run in extra:
        sizing += totals_of(run)
    recs = recommend(sizing)
    comparison = changes = None
    base_runs: list[Run] = []
    if baseline:
        before: list[TaskFacts] = []
        base_runs = [r for r in _resolve(store, baseline) if r.run_id not in ours or compare_with]
        for run in base_runs:
            before += totals_of(run)
        if before:
            comparison = compare(before, facts, floors)
            changes = what_changed(store, [r.run_id for r in base_runs], [r.run_id for r in runs], before, facts)
    host = store.host(runs[0].host_id) if runs and runs[0].host_id else None
    cost = None
    if price_per_hour is not None or instance_type:
        cost = _cost(store, runs, host, facts, recs, price_per_hour, instance_type)
    return TuneResult(
        run_ids=[r.run_id for r in runs], tasks=facts,
        runs=[{"run_id": r.run_id, "status": r.status, "exit_code": r.exit_code, "exit_signal": r.exit_signal,
               "failed": failed(r.exit_code, r.exit_signal)} for r in runs], findings=findings, tool_findings=tool_findings,
        recommendations=recs, cost=cost, comparison=comparison, changes=changes,
        host=None if host is None else {"hostname": host.hostname, "cpus": host.cpus, "mem_bytes": host.mem_bytes},
        options={"idle_after_s": th.idle_after_s, "workflow": workflow,
                 "sizing_runs": [r.run_id for r in extra], "compare_with": compare_with or [],
                 "compare_before": before_refs or [], "baseline": [r.run_id for r in base_runs]})
