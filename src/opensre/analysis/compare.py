"""Run comparison: per task type, the median of each side and a regression
flag only beyond noise. Noise is the spread seen within a side (tasks of one
type in one run, or the same type over several runs); a change must beat both
a relative floor and an absolute floor, so tiny tasks jittering by 2x on a busy
host are not flagged."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median

from .result import Delta, TaskFacts


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
    a: dict[str, list[TaskFacts]] = defaultdict(list)
    b: dict[str, list[TaskFacts]] = defaultdict(list)
    for t in before:
        a[t.task_type].append(t)
    for t in after:
        b[t.task_type].append(t)
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
