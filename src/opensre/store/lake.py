"""LakeReader: a Parquet lake (export/lake, docs/lake.md) read as a StoreReader
(reader.py), so that tune and report run over the runs of many hosts as they run
over one store. DuckDB queries pyarrow datasets of the lake's tables, local or on S3
(DuckDB's own S3 support is an extension that may not be installed; pyarrow's
filesystem is the lake writer's too).

The SQL here is the lake's, beside the SQLite reader's (sqlite_reader.py): the same
questions, asked of the exported columns. Lists (argv, tools, command) are Parquet
arrays here and JSON text in the store: the methods whose callers expect the store's
JSON text get it. The lake is read-only: analysis keeps no aggregates in it.

duckdb and pyarrow are imported only here (the `lake` extra)."""

from __future__ import annotations

import json
import os
from typing import Iterator

from ..errors import StoreError
from ..model import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Host, Process, Run, Sample, Task, ToolUse
from .lakelayout import COLUMNS, TABLES, arrow_schema, s3_filesystem, s3_location
from .rows import AGG_COLS, HOST_SAMPLE_FIELDS, TASK_FACT_TASK, TASK_FIELDS, TOOL_FIELDS, task_stats

_RUN_FIELDS = [f for f in Run.__dataclass_fields__]
_HOST_FIELDS = [f for f in Host.__dataclass_fields__]
_EXEC_FIELDS = [f for f in Exec.__dataclass_fields__]
_EVENT_FIELDS = ("kind", "pid", "start_time_ns", "t_ns")


def _open(fs, dest: str):
    """(pyarrow filesystem, root path in it) of a lake: a directory or s3://bucket/prefix."""
    s3 = s3_location(dest, "--lake")
    if s3:
        return s3_filesystem(fs), "/".join(p for p in s3 if p)
    if not os.path.isdir(dest):
        raise StoreError(f"no lake at {dest}: not a directory",
                         "give the directory `opensre export --format parquet --to` wrote")
    return fs.LocalFileSystem(), os.path.abspath(dest)


def _dataset(ds, fs, filesystem, path: str):
    """A table's files as one pyarrow dataset (dt and host from the path), None where
    it has none. Hidden and temporary files (the writer's `.NAME.parquet.x.tmp`) are
    not part of it."""
    try:
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return None
        return ds.dataset(path, filesystem=filesystem, format="parquet", partitioning="hive",
                          ignore_prefixes=[".", "_"])
    except OSError as e:
        raise StoreError(f"cannot read the lake's {path}: {' '.join(str(e).split())}") from None


def _dict(v) -> dict:
    """A Parquet map as DuckDB returns it (a dict, or {'key': [...], 'value': [...]})."""
    if not v:
        return {}
    if isinstance(v, dict) and set(v) == {"key", "value"} and isinstance(v["key"], list):
        return dict(zip(v["key"], v["value"]))
    return dict(v)


