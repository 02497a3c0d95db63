"""The embedded store: SQLite in WAL mode (crash safe, readable while the collector
writes). The only module with SQL in it."""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote
from typing import Iterable, Iterator

from ..errors import RunStillRunning, StoreError
from ..model import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Host, Process, Run, Sample, Task, ToolUse
from .schema import MIGRATIONS, SCHEMA_VERSION

_TASK_FIELDS = [f.name for f in dataclasses.fields(Task)]
_AGG_COLS = ["end_ns", "sleep_ns", "major_faults", "max_threads", "cgroups", "size_flags", "target_rule",
             "peak_cores", "longest_stall_ns"]
_AGG_JSON = ("cgroups", "size_flags")
_TASK_FACT_TASK = ["task_id", "task_name", "engine", "start_time_ns", "end_time_ns", "cpu_ns", "peak_rss_bytes",
                   "memory_peak_bytes", "read_bytes", "write_bytes", "runq_wait_ns", "blocked_io_ns", "exit_code",
                   "exit_signal", "oom_killed", "tools"]
TASK_FACT_COLUMNS = _TASK_FACT_TASK + _AGG_COLS
_RUN_COLS = ["run_id", "name", "mode", "host_id", "command", "start_time_ns", "end_time_ns", "status",
             "exit_code", "exit_signal", "root_pid", "collector_pid", "drops", "drop_detail", "process_count",
             "parent_run_id", "sample_interval_s", "probes"]
_JSON_RUN_COLS = ("command", "drop_detail", "probes")
_BOOL_FIELDS = {"argv_truncated", "argv_redacted", "core_dumped", "complete", "io_inclusive", "oom_killed"}
# PRAGMA application_id of every store ("OSRE"): a file without it that holds other
# tables is someone else's database, never written to
APPLICATION_ID = 0x4F535245
_SQLITE_MAGIC = b"SQLite format 3\0"
# a store up to this size is checked (PRAGMA quick_check) before a collector writes
# to it; a bigger one is checked by SQLite page by page as it is used
QUICK_CHECK_MAX_BYTES = 256 << 20
HOST_SAMPLE_FIELDS = ["t_ns", "cpu_util", "cpu_count", "mem_total_bytes", "mem_used_bytes", "psi_cpu_some_us",
                      "psi_memory_some_us", "psi_memory_full_us", "psi_io_some_us", "psi_io_full_us"]


def default_store_path() -> Path:
    """$OPENSRE_STORE, else a per-user, per-host file. Under sudo it belongs to the
    invoking user, so `opensre runs` works without root afterwards."""
    env = os.environ.get("OPENSRE_STORE")
    if env:
        return Path(env)
    home = Path.home()
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and os.geteuid() == 0:
        import pwd

        try:
            home = Path(pwd.getpwnam(sudo_user).pw_dir)
        except KeyError:
            pass
    xdg = None if sudo_user else os.environ.get("XDG_DATA_HOME")  # root's XDG is not the user's
    base = Path(xdg) if xdg else home / ".local" / "share"
    return base / "opensre" / f"{os.uname().nodename}.sqlite"


