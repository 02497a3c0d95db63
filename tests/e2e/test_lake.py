"""The Parquet lake end to end: a real run (BPF, real processes, TCP on loopback)
exported by the CLI to a directory and to S3 served by a real S3 API (moto's server,
started here on a loopback port), read back by DuckDB and by pyarrow's S3
filesystem: the store's rows and CPU sums, nothing duplicated by a re-export, no
directory markers; an unreachable endpoint or a bad DEST is one line and a non-zero
exit with the store untouched, and the same export then succeeds."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import WORKLOADS, free_port, lake_expected_counts, opensre_cmd, start_moto
from opensre.export.lake import TABLES
from opensre.store import Store

pytestmark = pytest.mark.e2e

KEY = re.compile(r"fleet/(\w+)/dt=\d{4}-\d{2}-\d{2}/host=[0-9a-zA-Z._-]+/run-[0-9a-f]+\.parquet")
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A store holding one real run: processes, samples (0.1 s), execs, a TCP connection."""
    store = tmp_path_factory.mktemp("lake") / "store.sqlite"
    script = (f"{sys.executable} {WORKLOADS / 'netpair.py'} 200000 > /dev/null; "
              "for i in 1 2 3; do gzip -c /etc/services > /dev/null; done; "
              f"{sys.executable} -c 'import time; t = time.time() + 0.5\nwhile time.time() < t: pass'")
    r = subprocess.run(opensre_cmd() + ["run", "--store", str(store), "--interval", "0.1", "--name", "lake",
                                        "--", "bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return store


def _export(store: Path, dest: str, *extra: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--format", "parquet", "--to", dest,
                                           *extra], capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env})


def _sha(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))
                                   if p.is_file())).hexdigest()


def _expected(store: Path) -> tuple[dict, tuple]:
    s = Store(store, readonly=True)
    try:
        cpu = s.db.execute("SELECT SUM(cpu_user_ns + cpu_system_ns), (SELECT SUM(cpu_ns) FROM tasks) "
                           "FROM processes").fetchone()
        return lake_expected_counts(s), tuple(cpu)
    finally:
        s.close()


def _one_line_error(r: subprocess.CompletedProcess, status: int, words: str) -> None:
    assert r.returncode == status, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert r.stderr.startswith("opensre: ")


def test_local_lake_read_by_duckdb(recorded, tmp_path):
    want, (cpu, task_cpu) = _expected(recorded)
    assert want["processes"] >= 6 and want["samples"] > want["processes"] and want["execs"] and want["tasks"]
    assert want["events"] >= 1  # the loopback connection (net family)
    lake = tmp_path / "lake"
    for _ in range(2):  # the second export replaces the first's files
        r = _export(recorded, str(lake))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"exported 1 run to {lake}: {want['processes']} processes")
        con = duckdb.connect()
        for t in TABLES:
            got = con.execute(f"SELECT count(*), count(DISTINCT run_id), count(*) FILTER (host IS NULL OR "
                              f"host <> host_id) FROM read_parquet('{lake}/{t}/**/*.parquet', "
                              "hive_partitioning=true)").fetchall()
            assert got == [(want[t], 1, 0)], t
        assert con.execute(f"SELECT sum(cpu_user_ns + cpu_system_ns) FROM read_parquet('{lake}/processes/**/*.parquet',"
                           " hive_partitioning=true)").fetchall() == [(cpu,)]
        assert con.execute(f"SELECT sum(cpu_ns) FROM read_parquet('{lake}/tasks/**/*.parquet', "
                           "hive_partitioning=true)").fetchall() == [(task_cpu,)]
    files = [p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file()]
    assert len(files) == len(TABLES) and all(KEY.fullmatch("fleet/" + f) for f in files), files