class LakeReader:
    """The runs of a lake at `dest` (a directory or s3://bucket/prefix)."""

    readonly = True

    def __init__(self, dest: str):
        try:
            import duckdb
            import pyarrow as pa
            import pyarrow.dataset as ds
            from pyarrow import fs
        except ImportError:
            raise StoreError("reading a lake needs pyarrow and duckdb",
                             "install them: pip install 'opensre[lake]'") from None
        self.path = dest  # shown in messages
        filesystem, root = _open(fs, dest)
        self._db = duckdb.connect()
        self._data = {}  # table -> what DuckDB scans (kept alive while registered)
        for table in TABLES:
            data = _dataset(ds, fs, filesystem, f"{root}/{table}")
            # no run had rows of this table: an empty one of its columns
            self._data[table] = data if data is not None else pa.table(
                {f.name: pa.array([], f.type) for f in arrow_schema(pa, table)})
            self._db.register(table, self._data[table])
        if not self._q("SELECT 1 FROM runs LIMIT 1"):
            raise StoreError(f"no runs in the lake {dest}",
                             "export runs to it with `opensre export --format parquet --to DEST`")
        self._parents: dict[str, str | None] = {}

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._db.execute(sql, list(args)).fetchall()

    def _dicts(self, sql: str, args: tuple = ()) -> list[dict]:
        cur = self._db.execute(sql, list(args))
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    # -- runs -------------------------------------------------------------------
    def _run(self, d: dict) -> Run:
        r = {k: d.get(k) for k in _RUN_FIELDS}
        r["command"] = list(r["command"] or [])
        r["drop_detail"] = _dict(r["drop_detail"])
        r["probes"] = _dict(r["probes"])
        r["drops"] = r["drops"] or 0
        r["process_count"] = r["process_count"] or 0
        return Run(**r)  # as exported: a "running" run's collector is on another host

    def _runs(self, where: str = "", args: tuple = (), order: str = "start_time_ns DESC", limit: int | None = None):
        cols = ",".join(_RUN_FIELDS)
        # a run exported twice from copies of a store: one row (the files are per run)
        sql = f"SELECT DISTINCT ON (run_id) {cols} FROM runs{' WHERE ' + where if where else ''}"
        sql = f"SELECT * FROM ({sql}) ORDER BY {order}, run_id" + (f" LIMIT {int(limit)}" if limit else "")
        return [self._run(d) for d in self._dicts(sql, args)]

    def runs(self, limit: int | None = None, *, detected: bool = True) -> list[Run]:
        return self._runs("" if detected else "parent_run_id IS NULL", limit=limit)

    def resolve_run(self, ref: str) -> Run:
        if ref == "latest":
            found = self._runs("parent_run_id IS NULL", limit=1)
        else:
            found = self._runs("run_id = ?", (ref,)) or self._runs("name = ?", (ref,), limit=1)
            if not found and ref:
                found = self._runs("substr(run_id, 1, ?) = ?", (len(ref), ref), limit=2)
                if len(found) > 1:
                    raise StoreError(f"run id prefix {ref!r} is ambiguous", "give more characters")
        if not found:
            raise StoreError(f"no run {ref!r} in the lake {self.path}", "list what it holds with DuckDB "
                             "(docs/lake.md) or export the run to it")
        return found[0]

    def runs_named(self, name: str) -> list[Run]:
        return self._runs("name = ?", (name,), order="start_time_ns")

    def detected_runs(self, parent_run_id: str) -> list[Run]:
        return self._runs("parent_run_id = ?", (parent_run_id,), order="start_time_ns, root_pid")

    def runs_older_than(self, t_ns: int) -> list[Run]:
        return self._runs("start_time_ns < ? AND parent_run_id IS NULL", (t_ns,), order="start_time_ns")

    def host(self, host_id: str) -> Host | None:
        rows = self._dicts(f"SELECT {','.join(_HOST_FIELDS)} FROM hosts WHERE host_id = ? LIMIT 1", (host_id,))
        if not rows:
            return None
        d = rows[0]
        d["arch"] = d.get("arch") or ""
        return Host(**d)

    # -- a run's records ----------------------------------------------------------
    def _parent(self, run_id: str) -> str | None:
        if run_id not in self._parents:
            rows = self._q("SELECT parent_run_id FROM runs WHERE run_id = ? LIMIT 1", (run_id,))
            self._parents[run_id] = rows[0][0] if rows else None
        return self._parents[run_id]

    def _members(self, run_id: str) -> tuple[str, tuple]:
        """Condition on `processes p` for a run's processes: its own or, for a
        detected run, its collection's in its tasks (as the store keeps them)."""
        parent = self._parent(run_id)
        if parent is None:
            return "p.run_id = ?", (run_id,)
        return "p.run_id = ? AND p.task_id IN (SELECT task_id FROM tasks WHERE run_id = ?)", (parent, run_id)

    def _joined(self, table: str, cols: str, run_id: str, order: str, cond: str = "", cargs: tuple = ()):
        parent = self._parent(run_id)
        cond = f" AND {cond}" if cond else ""
        if parent is None:
            return self._q(f"SELECT {cols} FROM {table} x WHERE x.run_id = ?{cond} ORDER BY {order}",
                           (run_id, *cargs))
        where, args = self._members(run_id)
        return self._q(f"SELECT {cols} FROM {table} x JOIN processes p ON p.run_id = x.run_id AND p.pid = x.pid "
                       f"AND p.start_time_ns = x.start_time_ns WHERE {where}{cond} ORDER BY {order}",
                       (*args, *cargs))

    def processes(self, run_id: str) -> Iterator[Process]:
        where, args = self._members(run_id)
        for row in self._q(f"SELECT {','.join('p.' + f for f in PROCESS_FIELDS)} FROM processes p WHERE {where} "
                           "ORDER BY p.start_time_ns, p.pid", args):
            d = dict(zip(PROCESS_FIELDS, row))
            d["argv"] = list(d["argv"] or [])
            yield Process(**d)

    def execs(self, run_id: str) -> Iterator[Exec]:
        for r in self._joined("execs", ",".join("x." + f for f in _EXEC_FIELDS), run_id, "x.t_ns"):
            d = dict(zip(_EXEC_FIELDS, r))
            d["argv"] = list(d["argv"] or [])
            d["argv_truncated"] = bool(d["argv_truncated"])
            yield Exec(**d)

    def samples(self, run_id: str) -> Iterator[Sample]:
        """As the store's: the exported series already holds the one-sample processes."""
        for row in self._joined("samples", ",".join("x." + f for f in SAMPLE_FIELDS), run_id,
                                "x.pid, x.start_time_ns, x.t_ns"):
            yield Sample(*row)

    def events(self, run_id: str, kind: str | None = None) -> Iterator[Event]:
        data_cols = [n for n, _ in COLUMNS["events"] if n not in _EVENT_FIELDS
                     and n not in ("run_id", "host_id", "schema_version")]
        cols = ",".join("x." + c for c in (*_EVENT_FIELDS, *data_cols))
        cond, cargs = ("x.kind = ?", (kind,)) if kind else ("", ())
        for r in self._joined("events", cols, run_id, "x.t_ns", cond, cargs):
            data = {k: v for k, v in zip(data_cols, r[4:]) if v is not None}
            yield Event(r[0], r[1], r[2], r[3], data)

    def host_samples(self, run_id: str) -> list[dict]:
        parent = self._parent(run_id)
        cols = ",".join(HOST_SAMPLE_FIELDS)
        if parent is None:
            rows = self._q(f"SELECT {cols} FROM host_samples WHERE run_id = ? ORDER BY t_ns", (run_id,))
        else:
            r = self.resolve_run(run_id)
            rows = self._q(f"SELECT {cols} FROM host_samples WHERE run_id = ? AND t_ns >= ? AND t_ns <= ? "
                           "ORDER BY t_ns", (parent, r.start_time_ns or 0,
                                             r.end_time_ns if r.end_time_ns is not None else 2**63 - 1))
        return [dict(zip(HOST_SAMPLE_FIELDS, r)) for r in rows]

    def process_cgroup(self, run_id: str, pid: int, not_before_ns: int = 0) -> str | None:
        rows = self._q("SELECT cgroup_path FROM processes WHERE run_id = ? AND pid = ? AND start_time_ns >= ? "
                       "ORDER BY start_time_ns LIMIT 1", (self._parent(run_id) or run_id, pid,
                                                           not_before_ns - 10**9))
        return rows[0][0] if rows else None

    # -- tasks and tools --------------------------------------------------------
    def tasks(self, run_id: str) -> list[Task]:
        out = []
        for r in self._q(f"SELECT {','.join(TASK_FIELDS)} FROM tasks WHERE run_id = ? "
                         "ORDER BY start_time_ns, task_id", (run_id,)):
            t = Task(*r)
            t.tools = list(t.tools or [])
            t.oom_killed = bool(t.oom_killed)
            out.append(t)
        return out

    def tools(self, run_id: str) -> list[ToolUse]:
        return [ToolUse(*r) for r in self._q(f"SELECT {','.join(TOOL_FIELDS)} FROM tools WHERE run_id = ? "
                                              "ORDER BY task_id, start_time_ns", (run_id,))]

    def task_ids(self, run_id: str) -> dict[tuple[int, int], str]:
        where, args = self._members(run_id)
        return {(r[0], r[1]): r[2] for r in self._q(
            f"SELECT p.pid, p.start_time_ns, p.task_id FROM processes p WHERE {where} AND p.task_id IS NOT NULL",
            args)}

    # -- aggregates for analysis (tune) ---------------------------------------------
    def task_process_stats(self, run_id: str) -> dict[str, dict]:
        where, args = self._members(run_id)
        return task_stats(self._q(
            "SELECT p.task_id, p.cgroup_path, p.cpu_limit_cores, p.cpuset_cpus, p.memory_limit_bytes, "
            "SUM(p.sleep_ns), SUM(p.major_faults), MAX(p.threads) FROM processes p "
            f"WHERE {where} AND p.task_id IS NOT NULL GROUP BY p.task_id, p.cgroup_path, p.cpu_limit_cores, "
            "p.cpuset_cpus, p.memory_limit_bytes ORDER BY p.task_id, p.cgroup_path", args))

    def task_fact_rows(self, run_id: str, version: int) -> list[tuple]:
        """As the store's, tools as JSON text and no kept aggregates (NULLs): the
        analysis computes them, the lake keeps none."""
        cols = ",".join(f"t.{c}" for c in TASK_FACT_TASK)
        rows = self._q(f"SELECT {cols} FROM tasks t WHERE t.run_id = ? AND t.kind = 'task' "
                       "ORDER BY t.start_time_ns, t.task_id", (run_id,))
        ti = TASK_FACT_TASK.index("tools")
        return [(*r[:ti], json.dumps(list(r[ti] or [])), *r[ti + 1:], *([None] * len(AGG_COLS))) for r in rows]

    def task_argvs(self, run_id: str) -> Iterator[tuple[str, str]]:
        where, args = self._members(run_id)
        parent = self._parent(run_id) or run_id
        rows = self._q(
            "SELECT p.task_id, x.argv FROM execs x JOIN processes p ON p.run_id = x.run_id AND p.pid = x.pid "
            f"AND p.start_time_ns = x.start_time_ns WHERE x.run_id = ? AND {where} AND p.task_id IS NOT NULL "
            f"UNION SELECT p.task_id, p.argv FROM processes p WHERE {where} AND p.task_id IS NOT NULL "
            "AND p.exec_count = 0 AND p.observed_since_ns IS NOT NULL", (parent, *args, *args))
        for tid, argv in rows:
            yield tid, json.dumps(list(argv or []))

    def task_tool_commands(self, run_id: str) -> Iterator[tuple]:
        parent = self._parent(run_id) or run_id
        for tid, tool, sub, exe, argv in self._q(
                "SELECT u.task_id, u.tool, u.subcommand, p.exe, p.argv FROM tools u LEFT JOIN processes p "
                "ON p.run_id = ? AND p.pid = u.pid AND p.start_time_ns = u.start_time_ns WHERE u.run_id = ? "
                "ORDER BY u.task_id, u.start_time_ns", (parent, run_id)):
            yield tid, tool, sub, exe, json.dumps(list(argv)) if argv is not None else None

    def task_bytes_read(self, run_id: str) -> Iterator[tuple[str, int]]:
        where, args = self._members(run_id)
        yield from self._q(f"SELECT p.task_id, SUM(p.rchar) FROM processes p WHERE {where} "
                           "AND p.task_id IS NOT NULL GROUP BY p.task_id ORDER BY p.task_id", args)

    def tool_waits(self, run_id: str) -> Iterator[tuple]:
        parent = self._parent(run_id) or run_id
        yield from self._q(
            "SELECT u.task_id, u.tool, u.subcommand, u.pid, u.start_time_ns, u.end_time_ns, u.cpu_ns, "
            "u.peak_rss_bytes, u.exit_code, u.exit_signal, p.runq_wait_ns, p.blocked_io_ns, p.threads, "
            "p.oom_killed FROM tools u LEFT JOIN processes p ON p.run_id = ? AND p.pid = u.pid "
            "AND p.start_time_ns = u.start_time_ns WHERE u.run_id = ?", (parent, run_id))

    def put_task_aggregates(self, run_id: str, version: int, rows: dict[str, dict]) -> bool:
        return False  # read-only

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
