"""`opensre import SPILL.jsonl`: the records a collector could not store (a full
disk) and wrote to a spill file instead (collect/persist.py `spill`), loaded
into a store. One JSON object per line with its `run_id`; `record` says what it
is: absent for a process, else "exec", "sample", "event" or "host_sample"."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace

from ..errors import StoreError, UsageError
from ..model import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Process, Run, Sample
from .db import Store
from .rows import HOST_SAMPLE_FIELDS

_BATCH = 5000


def import_spill(store: Store, path: str | Path) -> dict[str, int]:
    """Adds the spill file's records to their runs in `store` (a run the store does
    not have is created, status "imported"); returns the count per kind. Processes
    are keyed (importing twice keeps one of each); the others are appended."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read spill file {path}: {e.strerror or e}") from None
    counts = {"process": 0, "exec": 0, "sample": 0, "event": 0, "host_sample": 0}
    batches: dict[str, dict[str, list]] = {}
    with f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise UsageError(f"cannot read spill file {path}: not a regular file")
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                rid = d.pop("run_id")
                kind = d.pop("record", "process")
                b = batches.setdefault(rid, {k: [] for k in counts})
                b[kind].append(_record(kind, d))
            except (ValueError, KeyError, TypeError) as e:
                raise UsageError(f"{path}:{n}: not a spill record ({type(e).__name__}: {e})",
                                 "nothing was imported from this line on") from None
            counts[kind] += 1
            if sum(len(v) for v in b.values()) >= _BATCH:
                _flush(store, rid, b)
    for rid, b in batches.items():
        _flush(store, rid, b)
        _ensure_run(store, rid)
    return counts


def _record(kind: str, d: dict):
    if kind == "process":
        return Process(**{k: d[k] for k in PROCESS_FIELDS if k in d})
    if kind == "exec":
        return Exec(**d)
    if kind == "sample":
        return Sample(**{k: d[k] for k in SAMPLE_FIELDS})
    if kind == "event":
        return Event(**d)
    if kind == "host_sample":
        return SimpleNamespace(**{k: d.get(k) for k in HOST_SAMPLE_FIELDS})
    raise KeyError(f"record kind {kind!r}")


def _flush(store: Store, rid: str, b: dict[str, list]) -> None:
    store.put_batch(rid, b["process"], b["exec"], b["sample"], b["event"], b["host_sample"])
    for v in b.values():
        v.clear()


def _ensure_run(store: Store, rid: str) -> None:
    try:
        run = store.resolve_run(rid)
    except StoreError:
        run = None
    if run is None or run.run_id != rid:  # not in this store (an id prefix or name matched another)
        run = Run(run_id=rid, name=f"imported {rid}", mode="run", host_id="", start_time_ns=time.time_ns(),
                  status="imported")
    run.process_count = sum(1 for _ in store.processes(rid))
    store.put_run(run)
