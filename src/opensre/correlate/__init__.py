"""Correlation: runs, tasks and tools from process records.

Pure Python over the store: runs without root, on a copied store file.
"""

from __future__ import annotations

from pathlib import Path

from .memory import concurrent_peaks
from .tasks import Correlation, Correlator
from .. import rulefile
from .tools import ToolId, ToolIdentifier, tool_label

__all__ = ["Correlation", "Correlator", "ToolId", "ToolIdentifier", "correlate_run", "correlate_collection",
           "tool_identifier", "tool_label", "run_rules"]


def correlate_run(store, run_id: str, rule_files: list[str | Path] = (), *, procs=None, execs=None,
                  run=None, identifier: ToolIdentifier | None = None) -> Correlation:
    """(Re)compute a stored run's tasks and tool invocations and store them.
    `procs`, `execs` (and `run`): the run's stored records as the store would return
    them, when the caller holds them (`opensre run` keeps what it wrote): not read
    back. The processes get their task_id, as the store's rows do. `identifier`:
    the tool rules already loaded (tool_identifier()), instead of reading the files again."""
    by_proc: dict[tuple[int, int], list[list[str]]] = {}
    for e in (store.execs(run_id) if execs is None else execs):
        by_proc.setdefault((e.pid, e.start_time_ns), []).append(e.argv)
    execs = by_proc
    run = run or store.resolve_run(run_id)
    held = procs is not None
    procs = list(store.processes(run_id)) if procs is None else procs
    ident = identifier or tool_identifier(store.path, rule_files)
    c = Correlator(ident).correlate(run_id, procs, execs)
    if held:
        for p in procs:
            p.task_id = c.task_of.get((p.pid, p.start_time_ns), p.task_id)
    _root_status(c.tasks, run)
    samples = list(store.samples(run_id))  # read once: the peaks and the aggregates both go through it
    peaks = concurrent_peaks(procs, samples, c.task_of, run.end_time_ns)
    for t in c.tasks:
        t.memory_peak_bytes = max(peaks.get(t.task_id, 0), t.peak_rss_bytes or 0)
    store.put_correlation(run_id, c.tasks, c.tools, c.task_of)
    # the processes now point at their tasks as task_of says (all of the run's: they came from
    # it), except for a detected run, whose processes are stored under its collection
    known = {"task_of": c.task_of} if run.parent_run_id is None else {}
    _store_aggregates(store, run, samples=samples, **known)
    return c


def _store_aggregates(store, run, **known) -> None:
    """tune's per-task figures, kept once the tasks are known (analysis computes them:
    the same code as when they are missing, so both give the same numbers)."""
    from ..analysis.facts import store_aggregates

    store_aggregates(store, run, **known)


def _root_status(tasks, run) -> None:
    """The task holding the run's root process carries the run's exit status: the
    wait status `opensre run` reaped is the truth when the root's own record lacks one."""
    if run.root_pid is None or (run.exit_code is None and run.exit_signal is None):
        return
    for t in tasks:
        if t.root_pid == run.root_pid and t.exit_code is None and t.exit_signal is None:
            t.exit_code, t.exit_signal = run.exit_code, run.exit_signal


def tool_identifier(store_path, rule_files=()) -> ToolIdentifier:
    """The tool rules of every view of a store (run, show/correlate, top): the built-in
    catalogue < the user's tools.yaml < rules.yaml beside the store < --rules files.
    Loaded, so that a broken one fails before anything starts. Raises RuleError."""
    return ToolIdentifier.from_files(rulefile.rule_files("tools.yaml", rule_files, store_path, "rules.yaml"))


def run_rules(store_path, run_rule_files=()) -> list:
    """Every `runs:` rule source of a collection, loaded (see tool_identifier): the
    user's runs.yaml, runs.yaml beside the store, then the given ones."""
    from .runs import load_run_rules

    return load_run_rules(rulefile.rule_files("runs.yaml", run_rule_files, store_path, "runs.yaml"))


def detected_run_id(collection_run_id: str, root: tuple[int, int]) -> str:
    """Stable across re-detection: the same root in the same collection, the same id."""
    import hashlib

    return hashlib.sha1(f"{collection_run_id}/{root[0]}/{root[1]}".encode()).hexdigest()[:12]


def correlate_collection(store, collection_run_id: str, rule_files: list[str | Path] = (),
                         run_rule_files: list[str | Path] = (), identifier: ToolIdentifier | None = None,
                         rules: list | None = None) -> list:
    """(Re)detect the runs in a host-wide collection and correlate each into tasks
    and tools. Replaces the runs detected earlier in it. Each detected run is a
    `runs` row (mode "detected", parent_run_id = the collection); its processes
    stay stored under the collection, each pointing at its task (ids "r<N>.t<M>",
    unique within the collection) or at "unattributed". Returns the detected runs."""
    from ..model import Run
    from .runs import UNATTRIBUTED, detect_runs, session_of

    coll = store.resolve_run(collection_run_id)
    corr = Correlator(identifier or tool_identifier(store.path, rule_files))
    if rules is None:
        rules = run_rules(store.path, run_rule_files)
    procs = list(store.processes(coll.run_id))
    execs: dict[tuple[int, int], list[list[str]]] = {}
    for e in store.execs(coll.run_id):
        execs.setdefault((e.pid, e.start_time_ns), []).append(e.argv)
    # for a collection, root_pid is the process the collector was started from
    session = session_of(procs, coll.root_pid, coll.start_time_ns) if coll.root_pid else set()
    detected = detect_runs(procs, rules, correlator=corr, session=session)
    by_key = {(p.pid, p.start_time_ns): p for p in procs}
    out: list[tuple[Run, list, list]] = []
    task_of: dict[tuple[int, int], str] = {}
    for i, d in enumerate(detected, 1):
        rid = detected_run_id(coll.run_id, d.root)
        ms = [by_key[k] for k in d.members]
        c = corr.correlate(rid, ms, {k: execs[k] for k in d.members if k in execs})
        prefix = f"r{i}."
        for t in c.tasks:
            t.task_id = prefix + t.task_id
        for u in c.tools:
            u.task_id = prefix + u.task_id
        task_of.update((k, prefix + tid) for k, tid in c.task_of.items())
        root = by_key[d.root]
        ends = [m.end_time_ns for m in ms]
        done = all(e is not None for e in ends)
        run = Run(run_id=rid, name=d.name, mode="detected", host_id=coll.host_id, command=list(root.argv),
                  start_time_ns=min(m.start_time_ns for m in ms), end_time_ns=max(ends) if done else None,
                  status="finished" if done else "incomplete", exit_code=root.exit_code,
                  exit_signal=root.exit_signal, root_pid=root.pid, drops=coll.drops,
                  drop_detail=dict(coll.drop_detail), process_count=len(ms), parent_run_id=coll.run_id,
                  sample_interval_s=coll.sample_interval_s, probes=dict(coll.probes))
        out.append((run, c.tasks, c.tools))
    peaks = concurrent_peaks(procs, store.samples(coll.run_id), task_of, coll.end_time_ns)
    for _, tasks, _ in out:
        for t in tasks:
            t.memory_peak_bytes = max(peaks.get(t.task_id, 0), t.peak_rss_bytes or 0)
    store.put_detected_runs(coll.run_id, out, task_of, UNATTRIBUTED)
    for r, _, _ in out:
        _store_aggregates(store, r)
    return [r for r, _, _ in out]
