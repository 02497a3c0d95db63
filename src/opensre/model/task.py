"""Tasks and tool invocations: what correlation derives from process records.
Field names are the export names (`opensre export --what tasks|tools`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Task:
    run_id: str
    task_id: str
    task_name: str
    engine: str              # snakemake, nextflow, make, xargs, parallel, slurm, kubernetes, generic
    start_time_ns: int
    end_time_ns: int | None
    process_count: int = 0
    cpu_ns: int = 0          # sum over its processes
    peak_rss_bytes: int = 0  # the largest single process
    read_bytes: int = 0
    write_bytes: int = 0
    exit_code: int | None = None    # of the task's root process
    exit_signal: int | None = None
    oom_killed: bool = False        # any of its processes
    tools: list[str] = field(default_factory=list)
    root_pid: int | None = None
    root_start_time_ns: int | None = None
    workdir: str | None = None      # Nextflow work dir, or the root's cwd
    runq_wait_ns: int = 0
    blocked_io_ns: int = 0
    net_tx_bytes: int = 0
    net_rx_bytes: int = 0
    kind: str = "task"              # "task", or "engine" for the engine's own processes
    memory_peak_bytes: int | None = None  # peak concurrent footprint: the largest sum of its live
                                          # processes' RSS (>= peak_rss_bytes); None: not computed


@dataclass
class ToolUse:
    run_id: str
    task_id: str
    tool: str
    subcommand: str | None
    pid: int
    start_time_ns: int
    end_time_ns: int | None
    cpu_ns: int = 0           # the exec'd process and forks of it that never exec'd
    peak_rss_bytes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    exit_code: int | None = None
    exit_signal: int | None = None
    category: str | None = None


def tool_label(tool: str, subcommand: str | None) -> str:
    """How every view names a tool invocation: `samtools sort`, `gzip`."""
    return f"{tool} {subcommand}" if subcommand else tool
