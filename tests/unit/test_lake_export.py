"""The Parquet lake exporter on synthetic stores (no root): what DuckDB reads back is
the store (row counts, CPU sums, every JSON Lines record, column for column), a
re-export replaces and never duplicates, writes are whole and never through a link,
docs/lake.md's DDL names the exporter's columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pyarrow.parquet as pq
import pytest

from conftest import lake_expected_counts
from opensre.cli.main import main
from opensre.correlate import correlate_collection, correlate_run
from opensre.errors import OutputError, UsageError
from opensre.export.lake import COLUMNS, PARTITIONS, SCHEMA_VERSION, TABLES, export_lake, open_dest, select_runs
from opensre.export.lake.schema import JSONL_KIND
from opensre.model import Event, Exec, Host, Process, Run, Sample
from opensre.store import Store

ROOT = Path(__file__).resolve().parents[2]
S = 1_000_000_000
T0 = 1_700_000_000 * S  # 2023-11-14 UTC


def P(pid, ppid, t, argv, **kw) -> Process:
    kw.setdefault("end_time_ns", T0 + (t + 30) * S)
    kw.setdefault("complete", True)
    return Process(pid=pid, start_time_ns=T0 + t * S, ppid=ppid, argv=list(argv), comm=os.path.basename(argv[0])[:15],
                   exe="/usr/bin/" + os.path.basename(argv[0]), exec_count=1,
                   cpu_user_ns=pid * 1000, cpu_system_ns=pid * 10, peak_rss_bytes=pid << 12, **kw)


def make_store(path: Path) -> Store:
    """A run of its own with every kind of record (OOM kill and TCP connection
    events, host samples, one process without samples of its own: it gets one at its
    exit), and a host-wide collection with a run detected in it."""
    s = Store(path)
    s.put_host(Host("h1", "node1", machine_id="m" * 32, boot_id="b", kernel="6.1.0", cpus=8, mem_bytes=16 << 30,
                    arch="x86_64"))
    run = Run(run_id="aaaa00000001", name="pipe", mode="run", host_id="h1", command=["make", "-j2"],
              start_time_ns=T0, end_time_ns=T0 + 100 * S, status="finished", exit_code=0, root_pid=10,
              drops=3, drop_detail={"ringbuf_full": 3}, sample_interval_s=1.0, probes={"sched": "tp_btf", "net": "off"})
    procs = [P(10, 1, 0, ["make", "-j2"]), P(11, 10, 1, ["/bin/sh", "-c", "gzip -k a"]), P(12, 11, 1, ["gzip", "-k", "a"]),
             P(13, 10, 2, ["/bin/sh", "-c", "sort b"]), P(14, 13, 2, ["sort", "b"], oom_killed=True, exit_signal=9),
             P(15, 10, 3, ["curl", "http://h"], end_time_ns=None, complete=False)]
    run.process_count = len(procs)
    execs = [Exec(p.pid, p.start_time_ns, p.start_time_ns + 1000, p.exe, p.argv) for p in procs]
    samples = [Sample(12, T0 + S, T0 + k * S, 100, 4096 * k, 1, 2, 0, 0, 5, 6, 7) for k in (2, 3, 4)]
    events = [Event("oom_kill", 14, T0 + 2 * S, T0 + 20 * S, {"comm": "sort", "rss_bytes": 1 << 30,
                                                               "memcg_limit_bytes": None, "memcg_usage_bytes": None,
                                                               "memcg_id": 7, "memcg_path": "/a"}),
              Event("tcp_connection", 15, T0 + 3 * S, T0 + 4 * S, {
                  "family": "ipv4", "local_addr": "127.0.0.1", "local_port": 4000, "remote_addr": "10.0.0.1",
                  "remote_port": 443, "direction": "outbound", "open_time_ns": T0 + 4 * S, "close_time_ns": None,
                  "duration_ns": None, "bytes_sent": None, "bytes_received": None})]
    hs = [SimpleNamespace(t_ns=T0 + k * S, cpu_util=0.25 * k, cpu_count=8, mem_total_bytes=16 << 30,
                          mem_used_bytes=k << 30, psi_cpu_some_us=k, psi_memory_some_us=None, psi_memory_full_us=None,
                          psi_io_some_us=k, psi_io_full_us=0) for k in (1, 2, 3)]
    s.put_run(run)
    s.put_batch(run.run_id, procs, execs, samples, events, hs)
    correlate_run(s, run.run_id)
    coll = Run(run_id="cccc00000001", name="collect@node1", mode="collect", host_id="h1", start_time_ns=T0 + 200 * S,
               end_time_ns=T0 + 300 * S, status="finished", collector_pid=os.getpid(), root_pid=801)
    cprocs = [P(1, 0, 200, ["/sbin/init"]), P(800, 1, 201, ["make", "test"]),
              P(801, 800, 201, ["/usr/bin/python3", "-m", "pytest"]), P(802, 801, 202, ["make", "-C", "a", "-j2"]),
              P(803, 802, 203, ["/bin/sh", "-c", "gzip -k f"]), P(804, 803, 203, ["gzip", "-k", "f"]),
              P(810, 801, 202, ["xargs", "-a", "list", "-P2", "-n1", "gzip"]), P(811, 810, 203, ["gzip", "f2"]),
              P(812, 810, 203, ["gzip", "f3"])]
    coll.process_count = len(cprocs)
    s.put_run(coll)
    s.put_batch(coll.run_id, cprocs)
    assert correlate_collection(s, coll.run_id)
    return s


@pytest.fixture
def store(tmp_path) -> Store:
    s = make_store(tmp_path / "s.sqlite")
    yield s
    s.close()


def lake_sql(root: Path, table: str, what: str = "count(*)"):
    return duckdb.sql(f"SELECT {what} FROM read_parquet('{root}/{table}/**/*.parquet', hive_partitioning=true)"
                      ).fetchall()


def test_lake_holds_exactly_the_store(store, tmp_path):
    lake = tmp_path / "lake"
    done = export_lake(store, select_runs(store, since_s=1e12), open_dest(str(lake)))
    want = lake_expected_counts(store)
    assert want["samples"] > store.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]  # some made at exit
    assert all(want[t] for t in TABLES)
    assert done.rows == want and len(done.runs) == 2
    for t in TABLES:
        assert lake_sql(lake, t) == [(want[t],)], t
        # every row says its run, host and schema version; the path gives host and dt
        assert lake_sql(lake, t, "count(*) FILTER (run_id IS NULL OR host_id <> 'h1' OR host <> 'h1' "
                                 f"OR schema_version <> {SCHEMA_VERSION} OR dt IS NULL)") == [(0,)], t
    cpu = store.db.execute("SELECT SUM(cpu_user_ns + cpu_system_ns), (SELECT SUM(cpu_ns) FROM tasks) "
                           "FROM processes").fetchone()
    assert lake_sql(lake, "processes", "sum(cpu_user_ns + cpu_system_ns)") == [(cpu[0],)]
    assert lake_sql(lake, "tasks", "sum(cpu_ns)") == [(cpu[1],)]
    assert lake_sql(lake, "runs", "list(dt ORDER BY start_time_ns)")[0][0][0].isoformat() == "2023-11-14"
    # the detected runs' rows are in their collection's files, as their processes are
    files = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*"))
    assert "runs/dt=2023-11-14/host=h1/run-cccc00000001.parquet" in files
    assert not any("/." in f for f in files)  # no temp file left
    assert {r[0] for r in lake_sql(lake, "tasks", "DISTINCT run_id")} == {
        r.run_id for r in store.runs() if r.mode != "collect"}


def test_reexport_replaces_never_duplicates(store, tmp_path):
    lake = tmp_path / "lake"
    export_lake(store, select_runs(store, since_s=1e12), open_dest(str(lake)))
    files = sorted(lake.rglob("*"))
    export_lake(store, select_runs(store, since_s=1e12), open_dest(str(lake)))
    export_lake(store, select_runs(store, "latest"), open_dest(str(lake)))
    # a detected run names its collection: the same files again
    export_lake(store, select_runs(store, store.detected_runs("cccc00000001")[0].run_id), open_dest(str(lake)))
    assert sorted(lake.rglob("*")) == files
    want = lake_expected_counts(store)
    for t in TABLES:
        assert lake_sql(lake, t) == [(want[t],)], t
    # rows gone from the store since: the old file is replaced by an empty one, not kept
    store.db.execute("DELETE FROM events")
    store.db.commit()
    export_lake(store, select_runs(store, "pipe"), open_dest(str(lake)))
    assert lake_sql(lake, "events") == [(0,)]


def test_columns_and_values_are_the_jsonl_export(store, tmp_path, capsys):
    """Every JSON Lines kind: the same records, key for key and value for value."""
    lake = tmp_path / "lake"
    export_lake(store, select_runs(store, "pipe"), open_dest(str(lake)))
    for table in TABLES:
        if table in ("runs", "hosts"):
            continue
        kind = JSONL_KIND.get(table, table)
        assert main(["export", "--store", str(store.path), "--run", "pipe", "--what", kind]) == 0
        want = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        got = [{k: v for k, v in r.items() if k not in ("host_id", "schema_version")}
               for f in sorted(lake.glob(f"{table}/**/*.parquet")) for r in pq.read_table(f).to_pylist()]
        assert want and len(got) == len(want), table
        if table == "events":  # one record per kind: the other kind's columns are null
            got = [{k: v for k, v in g.items() if k in w} for g, w in zip(got, want)]
        assert got == want, table
        assert [n for n in pq.read_schema(next(lake.glob(f"{table}/**/*.parquet"))).names
                if n not in ("host_id", "schema_version")] == [n for n, _ in COLUMNS[table]
                                                               if n not in ("host_id", "schema_version")]
    meta = pq.read_schema(next(lake.glob("runs/**/*.parquet"))).metadata
    assert meta[b"opensre.schema_version"] == str(SCHEMA_VERSION).encode() and meta[b"opensre.table"] == b"runs"
    run = pq.read_table(next(lake.glob("runs/**/*.parquet"))).to_pylist()[0]
    assert run["command"] == ["make", "-j2"] and dict(run["drop_detail"]) == {"ringbuf_full": 3}
    assert dict(run["probes"]) == {"sched": "tp_btf", "net": "off"}


def test_cli_parquet_and_jsonl_unchanged(store, tmp_path, capsys):
    lake = tmp_path / "lake"
    st = str(store.path)
    assert main(["export", "--store", st, "--format", "parquet", "--to", str(lake), "--since", "100000d"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"exported 2 runs to {lake}: 15 processes") and out.count("\n") == 1
    assert main(["export", "--store", st, "--format", "parquet", "--to", str(lake), "--since", "1s"]) == 0
    assert "nothing exported" in capsys.readouterr().out
    assert main(["export", "--store", st, "--run", "pipe"]) == 0  # jsonl, processes, as before
    assert len(capsys.readouterr().out.splitlines()) == 6
    for argv, words in ((["--format", "parquet"], "needs --to"),
                        (["--format", "parquet", "--to", str(lake), "--what", "tasks"], "no -o, no --what"),
                        (["--format", "parquet", "--to", str(lake), "-o", "x"], "no -o, no --what"),
                        (["--to", str(lake)], "go with --format parquet"),
                        (["--since", "1d"], "go with --format parquet"),
                        (["--format", "parquet", "--to", "ftp://h/x"], "ftp:// is not supported"),
                        (["--format", "parquet", "--to", "s3:///x"], "give s3://BUCKET/PREFIX"),
                        (["--format", "parquet", "--to", str(tmp_path / "no" / "lake")], "no such directory"),
                        (["--format", "parquet", "--to", st], "not a directory")):
        assert main(["export", "--store", st, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, (argv, err)


def test_local_writes_are_whole_and_never_through_links(store, tmp_path):
    lake = tmp_path / "lake"
    d = open_dest(str(lake))
    d.put("t/dt=2023-11-14/host=h1/run-x.parquet", lambda f: f.write(b"old"))
    target = lake / "t/dt=2023-11-14/host=h1/run-x.parquet"

    def fails(f):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="No space left on device"):
        d.put("t/dt=2023-11-14/host=h1/run-x.parquet", fails)
    assert target.read_bytes() == b"old" and os.listdir(target.parent) == ["run-x.parquet"]
    # a link planted where a partition directory goes: refused, nothing written where it points
    away = tmp_path / "away"
    away.mkdir()
    (lake / "processes" / "dt=2023-11-14").mkdir(parents=True)
    (lake / "processes" / "dt=2023-11-14" / "host=h1").symlink_to(away)
    with pytest.raises(OutputError, match="refusing to write into .*host=h1"):
        export_lake(store, select_runs(store, "pipe"), open_dest(str(lake)))
    assert not os.listdir(away)
    # a link in place of a file is replaced by the file, never written through
    (lake / "processes" / "dt=2023-11-14" / "host=h1").unlink()
    (lake / "processes" / "dt=2023-11-14" / "host=h1").mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (lake / "processes" / "dt=2023-11-14" / "host=h1" / "run-aaaa00000001.parquet").symlink_to(victim)
    with pytest.raises(OutputError, match="not a regular file"):
        export_lake(store, select_runs(store, "pipe"), open_dest(str(lake)))
    assert victim.read_bytes() == b"keep"
    link = tmp_path / "link"
    link.symlink_to(lake)
    with pytest.raises(UsageError, match="symbolic link"):
        open_dest(str(link))


def test_since_selects_runs_active_in_the_window(store):
    ids = lambda rs: [r.run_id for r in rs]  # noqa: E731
    assert ids(select_runs(store, since_s=50, now_ns=T0 + 320 * S)) == ["cccc00000001"]
    assert ids(select_runs(store, since_s=250, now_ns=T0 + 320 * S)) == ["aaaa00000001", "cccc00000001"]
    assert ids(select_runs(store, since_s=10, now_ns=T0 + 400 * S)) == []


def test_other_commands_do_not_import_pyarrow(store):
    code = ("import sys; from opensre.cli.main import main; "
            f"main(['export', '--store', {str(store.path)!r}, '--what', 'tasks']); "
            "main(['runs', '--store', " + repr(str(store.path)) + "]); "
            "sys.exit('pyarrow' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# -- docs/lake.md ------------------------------------------------------------------------
_HIVE_TO_TRINO = {"string": "varchar", "int": "integer", "bigint": "bigint", "boolean": "boolean", "double": "double",
                  "array<string>": "array(varchar)", "map<string,bigint>": "map(varchar, bigint)",
                  "map<string,string>": "map(varchar, varchar)"}


def _ddl_blocks(engine_marker: str) -> dict[str, list[tuple[str, str]]]:
    """table -> its columns (name, type), from each ```sql block of docs/lake.md that
    creates a table the way `engine_marker` says (EXTERNAL TABLE: Athena, hive.: Trino)."""
    text = (ROOT / "docs/lake.md").read_text()
    out = {}
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        for m in re.finditer(r"CREATE (?:EXTERNAL )?TABLE (\S+) \(\n(.*?)\n\)", block, re.S):
            if engine_marker not in m.group(0):
                continue
            table = m.group(1).rsplit(".", 1)[1]
            cols = []
            for line in m.group(2).splitlines():
                name, typ = line.strip().rstrip(",").split(" ", 1)
                cols.append((name.strip("`"), typ))
            out[table] = cols
    return out


