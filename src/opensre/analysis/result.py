"""What `tune` returns: findings, recommendations, comparisons and cost, each with
the numbers behind it. `TuneResult.to_json()` is the documented `--format json`
schema (docs/tune.md); the HTML report renders the same dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CLASSIFICATIONS = ("cpu_bound", "io_bound", "cpu_starved", "memory_bound", "idle", "failed", "oom_killed",
                   "overallocated_cpu", "overallocated_memory")
SCHEMA_VERSION = 1


@dataclass
class Given:
    """What a task was given, and where that figure comes from."""
    cpus: float | None = None
    cpus_source: str = "unknown"     # cgroup cpu.max, cpuset, argv --threads, Snakefile threads, host
    memory_bytes: int | None = None
    memory_source: str = "unknown"   # cgroup memory.max, memory.limit_in_bytes, Snakefile mem_mb, host


@dataclass
class TaskFacts:
    """One task's figures as tune sees them (thread-seconds summed over its processes)."""
    run_id: str
    task_id: str
    task_name: str
    task_type: str                   # rule/process name when known, else the task name
    engine: str
    start_time_ns: int
    end_time_ns: int | None
    wall_ns: int
    cpu_ns: int
    runq_wait_ns: int
    blocked_io_ns: int
    sleep_ns: int
    peak_rss_bytes: int
    read_bytes: int
    write_bytes: int
    major_faults: int
    max_threads: int                 # the most threads one process had
    peak_cores: float                # the most cores used in one sample interval (<= cpu_capacity)
    longest_stall_ns: int            # longest stretch with no CPU and no I/O progress
    exit_code: int | None
    exit_signal: int | None
    oom_killed: bool
    oom_limit_bytes: int | None      # the memcg limit at the OOM kill
    parallel_efficiency: float | None = None  # CPU time / (wall x max(CPUs given or threads, peak cores)) <= 1
    host_memory_pressure: float | None = None  # host PSI memory "some" stall share over the task's span
    given: Given = field(default_factory=Given)
    size_flags: list[dict] = field(default_factory=list)  # [{flag, text, cpus|memory_bytes}] from argv
    tools: list[str] = field(default_factory=list)
    memory_peak_bytes: int = 0       # peak concurrent footprint: largest sum of live processes' RSS
    cpu_capacity: float | None = None  # the most cores it could use: host CPUs, its cpuset, its quota

    @property
    def memory_bytes(self) -> int:
        """What the task needed in memory at once (never less than its largest process)."""
        return max(self.memory_peak_bytes or 0, self.peak_rss_bytes or 0)


@dataclass
class Finding:
    task_id: str
    task_name: str
    classification: str              # one of CLASSIFICATIONS
    evidence: dict
    message: str = ""
    run_id: str = ""
    tool: str | None = None          # set for a per-tool finding


@dataclass
class Recommendation:
    task_type: str
    cpus: int
    memory_bytes: int
    reason: str
    evidence: dict
    warnings: list[str] = field(default_factory=list)
    current_cpus: float | None = None
    current_memory_bytes: int | None = None


@dataclass
class Delta:
    """One task type's change between two sets of runs."""
    task_type: str
    metric: str                      # duration_s, cpu_s, peak_rss_bytes
    before: float
    after: float
    ratio: float | None
    noise: float                     # the relative spread seen within each side
    regression: bool
    improvement: bool
    n_before: int
    n_after: int


@dataclass
class TuneResult:
    run_ids: list[str]
    tasks: list[TaskFacts]
    findings: list[Finding]
    tool_findings: list[Finding]
    recommendations: list[Recommendation]
    cost: dict | None = None
    comparison: list[Delta] | None = None
    host: dict | None = None
    options: dict = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)  # [{run_id, status, exit_code, exit_signal, failed}]
    changes: list[dict] | None = None  # with a comparison: what changed per task type (analysis/changes.py)

    def to_json(self) -> dict:
        d = {"schema_version": SCHEMA_VERSION, "run_ids": self.run_ids, "runs": self.runs, "host": self.host,
             "options": self.options,
             "findings": [asdict(f) for f in self.findings],
             "tool_findings": [asdict(f) for f in self.tool_findings],
             "recommendations": [asdict(r) for r in self.recommendations],
             "tasks": [asdict(t) for t in self.tasks],
             "cost": self.cost}
        if self.comparison is not None:
            d["comparison"] = [asdict(c) for c in self.comparison]
            d["changes"] = self.changes or []
        return d
