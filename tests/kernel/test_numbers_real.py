"""Numbers you can trust, on real workloads under `opensre run`: peak cores never
above the host, a task's memory is what its processes held at once, and the run's
own exit status reaches its root task (export, show, tune)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import opensre_cmd

MiB = 1 << 20


def cli(store, *args: str) -> str:
    p = subprocess.run(opensre_cmd() + [args[0], "--store", str(store), *args[1:]], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def tune(store, run="latest") -> dict:
    return json.loads(cli(store, "tune", run, "--format", "json"))


@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng")
def test_peak_cores_never_above_the_host(observe, store, tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text("all:\n\tstress-ng --cpu 4 --timeout 3 -q\n")
    observe(["make", "-f", str(mk)], check_status=0)
    res = tune(store)
    ncpu = os.cpu_count()
    # tolerance: none beyond the 3-decimal rounding of the JSON (the figure is capped by the host's CPUs)
    for rec in res["recommendations"]:
        assert rec["evidence"]["peak_cores_max"] <= ncpu + 0.001, rec
    (t,) = [t for t in res["tasks"] if "stress-ng" in t["task_name"]]
    assert t["peak_cores"] <= ncpu + 0.001 and t["cpu_capacity"] == ncpu
    # the peak is at least the average over the task's wall (the totals, an independent figure)
    assert t["peak_cores"] >= 0.95 * t["cpu_ns"] / t["wall_ns"]


ALLOC = ("import time; b = bytearray(100 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)")


def test_memory_is_sized_for_the_concurrent_footprint(observe, store, tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text("all:\n\tfor i in 1 2 3 4; do python3 -c \"" + ALLOC + "\" & done; wait\n")
    observe(["make", "-f", str(mk)], check_status=0)
    res = tune(store)
    (rec,) = [r for r in res["recommendations"] if "python" in r["task_type"]]
    assert rec["memory_bytes"] >= 420 * MiB, rec
    tasks = [json.loads(x) for x in cli(store, "export", "--what", "tasks").splitlines()]
    (t,) = [t for t in tasks if t["kind"] == "task"]
    procs = [json.loads(x) for x in cli(store, "export", "--what", "processes").splitlines()]
    mine = [p for p in procs if p["task_id"] == t["task_id"]]
    # truth: four processes each touched 100 MiB and held it 1.5 s, all at once; at most
    # the sum of every process's own high-water mark
    assert 400 * MiB <= t["memory_peak_bytes"] <= sum(p["peak_rss_bytes"] for p in mine)
    assert t["peak_rss_bytes"] == max(p["peak_rss_bytes"] for p in mine) < 200 * MiB
    assert "PEAK MEM" in cli(store, "show")


@pytest.mark.parametrize("script,code,sig", [("exit 3", 3, None), ("sleep 0.1; exit 3", 3, None),
                                             ("kill -TERM $$", None, 15), ("sleep 0.1; kill -TERM $$", None, 15)])
def test_run_exit_status_reaches_its_root_task(observe, store, script, code, sig):
    o = observe(["bash", "-c", script])
    assert o.returncode == (128 + sig if sig else code)
    runs = cli(store, "runs")
    assert (f"s{sig}" if sig else f" {code} ") in runs.splitlines()[1]
    tasks = [json.loads(x) for x in cli(store, "export", "--what", "tasks").splitlines()]
    root_pid = [p for p in o.export() if p["ppid"] == min(p["ppid"] for p in o.export())][0]["pid"]
    (root,) = [t for t in tasks if t["root_pid"] == root_pid]
    assert (root["exit_code"], root["exit_signal"]) == (code, sig)
    show = cli(store, "show")
    row = [ln for ln in show.splitlines() if ln.startswith(root["task_id"] + " ")]
    assert row and row[0].rstrip().endswith(f"sig {sig}" if sig else f" {code}"), show
    res = tune(store)
    (r,) = res["runs"]
    assert r["failed"] and (r["exit_code"], r["exit_signal"]) == (code, sig)
