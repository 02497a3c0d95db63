import os

import pytest

from opensre.errors import StoreError
from opensre.model import Exec, Host, Process, Run
from opensre.store import SCHEMA_VERSION, Store


def mk(tmp_path, **kw):
    s = Store(tmp_path / "s.sqlite")
    s.put_host(Host("h1", "node1"))
    run = Run(run_id="abc123", name="n", mode="run", host_id="h1", command=["x"], start_time_ns=1,
              collector_pid=os.getpid(), **kw)
    s.put_run(run)
    return s, run


def test_roundtrip_and_resolve(tmp_path):
    s, run = mk(tmp_path)
    p = Process(pid=5, start_time_ns=10, ppid=1, argv=["a", "b"], complete=True, cpu_user_ns=3, cpu_system_ns=4)
    s.put_batch(run.run_id, [p], [Exec(5, 10, 11, "/bin/a", ["a", "b"])])
    (q,) = s.processes(run.run_id)
    assert q == p and q.cpu_ns == 7
    assert s.resolve_run("latest").run_id == "abc123"
    assert s.resolve_run("abc").run_id == "abc123"
    assert s.resolve_run("n").run_id == "abc123"
    with pytest.raises(StoreError, match="no run"):
        s.resolve_run("zzz")
    assert s.schema_version() == SCHEMA_VERSION


def test_interrupted_runs_are_marked(tmp_path):
    s, run = mk(tmp_path)
    run.collector_pid = 2**22 + 7  # no such pid
    s.put_run(run)
    assert s.mark_interrupted() == 1
    assert s.resolve_run("latest").status == "interrupted"


def test_readonly_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no store"):
        Store(tmp_path / "missing.sqlite", readonly=True)


def test_not_a_database(tmp_path):
    f = tmp_path / "junk.sqlite"
    f.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        Store(f)


def test_newer_schema_refused(tmp_path):
    s, _ = mk(tmp_path)
    s.db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    s.db.commit()
    with pytest.raises(StoreError, match="newer"):
        Store(s.path)


def test_write_failure_is_store_error(tmp_path):
    s, run = mk(tmp_path)
    s.db.execute("PRAGMA query_only=1")
    with pytest.raises(StoreError, match="cannot write"):
        s.put_batch(run.run_id, [Process(pid=1, start_time_ns=1)])
