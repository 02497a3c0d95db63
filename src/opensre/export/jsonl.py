"""JSON Lines export: one object per record, names as documented in docs/data-catalog.md."""

from __future__ import annotations

import json
from typing import IO, Iterable

from ..model import Process


def process_record(run_id: str, p: Process) -> dict:
    d = {"run_id": run_id}
    d.update(p.as_dict())
    return d


def write_processes(out: IO[str], run_id: str, procs: Iterable[Process]) -> int:
    n = 0
    for p in procs:
        out.write(json.dumps(process_record(run_id, p), separators=(",", ":")) + "\n")
        n += 1
    return n
