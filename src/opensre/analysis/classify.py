"""Per-task classification, each verdict with the figures behind it.

Shares are of thread-time: on-CPU, run-queue wait and blocked (D state) are
summed over a task's threads, so a 4-thread task can show 4 s of CPU per
second of wall. Voluntary sleep (waiting for a child, a pipe, a timer) is left
out of the "active" denominator: a shell waiting for its pipeline is not idle.
The thresholds are documented in docs/tune.md and overridable (Thresholds)."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import failed
from .result import Finding, TaskFacts

GIB = 1 << 30
MIB = 1 << 20


@dataclass
class Thresholds:
    cpu_bound_share: float = 0.7      # on-CPU / active thread-time
    cpu_bound_cores: float = 0.5      # and at least half a core over the wall
    starved_share: float = 0.2        # run-queue wait / (on-CPU + run-queue)
    io_share: float = 0.3             # blocked / active thread-time
    min_wait_s: float = 0.1           # ignore waits shorter than this in total
    idle_after_s: float = 60.0        # no progress this long: idle/stalled
    idle_cpu_fraction: float = 0.02   # or: under 2% of a core over a wall of at least idle_after_s
    near_limit: float = 0.9           # peak RSS / memory limit: memory-bound
    major_faults: int = 1000          # page-ins from disk: memory pressure
    host_memory_pressure: float = 0.1  # host PSI memory "some" share during the task
    over_cpu_ratio: float = 0.5       # peak cores used <= this x CPUs given: over-allocated
    over_mem_ratio: float = 0.5       # peak RSS <= this x memory given
    over_mem_min_bytes: int = 256 * MIB
    min_task_s: float = 0.5           # shorter tasks get only failed/oom verdicts: their shares are noise
    idle_io_rate: float = 64 * 1024   # bytes/s still counted as no I/O progress


def _s(ns: int) -> float:
    return round(ns / 1e9, 3)


def efficiency(t: TaskFacts) -> float | None:
    """CPU time / (wall x the CPUs the task had at once): the CPUs given when known
    (not the host's), else the most threads one of its processes ran; never fewer
    than the cores it was seen using at once (peak cores: a pipeline `a | b` of two
    single-threaded tools uses two) nor than its average, so it never exceeds 1."""
    if not t.wall_ns:
        return None
    n = t.given.cpus if t.given.cpus and t.given.cpus_source != "host" else t.max_threads
    n = max(n or 0, t.peak_cores or 0, t.cpu_ns / t.wall_ns)
    if not n:
        return None
    return round(min(t.cpu_ns / (t.wall_ns * n), 1.0), 3)


def classify(t: TaskFacts, th: Thresholds | None = None) -> list[Finding]:
    th = th or Thresholds()
    out: list[Finding] = []

    def add(cls: str, msg: str, **ev):
        base = {"wall_s": _s(t.wall_ns), "cpu_s": _s(t.cpu_ns)}
        base.update(ev)
        out.append(Finding(t.task_id, t.task_name, cls, base, msg, t.run_id))

    cpu, rq, blk, wall = t.cpu_ns, t.runq_wait_ns, t.blocked_io_ns, t.wall_ns
    active = cpu + rq + blk
    avg_cores = cpu / wall if wall else 0.0

    if t.oom_killed:
        add("oom_killed", "killed by the OOM killer" + (f" at a {t.oom_limit_bytes / MIB:.0f} MiB limit"
                                                         if t.oom_limit_bytes else ""),
            peak_rss_bytes=t.peak_rss_bytes, memory_limit_bytes=t.oom_limit_bytes or t.given.memory_bytes,
            memory_source=t.given.memory_source)
    elif failed(t.exit_code, t.exit_signal):
        add("failed", f"exited with signal {t.exit_signal}" if t.exit_signal else f"exit status {t.exit_code}",
            exit_code=t.exit_code, exit_signal=t.exit_signal)

    if wall < th.min_task_s * 1e9:
        return out
    if rq >= th.min_wait_s * 1e9 and rq >= th.starved_share * (cpu + rq):
        add("cpu_starved", f"waited {_s(rq)} s for a CPU against {_s(cpu)} s on one: the host was oversubscribed",
            runq_wait_s=_s(rq), runq_share=round(rq / (cpu + rq), 3), avg_cores=round(avg_cores, 3))
    if blk >= th.min_wait_s * 1e9 and active and blk >= th.io_share * active:
        add("io_bound", f"blocked on I/O {_s(blk)} s, {100 * blk / active:.0f}% of its active time",
            blocked_io_s=_s(blk), blocked_share=round(blk / active, 3), read_bytes=t.read_bytes,
            write_bytes=t.write_bytes, major_faults=t.major_faults)
    if active and cpu >= th.cpu_bound_share * active and avg_cores >= th.cpu_bound_cores:
        add("cpu_bound", f"on a CPU {100 * cpu / active:.0f}% of its active time, {avg_cores:.2f} cores on average",
            oncpu_share=round(cpu / active, 3), avg_cores=round(avg_cores, 3), peak_cores=t.peak_cores,
            parallel_efficiency=efficiency(t), max_threads=t.max_threads)

    lim = t.given.memory_bytes if t.given.memory_source != "host" else None
    mem = t.memory_bytes  # the concurrent footprint: what a limit on the task must hold
    if lim and mem >= th.near_limit * lim and not t.oom_killed:
        add("memory_bound", f"peak memory {mem / MIB:.0f} MiB is {100 * mem / lim:.0f}% "
            f"of its {lim / MIB:.0f} MiB limit", peak_rss_bytes=t.peak_rss_bytes, memory_peak_bytes=mem,
            memory_limit_bytes=lim, memory_source=t.given.memory_source, major_faults=t.major_faults)
    elif t.major_faults >= th.major_faults:
        add("memory_bound", f"{t.major_faults} major page faults (pages read back from disk)",
            major_faults=t.major_faults, peak_rss_bytes=t.peak_rss_bytes, host_memory_pressure=t.host_memory_pressure)
    elif t.host_memory_pressure is not None and t.host_memory_pressure >= th.host_memory_pressure:
        add("memory_bound", f"the host was short of memory {100 * t.host_memory_pressure:.0f}% of this task's time "
            "(PSI memory some, host-wide)", host_memory_pressure=t.host_memory_pressure,
            peak_rss_bytes=t.peak_rss_bytes, major_faults=t.major_faults)

    idle_ns = th.idle_after_s * 1e9
    if t.longest_stall_ns >= idle_ns or (wall >= idle_ns and avg_cores < th.idle_cpu_fraction
                                          and blk < 0.1 * wall
                                          and (t.read_bytes + t.write_bytes) < th.idle_io_rate * wall / 1e9):
        add("idle", f"no CPU or I/O progress for {_s(t.longest_stall_ns)} s of {_s(wall)} s",
            longest_stall_s=_s(t.longest_stall_ns), avg_cores=round(avg_cores, 4), sleep_s=_s(t.sleep_ns),
            idle_after_s=th.idle_after_s)

    g = t.given
    if g.cpus and g.cpus_source != "host" and g.cpus >= 2 and wall:
        demand = (cpu + rq) / wall
        if t.peak_cores <= th.over_cpu_ratio * g.cpus and demand <= th.over_cpu_ratio * g.cpus:
            add("overallocated_cpu", f"given {g.cpus:g} CPUs ({g.cpus_source}) but used at most "
                f"{t.peak_cores:.2f} cores ({avg_cores:.2f} on average): lower CPUs",
                cpus_given=g.cpus, cpus_source=g.cpus_source, peak_cores=t.peak_cores,
                avg_cores=round(avg_cores, 3), parallel_efficiency=efficiency(t), max_threads=t.max_threads)
    if g.memory_bytes and g.memory_source != "host" and not t.oom_killed \
            and mem <= th.over_mem_ratio * g.memory_bytes \
            and g.memory_bytes - mem >= th.over_mem_min_bytes:
        add("overallocated_memory", f"given {g.memory_bytes / MIB:.0f} MiB ({g.memory_source}) but peaked at "
            f"{mem / MIB:.0f} MiB", memory_given_bytes=g.memory_bytes, memory_source=g.memory_source,
            peak_rss_bytes=t.peak_rss_bytes, memory_peak_bytes=mem)
    return out
