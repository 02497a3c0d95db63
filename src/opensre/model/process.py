"""Frozen records of what was observed. Field names are the export names: keep them stable."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields


SIGPIPE = 13


def failed(exit_code: int | None, exit_signal: int | None) -> bool:
    """A non-zero exit or a killing signal, except SIGPIPE (or a shell reporting it
    as 141): its reader stopped early, as `head` does, the normal end of a pipeline."""
    if exit_signal:
        return exit_signal != SIGPIPE
    return exit_code not in (None, 0, 128 + SIGPIPE)


@dataclass
class Process:
    """One process (thread group), from its fork to its reaping.

    `observed_since_ns` is set when collection began after the process started
    (its exec metadata came from /proc, not the kernel event); `complete` is False
    when the record has no final accounting (still running when collection ended).
    """

    pid: int
    start_time_ns: int
    ppid: int = 0
    parent_start_time_ns: int | None = None
    end_time_ns: int | None = None
    exe: str = ""
    comm: str = ""
    cwd: str | None = None
    argv: list[str] = field(default_factory=list)
    argv_truncated: bool = False
    argv_redacted: bool = False
    uid: int | None = None
    gid: int | None = None
    cgroup_id: int | None = None
    cgroup_path: str | None = None
    pidns: int | None = None
    mntns: int | None = None
    netns: int | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    core_dumped: bool = False
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    peak_rss_bytes: int | None = None
    maxrss_bytes: int | None = None
    rchar: int | None = None
    wchar: int | None = None
    syscr: int | None = None
    syscw: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None
    cancelled_write_bytes: int | None = None
    voluntary_ctxt_switches: int | None = None
    involuntary_ctxt_switches: int | None = None
    minor_faults: int | None = None
    major_faults: int | None = None
    threads: int | None = None
    exec_count: int = 0
    observed_since_ns: int | None = None
    complete: bool = False
    io_inclusive: bool = False  # I/O includes reaped children (per-thread sums were unavailable)
    # live signals (sched, net, oom probe families); None when that family was off
    net_tx_bytes: int | None = None
    net_rx_bytes: int | None = None
    oncpu_ns: int | None = None
    runq_wait_ns: int | None = None
    blocked_io_ns: int | None = None
    sleep_ns: int | None = None
    oom_killed: bool = False
    # from the cgroup path (collect/containers.py)
    container_id: str | None = None
    container_runtime: str | None = None
    pod_uid: str | None = None
    slurm_job_id: int | None = None
    slurm_step: str | None = None
    # what its cgroups give it (collect/limits.py), read when the cgroup is first seen
    cpu_limit_cores: float | None = None
    cpuset_cpus: int | None = None
    memory_limit_bytes: int | None = None
    task_id: str | None = None  # set by correlation (opensre.correlate)

    @property
    def cpu_ns(self) -> int:
        return (self.cpu_user_ns or 0) + (self.cpu_system_ns or 0)

    @property
    def tool(self) -> str:
        base = self.exe.rsplit("/", 1)[-1] if self.exe else ""
        return base or self.comm

    def as_dict(self) -> dict:
        # not dataclasses.asdict(): it deep-copies field by field (4x the cost of a
        # whole export); argv is the one field that is not a scalar
        d = dict(zip(PROCESS_FIELDS, _GET_FIELDS(self)))
        d["argv"] = list(self.argv)
        return d


PROCESS_FIELDS = [f.name for f in fields(Process)]
_GET_FIELDS = operator.attrgetter(*PROCESS_FIELDS)


@dataclass
class Sample:
    """One process over one interval ending at t_ns: counters are deltas over the
    interval (a series sums to the exit total), rss_bytes is the value at t_ns."""

    pid: int
    start_time_ns: int
    t_ns: int
    cpu_ns: int
    rss_bytes: int
    read_bytes: int
    write_bytes: int
    net_tx_bytes: int
    net_rx_bytes: int
    runq_wait_ns: int
    blocked_io_ns: int
    sleep_ns: int


SAMPLE_FIELDS = [f.name for f in fields(Sample)]


@dataclass
class Event:
    """Something that happened to a process: kind 'oom_kill' or 'tcp_connection'."""

    kind: str
    pid: int
    start_time_ns: int
    t_ns: int
    data: dict = field(default_factory=dict)


@dataclass
class Exec:
    pid: int
    start_time_ns: int
    t_ns: int
    exe: str
    argv: list[str]
    argv_truncated: bool = False
    cwd: str | None = None


@dataclass
class Run:
    run_id: str
    name: str | None
    mode: str  # "run" (one command), "collect" (host-wide) or "detected" (a run found in a collection)
    host_id: str
    command: list[str] = field(default_factory=list)
    start_time_ns: int = 0
    end_time_ns: int | None = None
    status: str = "running"  # running | finished | interrupted
    exit_code: int | None = None
    exit_signal: int | None = None
    root_pid: int | None = None
    collector_pid: int | None = None
    drops: int = 0
    drop_detail: dict = field(default_factory=dict)
    process_count: int = 0
    parent_run_id: str | None = None  # for a detected run: the collection it was found in
    sample_interval_s: float | None = None  # time-series resolution; None when the series was off
    # probe family -> the kernel variant it ran with, "off" (switched off), or
    # "unavailable: why" / "... (without X)": the run's data-quality flags
    probes: dict = field(default_factory=dict)

    def degraded_probes(self) -> dict:
        """Families that could not give their full data on this kernel."""
        return {f: v for f, v in self.probes.items() if v.startswith("unavailable") or "(without " in v}


@dataclass
class Host:
    host_id: str
    hostname: str
    machine_id: str = ""
    boot_id: str = ""
    kernel: str = ""
    cpus: int = 0
    mem_bytes: int = 0
    arch: str = ""          # the machine's architecture as uname reports it (x86_64, aarch64)
