"""The Parquet lake: runs exported from a store as Hive-partitioned Parquet files that
DuckDB, Spark, Athena and Trino read (docs/lake.md).

    ROOT/TABLE/dt=YYYY-MM-DD/host=HOST_ID/run-RUN_ID.parquet

One file per exported run and table, named after the run: exporting a run again
replaces its files, never adds rows beside them. `dt` is the run's start date (UTC),
so all of a run's rows sit in one partition of each table. A run exported is a run
of its own (`run` or `collect`) with the runs detected in it: their rows (runs, tasks,
tools) go into its files, and their processes are its processes, as in the store.

The tables are the JSON Lines export's records (export/jsonl.py `records`), columns
typed in schema.py, plus `host_id` and `schema_version` in every row. Within a run,
`runs` is written last: a reader that sees the run's row sees its records.

pyarrow is imported only here (the `lake` extra)."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import operator
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator
from urllib.parse import quote

from ...errors import StoreError
from ...model import Run
from ...store.lakelayout import arrow_schema
from ..jsonl import records
from .dest import LocalDest, S3Dest, open_dest, require_pyarrow
from .schema import COLUMNS, JSONL_KIND, PARTITIONS, SCHEMA_VERSION, TABLES, ddl

__all__ = ["COLUMNS", "LakeExport", "LocalDest", "PARTITIONS", "S3Dest", "SCHEMA_VERSION", "TABLES", "ddl",
           "export_lake", "open_dest", "run_path", "select_runs"]

BATCH_ROWS = 1 << 16  # rows per record batch (and row group at most): bounds memory on a huge run
S = 1_000_000_000


@dataclass
class LakeExport:
    """What an export wrote: the runs (of their own) and the rows per table."""

    dest: str
    runs: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    files: int = 0


def select_runs(store, ref: str | None = None, since_s: float | None = None, now_ns: int | None = None) -> list[Run]:
    """The runs of their own to export: those active within the last `since_s`
    seconds (started, or not yet ended, after then), oldest first; else the one `ref`
    names ('latest' by default), a detected run giving its collection."""
    if since_s is not None:
        now = now_ns if now_ns is not None else datetime.datetime.now(datetime.timezone.utc).timestamp() * S
        cutoff = now - since_s * S
        return [r for r in reversed(store.runs(detected=False)) if (r.end_time_ns or now) >= cutoff]
    r = store.resolve_run(ref or "latest")
    return [store.resolve_run(r.parent_run_id) if r.parent_run_id else r]


def run_path(table: str, run: Run) -> str:
    """Where a run's rows of `table` go, below the lake's root."""
    dt = datetime.datetime.fromtimestamp((run.start_time_ns or 0) / S, datetime.timezone.utc).date().isoformat()
    return f"{table}/dt={dt}/host={quote(run.host_id or 'unknown', safe='')}/run-{quote(run.run_id, safe='')}.parquet"


def export_lake(store, runs: Iterable[Run], dest: LocalDest | S3Dest,
                on_run: Callable[[Run, dict], None] | None = None) -> LakeExport:
    """Writes each run's tables to `dest` (open_dest()); on_run(run, rows per table)
    after each. Raises OutputError when a file cannot be written: files written before
    stay (each is whole), the store is only read; the same export can be run again."""
    pa = require_pyarrow()
    schemas = {t: arrow_schema(pa, t) for t in TABLES}
    out = LakeExport(dest.url)
    for run in runs:
        counts = {}
        for table, rows in _run_records(store, run).items():
            counts[table] = _write_table(pa, dest, run_path(table, run), schemas[table], table, run.host_id, rows)
            out.files += counts[table] is not None
        counts = {t: n or 0 for t, n in counts.items()}
        for t, n in counts.items():
            out.rows[t] += n
        out.runs.append(run.run_id)
        if on_run:
            on_run(run, counts)
    return out


def _run_records(store, run: Run) -> dict[str, Iterable[dict]]:
    """A run's rows per table, `runs` last."""
    members = [run, *store.detected_runs(run.run_id)]
    host = store.host(run.host_id)
    per_member = lambda kind: itertools.chain.from_iterable(  # noqa: E731
        records(store, m.run_id, kind) for m in members)
    tables: dict[str, Iterable[dict]] = {
        "hosts": [{"run_id": run.run_id, **dataclasses.asdict(host)}] if host else [],
        **{t: records(store, run.run_id, JSONL_KIND.get(t, t)) for t in ("processes", "execs", "samples", "events",
                                                                          "host_samples")},
        "tasks": per_member("tasks"),
        "tools": per_member("tools"),
        "runs": [dataclasses.asdict(m) for m in members],
    }
    assert set(tables) == set(TABLES)
    return tables


def _write_table(pa, dest, path: str, schema, table: str, host_id: str, rows: Iterable[dict]) -> int | None:
    """Rows to one file at `path`; how many, or None when there were none and no
    file: an empty table makes no file, unless one from an earlier export must be
    replaced (by an empty one)."""
    import pyarrow.parquet as pq

    it = iter(rows)
    first = next(it, None)
    if first is None and not dest.exists(path):
        return None
    n = 0

    def write(f) -> None:
        nonlocal n
        with pq.ParquetWriter(f, schema, compression="zstd") as w:
            for batch in _batches(pa, schema, table, host_id, itertools.chain([first], it) if first else ()):
                w.write_batch(batch)
                n += batch.num_rows

    dest.put(path, write)
    return n


def _batches(pa, schema, table: str, host_id: str, rows: Iterator[dict]):
    names = schema.names
    known = set(names)
    extra = {"host_id": host_id, "schema_version": SCHEMA_VERSION}
    varying = table == "events"  # the one record whose keys vary (by event kind)
    while True:
        chunk = list(itertools.islice(rows, BATCH_ROWS))
        if not chunk:
            return
        for r in chunk if varying else chunk[:1]:
            if not r.keys() <= known:
                raise StoreError(f"{table} field(s) {sorted(r.keys() - known)} have no column in the lake schema "
                                 f"v{SCHEMA_VERSION}", "this is a bug in OpenSRE: please report it")
        have = [c for c in names if c in chunk[0] or varying and c not in extra]
        if varying:
            cols = {c: [r.get(c) for r in chunk] for c in have}
        else:  # the same keys in every row: transposed in C (itemgetter, zip), not per value in Python
            cols = dict(zip(have, zip(*map(operator.itemgetter(*have), chunk))))
        cols.update((c, [v] * len(chunk)) for c, v in extra.items() if c not in cols)
        yield pa.RecordBatch.from_pydict({c: cols[c] for c in names}, schema=schema)
