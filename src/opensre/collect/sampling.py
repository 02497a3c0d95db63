"""Per-process counter series: one task-iterator pass per tick (kernel state, not
/proc), stored as deltas since each process's previous sample. An idle process
costs no row; one already running when collection started gets a baseline, not
a first row holding everything it did before."""

from __future__ import annotations

from typing import Callable

from ..model import Process, Sample
from .decode import PAGE, SAMPLE_ITER, SAMPLE_SIZE
from .hostsamples import HostSampler
from .persist import Pending

Key = tuple[int, int]  # (pid, start boottime ns)


class Sampler:
    """The cumulative counters last seen per process, and the rows they give.

    `cum[key]`: (cpu, read_bytes, write_bytes, net_tx, net_rx, runq_wait, blocked_io,
    sleep, rss): the order the exit handler (proctable.py) builds its final one in."""

    def __init__(self, pending: Pending):
        self.pending = pending
        self.cum: dict[Key, tuple] = {}  # last cumulative counters per process
        self.base: dict[Key, tuple] = {}  # counters when first seen, of processes already running
        self.rss_max: dict[Key, int] = {}  # largest sampled RSS per live process
        self.host = HostSampler()

    def host_sample(self, t_ns: int) -> None:
        self.pending.host_samples.append(self.host.sample(t_ns))

    def apply(self, raw: bytes, t_ns: int, live: dict[Key, Process],
              fork_record: Callable[[int, int], Process | None]) -> int:
        """One pass of the task iterator (one record per thread) -> one sample per
        process whose counters moved. `fork_record`: the record of a tracked
        process that sent none yet. Returns how many processes were sampled."""
        groups: dict[Key, list] = {}
        if len(raw) % SAMPLE_SIZE:
            raw = raw[:len(raw) - len(raw) % SAMPLE_SIZE]
        for s in SAMPLE_ITER(raw):
            (pid, tid, start_ns, sum_exec_ns, run_delay_ns, blocked_ns, sleep_ns, _rchar, _wchar, read_bytes,
             write_bytes, *_rest) = s
            g = groups.get((pid, start_ns))
            if g is None:
                g = groups[(pid, start_ns)] = [None, 0, 0, 0, 0, 0, 0]
            if tid == pid:
                g[0] = s
            g[1] += sum_exec_ns
            g[2] += read_bytes
            g[3] += write_bytes
            g[4] += run_delay_ns
            g[5] += blocked_ns
            g[6] += sleep_ns
        n = 0
        for key, (lead, cpu, rb, wb, rq, bl, sl) in groups.items():
            if lead is None:
                continue  # leader exiting (its figures are moving into acc): next tick
            p = live.get(key) or fork_record(*key)
            if p is None:
                continue
            (dead_exec_ns, rss_pages, _ar, _aw, acc_read_bytes, acc_write_bytes, acc_run_delay_ns, acc_blocked_ns,
             acc_sleep_ns, net_tx_bytes, net_rx_bytes) = lead[11:]
            cum = (cpu + dead_exec_ns, rb + acc_read_bytes, wb + acc_write_bytes, net_tx_bytes, net_rx_bytes,
                   rq + acc_run_delay_ns, bl + acc_blocked_ns, sl + acc_sleep_ns)
            self.emit(p, key, t_ns, cum, rss_pages * PAGE)
            n += 1
        return n

    def emit(self, p: Process, key: Key, t_ns: int, cum: tuple, rss: int, final: bool = False) -> None:
        """The row of `p` at `t_ns` from its cumulative counters; `final`: at its
        exit, a row even when nothing moved, so the series runs to the exit."""
        prev = self.cum.get(key)
        if prev is None:
            if p.observed_since_ns is not None:
                # already running when we started: its counters so far are not ours to
                # chart; the first sample is the baseline its window starts from
                self.base[key] = cum
                self.cum[key] = cum + (rss,)
                self.rss_max[key] = rss
                return
            prev = (0,) * 8 + (-1,)
        elif not final and prev[:8] == cum and prev[8] == rss:
            return  # nothing moved: an idle process costs no row (its deltas are all zero)
        d = [a - b for a, b in zip(cum, prev)]
        self.cum[key] = cum + (rss,)
        if rss > self.rss_max.get(key, 0):
            self.rss_max[key] = rss
        self.pending.samples.append(Sample(p.pid, p.start_time_ns, t_ns, d[0], rss, d[1], d[2], d[3], d[4], d[5],
                                           d[6], d[7]))
