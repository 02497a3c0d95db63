"""StoreReader: what analysis (tune, what changed), report and the read-only CLI
commands read of stored runs. The SQLite store implements it (sqlite_reader.py,
through the Store facade); a second backend implements the same methods.

A Parquet lake read through DuckDB is the other: store/lake.py's `LakeReader`,
with these methods and no others (no SQL or file paths leak to its callers);
analysis and report take a StoreReader, whichever backend it is. Writes stay with
the SQLite store (the collector's crash-safe journal); a lake is exported from it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

from ..model import Event, Exec, Host, Process, Run, Sample, Task, ToolUse


@runtime_checkable
class StoreReader(Protocol):
    """Stored runs and their records. A detected run (one found inside a host-wide
    collection) reads like any other: its records are its tasks' processes."""

    path: Path
    readonly: bool  # True: analysis keeps no aggregates (put_task_aggregates) in it

    # -- runs (report, CLI `runs/show`) --------------------------------------------
    def resolve_run(self, ref: str) -> Run:
        """A run by id, unique id prefix, name (latest of that name), or 'latest';
        StoreError when there is none."""
        ...

    def runs(self, limit: int | None = None, *, detected: bool = True) -> list[Run]:
        """Latest first; detected=False: only runs of their own."""
        ...

    def runs_named(self, name: str) -> list[Run]:
        """A pipeline's runs, oldest first."""
        ...

    def detected_runs(self, parent_run_id: str) -> list[Run]:
        """The runs detected in a host-wide collection, by start time (report)."""
        ...

    def host(self, host_id: str) -> Host | None: ...

    # -- a run's records (report, analysis) ------------------------------------------
    def processes(self, run_id: str) -> Iterator[Process]: ...

    def execs(self, run_id: str) -> Iterator[Exec]: ...

    def samples(self, run_id: str) -> Iterator[Sample]:
        """Per process, in time order; a process that lived within one tick has one
        sample, its totals at exit."""
        ...

    def events(self, run_id: str, kind: str | None = None) -> Iterator[Event]: ...

    def host_samples(self, run_id: str) -> list[dict]:
        """The host time series (keys: rows.HOST_SAMPLE_FIELDS)."""
        ...

    def tasks(self, run_id: str) -> list[Task]: ...

    def tools(self, run_id: str) -> list[ToolUse]: ...

    def task_ids(self, run_id: str) -> dict[tuple[int, int], str]:
        """(pid, start_time_ns) -> task_id of the run's processes in a task."""
        ...

    def process_cgroup(self, run_id: str, pid: int, not_before_ns: int = 0) -> str | None: ...

    # -- what tune reads per run, aggregated by the backend (analysis/facts.py) -----
    def task_fact_rows(self, run_id: str, version: int) -> list[tuple]:
        """Per task of kind "task", in start order: a tuple in TASK_FACT_COLUMNS
        order; the aggregates that `version` of analysis kept, else NULLs."""
        ...

    def task_process_stats(self, run_id: str) -> dict[str, dict]: ...

    def task_argvs(self, run_id: str) -> Iterator[tuple[str, str]]: ...

    def task_tool_commands(self, run_id: str) -> Iterator[tuple]: ...

    def task_bytes_read(self, run_id: str) -> Iterator[tuple[str, int]]: ...

    def tool_waits(self, run_id: str) -> Iterator[tuple]: ...

    def put_task_aggregates(self, run_id: str, version: int, rows: dict[str, dict]) -> bool:
        """Keep analysis's per-task aggregates for the next read (called only where
        `readonly` is False); False where the backend cannot hold them."""
        ...

    def close(self) -> None: ...
