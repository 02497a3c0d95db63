"""tune on real runs: workloads with a known bottleneck run under `opensre run`,
then `opensre tune --format json` must name that bottleneck with its evidence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path


from cgroup_util import cgroups  # noqa: F401 - the fixture
from conftest import WORKLOADS, disk_dir, opensre_cmd

MiB = 1 << 20
WL = str(WORKLOADS / "tune_wl.py")
PY = os.path.realpath(sys.executable)  # not a shim script: the workload is the task


def tune(store: Path, *args: str) -> dict:
    p = subprocess.run(opensre_cmd() + ["tune", "--store", str(store), "--format", "json", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def tune_unprivileged(store: Path, run: str) -> dict:
    """tune in a child that dropped root for nobody, on a copy of the store."""
    from opensre.analysis import tune as tune_lib
    from opensre.store import Store

    d = Path(tempfile.mkdtemp(prefix="opensre-tune-copy-"))
    try:
        copy = d / "store.sqlite"
        shutil.copy(store, copy)
        os.chmod(d, 0o755)
        os.chown(d, 65534, 65534)
        os.chown(copy, 65534, 65534)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: no root from here on
            os.close(r)
            code = 1
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                res = tune_lib(Store(copy, readonly=True), [run]).to_json()
                os.write(w, json.dumps(res, default=str).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return json.loads(data)
    finally:
        shutil.rmtree(d)


def findings(res: dict, cls: str) -> list[dict]:
    return [f for f in res["findings"] if f["classification"] == cls]


def test_threads_asked_but_one_used_lower_cpus(observe, store, tmp_path):
    obs = observe([PY, WL, "burn", "1.5", "--threads", "8"], "--name", "over", check_status=0)
    own = dict(kv.split("=") for kv in obs.stdout.split("burn ", 1)[1].split())
    assert own["threads"] == "1"  # the kernel's word: it asked for 8 and ran one thread
    res = tune(store, "over")
    (f,) = findings(res, "overallocated_cpu")
    ev = f["evidence"]
    assert ev["cpus_given"] == 8 and "--threads 8" in ev["cpus_source"]
    # peak_cores is the busiest sample interval. One thread cannot use more than one core
    # (1.2: an interval's end is stamped a few ms apart from its counters), and the busiest
    # interval is at least the process's lifetime average, which the kernel gave it:
    # schedstat CPU / lifetime, measured by the process itself (a busy host lowers both)
    avg = int(own["cpu_ns"]) / int(own["life_ns"])
    assert 0.95 * avg <= ev["peak_cores"] <= 1.2, (ev, avg)
    assert ev["parallel_efficiency"] < 0.2
    (rec,) = res["recommendations"]
    assert rec["cpus"] == 1 and rec["current_cpus"] == 8
    assert any("--threads 8" in w for w in rec["warnings"])
    # analysis needs no root: a copy of the store, read by an unprivileged user
    res2 = tune_unprivileged(store, "over")
    assert res2["recommendations"] == res["recommendations"]


def test_fsync_writer_is_io_bound(observe, store, tmp_path):
    d = disk_dir(tmp_path)  # a disk-backed filesystem: fsync on tmpfs would not block
    observe([PY, WL, "fsync", "2", str(d)], "--name", "fs", check_status=0)
    res = tune(store, "fs")
    (f,) = findings(res, "io_bound")
    assert f["evidence"]["blocked_share"] >= 0.3 and f["evidence"]["write_bytes"] > 0
    assert not findings(res, "cpu_bound")


def test_four_burners_on_two_cores_wait_for_cpu(observe, store):
    n = 2 * (os.cpu_count() or 2)
    observe(["bash", "-c", f"for i in $(seq {n}); do {PY} {WL} burn 1.5 & done; wait"], "--name", "starve",
            check_status=0)
    res = tune(store, "starve")
    starved = findings(res, "cpu_starved")
    assert len(starved) == n, [(f["task_name"], f["classification"]) for f in res["findings"]]
    for f in starved:
        assert f["evidence"]["runq_share"] >= 0.3


def test_sleeper_is_idle(observe, store):
    observe(["bash", "-c", "sleep 4; true"], "--name", "idle", check_status=0)
    res = tune(store, "idle", "--idle-after", "2")
    (f,) = findings(res, "idle")
    assert f["task_name"] == "sleep" and f["evidence"]["longest_stall_s"] >= 2.0
    assert tune(store, "idle")["findings"] == []  # under the default 60 s: nothing to say


def test_oom_killed_task_gets_more_than_its_limit(observe, store, cgroups):
    cg = cgroups.make(f"opensre-tune-oom-{uuid.uuid4().hex[:8]}", limit_bytes=64 * MiB)
    observe(["bash", "-c", f"sh -c 'echo $$ > {cg}/cgroup.procs; exec {PY} {WL} hog'; exit 0"], "--name", "oom",
            check_status=0)
    res = tune(store, "oom")
    (f,) = findings(res, "oom_killed")
    assert f["evidence"]["memory_limit_bytes"] == 64 * MiB
    (rec,) = [r for r in res["recommendations"] if r["evidence"]["oom_kills"]]
    assert rec["memory_bytes"] >= 2 * 64 * MiB and "OOM" in rec["reason"]
    (task,) = [t for t in res["tasks"] if t["oom_killed"]]
    assert task["given"]["memory_bytes"] == 64 * MiB and task["given"]["memory_source"] == "task cgroup memory limit"


def test_xmx_flag_above_recommendation_warns(observe, store):
    observe([PY, WL, "alloc", "1024", "-Xmx2g"], "--name", "xmx", check_status=0)
    res = tune(store, "xmx")
    (rec,) = res["recommendations"]
    assert 1024 * MiB <= rec["evidence"]["peak_rss_bytes_max"] <= 1200 * MiB
    assert rec["memory_bytes"] < 2 * 1024 * MiB
    (w,) = rec["warnings"]
    assert "-Xmx2g" in w


def _cpu_quota_cgroup(name: str, cores: float) -> tuple[Path, Path | None]:
    """A CPU-quota cgroup: v1 cpu hierarchy on hybrid hosts, else unified."""
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        own = next(l.split(":", 2)[2] for l in Path("/proc/self/cgroup").read_text().splitlines()
                   if "cpu" in l.split(":")[1].split(","))
        d = v1 / own.lstrip("/") / name
        d.mkdir()
        (d / "cpu.cfs_period_us").write_text("100000")
        (d / "cpu.cfs_quota_us").write_text(str(int(cores * 100000)))
        return d, d
    return None, None


def test_cgroup_limits_are_what_the_task_was_given(observe, store, cgroups):
    """Both limits recorded on the process and used as the task's given resources."""
    name = f"opensre-tune-lim-{uuid.uuid4().hex[:8]}"
    mem = cgroups.make(name, limit_bytes=512 * MiB)
    cpu, made = _cpu_quota_cgroup(name, 0.5)
    try:
        move = f"echo $$ > {mem}/cgroup.procs" + (f"; echo $$ > {cpu}/cgroup.procs" if cpu else "")
        observe(["bash", "-c", f"sh -c '{move}; exec {PY} {WL} burn 0.6'; exit 0"], "--name", "lim",
                check_status=0)
    finally:
        if made:
            made.rmdir()
    res = tune(store, "lim")
    (task,) = [t for t in res["tasks"] if "tune_wl" in t["task_name"]]
    assert task["given"]["memory_bytes"] == 512 * MiB
    if cpu:
        assert task["given"]["cpus"] == 0.5 and task["given"]["cpus_source"] == "task cgroup cpu quota"
        assert task["peak_cores"] <= 0.6  # the quota held it to half a core
