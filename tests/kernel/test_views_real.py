"""Every view tells the same truth (issue 13, items 4-7 and 11) on real runs:
`opensre run` of real processes, then the real CLI."""

from __future__ import annotations

import json
import os
import shutil
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


def _sort_tool(tmp_path, version: str):
    d = tmp_path / f"coreutils-{version}" / "bin"
    d.mkdir(parents=True)
    shutil.copy("/usr/bin/sort", d / "sort")
    return d / "sort"


def _numbers(path, mib: int) -> None:
    with open(path, "w") as f:
        i = 0
        while f.tell() < mib << 20:
            f.write(f"{(i * 2654435761) % 1000003}\n")
            i += 1


def test_compare_reports_on_the_after_run_and_says_what_changed(observe, store, tmp_path):
    """`tune --compare A B`: findings, recommendations and tasks are B's (the after
    run), A is the baseline; per task type it says what changed: the tool's
    executable (a version in its path), a new flag, how much it read."""
    old, new = _sort_tool(tmp_path, "9.1"), _sort_tool(tmp_path, "9.4")
    _numbers(tmp_path / "small.txt", 2)
    _numbers(tmp_path / "big.txt", 12)
    for name, recipe in (("a", f"{old} -S 64M {tmp_path}/small.txt"),
                         ("b", f"{new} -S 64M --parallel=2 {tmp_path}/big.txt")):
        mk = tmp_path / f"{name}.mk"
        mk.write_text(f"all:\n\t{recipe} > /dev/null\n")
        observe(["make", "-f", str(mk)], "--name", name, check_status=0)
    ids = {r.split()[-1]: r.split()[0] for r in cli(store, "runs").stdout.splitlines()[1:]}
    res = tune(store, "--compare", "a", "b")
    assert res["run_ids"] == [ids["b"]]
    assert res["options"]["baseline"] == [ids["a"]]
    assert res["tasks"] and {t["run_id"] for t in res["tasks"]} == {ids["b"]}
    assert all(f["run_id"] == ids["b"] for f in res["findings"] + res["tool_findings"])
    assert all(r["evidence"]["runs"] == 1 for r in res["recommendations"])
    (sort_rec,) = [r for r in res["recommendations"] if r["task_type"] == "sort"]
    (b_task,) = [t for t in res["tasks"] if t["task_type"] == "sort"]
    assert sort_rec["evidence"]["peak_rss_bytes_max"] == b_task["peak_rss_bytes"]
    ch = {(c["task_type"], c["kind"]): c for c in res["changes"]}
    exe = ch[("sort", "exe")]
    assert exe["before"] == [str(old)] and exe["after"] == [str(new)] and "9.1 -> 9.4" in exe["message"]
    flag = ch[("sort", "flags")]
    assert flag["flag"] == "--parallel" and flag["change"] == "added" and flag["after"] == ["--parallel=2"]
    assert "-S" not in {c.get("flag") for c in res["changes"]}  # unchanged: not listed
    inp = ch[("sort", "input")]
    assert inp["after"] >= 5 * inp["before"] >= 5 * (2 << 20)  # 12 MiB read against 2 MiB (at least once each)
    text = cli(store, "tune", "--compare", "a", "b").stdout
    assert f"tune: 1 run(s) {ids['b']}" in text and f"against {ids['a']}" in text and "new --parallel=2" in text


def test_cost_of_a_named_type_uses_the_observed_host(observe, store):
    """--instance-type prices the run, but the run had the host's CPUs: the idle share
    is the same as with that price per hour; the type's other shape is said; the
    suggestion has the host's architecture."""
    observe([PY, WL, "burn", "1.5"], "--name", "cost", check_status=0)
    ncpu = os.cpu_count()
    itype = "m5.xlarge" if ncpu != 4 else "m5.2xlarge"
    named = tune(store, "cost", "--instance-type", itype)["cost"]
    from opensre.analysis.cost import instance

    it = instance(itype)
    same = tune(store, "cost", "--price-per-hour", str(it.usd_per_hour))["cost"]
    assert named["host_cpus"] == ncpu == same["host_cpus"]
    assert named["idle_share"] == same["idle_share"] and named["used_usd"] == same["used_usd"]
    assert named["instance"]["vcpus"] == it.vcpus and named["instance"]["matches_host"] is False
    assert f"{it.vcpus} vCPUs, the host had {ncpu}" in named["shape_note"]
    arch = {"aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assert named["host_arch"] == arch and named["instance_suggestion"]["arch"] == arch
    text = cli(store, "tune", "cost", "--instance-type", itype).stdout
    assert "differs from the observed host" in text