class Store:
    def __init__(self, path: str | Path | None = None, *, readonly: bool = False):
        self.path = Path(path) if path else default_store_path()
        self.readonly = readonly
        app_id = _check_file(self.path, readonly)
        try:
            if readonly:
                # a URI: the path escaped (`?`, `#`, `%` are URI syntax); a store on a
                # read-only mount is immutable (WAL's -shm cannot be created there)
                ro = "mode=ro&immutable=1" if _read_only_fs(self.path) else "mode=ro"
                self.db = sqlite3.connect(f"file:{quote(str(self.path.absolute()))}?{ro}", uri=True, timeout=10)
                _check_ours(self.db, self.path, app_id, readonly=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=10)
                new = _check_ours(self.db, self.path, app_id, readonly=False)
                if not new and self.path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                    bad = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
                    if bad != "ok":
                        raise sqlite3.DatabaseError(" ".join(bad.split()))
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
                _give_to_sudo_user(self.path)
            self.db.row_factory = sqlite3.Row
            self._version = self.schema_version()
        except sqlite3.OperationalError as e:  # not the file's fault: permissions, a read-only mount, locks
            ro = " (a read-only file system)" if not readonly and _read_only_fs(self.path.parent) else ""
            raise StoreError(f"cannot open store {self.path}{' for writing' if not readonly else ''}: {e}{ro}",
                             "choose another --store, or read it with `opensre runs/show/tune --store`") from None
        except sqlite3.DatabaseError as e:
            raise damaged(self.path, e) from None
        except OSError as e:
            raise StoreError(f"cannot open store {self.path}: {e.strerror or e}",
                             "check the path and its directory's permissions") from None
        self._tcols: str | None = None
        self._tfcols: str | None = None
        self._parents: dict[str, str | None] = {}
        # a read-only older store lacks later columns: they read as NULL
        have = {r[1] for r in self.db.execute("PRAGMA table_info(processes)")}
        self._pcols = ",".join(f"p.{f}" if f in have else "NULL" for f in PROCESS_FIELDS)
        if readonly:
            v = self._version
            if v > SCHEMA_VERSION:
                raise StoreError(f"store {self.path} has schema v{v}, newer than this opensre (v{SCHEMA_VERSION})",
                                 "upgrade opensre")

    # -- schema -----------------------------------------------------------------
    def schema_version(self) -> int:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        v = self.schema_version()
        if v > SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema v{v}, newer than this opensre", "upgrade opensre")
        if v == SCHEMA_VERSION:
            return
        # one transaction for all steps: all or nothing, and each page written to the
        # WAL once (a new store must fit on a nearly full disk too)
        steps = "".join(MIGRATIONS[step] for step in range(v + 1, SCHEMA_VERSION + 1))
        try:
            self.db.executescript(f"BEGIN;\n{steps}\nINSERT OR REPLACE INTO meta VALUES ('schema_version', "
                                  f"'{SCHEMA_VERSION}');\nPRAGMA application_id={APPLICATION_ID};\nCOMMIT;")
        except sqlite3.Error:
            if self.db.in_transaction:
                self.db.rollback()
            raise

    # -- writes -----------------------------------------------------------------
    def put_host(self, h: Host) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO hosts (host_id, hostname, machine_id, boot_id, kernel, cpus, "
                            "mem_bytes, arch) VALUES (?,?,?,?,?,?,?,?)",
                            (h.host_id, h.hostname, h.machine_id, h.boot_id, h.kernel, h.cpus, h.mem_bytes, h.arch))

    def put_run(self, r: Run) -> None:
        row = _run_row(r)
        with self._tx():
            self.db.execute(f"INSERT OR REPLACE INTO runs ({','.join(_RUN_COLS)}) VALUES ({','.join('?' * len(_RUN_COLS))})", row)

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
            row = [run_id, *d.values()] if tuple(d) == _FIELDS else [run_id, *_GET_ALL(p)]
            row[_ARGV_IDX + 1] = argv_json(p.argv)
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
                self.db.executemany(f"INSERT INTO samples (run_id,{','.join(SAMPLE_FIELDS)}) "
                                    f"VALUES ({','.join('?' * (len(SAMPLE_FIELDS) + 1))})", srow)
            if vrow:
                self.db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)", vrow)
            if hrow:
                self.db.executemany(f"INSERT INTO host_samples (run_id,{','.join(HOST_SAMPLE_FIELDS)}) "
                                    f"VALUES ({','.join('?' * (len(HOST_SAMPLE_FIELDS) + 1))})", hrow)
            if prow:
                self.db.executemany(
                    f"INSERT OR REPLACE INTO processes (run_id,{','.join(PROCESS_FIELDS)}) "
                    f"VALUES ({','.join('?' * (len(PROCESS_FIELDS) + 1))})", prow)
            if erow:
                self.db.executemany("INSERT INTO execs (run_id, pid, start_time_ns, t_ns, exe, argv, argv_truncated, cwd) "
                                    "VALUES (?,?,?,?,?,?,?,?)", erow)

    def put_correlation(self, run_id: str, tasks: list[Task], tools: list[ToolUse],
                        task_of: dict[tuple[int, int], str]) -> None:
        """Replace a run's tasks and tool invocations (correlation can be redone
        with other rules) and point each process at its task."""
        tf = [f.name for f in dataclasses.fields(Task)]
        uf = [f.name for f in dataclasses.fields(ToolUse)]
        tget, uget = operator.attrgetter(*tf), operator.attrgetter(*uf)  # astuple() deep-copies: 10x slower
        ti = tf.index("tools")
        trows = []
        for t in tasks:
            row = list(tget(t))
            row[ti] = json.dumps(row[ti])
            trows.append(row)
        urows = [uget(u) for u in tools]
        with self._tx():
            self.db.execute("DELETE FROM tasks WHERE run_id=?", (run_id,))
            self.db.execute("DELETE FROM tools WHERE run_id=?", (run_id,))
            self.db.execute("DELETE FROM task_aggregates WHERE run_id=?", (run_id,))
            self.db.executemany(f"INSERT INTO tasks ({','.join(tf)}) VALUES ({','.join('?' * len(tf))})", trows)
            self.db.executemany(f"INSERT INTO tools ({','.join(uf)}) VALUES ({','.join('?' * len(uf))})", urows)
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
        self.db.executemany("UPDATE processes SET task_id=? WHERE run_id=? AND pid=? AND start_time_ns=?",
                            [(tid, run_id, k[0], k[1]) for k, tid in rest])

    def put_detected_runs(self, parent_run_id: str, runs: list[tuple[Run, list[Task], list[ToolUse]]],
                          task_of: dict[tuple[int, int], str], unattributed: str) -> None:
        """Replace the runs detected in a collection (mode 'detected', pointing at
        it), with their tasks and tools, in one transaction. The processes stay
        stored under the collection: each points at its task (task ids are unique
        within the collection), the others at the `unattributed` marker."""
        tf = [f.name for f in dataclasses.fields(Task)]
        uf = [f.name for f in dataclasses.fields(ToolUse)]
        tget, uget = operator.attrgetter(*tf), operator.attrgetter(*uf)
        ti = tf.index("tools")
        trows, urows, rrows = [], [], []
        for r, tasks, tools in runs:
            if r.parent_run_id != parent_run_id:
                raise ValueError(f"run {r.run_id} is not a detected run of {parent_run_id}")
            rrows.append(_run_row(r))
            for t in tasks:
                row = list(tget(t))
                row[ti] = json.dumps(row[ti])
                trows.append(row)
            urows += [uget(u) for u in tools]
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
            self.db.executemany(f"INSERT OR REPLACE INTO runs ({','.join(_RUN_COLS)}) "
                                f"VALUES ({','.join('?' * len(_RUN_COLS))})", rrows)
            self.db.executemany(f"INSERT INTO tasks ({','.join(tf)}) VALUES ({','.join('?' * len(tf))})", trows)
            self.db.executemany(f"INSERT INTO tools ({','.join(uf)}) VALUES ({','.join('?' * len(uf))})", urows)
            self.db.executemany("UPDATE processes SET task_id=? WHERE run_id=? AND pid=? AND start_time_ns=?",
                                [(tid, parent_run_id, k[0], k[1]) for k, tid in task_of.items()])

    # tables holding a run's records, keyed by run_id (task_aggregates has no REFERENCES)
    _RUN_TABLES = ("execs", "samples", "events", "host_samples", "tools", "task_aggregates", "tasks", "processes")

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
        run = _run(row)
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
            for table in self._RUN_TABLES:
                if table == "task_aggregates" and self._version < 10:
                    continue
                n[table] = self.db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids).rowcount
            n["runs"] = self.db.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids).rowcount
            n["hosts"] = self.db.execute("DELETE FROM hosts WHERE host_id NOT IN "
                                         "(SELECT host_id FROM runs WHERE host_id IS NOT NULL)").rowcount
        self._parents.clear()
        from .live import live_dir

        try:
            (live_dir(self.path) / f"{run.run_id}.json").unlink()
        except OSError:
            pass
        return n

    def runs_older_than(self, t_ns: int) -> list[Run]:
        """Runs of their own (not detected in a collection: those go with it) started
        before `t_ns`, oldest first."""
        where = " AND parent_run_id IS NULL" if self._version >= 5 else ""
        return [_run(r) for r in self.db.execute(
            f"SELECT * FROM runs WHERE start_time_ns < ?{where} ORDER BY start_time_ns", (t_ns,))]

    def vacuum(self) -> None:
        """Give the space of removed rows back to the file system (rewrites the file)."""
        try:
            self.db.execute("VACUUM")
        except sqlite3.Error as e:
            raise StoreError(f"cannot vacuum store {self.path}: {e}", "free disk space (VACUUM needs a copy's worth)") \
                from None

    def _task_cols(self) -> str:
        if self._tcols is None:
            have = {r[1] for r in self.db.execute("PRAGMA table_info(tasks)")}  # an older read-only store
            self._tcols = ",".join(f if f in have else "NULL" for f in _TASK_FIELDS)
        return self._tcols

    def tasks(self, run_id: str) -> list[Task]:
        out = []
        cur = self.db.execute(f"SELECT {self._task_cols()} FROM tasks WHERE run_id=? ORDER BY start_time_ns, task_id",
                              (run_id,))
        cur.row_factory = None  # plain tuples, in _TASK_FIELDS order
        for r in cur:
            t = Task(*r)
            t.tools = list(_json(t.tools))  # a pipeline's tasks repeat the same lists: decoded once each
            t.oom_killed = bool(t.oom_killed)
            out.append(t)
        return out

    def tools(self, run_id: str) -> list[ToolUse]:
        uf = [f.name for f in dataclasses.fields(ToolUse)]
        return [ToolUse(*r) for r in self.db.execute(
            f"SELECT {','.join(uf)} FROM tools WHERE run_id=? ORDER BY task_id, start_time_ns", (run_id,))]

    def task_ids(self, run_id: str) -> dict[tuple[int, int], str]:
        where, args = self._members(run_id)
        return {(r[0], r[1]): r[2] for r in self.db.execute(
            f"SELECT pid, start_time_ns, task_id FROM processes p WHERE {where} AND task_id IS NOT NULL", args)}

    def mark_interrupted(self) -> int:
        """Runs left 'running' by a collector that no longer exists (killed, power loss)."""
        n = 0
        for row in self.db.execute("SELECT run_id, collector_pid FROM runs WHERE status='running'").fetchall():
            if not _alive(row["collector_pid"]):
                with self._tx():
                    self.db.execute("UPDATE runs SET status='interrupted', process_count="
                                    "(SELECT COUNT(*) FROM processes WHERE run_id=?) WHERE run_id=?",
                                    (row["run_id"], row["run_id"]))
                n += 1
        return n

    def _tx(self):
        return _Tx(self)

    # -- reads ------------------------------------------------------------------
    def runs(self, limit: int | None = None, *, detected: bool = True) -> list[Run]:
        """Latest first. detected=False: only runs of their own (`run`, `collect`),
        not those detected inside a collection."""
        where = " WHERE parent_run_id IS NULL" if not detected and self._version >= 5 else ""
        q = f"SELECT * FROM runs{where} ORDER BY start_time_ns DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [self._counted(_run(r)) for r in self.db.execute(q)]

    def _counted(self, r: Run) -> Run:
        """A run cut short (its collector killed) never wrote its process count: the
        processes it did store are counted."""
        if r.status == "interrupted" and not r.process_count and r.mode != "detected":
            r.process_count = self.db.execute("SELECT COUNT(*) FROM processes WHERE run_id=?",
                                              (r.run_id,)).fetchone()[0]
        return r

    def detected_runs(self, parent_run_id: str) -> list[Run]:
        """The runs detected in a host-wide collection, by start time."""
        if self._version < 5:
            return []
        return [_run(r) for r in self.db.execute(
            "SELECT * FROM runs WHERE parent_run_id=? ORDER BY start_time_ns, root_pid, run_id", (parent_run_id,))]

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

    def resolve_run(self, ref: str) -> Run:
        """A run by id, unique id prefix, name (latest of that name), or 'latest'."""
        if ref == "latest":  # the latest run of its own, not one detected inside a collection
            where = " WHERE parent_run_id IS NULL" if self._version >= 5 else ""
            row = self.db.execute(f"SELECT * FROM runs{where} ORDER BY start_time_ns DESC LIMIT 1").fetchone()
        else:
            row = self.db.execute("SELECT * FROM runs WHERE run_id=?", (ref,)).fetchone()
            if row is None:
                # a prefix, compared as text (LIKE would take % and _ as wildcards)
                rows = self.db.execute("SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? LIMIT 2",
                                       (len(ref), ref)).fetchall() if ref else []
                if len(rows) == 1:
                    row = rows[0]
                elif len(rows) > 1:
                    raise StoreError(f"run id prefix {ref!r} is ambiguous", "give more characters")
            if row is None:
                row = self.db.execute("SELECT * FROM runs WHERE name=? ORDER BY start_time_ns DESC LIMIT 1",
                                      (ref,)).fetchone()
        if row is None:
            raise StoreError(f"no run {ref!r} in {self.path}", "list runs with `opensre runs`")
        return self._counted(_run(row))

    # A detected run's records are those of its collection's processes in its tasks.
    def processes(self, run_id: str) -> Iterator[Process]:
        where, args = self._members(run_id)
        cur = self.db.execute(f"SELECT {self._pcols} FROM processes p WHERE {where} "
                              "ORDER BY p.start_time_ns, p.pid", args)
        for row in cur:
            yield _process(row)

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

    # -- aggregates for analysis (tune): one pass of SQL per run, not per task --------
    def task_process_stats(self, run_id: str) -> dict[str, dict]:
        """Per task: figures tasks don't carry (sleep, major faults, most threads,
        cgroups and their limits), summed/maxed over its processes."""
        where, args = self._members(run_id)
        have_limits = self._version >= 6
        lim = "p.cpu_limit_cores, p.cpuset_cpus, p.memory_limit_bytes" if have_limits else "NULL, NULL, NULL"
        out: dict[str, dict] = {}
        for r in self.db.execute(
                f"SELECT p.task_id, p.cgroup_path, {lim}, SUM(p.sleep_ns), SUM(p.major_faults), MAX(p.threads), "
                f"SUM(p.oncpu_ns) FROM processes p WHERE {where} AND p.task_id IS NOT NULL "
                "GROUP BY p.task_id, p.cgroup_path", args):
            d = out.setdefault(r[0], {"sleep_ns": 0, "major_faults": 0, "max_threads": 0, "cgroups": []})
            d["sleep_ns"] += r[5] or 0
            d["major_faults"] += r[6] or 0
            d["max_threads"] = max(d["max_threads"], r[7] or 0)
            d["cgroups"].append({"path": r[1], "cpu_limit_cores": r[2], "cpuset_cpus": r[3],
                                 "memory_limit_bytes": r[4]})
        return out

    def put_task_aggregates(self, run_id: str, version: int, rows: dict[str, dict]) -> bool:
        """Replace a run's per-task aggregates (tune's figures per task, computed by
        analysis at correlation; `version` says which computation made them). Keys of
        each row: _AGG_COLS; cgroups and size_flags are stored as JSON. False on a
        store too old to hold them."""
        if self._version < 10:
            return False
        vals = [[run_id, tid, version] + [json.dumps(r[c]) if c in _AGG_JSON else r[c] for c in _AGG_COLS]
                for tid, r in rows.items()]
        with self._tx():
            self.db.execute("DELETE FROM task_aggregates WHERE run_id=?", (run_id,))
            self.db.executemany(f"INSERT INTO task_aggregates (run_id, task_id, version, {','.join(_AGG_COLS)}) "
                                f"VALUES ({','.join('?' * (len(_AGG_COLS) + 3))})", vals)
        return True

    def task_aggregates(self, run_id: str, version: int) -> dict[str, dict]:
        """task_id -> the aggregates stored for it by that `version` of the computation
        (none on an older store, for a run correlated before them, or by another
        version). The decoded cgroups and size_flags are shared between rows with the
        same text: read them, do not change them."""
        if self._version < 10:
            return {}
        out = {}
        cur = self.db.execute(f"SELECT task_id, {','.join(_AGG_COLS)} FROM task_aggregates "
                              "WHERE run_id=? AND version=?", (run_id, version))
        cur.row_factory = None
        for tid, end, sleep, majf, thr, cg, fl, rule, peak, stall in cur:
            out[tid] = {"end_ns": end, "sleep_ns": sleep, "major_faults": majf, "max_threads": thr,
                        "cgroups": _json(cg), "size_flags": _json(fl), "target_rule": rule, "peak_cores": peak,
                        "longest_stall_ns": stall}
        return out

    def task_fact_rows(self, run_id: str, version: int) -> list[tuple]:
        """What tune reads per task (kind "task"), in start order, one tuple each in
        TASK_FACT_COLUMNS order: the task's row, then its aggregates of that `version`
        (NULLs where none are kept). tools, cgroups and size_flags are their stored
        JSON text: a pipeline's tasks repeat the same few, which the reader decodes
        once each. One query, no per-row work here: --pipeline reads 100,000 of them."""
        if self._tfcols is None:
            have = set(self._task_cols().split(","))  # an older read-only store lacks later columns
            self._tfcols = ",".join(f"t.{c}" if c in have else "NULL" for c in _TASK_FACT_TASK)
        if self._version >= 10:
            sql = (f"SELECT {self._tfcols}, {','.join('a.' + c for c in _AGG_COLS)} FROM tasks t "
                   "LEFT JOIN task_aggregates a ON a.run_id=t.run_id AND a.task_id=t.task_id AND a.version=? "
                   "WHERE t.run_id=? AND t.kind='task' ORDER BY t.start_time_ns, t.task_id")
            args: tuple = (version, run_id)
        else:
            sql = (f"SELECT {self._tfcols}, {','.join('NULL' for _ in _AGG_COLS)} FROM tasks t "
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

    def process_cgroup(self, run_id: str, pid: int, not_before_ns: int = 0) -> str | None:
        """The cgroup of a run's process with that pid (its root), the first one started."""
        r = self.db.execute("SELECT cgroup_path FROM processes WHERE run_id=? AND pid=? AND start_time_ns >= ? "
                            "ORDER BY start_time_ns LIMIT 1", (self._parent(run_id) or run_id, pid,
                                                                not_before_ns - 10**9)).fetchone()
        return r[0] if r else None

    def runs_named(self, name: str) -> list[Run]:
        """Every run of that name (a pipeline's runs), oldest first."""
        return [_run(r) for r in self.db.execute("SELECT * FROM runs WHERE name=? ORDER BY start_time_ns", (name,))]

    def host(self, host_id: str) -> Host | None:
        r = self.db.execute("SELECT * FROM hosts WHERE host_id=?", (host_id,)).fetchone()
        if r is None:
            return None
        d = dict(r)
        d["arch"] = d.get("arch") or ""  # an older store has no architecture
        return Host(**d)

    def close(self) -> None:
        self.db.close()


def damaged(path: Path, e: Exception) -> StoreError:
    """The one-line error for a store SQLite cannot read (truncated, bytes flipped)."""
    return StoreError(f"store {path} is damaged ({e})",
                      f"recover what can be read: sqlite3 '{path}' .recover | sqlite3 recovered.sqlite")


def _not_ours(path: Path, why: str) -> StoreError:
    return StoreError(f"{path} is not an OpenSRE store ({why})", "pass --store with an OpenSRE store, or a new file")


def _check_file(path: Path, readonly: bool) -> int | None:
    """Before SQLite opens it: the store's application_id (None: no file yet, or an
    empty one a writer may initialise). Refuses what is not an SQLite database."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if readonly:
            raise StoreError(f"no store at {path}", "run `opensre run -- CMD` first, or pass --store") from None
        return None
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror or e}", "check the path") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_ours(path, "not a regular file")
    if st.st_size == 0:
        if readonly:
            raise _not_ours(path, "an empty file")
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror or e}", "check the file's permissions") from None
    if not head.startswith(_SQLITE_MAGIC):
        raise _not_ours(path, "not an SQLite database")
    if len(head) < 100:
        raise damaged(path, "truncated")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise _not_ours(path, f"an SQLite database of another application, id {app_id:#x}")
    return app_id


def _check_ours(db: sqlite3.Connection, path: Path, app_id: int | None, readonly: bool) -> bool:
    """Refuses an SQLite database that is not a store (someone else's tables, no
    schema version of ours). True: a new, empty database for a writer to set up.
    Stores made before the application_id was set are recognised by their meta row."""
    if app_id == APPLICATION_ID:
        return False
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        if readonly:
            raise _not_ours(path, "an empty database")
        return True
    version = None
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row else None
    if version is None or not {"runs", "processes"} <= tables:
        raise _not_ours(path, "someone else's SQLite database")
    if not readonly:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")  # an older store of ours: mark it
    return False


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class _Tx:
    """A transaction whose disk errors become StoreError (a full disk must say so)."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self):
        self.store.db.execute("BEGIN")

    def __exit__(self, et, ev, tb):
        db = self.store.db
        if et is None:
            try:
                db.commit()
                return False
            except sqlite3.Error as e:
                ev = e
        db.rollback()
        if isinstance(ev, sqlite3.Error):
            raise StoreError(f"cannot write to store {self.store.path}: {ev}",
                             "free disk space or choose another --store; the data is kept in memory until then") from None
        return False


@functools.lru_cache(maxsize=1 << 14)
def _json(text: str | None):
    """Decoded JSON, once per distinct text (a pipeline's runs repeat the same cgroups and flags)."""
    return json.loads(text) if text else []


_ARGV_IDX = PROCESS_FIELDS.index("argv")
_GET_ALL = operator.attrgetter(*PROCESS_FIELDS)
_FIELDS = tuple(PROCESS_FIELDS)


def _process_row(run_id: str, p: Process) -> list:
    """The SQL row of a process (the collector writes thousands per second: one
    attrgetter call, argv as JSON; sqlite stores Python bools as 0/1)."""
    row = [run_id, *_GET_ALL(p)]
    row[_ARGV_IDX + 1] = json.dumps(p.argv)
    return row


def _process(row) -> Process:
    d = dict(zip(PROCESS_FIELDS, row))
    d["argv"] = json.loads(d["argv"]) if d["argv"] else []
    for f in _BOOL_FIELDS:
        d[f] = bool(d[f])
    return Process(**d)


def _run_row(r: Run) -> list:
    return [json.dumps(getattr(r, c)) if c in _JSON_RUN_COLS else getattr(r, c) for c in _RUN_COLS]


def _run(row) -> Run:
    d = dict(row)
    if d["status"] == "running" and not _alive(d["collector_pid"]):
        d["status"] = "interrupted"  # its collector was killed; readers see it as such
    d["command"] = json.loads(d["command"]) if d["command"] else []
    d["drop_detail"] = json.loads(d["drop_detail"]) if d["drop_detail"] else {}
    d["probes"] = json.loads(d["probes"]) if d.get("probes") else {}  # a read-only older store lacks it
    return Run(**d)


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a live pid may be a different program now; good enough with the status check
    return True


def give_to_invoking_user(*paths: str | Path) -> None:
    """Under sudo, files written for the user belong to the user (so `opensre runs`,
    `top` and reports work without root afterwards)."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid:
        return
    for p in paths:
        try:
            if os.path.exists(p):  # never through a symlink swapped in meanwhile
                os.chown(p, int(uid), int(gid or uid), follow_symlinks=False)
        except OSError:
            pass


def _give_to_sudo_user(path: Path) -> None:
    give_to_invoking_user(path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm"))