def test_docs_athena_ddl_is_the_schema():
    got = _ddl_blocks("EXTERNAL TABLE")
    assert set(got) == set(TABLES)
    for t in TABLES:
        assert got[t] == COLUMNS[t], t
    text = (ROOT / "docs/lake.md").read_text()
    assert text.count("'projection.host.type' = 'injected'") == len(TABLES)
    assert text.count("PARTITIONED BY (`dt` string, `host` string)") == len(TABLES)
    assert PARTITIONS == ("dt", "host")


def test_docs_trino_ddl_is_the_schema():
    got = _ddl_blocks("hive.")
    assert set(got) == set(TABLES)
    for t in TABLES:
        assert got[t] == [(n, _HIVE_TO_TRINO[ty]) for n, ty in COLUMNS[t]] + [("dt", "varchar"), ("host", "varchar")], t


def test_export_killed_midway_loses_nothing_and_is_retried(tmp_path):
    """SIGKILL while a file is being written: every *.parquet in the lake stays whole
    (old or new), and the same command then completes the lake."""
    import signal
    import time

    sys.path.insert(0, str(ROOT / "bench"))
    from report_scale import build

    st = str(tmp_path / "big.sqlite")
    build(st, 8_000)
    lake = tmp_path / "lake"
    cmd = [sys.executable, "-m", "opensre", "export", "--store", st, "--format", "parquet", "--to", str(lake)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    before = {p: p.read_bytes() for p in lake.rglob("*.parquet")}
    for _ in range(5):  # until one is killed with a file half written
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None and not list(lake.rglob(".*.tmp")):
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if list(lake.rglob(".*.tmp")):
            break
    assert list(lake.rglob(".*.tmp")), "never killed while writing a file: nothing was tested"
    assert sorted(lake.rglob("*.parquet")) == sorted(before)
    for f, data in before.items():  # the old file, or the new one: the same bytes (the same rows, written alike)
        assert f.read_bytes() == data
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = Store(st, readonly=True)
    want = lake_expected_counts(s)
    s.close()
    for t in TABLES:
        if want[t]:
            assert lake_sql(lake, t) == [(want[t],)], t
