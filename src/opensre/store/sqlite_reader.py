"""The reader half of the SQLite store: StoreReader (reader.py) over a connection.
A detected run (found inside a host-wide collection) has no records of its own:
its records are those of its collection's processes in its tasks (`_members`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterator

from ..errors import StoreError
from ..model import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Host, Process, Run, Sample, Task, ToolUse
from .connection import schema_version
from .rows import (AGG_COLS, HOST_SAMPLE_FIELDS, TASK_FACT_TASK, TASK_FIELDS, TOOL_FIELDS, cached_json,
                   process_from_row, run_from_row, task_stats)
from .schema import SCHEMA_VERSION


class SqliteReader:
    """Reads an open store connection `db` at schema `version`. An older store
    (read-only: a writer migrates it) lacks later tables and columns: they read as
    empty or NULL."""

    def __init__(self, db: sqlite3.Connection, path: Path, version: int, readonly: bool):
        self.db, self.path, self.readonly, self._version = db, path, readonly, version
        self._tcols: str | None = None
        self._tfcols: str | None = None
        self._parents: dict[str, str | None] = {}
        have = {r[1] for r in self.db.execute("PRAGMA table_info(processes)")}
        self._pcols = ",".join(f"p.{f}" if f in have else "NULL" for f in PROCESS_FIELDS)
        if readonly and version > SCHEMA_VERSION:
            raise StoreError(f"store {path} has schema v{version}, newer than this opensre (v{SCHEMA_VERSION})",
                             "upgrade opensre")

    def schema_version(self) -> int:
        return schema_version(self.db)

    def runs_changed(self) -> None:
        self._parents.clear()

    # -- runs -------------------------------------------------------------------
    def runs(self, limit: int | None = None, *, detected: bool = True) -> list[Run]:
        """Latest first. detected=False: only runs of their own (`run`, `collect`),
        not those detected inside a collection."""
        where = " WHERE parent_run_id IS NULL" if not detected and self._version >= 5 else ""
        q = f"SELECT * FROM runs{where} ORDER BY start_time_ns DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [self._counted(run_from_row(r)) for r in self.db.execute(q)]

    def _counted(self, r: Run) -> Run:
        """A run cut short (its collector killed) never wrote its process count: the
        processes it did store are counted."""
        if r.status == "interrupted" and not r.process_count and r.mode != "detected":
            r.process_count = self.db.execute("SELECT COUNT(*) FROM processes WHERE run_id=?",
                                              (r.run_id,)).fetchone()[0]
        return r

    def resolve_run(self, ref: str) -> Run:
        """A run by id, name (latest of that name), unique id prefix, or 'latest'. A
        name comes before a prefix: a run named `a` is that run, not the one whose
        id happens to start with the hex digit a."""
        if ref == "latest":  # the latest run of its own, not one detected inside a collection
            where = " WHERE parent_run_id IS NULL" if self._version >= 5 else ""
            row = self.db.execute(f"SELECT * FROM runs{where} ORDER BY start_time_ns DESC LIMIT 1").fetchone()
        else:
            row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (ref,)).fetchone() or \
                self.db.execute("SELECT * FROM runs WHERE name=? ORDER BY start_time_ns DESC LIMIT 1",
                                (ref,)).fetchone()
            if row is None:
                # a prefix, compared as text (LIKE would take % and _ as wildcards)
                rows = self.db.execute("SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? LIMIT 2",
                                       (len(ref), ref)).fetchall() if ref else []
                if len(rows) == 1:
                    row = rows[0]
                elif len(rows) > 1:
                    raise StoreError(f"run id prefix {ref!r} is ambiguous", "give more characters")
        if row is None:
            raise StoreError(f"no run {ref!r} in {self.path}", "list runs with `opensre runs`")
        return self._counted(run_from_row(row))

    def detected_runs(self, parent_run_id: str) -> list[Run]:
        """The runs detected in a host-wide collection, by start time."""
        if self._version < 5:
            return []
        return [run_from_row(r) for r in self.db.execute(
            "SELECT * FROM runs WHERE parent_run_id=? ORDER BY start_time_ns, root_pid, run_id", (parent_run_id,))]

    def runs_named(self, name: str) -> list[Run]:
        """Every run of that name (a pipeline's runs), oldest first."""
        return [run_from_row(r) for r in self.db.execute("SELECT * FROM runs WHERE name=? ORDER BY start_time_ns",
                                                         (name,))]

    def runs_older_than(self, t_ns: int) -> list[Run]:
        """Runs of their own (not detected in a collection: those go with it) started
        before `t_ns`, oldest first."""
        where = " AND parent_run_id IS NULL" if self._version >= 5 else ""
        return [run_from_row(r) for r in self.db.execute(
            f"SELECT * FROM runs WHERE start_time_ns < ?{where} ORDER BY start_time_ns", (t_ns,))]

    def host(self, host_id: str) -> Host | None:
        r = self.db.execute("SELECT * FROM hosts WHERE host_id=?", (host_id,)).fetchone()
        if r is None:
            return None
        d = dict(r)
        d["arch"] = d.get("arch") or ""  # an older store has no architecture
        return Host(**d)

    # -- a run's records ----------------------------------------------------------
    def _parent(self, run_id: str) -> str | None:
        if self._version < 5:
            return None
        if run_id in self._parents:
            return self._parents[run_id]
        row = self.db.execute("SELECT parent_run_id FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        self._parents[run_id] = row[0]  # a run's parent never changes (detected ids derive from it)
        return row[0]

    def _members(self, run_id: str) -> tuple[str, tuple]:
        """SQL condition on `processes p` selecting a run's processes: those stored
        under it or, for a detected run, those of its collection in its tasks."""
        parent = self._parent(run_id)
        if parent is None:
            return "p.run_id=?", (run_id,)
        return "p.run_id=? AND p.task_id IN (SELECT task_id FROM tasks WHERE run_id=?)", (parent, run_id)

    def _joined(self, table: str, cols: str, run_id: str, order: str, cond: str = "", cargs: tuple = ()):
        """Rows of a per-process table (execs, samples, events) for a run's processes
        (and `cond` on them, with its arguments `cargs`)."""
        parent = self._parent(run_id)
        cond = f" AND {cond}" if cond else ""
        if parent is None:
            return self.db.execute(f"SELECT {cols} FROM {table} x WHERE x.run_id=?{cond} ORDER BY {order}",
                                   (run_id, *cargs))
        where, args = self._members(run_id)
        return self.db.execute(
            f"SELECT {cols} FROM {table} x JOIN processes p ON p.run_id=x.run_id AND p.pid=x.pid "
            f"AND p.start_time_ns=x.start_time_ns WHERE {where}{cond} ORDER BY {order}", (*args, *cargs))

    def processes(self, run_id: str) -> Iterator[Process]:
        where, args = self._members(run_id)
        cur = self.db.execute(f"SELECT {self._pcols} FROM processes p WHERE {where} "
                              "ORDER BY p.start_time_ns, p.pid", args)
        for row in cur:
            yield process_from_row(row)

    def execs(self, run_id: str) -> Iterator[Exec]:
        for r in self._joined("execs", "x.*", run_id, "x.t_ns"):
            yield Exec(r["pid"], r["start_time_ns"], r["t_ns"], r["exe"], json.loads(r["argv"]), bool(r["argv_truncated"]),
                       r["cwd"])

    def samples(self, run_id: str) -> Iterator[Sample]:
        """The time series. A process that lived within one tick has no stored row:
        its one sample is its totals at its exit, made here from its record."""
        cur = self._joined("samples", ",".join("x." + f for f in SAMPLE_FIELDS), run_id,
                           "x.pid, x.start_time_ns, x.t_ns")
        seen = set()
        for row in cur:
            seen.add((row[0], row[1]))
            yield Sample(*row)
        where, args = self._members(run_id)
        for r in self.db.execute(
                "SELECT pid, start_time_ns, end_time_ns, cpu_user_ns + cpu_system_ns, read_bytes, write_bytes, "
                "net_tx_bytes, net_rx_bytes, runq_wait_ns, blocked_io_ns, sleep_ns FROM processes p "
                f"WHERE {where} AND complete=1 ORDER BY pid, start_time_ns", args):
            if (r[0], r[1]) not in seen:
                yield Sample(r[0], r[1], r[2], r[3], None, r[4], r[5], r[6] or 0, r[7] or 0, r[8] or 0, r[9] or 0,
                             r[10] or 0)

    def events(self, run_id: str, kind: str | None = None) -> Iterator[Event]:
        """A run's events in time order; kind: only those of that kind (e.g. "oom_kill")."""
        cond, cargs = ("x.kind=?", (kind,)) if kind else ("", ())
        for r in self._joined("events", "x.kind, x.pid, x.start_time_ns, x.t_ns, x.data", run_id, "x.t_ns",
                              cond, cargs):
            yield Event(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else {})

    def host_samples(self, run_id: str) -> list[dict]:
        """The host time series; for a detected run, its collection's over the run's time span."""
        parent = self._parent(run_id)
        if parent is None:
            cur = self.db.execute(f"SELECT {','.join(HOST_SAMPLE_FIELDS)} FROM host_samples WHERE run_id=? "
                                  "ORDER BY t_ns", (run_id,))
        else:
            r = self.db.execute("SELECT start_time_ns, end_time_ns FROM runs WHERE run_id=?", (run_id,)).fetchone()
            cur = self.db.execute(f"SELECT {','.join(HOST_SAMPLE_FIELDS)} FROM host_samples WHERE run_id=? "
                                  "AND t_ns >= ? AND t_ns <= ? ORDER BY t_ns",
                                  (parent, r[0] or 0, r[1] if r[1] is not None else 2**63 - 1))
        return [dict(zip(HOST_SAMPLE_FIELDS, r)) for r in cur]

    def process_cgroup(self, run_id: str, pid: int, not_before_ns: int = 0) -> str | None:
        """The cgroup of a run's process with that pid (its root), the first one started."""
        r = self.db.execute("SELECT cgroup_path FROM processes WHERE run_id=? AND pid=? AND start_time_ns >= ? "
                            "ORDER BY start_time_ns LIMIT 1", (self._parent(run_id) or run_id, pid,
                                                                not_before_ns - 10**9)).fetchone()
        return r[0] if r else None

    # -- tasks and tools --------------------------------------------------------
    def _task_cols(self) -> str:
        if self._tcols is None:
            have = {r[1] for r in self.db.execute("PRAGMA table_info(tasks)")}  # an older read-only store
            self._tcols = ",".join(f if f in have else "NULL" for f in TASK_FIELDS)
        return self._tcols

    def tasks(self, run_id: str) -> list[Task]:
        out = []
        cur = self.db.execute(f"SELECT {self._task_cols()} FROM tasks WHERE run_id=? ORDER BY start_time_ns, task_id",
                              (run_id,))
        cur.row_factory = None  # plain tuples, in TASK_FIELDS order
        for r in cur:
            t = Task(*r)
            t.tools = list(cached_json(t.tools))  # a pipeline's tasks repeat the same lists: decoded once each
            t.oom_killed = bool(t.oom_killed)
            out.append(t)
        return out

    def tools(self, run_id: str) -> list[ToolUse]:
        return [ToolUse(*r) for r in self.db.execute(
            f"SELECT {','.join(TOOL_FIELDS)} FROM tools WHERE run_id=? ORDER BY task_id, start_time_ns", (run_id,))]

    def task_ids(self, run_id: str) -> dict[tuple[int, int], str]:
        where, args = self._members(run_id)
        return {(r[0], r[1]): r[2] for r in self.db.execute(
            f"SELECT pid, start_time_ns, task_id FROM processes p WHERE {where} AND task_id IS NOT NULL", args)}

    # -- aggregates for analysis (tune): one pass of SQL per run, not per task --------
    def task_process_stats(self, run_id: str) -> dict[str, dict]:
        """Per task: figures tasks don't carry (sleep, major faults, most threads,
        cgroups and their limits), summed/maxed over its processes."""
        where, args = self._members(run_id)
        have_limits = self._version >= 6
        lim = "p.cpu_limit_cores, p.cpuset_cpus, p.memory_limit_bytes" if have_limits else "NULL, NULL, NULL"
        return task_stats(self.db.execute(
            f"SELECT p.task_id, p.cgroup_path, {lim}, SUM(p.sleep_ns), SUM(p.major_faults), MAX(p.threads) "
            f"FROM processes p WHERE {where} AND p.task_id IS NOT NULL GROUP BY p.task_id, p.cgroup_path", args))

    def task_aggregates(self, run_id: str, version: int) -> dict[str, dict]:
        """task_id -> the aggregates stored for it by that `version` of the computation
        (none on an older store, for a run correlated before them, or by another
        version). The decoded cgroups and size_flags are shared between rows with the
        same text: read them, do not change them."""
        if self._version < 10:
            return {}
        out = {}
        cur = self.db.execute(f"SELECT task_id, {','.join(AGG_COLS)} FROM task_aggregates "
                              "WHERE run_id=? AND version=?", (run_id, version))
        cur.row_factory = None
        for tid, end, sleep, majf, thr, cg, fl, rule, peak, stall in cur:
            out[tid] = {"end_ns": end, "sleep_ns": sleep, "major_faults": majf, "max_threads": thr,
                        "cgroups": cached_json(cg), "size_flags": cached_json(fl), "target_rule": rule,
                        "peak_cores": peak, "longest_stall_ns": stall}
        return out

    def task_fact_rows(self, run_id: str, version: int) -> list[tuple]:
        """What tune reads per task (kind "task"), in start order, one tuple each in
        TASK_FACT_COLUMNS order: the task's row, then its aggregates of that `version`
        (NULLs where none are kept). tools, cgroups and size_flags are their stored
        JSON text: a pipeline's tasks repeat the same few, which the reader decodes
        once each. One query, no per-row work here: --pipeline reads 100,000 of them."""
        if self._tfcols is None:
            have = set(self._task_cols().split(","))  # an older read-only store lacks later columns
            self._tfcols = ",".join(f"t.{c}" if c in have else "NULL" for c in TASK_FACT_TASK)
        if self._version >= 10:
            sql = (f"SELECT {self._tfcols}, {','.join('a.' + c for c in AGG_COLS)} FROM tasks t "
                   "LEFT JOIN task_aggregates a ON a.run_id=t.run_id AND a.task_id=t.task_id AND a.version=? "
                   "WHERE t.run_id=? AND t.kind='task' ORDER BY t.start_time_ns, t.task_id")
            args: tuple = (version, run_id)
        else:
            sql = (f"SELECT {self._tfcols}, {','.join('NULL' for _ in AGG_COLS)} FROM tasks t "
                   "WHERE t.run_id=? AND t.kind='task' ORDER BY t.start_time_ns, t.task_id")
            args = (run_id,)
        cur = self.db.execute(sql, args)
        cur.row_factory = None
        return cur.fetchall()

    def task_argvs(self, run_id: str) -> Iterator[tuple[str, str]]:
        """(task_id, argv JSON) of each distinct command line run in a task: every
        exec (a shell that exec'd its only command ran two), and the argv of
        processes seen already running."""
        where, args = self._members(run_id)
        parent = self._parent(run_id) or run_id
        yield from self.db.execute(
            "SELECT p.task_id, x.argv FROM execs x JOIN processes p ON p.run_id=x.run_id AND p.pid=x.pid "
            f"AND p.start_time_ns=x.start_time_ns WHERE x.run_id=? AND {where} AND p.task_id IS NOT NULL "
            f"UNION SELECT p.task_id, p.argv FROM processes p WHERE {where} AND p.task_id IS NOT NULL "
            "AND p.exec_count = 0 AND p.observed_since_ns IS NOT NULL", (parent, *args, *args))

    def task_tool_commands(self, run_id: str) -> Iterator[tuple]:
        """Each tool use with its process's executable and argv (JSON, as stored:
        bounded, redacted): (task_id, tool, subcommand, exe, argv)."""
        parent = self._parent(run_id) or run_id
        yield from self.db.execute(
            "SELECT u.task_id, u.tool, u.subcommand, p.exe, p.argv FROM tools u LEFT JOIN processes p "
            "ON p.run_id=? AND p.pid=u.pid AND p.start_time_ns=u.start_time_ns WHERE u.run_id=? "
            "ORDER BY u.task_id, u.start_time_ns", (parent, run_id))

    def task_bytes_read(self, run_id: str) -> Iterator[tuple[str, int]]:
        """(task_id, bytes read at the syscall level) per task: what its processes read."""
        where, args = self._members(run_id)
        yield from self.db.execute(f"SELECT p.task_id, SUM(p.rchar) FROM processes p WHERE {where} "
                                   "AND p.task_id IS NOT NULL GROUP BY p.task_id", args)

    def tool_waits(self, run_id: str) -> Iterator[tuple]:
        """Each tool use with its exec'd process's waits and threads: (task_id, tool,
        subcommand, pid, start, end, cpu_ns, peak_rss, exit_code, exit_signal, runq, blocked,
        threads, oom_killed)."""
        parent = self._parent(run_id) or run_id
        yield from self.db.execute(
            "SELECT u.task_id, u.tool, u.subcommand, u.pid, u.start_time_ns, u.end_time_ns, u.cpu_ns, "
            "u.peak_rss_bytes, u.exit_code, u.exit_signal, p.runq_wait_ns, p.blocked_io_ns, p.threads, p.oom_killed "
            "FROM tools u LEFT JOIN processes p ON p.run_id=? AND p.pid=u.pid AND p.start_time_ns=u.start_time_ns "
            "WHERE u.run_id=?", (parent, run_id))
