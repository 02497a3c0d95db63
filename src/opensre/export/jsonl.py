"""JSON Lines export: one object per record, names as documented in docs/data-catalog.md."""

from __future__ import annotations

import json
from typing import IO, Iterable

from ..model import Process

# what `export --what` can name: a run's records of one kind
KINDS = ("processes", "tasks", "tools", "execs", "samples", "events", "host")


def process_record(run_id: str, p: Process) -> dict:
    d = {"run_id": run_id}
    d.update(p.as_dict())
    return d


def write_processes(out: IO[str], run_id: str, procs: Iterable[Process]) -> int:
    return _write(out, (process_record(run_id, p) for p in procs))


def records(store, run_id: str, kind: str) -> Iterable[dict]:
    """A run's records of one kind (KINDS) as exported, each with its run_id."""
    if kind == "processes":
        return (process_record(run_id, p) for p in store.processes(run_id))
    rows = {"execs": lambda: (e.__dict__ for e in store.execs(run_id)),
            "tasks": lambda: (t.__dict__ for t in store.tasks(run_id)),
            "tools": lambda: (u.__dict__ for u in store.tools(run_id)),
            "samples": lambda: (x.__dict__ for x in store.samples(run_id)),
            "events": lambda: ({"kind": v.kind, "pid": v.pid, "start_time_ns": v.start_time_ns,
                                "t_ns": v.t_ns, **v.data} for v in store.events(run_id)),
            "host": lambda: store.host_samples(run_id)}[kind]()
    return ({"run_id": run_id, **row} for row in rows)


def write_records(out: IO[str], store, run_id: str, kind: str) -> int:
    """records() as JSON Lines on `out`; how many."""
    return _write(out, records(store, run_id, kind))


def _write(out: IO[str], rows: Iterable[dict]) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps(row, separators=(",", ":")) + "\n")
        n += 1
    return n
