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


def test_a_name_comes_before_an_id_prefix(tmp_path):
    s, _ = mk(tmp_path)  # run abc123, named n
    s.put_run(Run(run_id="f00d42", name="a", mode="run", host_id="h1", command=["y"], start_time_ns=2,
                  collector_pid=os.getpid()))
    assert s.resolve_run("a").run_id == "f00d42"   # the run named a, not abc123 by its first letter
    assert s.resolve_run("ab").run_id == "abc123"  # no run is named ab: the prefix
    assert s.resolve_run("f00d42").run_id == "f00d42"


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
    with pytest.raises(StoreError, match="not an OpenSRE store"):
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


def test_probe_variants_are_the_runs_quality_flags(tmp_path):
    probes = {"lifecycle": "tp_btf/sched_process_{fork,exec,exit,free}", "sched": "off",
              "net": "inet_sock_set_state (without per-process bytes (no sock_*_length tracepoints))",
              "oom": "unavailable: no hook", "samples": "iter/task"}
    s, run = mk(tmp_path, probes=probes)
    back = s.resolve_run("latest")
    assert back.probes == probes
    assert set(back.degraded_probes()) == {"net", "oom"}  # "off" is the user's choice, not a gap


def test_run_summary_names_what_the_kernel_could_not_give(tmp_path):
    from opensre.report import run_summary

    s, run = mk(tmp_path, probes={"oom": "unavailable: this kernel has none of its hooks", "sched": "off"})
    text = run_summary(s.resolve_run("latest"), [])
    assert "  probes     oom: unavailable: this kernel has none of its hooks" in text
    assert "sched" not in text
