"""The report's time series: samples bucketed onto a grid of at most N points.

A sample here is a tuple (t_ns, cpu_ns, rss, read, write, tx, rx, runq, blocked):
counters are deltas over the interval before t, rss a gauge (None: the process
lived within one tick). Times stay in ns; the page's microseconds are the caller's.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass

__all__ = ["SERIES", "SERIES_COLS", "bucket_plan", "downsample", "interval_ns", "ticks", "host_series"]

SERIES = ["cpu", "rss", "read", "write", "tx", "rx", "runq", "blocked"]  # per bucket; see downsample()
SERIES_COLS = ["start", "step", "n"] + SERIES  # a task's series in the page: one array in this order
# the counters of a sample tuple: series name, index in the tuple
_COUNTERS = [("cpu", 1), ("read", 3), ("write", 4), ("tx", 5), ("rx", 6), ("runq", 7), ("blocked", 8)]


def bucket_plan(start_ns: int, end_ns: int, interval_ns: int, max_points: int) -> tuple[int, int]:
    """(bucket width ns, bucket count) covering [start, end]: the sampling interval,
    widened so that there are at most max_points buckets."""
    span = max(end_ns - start_ns, 1)
    width = max(interval_ns, math.ceil(span / max(max_points, 1)))
    return width, max(1, math.ceil(span / width))


@dataclass
class _Grid:
    start: int
    end: int
    width: int
    n: int

    def bucket(self, t: int) -> int:
        return min(self.n - 1, max(0, (t - self.start) // self.width))


def downsample(samples_by_proc: dict, procs: dict, start_ns: int, end_ns: int, interval_ns: int,
               max_points: int, ticks: list[int] | None = None, on_grid: bool = False) -> dict:
    """Bucket the samples of a set of processes into at most max_points intervals.

    samples_by_proc: (pid, start) -> [(t_ns, cpu_ns, rss, read, write, tx, rx, runq, blocked), ...] sorted by t;
    procs: (pid, start) -> (start_ns, end_ns or None, peak_rss).
    Counters are deltas over the interval before t, spread evenly over it; the result
    is a rate per second. The interval starts at the sampling pass before t (`ticks`:
    the times of every pass, sorted; a late pass makes a longer interval), else at
    most one sampling interval back (an idle process emits no row). `on_grid` (the
    whole run's series): every delta is spread over the whole interval between the
    passes around it, an exit's too, so that no point shows more than the processes
    could use together (a short process placed exactly beside long ones spread
    evenly would add up to more CPUs than the host has). RSS is a gauge held until the next sample, summed over processes (each
    process's largest value within a bucket). Returns {"start", "step" (ns), "n",
    cpu (cores), rss (bytes), read/write/tx/rx (bytes/s), runq/blocked (threads waiting)}.
    """
    width, n = bucket_plan(start_ns, end_ns, interval_ns, max_points)
    grid = _Grid(start_ns, end_ns, width, n)
    acc = {k: [0.0] * n for k in SERIES}
    for key, ss in samples_by_proc.items():
        pstart, pend, peak = procs.get(key, (ss[0][0], ss[-1][0], 0))
        _add_process(acc, grid, ss, pstart, pend, peak, interval_ns, ticks, on_grid)
    return _rates(acc, grid)


def _span(t: int, prev: int, pstart: int, interval_ns: int, ticks: list[int] | None,
          on_grid: bool) -> tuple[int, int]:
    """[lo, t): the interval a sample's deltas cover."""
    if ticks:
        k = bisect_left(ticks, t)
        lo = max(prev, ticks[k - 1] if k else t - interval_ns, pstart)
        if on_grid:
            lo = ticks[k - 1] if k else lo
            if k < len(ticks):
                t = ticks[k]  # an exit between two passes: its share of that interval
    else:
        lo = max(prev, t - interval_ns, pstart)
    if t <= lo:
        lo = t - 1
    return lo, t


def _spread(acc: dict, grid: _Grid, s: tuple, lo: int, t: int) -> None:
    """A sample's counter deltas into the buckets [lo, t) covers, evenly."""
    b0, b1 = grid.bucket(lo), grid.bucket(t - 1)
    span = t - lo
    # what falls outside [start, end) is not drawn (a last pass after the end),
    # never piled into the edge bucket
    inside = lo >= grid.start and t <= grid.end
    for name, i in _COUNTERS:
        v = s[i]
        if not v:
            continue
        if b0 == b1 and inside:
            acc[name][b0] += v
        else:
            for b in range(b0, b1 + 1):
                a = max(lo, grid.start + b * grid.width)
                z = min(t, grid.start + (b + 1) * grid.width, grid.end)
                if z > a:
                    acc[name][b] += v * (z - a) / span


def _hold(own: dict[int, float], b0: int, b1: int, v: float) -> None:
    for b in range(b0, b1 + 1):
        if own.get(b, -1) < v:
            own[b] = v


def _add_process(acc: dict, grid: _Grid, ss: list, pstart: int, pend: int | None, peak: int,
                 interval_ns: int, ticks: list[int] | None, on_grid: bool) -> None:
    prev = pstart
    own: dict[int, float] = {}  # bucket -> this process's largest RSS there
    last_rss, last_t = None, pstart
    for s in ss:
        lo, t = _span(s[0], prev, pstart, interval_ns, ticks, on_grid)
        _spread(acc, grid, s, lo, t)
        r = s[2]
        if r is None:  # a process that lived within one tick: its peak over its life
            r = peak or 0
            last_t = pstart
        _hold(own, grid.bucket(last_t), grid.bucket(t), last_rss if last_rss is not None else r)
        _hold(own, grid.bucket(t), grid.bucket(t), r)
        last_rss, last_t, prev = r, t, t
    if last_rss is not None and pend and pend > last_t:
        _hold(own, grid.bucket(last_t), grid.bucket(pend), last_rss)
    rss = acc["rss"]
    for b, v in own.items():
        rss[b] += v


def _rates(acc: dict, grid: _Grid) -> dict:
    # rates over the time each bucket covers: the last one usually ends with the task
    # (a burner that stops mid-bucket used a full core, not half of one)
    start, width = grid.start, grid.width
    dur = [max(min(grid.end, start + (b + 1) * width) - (start + b * width), 1) for b in range(grid.n)]
    out = {"start": start, "step": width, "n": grid.n}
    for k in SERIES:
        if k == "rss":
            out[k] = [int(v) for v in acc[k]]
        elif k in ("cpu", "runq", "blocked"):  # ns per ns: cores / threads; milli-units keep the JSON small
            out[k] = [round(v / d, 3) for v, d in zip(acc[k], dur)]
        else:
            out[k] = [int(v * 1e9 / d) for v, d in zip(acc[k], dur)]
    return out


def interval_ns(samples_by_proc: dict) -> int:
    """The sampling interval of a run from a store that did not record it. One sampling pass stamps
    every live process with the same t_ns, so the times several processes share are
    the ticks; a process's exit sample has a time of its own. 1 s when nothing says."""
    seen: dict[int, int] = defaultdict(int)
    for ss in samples_by_proc.values():
        for s in ss:
            seen[s[0]] += 1
    tks = sorted(t for t, n in seen.items() if n >= 2)
    gaps = sorted(b - a for a, b in zip(tks, tks[1:]) if b > a)
    if len(gaps) < 3:  # one process at a time: its own gaps (idle ticks are skipped: take the smallest usual one)
        gaps = sorted(b[0] - a[0] for ss in samples_by_proc.values() for a, b in zip(ss, ss[1:]) if b[0] > a[0])
        if len(gaps) < 3:
            return 1_000_000_000
        return max(50_000_000, gaps[len(gaps) // 4])
    return max(50_000_000, gaps[len(gaps) // 2])


def ticks(samples_by_proc: dict, host_samples: list[dict]) -> list[int]:
    """The times of the run's sampling passes: each pass stamps the host sample and
    every process it saw moving with the same t_ns (a process's exit sample has a
    time of its own, shared with no other)."""
    seen: dict[int, int] = defaultdict(int)
    for ss in samples_by_proc.values():
        for x in ss:
            seen[x[0]] += 1
    return sorted({t for t, n in seen.items() if n >= 2} | {h["t_ns"] for h in host_samples})


def host_series(series: dict, host: list[dict]) -> None:
    """The host's own figures on the run's buckets: busy cores and memory in use
    (each bucket holds the last host sample at or before its end)."""
    if not host:
        return
    n, start, step = series["n"], series["start"], series["step"]
    cpu, mem = [None] * n, [None] * n
    j, last = 0, None
    for b in range(n):
        end = start + (b + 1) * step
        while j < len(host) and host[j]["t_ns"] <= end:
            last = host[j]
            j += 1
        if last is not None:
            if last.get("cpu_util") is not None:
                cpu[b] = round(last["cpu_util"] * last["cpu_count"], 3)
            mem[b] = last.get("mem_used_bytes")
    series["host_cpu"], series["host_mem"] = cpu, mem
