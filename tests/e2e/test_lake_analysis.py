"""tune and report over a Parquet lake (store/lake.py) give what they give over the
store the lake was exported from, and size a pipeline from the runs of several
hosts: real runs recorded here, exported by the CLI, read back through DuckDB."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import opensre_cmd

pytestmark = pytest.mark.e2e

BURN = "import sys; sum(range(int(sys.argv[1])))"


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(opensre_cmd() + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A store with two runs of the pipeline `align` (parallel workers, a compressor)."""
    store = tmp_path_factory.mktemp("lakeanalysis") / "store.sqlite"
    for n in (1_500_000, 3_000_000):
        script = (f"for i in 1 2 3; do {sys.executable} -c '{BURN}' {n} & done; wait; "
                  "gzip -c /etc/services > /dev/null")
        r = cli("run", "-q", "--store", store, "--interval", "0.1", "--name", "align", "--", "bash", "-c", script)
        assert r.returncode == 0, r.stderr
    return store


def _export(store: Path, lake: Path) -> None:
    r = cli("export", "--store", store, "--format", "parquet", "--to", lake, "--since", "1d")
    assert r.returncode == 0, r.stderr


def test_tune_and_report_over_the_lake_equal_the_store(pipeline, tmp_path):
    lake = tmp_path / "lake"
    _export(pipeline, lake)
    for args in (["--pipeline", "align", "--format", "json"], ["align", "--format", "json"],
                 ["--compare", "align", "latest", "--format", "json"], ["align", "--emit", "snakemake"],
                 ["align"]):
        a = cli("tune", "--store", pipeline, *args)
        b = cli("tune", "--lake", lake, *args)
        assert a.returncode == b.returncode == 0, (args, a.stderr, b.stderr)
        assert a.stdout == b.stdout, args
    assert json.loads(cli("tune", "--lake", lake, "--format", "json").stdout)["tasks"]  # a comparison of something
    pages = []
    for src in (["--store", pipeline], ["--lake", lake]):
        out = tmp_path / f"r{len(pages)}.html"
        r = cli("report", *src, "align", "-o", out)
        assert r.returncode == 0, r.stderr
        pages.append(re.sub(r'"generated_ns":\d+', "", out.read_text()))  # the same page but for when it was made
    assert pages[0] == pages[1]


def _as_another_host(store: Path, dest: Path) -> list[str]:
    """A copy of `store` whose runs are another host's: new run and host ids in every
    table that holds them (the records stay the kernel's). Returns its run ids."""
    shutil.copy(store, dest)
    db = sqlite3.connect(dest)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for t in tables:
        cols = {r[1] for r in db.execute(f"PRAGMA table_info({t})")}
        for c in ("run_id", "parent_run_id"):
            if c in cols:
                db.execute(f"UPDATE {t} SET {c} = 'z' || substr({c}, 2) WHERE {c} IS NOT NULL")
        if "host_id" in cols:
            db.execute(f"UPDATE {t} SET host_id = 'otherhost-' || host_id")
    db.commit()
    ids = [r[0] for r in db.execute("SELECT run_id FROM runs")]
    db.close()
    return ids


def test_a_pipeline_sized_from_runs_on_two_hosts(pipeline, tmp_path):
    other = tmp_path / "other.sqlite"
    other_ids = _as_another_host(pipeline, other)
    lake = tmp_path / "fleet"
    _export(pipeline, lake)
    _export(other, lake)
    hosts = {p.name for p in (lake / "runs").glob("dt=*/host=*")}
    assert len(hosts) == 2, hosts
    r = cli("tune", "--lake", lake, "--pipeline", "align", "--format", "json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    used = set(res["run_ids"]) | set(res["options"]["sizing_runs"])
    assert set(other_ids) & used and used - set(other_ids)  # runs of both hosts
    gz = next(x for x in res["recommendations"] if x["task_type"] == "gzip")
    assert gz["evidence"]["runs"] == 4 and gz["evidence"]["tasks"] == 4, gz["evidence"]
    # the one host's store sizes it from its 2 runs
    one = json.loads(cli("tune", "--store", pipeline, "--pipeline", "align", "--format", "json").stdout)
    assert next(x for x in one["recommendations"] if x["task_type"] == "gzip")["evidence"]["runs"] == 2


def test_a_bad_lake_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for dest, status, words in ((tmp_path / "missing", 1, "no lake at"), (tmp_path / "empty", 1, "no runs in"),
                                ("s3://", 2, "give s3://BUCKET/PREFIX"), ("ftp://x/y", 2, "not a directory")):
        r = cli("tune", "--lake", dest)
        assert r.returncode == status, (dest, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
