"""`opensre top` in a real pseudo-terminal (tmux) beside a live `opensre run`:
the running tasks and their tools appear with CPU, and the screen is redrawn in
place (the same rows, new figures), not scrolled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from conftest import WORKLOADS, opensre_cmd

PY = os.path.realpath(sys.executable)
WL = str(WORKLOADS / "tune_wl.py")


def _pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def test_top_shows_running_tasks_live(store, tmp_path):
    run = subprocess.Popen(opensre_cmd() + ["run", "-q", "--store", str(store), "--name", "livetop", "--",
                                            "bash", "-c", f"{PY} {WL} burn 8 & {PY} {WL} sleep 9 & wait"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    session = f"opensre-top-{uuid.uuid4().hex[:6]}"
    top = " ".join(opensre_cmd() + ["top", "--store", str(store), "--interval", "0.5"])
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "30",
                    f"env PYTHONPATH={os.pathsep.join(sys.path)} {top}"], check=True)
    try:
        def cpus(screen: str) -> list[float]:  # the CPU column of the rows running our workload
            return [float(l.split("│")[4]) for l in screen.splitlines() if "tune_wl" in l and l.count("│") >= 8]

        deadline, screen = time.monotonic() + 20, ""
        while time.monotonic() < deadline:
            screen = _pane(session)
            if "livetop" in screen and max(cpus(screen), default=0) > 0.5:
                break
            time.sleep(0.3)
        assert "livetop" in screen and len(cpus(screen)) == 2, screen
        assert max(cpus(screen)) > 0.5 and min(cpus(screen)) < 0.1, screen  # the burner ~1 core, the sleeper ~0
        first = screen
        time.sleep(1.5)
        second = _pane(session)
        # redrawn in place: the header stays on the first line, the figures change
        assert second.splitlines()[0] == first.splitlines()[0] and second != first
        assert second.count("livetop") == 1
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        run.wait(timeout=60)
    assert run.returncode == 0, run.stderr
    assert not any((store.parent / (store.name + ".live")).glob("*.json"))  # removed when the run ended
