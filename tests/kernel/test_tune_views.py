"""Every view tells the same truth (issue 13, items 4-7 and 11) on real runs:
`opensre run` of real processes, then the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import WORKLOADS, opensre_cmd

WL = str(WORKLOADS / "tune_wl.py")
PY = os.path.realpath(sys.executable)


def cli(store, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    p = subprocess.run(opensre_cmd() + [args[0], "--store", str(store), *args[1:]], capture_output=True,
                       text=True, timeout=120)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def tune(store, *args: str) -> dict:
    return json.loads(cli(store, "tune", "--format", "json", *args).stdout)


def test_a_pipelines_parallel_efficiency_never_exceeds_one(observe, store, tmp_path):
    """A make recipe `a | b` of two single-threaded burners (as `bcftools mpileup |
    bcftools call`): each process has one thread, the task ran two at once. Its
    efficiency is of the cores it used at once, never above 1."""
    mk = tmp_path / "Makefile"
    mk.write_text(f"all:\n\t{PY} {WL} burn 2.5 | {PY} {WL} burn 2.5 >/dev/null\n")
    observe(["make", "-f", str(mk)], "--name", "pipe", check_status=0)
    res = tune(store, "pipe")
    (task,) = [t for t in res["tasks"] if t["cpu_ns"] > 4e9]
    assert task["max_threads"] == 1 and task["cpu_ns"] / task["wall_ns"] > 1.05, task  # ran concurrently
    assert 0 < task["parallel_efficiency"] <= 1.0, task
    # the cores it ran at once bound it: CPU / (wall x peak cores)
    assert task["parallel_efficiency"] <= round(task["cpu_ns"] / (task["wall_ns"] * task["peak_cores"]), 3) + 0.001
    for f in res["findings"]:
        pe = f["evidence"].get("parallel_efficiency")
        assert pe is None or pe <= 1.0, f
