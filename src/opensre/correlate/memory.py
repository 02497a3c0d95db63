"""A task's peak concurrent memory: the largest sum of its live processes' RSS.

The per-process time series holds each process's RSS at every sample tick
(`Sample.rss_bytes`, the value at `t_ns`; no row when nothing moved, so a value
holds until the next row). Each process contributes a step function over its
life: over an interval between two of its rows, the larger of the two values
(RSS in between is not known; the larger end is the safe side), from its start
to its first row that row's value. A process that lived within one tick has no
row: it contributes its exit-time peak (`peak_rss_bytes`, the kernel's high-water
mark) over its whole life. A process whose high-water mark exceeds every value
sampled for it peaked between ticks: its excess is added to the largest sum seen
during its life (as if the spike met the others' maximum), so a short spike in
one of several concurrent processes is not lost.

Pure Python over records: no root, works on a copied store."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Iterable

from ..model import Process, Sample

Key = tuple[int, int]


def concurrent_peaks(procs: Iterable[Process], samples: Iterable[Sample], task_of: dict[Key, str],
                     end_ns: int | None = None) -> dict[str, int]:
    """task_id -> peak concurrent RSS in bytes. `end_ns`: where processes still
    running at the end of collection stop counting (else their last row)."""
    rows: dict[Key, list[tuple[int, int]]] = defaultdict(list)
    for s in samples:
        if s.rss_bytes is not None and (s.pid, s.start_time_ns) in task_of:
            rows[(s.pid, s.start_time_ns)].append((s.t_ns, s.rss_bytes))
    segs: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # task -> (from, to, bytes)
    excess: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # task -> (from, to, extra bytes)
    for p in procs:
        k = (p.pid, p.start_time_ns)
        tid = task_of.get(k)
        if tid is None:
            continue
        peak = p.peak_rss_bytes or 0
        rs = sorted(rows.get(k, ()))
        end = p.end_time_ns or (rs[-1][0] if rs else None) or end_ns or p.start_time_ns
        if not rs:
            segs[tid].append((p.start_time_ns, max(end, p.start_time_ns + 1), peak))
            continue
        prev_t, prev_v = p.start_time_ns, rs[0][1]
        for t, v in rs:
            if t > prev_t:
                segs[tid].append((prev_t, t, max(prev_v, v)))
            prev_t, prev_v = max(prev_t, t), v
        if end > prev_t:
            segs[tid].append((prev_t, end, prev_v))
        seen = max(v for _, v in rs)
        if peak > seen:
            excess[tid].append((p.start_time_ns, max(end, p.start_time_ns + 1), peak - seen))
    out: dict[str, int] = {}
    for tid, ss in segs.items():
        ev: dict[int, int] = defaultdict(int)
        for a, b, v in ss:
            if v and b > a:
                ev[a] += v
                ev[b] -= v
        ts = sorted(ev)
        level, curve = 0, []  # level over [ts[i], ts[i+1])
        for t in ts:
            level += ev[t]
            curve.append(level)
        best = max(curve, default=0)
        for a, b, extra in excess.get(tid, ()):
            i = max(bisect.bisect_right(ts, a) - 1, 0)
            j = bisect.bisect_left(ts, b)
            during = max(curve[i:max(j, i + 1)], default=0)
            best = max(best, during + extra)
        out[tid] = int(best)
    return out
