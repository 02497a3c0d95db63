"""tune's per-task aggregates (schema v10, `task_aggregates`): kept at correlation,
they must give exactly what computing them from the processes, command lines and
time series gives; older stores without them, stale rows and another version of
the computation fall back to computing them (and fill them in where writable)."""

from __future__ import annotations

import json
import shutil
import sqlite3

from opensre.analysis import tune
from opensre.analysis.facts import AGGREGATES_VERSION, task_aggregates
from opensre.correlate import correlate_run
from opensre.model import Event, Exec, Host, Process, Run, Sample
from opensre.store import Store

S = 1_000_000_000
MS = 1_000_000
MiB = 1 << 20
T0 = 1_700_000_000 * S
CG = "/user.slice/session-1.scope"


def proc(pid, ppid, start, end, argv, *, cpu=0, peak=3 * MiB, cgroup=CG, **kw) -> Process:
    return Process(pid=pid, start_time_ns=start, ppid=ppid, parent_start_time_ns=None, argv=argv, exe=argv[0],
                   comm=argv[0].rsplit("/", 1)[-1][:15], exec_count=1, complete=True, end_time_ns=end,
                   cpu_user_ns=cpu, cpu_system_ns=0, oncpu_ns=cpu, peak_rss_bytes=peak, exit_code=0, threads=1,
                   cgroup_path=cgroup, sleep_ns=S // 10, major_faults=7, **kw)


def series(p: Process, every: int, stall: tuple[int, int] | None = None) -> list[Sample]:
    """Rows every `every` ns over its life, its CPU spread evenly; none moving within `stall`."""
    ts = list(range(p.start_time_ns + every, p.end_time_ns, every)) + [p.end_time_ns]
    moving = [t for t in ts if not (stall and stall[0] < t <= stall[1])]
    per = p.cpu_user_ns // len(moving)
    return [Sample(p.pid, p.start_time_ns, t, per if t in moving else 0, p.peak_rss_bytes, 4096 if t in moving else 0,
                   0, 0, 0, 0, 0, 0) for t in ts]


def build(path, name="r", *, runs=1) -> Store:
    """make -> three recipes: bwa | samtools (in a 2-CPU, 1 GiB cgroup of its own, argv thread
    flags, one OOM-killed process), a job naming its rule with --target-jobs, and a
    sleeper that stalls for 80 s; `runs` runs of the same name."""
    st = Store(path)
    st.put_host(Host("h", "vm", cpus=8, mem_bytes=64 << 30))
    for i in range(runs):
        rid, t0 = f"{name}{i}", T0 + i * 1000 * S
        own = f"/system.slice/job{i}.scope"
        lim = dict(cpu_limit_cores=2.0, memory_limit_bytes=1 << 30, cgroup=own)
        procs = [proc(10, 1, t0, t0 + 200 * S, ["/usr/bin/make", "-j3"]),
                 proc(11, 10, t0 + MS, t0 + 100 * S, ["/bin/sh", "-c", "bwa mem -t 4 r.fa x.fq | samtools sort -@ 1"],
                      **lim),
                 proc(20, 11, t0 + 2 * MS, t0 + 99 * S, ["/usr/bin/bwa", "mem", "-t", "4", "r.fa", "x.fq"],
                      cpu=150 * S, peak=600 * MiB, **lim),
                 proc(21, 11, t0 + 3 * MS, t0 + 90 * S, ["/usr/bin/samtools", "sort", "-@", "1"], cpu=20 * S,
                      peak=900 * MiB, oom_killed=True, exit_signal=9, **lim),
                 proc(12, 10, t0 + 2 * MS, t0 + 60 * S, ["/bin/sh", "-c", "snakemake --target-jobs 'call:s=S1'"]),
                 proc(30, 12, t0 + 3 * MS, t0 + 59 * S,
                      ["/usr/bin/python3", "-m", "snakemake", "--target-jobs", "'call:s=S1'", "--cores", "2"],
                      cpu=50 * S, peak=200 * MiB),
                 proc(13, 10, t0 + 3 * MS, t0 + 190 * S, ["/bin/sh", "-c", "sleeper --threads 3"]),
                 proc(40, 13, t0 + 4 * MS, t0 + 189 * S, ["/usr/bin/sleeper", "--threads", "3"], cpu=30 * S,
                      peak=50 * MiB)]
        samples = (series(procs[2], S) + series(procs[3], 2 * S) + series(procs[5], S)
                   + series(procs[7], S, stall=(t0 + 60 * S, t0 + 140 * S)))
        run = Run(rid, "pipe", "run", "h", command=["make", "-j3"], start_time_ns=t0, end_time_ns=t0 + 200 * S,
                  status="finished", exit_code=0, root_pid=10, sample_interval_s=1.0)
        st.put_run(run)
        st.put_batch(rid, procs, [Exec(p.pid, p.start_time_ns, p.start_time_ns, p.exe, p.argv, False, "/")
                                  for p in procs], samples=samples,
                     events=[Event("oom_kill", 21, t0 + 3 * MS, t0 + 90 * S, {"memcg_limit_bytes": 1 << 30})])
        correlate_run(st, rid)
    return st


def plain(x):
    return json.loads(json.dumps(x, default=str))


def result(path, runs, **kw) -> dict:
    st = Store(path, readonly=True)
    try:
        return plain(tune(st, runs, **kw).to_json())
    finally:
        st.close()


def without_aggregates(src, dst, *, old_schema=False):
    """A copy of the store as one correlated before the aggregates: rows gone, or the
    table and schema version too (a v9 store)."""
    shutil.copy(src, dst)
    db = sqlite3.connect(dst)
    if old_schema:
        db.execute("DROP TABLE task_aggregates")
        db.execute("ALTER TABLE hosts DROP COLUMN arch")  # v11
        db.execute("UPDATE meta SET value='9' WHERE key='schema_version'")
    else:
        db.execute("DELETE FROM task_aggregates")
    db.commit()
    db.close()


def test_kept_aggregates_equal_the_computation(tmp_path):
    st = build(tmp_path / "s.sqlite")
    run = st.resolve_run("r0")
    kept = st.task_aggregates("r0", AGGREGATES_VERSION)
    assert kept and plain(kept) == plain(task_aggregates(st, run))
    by_rule = {a["target_rule"]: a for a in kept.values()}
    assert "call" in by_rule  # --target-jobs 'call:...'
    bwa = next(a for a in kept.values() if a["cgroups"] and a["cgroups"][0]["cpu_limit_cores"] == 2.0)
    assert bwa["peak_cores"] > 1.5 and {f["text"] for f in bwa["size_flags"]} >= {"-t 4", "-@ 1"}
    assert max(a["longest_stall_ns"] for a in kept.values()) >= 79 * S  # the sleeper's 80 s without progress
    st.close()


def test_tune_same_with_and_without_kept_aggregates(tmp_path):
    build(tmp_path / "s.sqlite", runs=3).close()
    without_aggregates(tmp_path / "s.sqlite", tmp_path / "rows.sqlite")
    without_aggregates(tmp_path / "s.sqlite", tmp_path / "v9.sqlite", old_schema=True)
    assert Store(tmp_path / "v9.sqlite", readonly=True).schema_version() == 9
    ids = ["r0", "r1", "r2"]
    for kw in ({}, {"sizing_runs": ids, "baseline": ids[:2]}, {"compare_with": ["r1"]}):
        want = result(tmp_path / "s.sqlite", ["r2"], **kw)
        assert result(tmp_path / "rows.sqlite", ["r2"], **kw) == want
        assert result(tmp_path / "v9.sqlite", ["r2"], **kw) == want
    one = result(tmp_path / "s.sqlite", ["r2"])
    kinds = {f["classification"] for f in one["findings"]}
    assert {"oom_killed", "idle"} <= kinds, kinds  # the figures from the aggregates reach the verdicts
    (t,) = [t for t in one["tasks"] if t["cpu_capacity"] == 2.0]
    assert t["given"]["cpus_source"] == "task cgroup cpu quota" and t["oom_limit_bytes"] == 1 << 30
    assert {r["task_type"] for r in one["recommendations"]} >= {"call"}


def test_cli_pipeline_same_on_an_old_store(tmp_path, capsys):
    from opensre.cli.main import main

    build(tmp_path / "s.sqlite", runs=3).close()
    without_aggregates(tmp_path / "s.sqlite", tmp_path / "v9.sqlite", old_schema=True)
    outs = []
    for f in ("s.sqlite", "v9.sqlite"):
        assert main(["tune", "--store", str(tmp_path / f), "--pipeline", "pipe", "--format", "json"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_writable_store_fills_them_in_on_first_use(tmp_path):
    build(tmp_path / "s.sqlite").close()
    want = result(tmp_path / "s.sqlite", ["r0"], sizing_runs=["r0"])
    without_aggregates(tmp_path / "s.sqlite", tmp_path / "v9.sqlite", old_schema=True)
    st = Store(tmp_path / "v9.sqlite")  # writable: migrated to v10, no rows yet
    assert st.task_aggregates("r0", AGGREGATES_VERSION) == {}
    assert plain(tune(st, ["r0"], sizing_runs=["r0"]).to_json()) == want
    assert st.task_aggregates("r0", AGGREGATES_VERSION)  # kept for the next time
    st.close()
    assert result(tmp_path / "v9.sqlite", ["r0"], sizing_runs=["r0"]) == want


def test_stale_rows_are_not_used(tmp_path):
    st = build(tmp_path / "s.sqlite")
    want = plain(tune(st, ["r0"]).to_json())
    st.close()
    # another version of the computation, or kept for another span: ignored, computed again
    for sql in ("UPDATE task_aggregates SET version=version+1",
                "UPDATE task_aggregates SET end_ns=end_ns-1, peak_cores=99, longest_stall_ns=0, sleep_ns=1"):
        shutil.copy(tmp_path / "s.sqlite", tmp_path / "x.sqlite")
        db = sqlite3.connect(tmp_path / "x.sqlite")
        db.execute(sql)
        db.commit()
        db.close()
        assert result(tmp_path / "x.sqlite", ["r0"]) == want
    # kept for this span and version: read, not computed (a changed row shows)
    shutil.copy(tmp_path / "s.sqlite", tmp_path / "x.sqlite")
    db = sqlite3.connect(tmp_path / "x.sqlite")
    db.execute("UPDATE task_aggregates SET longest_stall_ns=0")
    db.commit()
    db.close()
    got = result(tmp_path / "x.sqlite", ["r0"])
    assert "idle" in {f["classification"] for f in want["findings"]}
    assert "idle" not in {f["classification"] for f in got["findings"]}
    # correlating again replaces them
    st = Store(tmp_path / "x.sqlite")
    correlate_run(st, "r0")
    assert plain(st.task_aggregates("r0", AGGREGATES_VERSION)) == plain(task_aggregates(st, st.resolve_run("r0")))
    st.close()


def test_a_running_run_keeps_none(tmp_path):
    st = build(tmp_path / "s.sqlite")
    run = st.resolve_run("r0")
    run.status, run.end_time_ns = "running", None
    run.collector_pid = __import__("os").getpid()  # alive: not read as interrupted
    st.put_run(run)
    correlate_run(st, "r0")  # its series still grows: nothing kept
    assert st.task_aggregates("r0", AGGREGATES_VERSION) == {}
    assert tune(st, ["r0"]).tasks  # computed on the fly
    assert st.task_aggregates("r0", AGGREGATES_VERSION) == {}
    st.close()


def test_detected_runs_keep_theirs(tmp_path):
    from test_runs import collection

    from opensre.correlate import correlate_collection

    s, coll, _ = collection(tmp_path)
    runs = correlate_collection(s, coll.run_id)
    for r in runs:  # their processes stay under the collection: the same figures either way
        kept = s.task_aggregates(r.run_id, AGGREGATES_VERSION)
        assert kept and plain(kept) == plain(task_aggregates(s, r))
    want = [plain(tune(s, [r.run_id]).to_json()) for r in runs]
    s.close()
    without_aggregates(s.path, tmp_path / "x.sqlite")
    assert [result(tmp_path / "x.sqlite", [r.run_id]) for r in runs] == want
