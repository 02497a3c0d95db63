"""`opensre top` in a real pseudo-terminal (tmux) beside a live `opensre run`:
the running tasks and their tools appear with CPU, and the screen is redrawn in
place (the same rows, new figures), not scrolled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from conftest import WORKLOADS, opensre_cmd

PY = os.path.realpath(sys.executable)
WL = str(WORKLOADS / "tune_wl.py")


def _tmux(sock: str, *args: str, check=True) -> str:
    # a private server (-L) without user config: no other session can resize our window
    return subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", *args], capture_output=True, text=True,
                          check=check).stdout


def _cpus(screen: str) -> list[float]:
    """The CPU column of the rows running our workload."""
    out = []
    for line in screen.splitlines():
        cells = line.split("│")
        if "tune_wl" in line and len(cells) >= 9:
            try:
                out.append(float(cells[4]))
            except ValueError:
                pass  # a row being redrawn
    return out


def test_top_shows_running_tasks_live(store):
    run = subprocess.Popen(opensre_cmd() + ["run", "-q", "--store", str(store), "--name", "livetop", "--",
                                            "bash", "-c", f"{PY} {WL} burn 8 & {PY} {WL} sleep 9 & wait"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sock = f"opensre-top-{uuid.uuid4().hex[:6]}"
    top = " ".join(opensre_cmd() + ["top", "--store", str(store), "--interval", "0.5"])
    # a detached server may start at 80x24 with COLUMNS/LINES set: size the window, drop the variables
    _tmux(sock, "new-session", "-d", "-s", "top", "-x", "150", "-y", "30",
          f"sleep 0.3; env -u COLUMNS -u LINES PYTHONPATH={os.pathsep.join(sys.path)} {top}")
    _tmux(sock, "set-option", "-t", "top", "window-size", "manual")
    _tmux(sock, "resize-window", "-t", "top", "-x", "150", "-y", "30")
    try:
        deadline, screen = time.monotonic() + 20, ""
        while time.monotonic() < deadline:
            screen = _tmux(sock, "capture-pane", "-p", "-t", "top")
            cpus = _cpus(screen)
            # the sleeper's interpreter start-up costs CPU for a tick on a slow machine
            if "livetop" in screen and len(cpus) == 2 and max(cpus) > 0.5 and min(cpus) < 0.1:
                break
            time.sleep(0.3)
        assert "livetop" in screen and len(_cpus(screen)) == 2, screen
        assert max(_cpus(screen)) > 0.5 and min(_cpus(screen)) < 0.1, screen  # the burner ~1 core, the sleeper ~0
        first = screen
        time.sleep(1.5)
        second = _tmux(sock, "capture-pane", "-p", "-t", "top")
        # redrawn in place: the header stays on the first line, the figures change
        assert second.splitlines()[0] == first.splitlines()[0] and second != first
        assert second.count("livetop") == 1
    finally:
        _tmux(sock, "kill-server", check=False)
        run.wait(timeout=60)
    assert run.returncode == 0, run.stderr
    assert not any((store.parent / (store.name + ".live")).glob("*.json"))  # removed when the run ended


POOL = """import multiprocessing as mp, time
def burn(s):
    t = time.monotonic()
    while time.monotonic() - t < s: pass
if __name__ == "__main__":
    with mp.Pool(2) as p: p.map(burn, [10, 10])
"""


def _children(pid: int) -> list[int]:
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def _cpu_s(pids: list[int]) -> float:
    tot = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tot += int(fields[11]) + int(fields[12])  # utime, stime
    return tot / os.sysconf("SC_CLK_TCK")


def test_top_json_counts_forked_workers_in_their_task(store, tmp_path):
    """A multiprocessing Pool(2): its workers never exec; `top --once --format json`
    shows them in the one task of the run, at the CPU the kernel charged them."""
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    run = subprocess.Popen(opensre_cmd() + ["run", "-q", "--store", str(store), "--", PY, str(script)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        pids: list[int] = []
        while time.monotonic() < deadline and len(pids) < 3:
            time.sleep(0.2)
            roots = _children(run.pid)
            pids = roots + [w for r in roots for w in _children(r)] if roots else []
        assert len(pids) == 3, pids  # the pool's parent and its two workers
        time.sleep(1)  # past the interpreters' start-up
        t0, c0 = time.monotonic(), _cpu_s(pids)
        top = subprocess.run(opensre_cmd() + ["top", "--once", "--format", "json", "--interval", "4",
                                              "--store", str(store)], capture_output=True, text=True, timeout=30)
        truth = (_cpu_s(pids) - c0) / (time.monotonic() - t0)
    finally:
        run.wait(timeout=60)
    assert top.returncode == 0, top.stderr
    (live,) = json.loads(top.stdout)["runs"]
    assert live["processes"] == 3
    (task,) = live["tasks"]  # one task: the workers are the parent's
    assert task["processes"] == 3 and set(task) >= {"task_id", "name", "cpu_cores", "rss_bytes"}
    # the kernel's charge over a window around top's 4 s (1.2+ cores on an idle 2-CPU host;
    # the window is top's start-up longer, which a busy host makes the bound's 20%)
    assert abs(task["cpu_cores"] - truth) <= 0.2 * truth + 0.1, (task["cpu_cores"], truth)
    assert live["cpu_cores"] == task["cpu_cores"] and task["rss_bytes"] > 3 * (5 << 20)
    assert run.returncode == 0, run.stderr


SMK = """rule all:
    input: "a.done", "b.done"
rule job:
    output: "{{x}}.done"
    shell: "{py} {burn} 6 {{output}}"
"""


def test_top_sees_snakemake_jobs_whose_shell_execd_their_command(store, tmp_path):
    """A Snakemake job's `bash -c "set -euo pipefail; CMD"` execs CMD when it is the
    only command: the live view still knows it for a job (its first argv), as a
    stored run does, instead of folding it into the engine."""
    (tmp_path / "burn.py").write_text("import sys, time\nt = time.monotonic()\n"
                                      "while time.monotonic() - t < float(sys.argv[1]): pass\n"
                                      "open(sys.argv[2], 'w').close()\n")
    (tmp_path / "Snakefile").write_text(SMK.format(py=PY, burn=tmp_path / "burn.py"))
    smk = os.path.join(os.path.dirname(sys.executable), "snakemake")
    run = subprocess.Popen(opensre_cmd() + ["run", "-q", "--store", str(store), "--", smk, "--cores", "2", "-q",
                                            "-d", str(tmp_path), "-s", str(tmp_path / "Snakefile")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, jobs = time.monotonic() + 30, []
        while time.monotonic() < deadline and len([t for t in jobs if t["engine"] == "snakemake"]) < 2:
            top = subprocess.run(opensre_cmd() + ["top", "--once", "--format", "json", "--interval", "0.5",
                                                  "--store", str(store)], capture_output=True, text=True, timeout=30)
            assert top.returncode == 0, top.stderr
            runs = json.loads(top.stdout)["runs"]
            jobs = [t for r in runs for t in r["tasks"] if t["kind"] == "task"]
    finally:
        run.wait(timeout=60)
    assert len(jobs) == 2, runs
    assert all(t["engine"] == "snakemake" and "burn" in t["tools"] for t in jobs), jobs  # not a generic guess
    assert run.returncode == 0, run.stderr
