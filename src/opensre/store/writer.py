"""The writer half of the SQLite store: what the collector, correlation and
`opensre rm/gc` change. Every change is one transaction (crash safe: a crash loses
at most the one in progress); disk errors become StoreError."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterable

from ..errors import RunStillRunning, StoreError
from ..model import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Host, Process, Run, Task, ToolUse
from .live import remove_snapshot
from .rows import (AGG_COLS, AGG_JSON, ARGV_IDX, GET_PROCESS_FIELDS, HOST_SAMPLE_FIELDS, RUN_COLS, TASK_FIELDS,
                   TOOL_FIELDS, collector_alive, insert_sql, run_from_row, run_row, task_row, tool_row)

_FIELDS = tuple(PROCESS_FIELDS)
_INSERT_RUN = insert_sql("runs", RUN_COLS, "INSERT OR REPLACE")
_INSERT_TASK = insert_sql("tasks", TASK_FIELDS)
_INSERT_TOOL = insert_sql("tools", TOOL_FIELDS)
_POINT_AT_TASK = "UPDATE processes SET task_id=? WHERE run_id=? AND pid=? AND start_time_ns=?"
# tables holding a run's records, keyed by run_id (task_aggregates has no REFERENCES)
_RUN_TABLES = ("execs", "samples", "events", "host_samples", "tools", "task_aggregates", "tasks", "processes")


class StoreWriter:
    """Mixed into Store over its connection `db` (opened for writing) at schema
    `_version`; `runs_changed` tells the reader's caches that runs went."""

    db: sqlite3.Connection
    path: Path
    _version: int

    def runs_changed(self) -> None:
        """Called after runs are removed (the reader drops what it cached of them)."""

    def put_host(self, h: Host) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO hosts (host_id, hostname, machine_id, boot_id, kernel, cpus, "
                            "mem_bytes, arch) VALUES (?,?,?,?,?,?,?,?)",
                            (h.host_id, h.hostname, h.machine_id, h.boot_id, h.kernel, h.cpus, h.mem_bytes, h.arch))

    def put_run(self, r: Run) -> None:
        row = run_row(r)
        with self._tx():
            self.db.execute(_INSERT_RUN, row)

    def put_batch(self, run_id: str, processes: Iterable[Process], execs: Iterable[Exec] = (),
                  samples: Iterable[Sample] = (), events: Iterable[Event] = (), host_samples: Iterable = ()) -> None:
        """One transaction per collector drain: cheap, and a crash loses at most one batch."""
        # a storm's records share a few argv lists (the collector keeps one per distinct
        # command line): each encoded once per batch, by identity, while the batch holds them
        enc: dict[int, str] = {}

        def argv_json(a: list) -> str:
            j = enc.get(id(a))
            if j is None:
                j = enc[id(a)] = json.dumps(a)
            return j

        prow = []
        for p in processes:
            d = p.__dict__
            # a record's attributes are its fields in order (dataclass __init__ sets them so):
            # its values are the row; else (an attribute added later) one getattr per field
            row = [run_id, *d.values()] if tuple(d) == _FIELDS else [run_id, *GET_PROCESS_FIELDS(p)]
            row[ARGV_IDX + 1] = argv_json(p.argv)
            prow.append(row)
        erow = [(run_id, e.pid, e.start_time_ns, e.t_ns, e.exe, argv_json(e.argv), int(e.argv_truncated), e.cwd)
                for e in execs]
        srow = [[run_id] + [getattr(x, f) for f in SAMPLE_FIELDS] for x in samples]
        vrow = [(run_id, v.kind, v.pid, v.start_time_ns, v.t_ns, json.dumps(v.data)) for v in events]
        hrow = [[run_id] + [getattr(h, f) for f in HOST_SAMPLE_FIELDS] for h in host_samples]
        if not (prow or erow or srow or vrow or hrow):
            return
        with self._tx():
            if srow:
                self.db.executemany(insert_sql("samples", ["run_id", *SAMPLE_FIELDS]), srow)
            if vrow:
                self.db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)", vrow)
            if hrow:
                self.db.executemany(insert_sql("host_samples", ["run_id", *HOST_SAMPLE_FIELDS]), hrow)
            if prow:
                self.db.executemany(insert_sql("processes", ["run_id", *PROCESS_FIELDS], "INSERT OR REPLACE"), prow)
            if erow:
                self.db.executemany("INSERT INTO execs (run_id, pid, start_time_ns, t_ns, exe, argv, argv_truncated, cwd) "
                                    "VALUES (?,?,?,?,?,?,?,?)", erow)

    def put_correlation(self, run_id: str, tasks: list[Task], tools: list[ToolUse],
                        task_of: dict[tuple[int, int], str]) -> None:
        """Replace a run's tasks and tool invocations (correlation can be redone
        with other rules) and point each process at its task."""
        trows = [task_row(t) for t in tasks]
        urows = [tool_row(u) for u in tools]
        with self._tx():
            self.db.execute("DELETE FROM tasks WHERE run_id=?", (run_id,))
            self.db.execute("DELETE FROM tools WHERE run_id=?", (run_id,))
            self.db.execute("DELETE FROM task_aggregates WHERE run_id=?", (run_id,))
            self.db.executemany(_INSERT_TASK, trows)
            self.db.executemany(_INSERT_TOOL, urows)
            self._point_at_tasks(run_id, task_of)

    def _point_at_tasks(self, run_id: str, task_of: dict[tuple[int, int], str]) -> None:
        """UPDATE each process in task_of to its task. When task_of covers exactly the
        processes stored under the run (a correlation of the whole run), the largest
        task is set with one statement and only the others row by row."""
        if not task_of:
            return
        counts: dict[str, int] = {}
        for tid in task_of.values():
            counts[tid] = counts.get(tid, 0) + 1
        top = max(counts, key=counts.__getitem__)
        rest = task_of.items()
        if counts[top] > 64:
            stored = self.db.execute("SELECT pid, start_time_ns FROM processes WHERE run_id=?", (run_id,))
            stored.row_factory = None
            if len(task_of) == len(keys := set(stored)) and keys.issuperset(task_of):
                self.db.execute("UPDATE processes SET task_id=? WHERE run_id=?", (top, run_id))
                rest = [(k, tid) for k, tid in task_of.items() if tid != top]
        self.db.executemany(_POINT_AT_TASK, [(tid, run_id, k[0], k[1]) for k, tid in rest])

    def put_detected_runs(self, parent_run_id: str, runs: list[tuple[Run, list[Task], list[ToolUse]]],
                          task_of: dict[tuple[int, int], str], unattributed: str) -> None:
        """Replace the runs detected in a collection (mode 'detected', pointing at
        it), with their tasks and tools, in one transaction. The processes stay
        stored under the collection: each points at its task (task ids are unique
        within the collection), the others at the `unattributed` marker."""
        trows, urows, rrows = [], [], []
        for r, tasks, tools in runs:
            if r.parent_run_id != parent_run_id:
                raise ValueError(f"run {r.run_id} is not a detected run of {parent_run_id}")
            rrows.append(run_row(r))
            trows += [task_row(t) for t in tasks]
            urows += [tool_row(u) for u in tools]
        old = "(SELECT run_id FROM runs WHERE parent_run_id=?)"
        with self._tx():
            self.db.execute(f"DELETE FROM tasks WHERE run_id IN {old}", (parent_run_id,))
            self.db.execute(f"DELETE FROM tools WHERE run_id IN {old}", (parent_run_id,))
            self.db.execute(f"DELETE FROM task_aggregates WHERE run_id IN {old}", (parent_run_id,))
            self.db.execute("DELETE FROM task_aggregates WHERE run_id=?", (parent_run_id,))
            self.db.execute("DELETE FROM runs WHERE parent_run_id=?", (parent_run_id,))
            self.db.execute("DELETE FROM tasks WHERE run_id=?", (parent_run_id,))
            self.db.execute("DELETE FROM tools WHERE run_id=?", (parent_run_id,))
            self.db.execute("UPDATE processes SET task_id=? WHERE run_id=?", (unattributed, parent_run_id))
            self.db.executemany(_INSERT_RUN, rrows)
            self.db.executemany(_INSERT_TASK, trows)
            self.db.executemany(_INSERT_TOOL, urows)
            self.db.executemany(_POINT_AT_TASK, [(tid, parent_run_id, k[0], k[1]) for k, tid in task_of.items()])

    def put_task_aggregates(self, run_id: str, version: int, rows: dict[str, dict]) -> bool:
        """Replace a run's per-task aggregates (tune's figures per task, computed by
        analysis at correlation; `version` says which computation made them). Keys of
        each row: AGG_COLS; cgroups and size_flags are stored as JSON. False on a
        store too old to hold them."""
        if self._version < 10:
            return False
        vals = [[run_id, tid, version] + [json.dumps(r[c]) if c in AGG_JSON else r[c] for c in AGG_COLS]
                for tid, r in rows.items()]
        with self._tx():
            self.db.execute("DELETE FROM task_aggregates WHERE run_id=?", (run_id,))
            self.db.executemany(insert_sql("task_aggregates", ["run_id", "task_id", "version", *AGG_COLS]), vals)
        return True

    def delete_run(self, run_id: str, unattributed: str = "unattributed", *, own: bool = False) -> dict[str, int]:
        """Remove a run and everything of it, in one transaction: its processes, execs,
        samples, events, host samples, tasks, tools and aggregates; for a host-wide
        collection the runs detected in it too; for a detected run its tasks and tools
        (its processes belong to the collection: they become `unattributed`). Hosts no
        run points at any more go too. Refuses a run that is still running (`own`: the
        caller is that run's collector, giving it up). Returns the rows removed per table."""
        row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}", "list runs with `opensre runs`")
        run = run_from_row(row)
        if run.status == "running" and not own:
            raise RunStillRunning(f"run {run.run_id} is still running (collector pid {run.collector_pid})",
                                  "remove it once it has ended")
        ids = [run.run_id] + ([r[0] for r in self.db.execute("SELECT run_id FROM runs WHERE parent_run_id=?",
                                                              (run.run_id,))] if self._version >= 5 else [])
        marks = ",".join("?" * len(ids))
        n: dict[str, int] = {}
        with self._tx():
            if run.parent_run_id:
                c = self.db.execute("UPDATE processes SET task_id=? WHERE run_id=? AND task_id IN "
                                    "(SELECT task_id FROM tasks WHERE run_id=?)",
                                    (unattributed, run.parent_run_id, run.run_id))
                n["processes_unattributed"] = c.rowcount
            for table in _RUN_TABLES:
                if table == "task_aggregates" and self._version < 10:
                    continue
                n[table] = self.db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids).rowcount
            n["runs"] = self.db.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids).rowcount
            n["hosts"] = self.db.execute("DELETE FROM hosts WHERE host_id NOT IN "
                                         "(SELECT host_id FROM runs WHERE host_id IS NOT NULL)").rowcount
        self.runs_changed()
        remove_snapshot(self.path, run.run_id)
        return n

    def mark_interrupted(self) -> int:
        """Runs left 'running' by a collector that no longer exists (killed, power loss)."""
        n = 0
        for row in self.db.execute("SELECT run_id, collector_pid FROM runs WHERE status='running'").fetchall():
            if not collector_alive(row["collector_pid"]):
                with self._tx():
                    self.db.execute("UPDATE runs SET status='interrupted', process_count="
                                    "(SELECT COUNT(*) FROM processes WHERE run_id=?) WHERE run_id=?",
                                    (row["run_id"], row["run_id"]))
                n += 1
        return n

    def vacuum(self) -> None:
        """Give the space of removed rows back to the file system (rewrites the file)."""
        try:
            self.db.execute("VACUUM")
        except sqlite3.Error as e:
            raise StoreError(f"cannot vacuum store {self.path}: {e}", "free disk space (VACUUM needs a copy's worth)") \
                from None

    def _tx(self) -> Transaction:
        return Transaction(self.db, self.path)


class Transaction:
    """A transaction whose disk errors become StoreError (a full disk must say so)."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db, self.path = db, path

    def __enter__(self):
        self.db.execute("BEGIN")

    def __exit__(self, et, ev, tb):
        if et is None:
            try:
                self.db.commit()
                return False
            except sqlite3.Error as e:
                ev = e
        self.db.rollback()
        if isinstance(ev, sqlite3.Error):
            raise StoreError(f"cannot write to store {self.path}: {ev}",
                             "free disk space or choose another --store; the data is kept in memory until then") from None
        return False
