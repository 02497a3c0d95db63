"""`report --compare`: the comparison section, on analysis' comparison model
(`opensre.analysis.compare`: grouped by task type as `tune --compare` is)."""

from __future__ import annotations

from ..analysis.compare import by_type, compare_totals, task_type
from ..model import Run, Task
from ..store import Store
from .rows import failed
from .summary import exit_text

__all__ = ["compare_rows", "compare_section", "task_type"]


def _type_of(t: Task) -> str:
    return "(engine)" if t.kind != "task" else task_type(t.task_name)


def _totals(t: Task) -> tuple:
    dur = (t.end_time_ns - t.start_time_ns) if t.end_time_ns else 0
    return dur, t.cpu_ns, t.peak_rss_bytes, failed(t) or t.oom_killed


def compare_rows(tasks_a: list[Task], tasks_b: list[Task], run_a: Run, run_b: Run,
                 procs_a: tuple[int, int] = (0, 0), procs_b: tuple[int, int] = (0, 0)) -> list[dict]:
    """Per task type: count, mean duration, total CPU and the largest peak RSS in
    each run, and B - A. The first row is the whole run (procs_*: (cpu_ns, peak_rss))."""

    def side(tasks):
        return {k: [_totals(t) for t in v] for k, v in by_type(tasks, _type_of).items()}

    def wall(r):
        return (r.end_time_ns - r.start_time_ns) if r.end_time_ns else None

    return compare_totals(side(tasks_a), side(tasks_b),
                          {"n": 1, "dur": wall(run_a), "cpu": procs_a[0], "rss": procs_a[1]},
                          {"n": 1, "dur": wall(run_b), "cpu": procs_b[0], "rss": procs_b[1]})


def compare_section(store: Store, a: Run, b: Run, cpu_a: int, rss_a: int) -> dict:
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
