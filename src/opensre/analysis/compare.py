"""Run comparison, per task type: both `tune --compare` and `report --compare`
group by `task_type()` and compare the two sides type by type.

`compare()` (tune): the median of each side and a regression flag only beyond
noise. Noise is the spread seen within a side (tasks of one type in one run, or
the same type over several runs); a change must beat both a relative floor and
an absolute floor, so tiny tasks jittering by 2x on a busy host are not flagged.
`compare_totals()` (the report): per type, the count, mean duration, total CPU
and largest peak RSS of each side, and B - A."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median
from typing import Callable, Iterable, TypeVar

from .result import Delta, TaskFacts


T = TypeVar("T")


def task_type(name: str) -> str:
    """A task's type from its name (where no rule names it): the name without a
    Nextflow work-dir suffix (`fastqc [ab/cdef12]` and `fastqc [12/34abcd]` are one type)."""
    if name.endswith("]") and " [" in name:
        return name[:name.rindex(" [")]
    return name


def by_type(items: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    """The items of one side grouped by their type."""
    g: dict[str, list[T]] = defaultdict(list)
    for x in items:
        g[key(x)].append(x)
    return g


@dataclass
class Floors:
    rel: float = 0.25                 # at least +25%
    noise_mult: float = 2.0           # and more than twice the spread within a side
    abs: dict = None                  # and more than this much, per metric

    def __post_init__(self):
        if self.abs is None:
            self.abs = {"duration_s": 0.5, "cpu_s": 0.5, "peak_rss_bytes": 64 << 20}


METRICS = {"duration_s": lambda t: t.wall_ns / 1e9, "cpu_s": lambda t: t.cpu_ns / 1e9,
           "peak_rss_bytes": lambda t: float(t.peak_rss_bytes)}


def _spread(vals: list[float]) -> float:
    if len(vals) < 2:
        return 0.0
    m = median(vals)
    return (max(vals) - min(vals)) / m if m else 0.0


def compare(before: list[TaskFacts], after: list[TaskFacts], floors: Floors | None = None) -> list[Delta]:
    f = floors or Floors()
    a, b = by_type(before, lambda t: t.task_type), by_type(after, lambda t: t.task_type)
    out = []
    for ttype in sorted(set(a) | set(b)):
        for metric, get in METRICS.items():
            va, vb = [get(t) for t in a.get(ttype, ())], [get(t) for t in b.get(ttype, ())]
            if not va or not vb:
                out.append(Delta(ttype, metric, median(va) if va else float("nan"),
                                 median(vb) if vb else float("nan"), None, 0.0, False, False, len(va), len(vb)))
                continue
            ma, mb = median(va), median(vb)
            noise = max(_spread(va), _spread(vb))
            ratio = mb / ma if ma else None
            rel = max(f.rel, f.noise_mult * noise)
            big = abs(mb - ma) > f.abs[metric]
            reg = big and ma > 0 and mb > ma * (1 + rel)
            imp = big and mb > 0 and ma > mb * (1 + rel)
            out.append(Delta(ttype, metric, round(ma, 4), round(mb, 4), round(ratio, 3) if ratio else None,
                             round(noise, 3), reg, imp, len(va), len(vb)))
    return out


def type_totals(tasks: list) -> dict:
    """One side of a totals comparison. tasks: (duration ns or None, cpu ns, peak RSS,
    failed or OOM-killed) of one type: {n, dur (mean), cpu (total), rss (largest), failed}."""
    return {"n": len(tasks), "dur": sum(d or 0 for d, _, _, _ in tasks) / len(tasks),
            "cpu": sum(c for _, c, _, _ in tasks), "rss": max([0] + [r for _, _, r, _ in tasks]),
            "failed": sum(bool(x) for _, _, _, x in tasks)}


def compare_totals(a: dict[str, list], b: dict[str, list], whole_a: dict, whole_b: dict) -> list[dict]:
    """Per task type (`by_type` of each side's tuples, see type_totals), the most CPU
    first, after a first row for the whole run (whole_*: {n, dur, cpu, rss}):
    {type, a, b (None where the type is not on that side), d_M (B - A), r_M (B / A)}
    for M in dur, cpu, rss."""
    ga = {k: type_totals(v) for k, v in a.items()}
    gb = {k: type_totals(v) for k, v in b.items()}
    keys = sorted(set(ga) | set(gb), key=lambda k: -max(ga.get(k, {}).get("cpu", 0), gb.get(k, {}).get("cpu", 0)))
    rows = [{"type": "(whole run)", "a": whole_a, "b": whole_b}]
    rows += [{"type": k, "a": ga.get(k), "b": gb.get(k)} for k in keys]
    for r in rows:
        for m in ("dur", "cpu", "rss"):
            va = r["a"][m] if r["a"] else None
            vb = r["b"][m] if r["b"] else None
            r[f"d_{m}"] = (vb - va) if va is not None and vb is not None else None
            r[f"r_{m}"] = (vb / va) if va and vb is not None else None
    return rows