def test_local_lake_read_by_spark(recorded, tmp_path):
    """Spark (pyspark, local mode, the machine's JVM) reads the same lake: partitions
    discovered from the paths, the writer's hidden temporary names never read."""
    from pyspark.sql import SparkSession

    want, (cpu, task_cpu) = _expected(recorded)
    lake = tmp_path / "lake"
    r = _export(recorded, str(lake))
    assert r.returncode == 0, r.stderr
    spark = (SparkSession.builder.master("local[1]").appName("opensre-lake-test")
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC").getOrCreate())
    try:
        read = lambda t: spark.read.parquet(str(lake / t))  # noqa: E731
        for t in TABLES:
            df = read(t)
            assert df.count() == want[t], t
            assert df.where("host IS NULL OR host <> host_id").count() == 0, t
        assert read("processes").selectExpr("sum(cpu_user_ns + cpu_system_ns)").first()[0] == cpu
        assert read("tasks").selectExpr("sum(cpu_ns)").first()[0] == task_cpu
        # the example query of docs/lake.md runs as written
        read("tools").createOrReplaceTempView("tools")
        assert SPARK_EXAMPLE in (Path(__file__).parents[2] / "docs" / "lake.md").read_text()
        top = spark.sql(SPARK_EXAMPLE).collect()
        assert top and top[0]["invocations"] >= 1
    finally:
        spark.stop()


SPARK_EXAMPLE = """SELECT host, tool, count(*) AS invocations, round(sum(cpu_ns) / 3.6e12, 4) AS cpu_hours
FROM tools GROUP BY host, tool ORDER BY cpu_hours DESC LIMIT 10"""


@pytest.fixture
def s3_port():
    """A loopback port for moto's S3 server, not yet listening; the server is started by start_s3."""
    procs = []

    def start(port: int) -> None:
        procs.append(start_moto(port))

    port = free_port()
    yield port, start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def test_s3_lake_unreachable_then_retried(recorded, s3_port):
    import boto3
    import pyarrow.dataset as ds
    from pyarrow import fs

    port, start = s3_port
    env = {**AWS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    want, (cpu, _) = _expected(recorded)
    before = _sha(recorded)
    # nothing listens yet: retried, then one line, exit 1, the store as it was
    t = time.monotonic()
    r = _export(recorded, "s3://lake/fleet", env=env)
    _one_line_error(r, 1, "cannot reach s3://lake")
    assert "after 4 tries" in r.stderr and time.monotonic() - t >= 3  # 0.5 + 1 + 2 s of backoff
    assert _sha(recorded) == before
    start(port)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **{
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"]})
    _one_line_error(_export(recorded, "s3://lake/fleet", env=env), 2, "no bucket lake")
    s3.create_bucket(Bucket="lake")
    keys = None
    for _ in range(2):  # the same export again: the same keys, replaced
        r = _export(recorded, "s3://lake/fleet", env=env)
        assert r.returncode == 0, r.stderr
        objs = s3.list_objects_v2(Bucket="lake")["Contents"]
        now = sorted(o["Key"] for o in objs)
        assert keys is None or now == keys
        keys = now
        assert all(o["Size"] > 0 and KEY.fullmatch(o["Key"]) for o in objs), objs  # no directory markers
        s3fs = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="testing",
                               secret_key="testing", region="us-east-1")
        for table in TABLES:
            d = ds.dataset(f"lake/fleet/{table}", filesystem=s3fs, format="parquet", partitioning="hive")
            tbl = d.to_table()
            assert tbl.num_rows == want[table], table
            assert set(tbl.column("host").to_pylist()) == set(tbl.column("host_id").to_pylist())
        procs = ds.dataset("lake/fleet/processes", filesystem=s3fs, format="parquet", partitioning="hive").to_table()
        assert sum(a + b for a, b in zip(procs.column("cpu_user_ns").to_pylist(),
                                         procs.column("cpu_system_ns").to_pylist())) == cpu
    # tune reads the S3 lake as it reads the store (store/lake.py)
    tune = [subprocess.run(opensre_cmd() + ["tune", *src, "--format", "json"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, **env}) for src in (["--store", str(recorded)],
                                                                             ["--lake", "s3://lake/fleet"])]
    assert tune[0].returncode == tune[1].returncode == 0, tune[1].stderr
    assert tune[0].stdout == tune[1].stdout
    assert _sha(recorded) == before


def test_bad_dest_is_one_line(recorded, tmp_path):
    before = _sha(recorded)
    afile = tmp_path / "afile"
    afile.write_text("x")
    for dest, words in (("s3://", "give s3://BUCKET/PREFIX"), ("gs://b/p", "gs:// is not supported"),
                        (str(tmp_path / "missing" / "lake"), "no such directory"), (str(afile), "not a directory")):
        _one_line_error(_export(recorded, dest), 2, words)
    assert _sha(recorded) == before and afile.read_text() == "x"
