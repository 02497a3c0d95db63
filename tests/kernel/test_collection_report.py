"""The report of a host-wide collection: its window (not the lifetime of what was
already running), its figures as the CLI states them, host series, and a row per
detected run linked to that run's own report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from conftest import opensre_cmd

BURN = "import sys, time\nt = time.monotonic()\nwhile time.monotonic() - t < float(sys.argv[1]): pass"


def _page_data(path) -> dict:
    page = path.read_text()
    return json.loads(page.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0])


def test_collection_report_shows_its_window_and_detected_runs(store, tmp_path):
    early = subprocess.Popen(["python3", "-c", BURN, "60"])  # busy long before the collection
    (tmp_path / "burn.py").write_text("import sys, time\nwhile time.process_time() < float(sys.argv[1]): pass")
    mk = tmp_path / "Makefile"
    mk.write_text("all:\n\tpython3 burn.py 1\n")
    try:
        time.sleep(3)
        col = subprocess.Popen(opensre_cmd() + ["collect", "--store", str(store), "--name", "hw", "--interval",
                                                "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = col.stderr.readline()
        assert "collecting host-wide" in line, line + col.stderr.read()
        subprocess.run(["make", "-s", "-f", str(mk)], check=True, cwd=tmp_path)
        time.sleep(1)
        col.send_signal(signal.SIGINT)
        _, err = col.communicate(timeout=60)
    finally:
        early.kill()
    assert col.returncode == 0, err
    out = tmp_path / "hw.html"
    r = subprocess.run(opensre_cmd() + ["report", "hw", "--store", str(store), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = _page_data(out)
    h = d["header"]
    # the window the CLI stated: "wall 5.12s" and "N cores on average" from the summary
    wall_cli = float(err.split(", wall ", 1)[1].split("s", 1)[0])
    assert abs(h["wall_ns"] / 1e9 - wall_cli) <= 0.02, (h["wall_ns"], wall_cli)
    cores_cli = float(err.split(" cores on average")[0].rsplit(", ", 1)[1])
    assert abs(h["cpu_ns"] / h["wall_ns"] - cores_cli) <= 0.01, (h["cpu_ns"] / h["wall_ns"], cores_cli)
    ncpu = os.cpu_count()
    assert h["cpu_ns"] / h["wall_ns"] <= ncpu
    # no chart point above what the host has (the early burner's past is not in it;
    # before, its first sample put its whole life into one interval). 10%: a point
    # averages the passes around it, each stamped a few ms off its read on a busy host
    rs = d["run_series"]
    assert max(rs["cpu"]) <= ncpu * 1.1, max(rs["cpu"])
    assert any(v for v in rs["host_cpu"]) and max(v or 0 for v in rs["host_cpu"]) <= ncpu * 1.01
    assert any(v for v in rs["host_mem"])
    # rows: the detected make run, linked to its own page, and the rest
    tasks = [dict(zip(d["task_cols"], t)) for t in d["tasks"]]
    (mk_row,) = [t for t in tasks if t["engine"] == "run" and t["name"].startswith("make: make -s -f ")]
    assert mk_row["href"] and h["detected_runs"] >= 1
    assert mk_row["cpu"] >= 0.95e6  # its recipe burned 1 s of CPU (µs in the page)
    own = tmp_path / mk_row["href"]
    assert own.is_file() and _page_data(own)["header"]["run_id"] == mk_row["id"]
    (rest,) = [t for t in tasks if t["id"] == "unattributed"]
    assert rest["start"] >= 0 and rest["kind"] == "engine"
    assert abs(sum(t["cpu"] for t in tasks) - h["cpu_ns"] / 1000) <= len(tasks) + 1
