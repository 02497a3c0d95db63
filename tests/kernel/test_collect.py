"""Host-wide `opensre collect`: new processes fully observed, processes already
running flagged `observed_since_ns`, denylisted ones and the collector absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

from conftest import opensre_cmd


def export(store):
    out = subprocess.run(opensre_cmd() + ["export", "--store", str(store)], capture_output=True, text=True, check=True)
    return [json.loads(l) for l in out.stdout.splitlines()]


def test_host_wide_collection(store, tmp_path):
    marker = uuid.uuid4().hex[:10]
    # running before collection starts
    early = subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", marker])
    col = subprocess.Popen(opensre_cmd() + ["collect", "--store", str(store), "--deny", "cat"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = col.stderr.readline()
        assert "collecting host-wide" in line, line + col.stderr.read()
        subprocess.run(["bash", "-c", f"/bin/echo {marker} >/dev/null; cat /dev/null; sh -c 'exit 3' {marker}"])
        early.kill()
        early.wait()
        time.sleep(1.0)
    finally:
        col.send_signal(signal.SIGINT)
        _, err = col.communicate(timeout=30)
    assert col.returncode == 0, err
    recs = export(store)
    mine = [r for r in recs if marker in " ".join(r["argv"])]
    echo = next(r for r in mine if r["comm"] == "echo")
    assert echo["complete"] and echo["observed_since_ns"] is None and echo["exit_code"] == 0
    sh = next(r for r in mine if r["comm"] == "sh")
    assert sh["exit_code"] == 3
    sleeper = next(r for r in mine if r["comm"].startswith("python"))
    assert sleeper["pid"] == early.pid and sleeper["observed_since_ns"] is not None
    assert sleeper["complete"] and sleeper["exit_signal"] == signal.SIGKILL
    assert not [r for r in recs if r["comm"] == "cat" and r["ppid"] == sh["ppid"]]  # denied
    assert not [r for r in recs if r["pid"] == col.pid]  # never ourselves
    assert "drops      0" in err


BURN = "import sys, time\nt = time.monotonic()\nwhile time.monotonic() - t < float(sys.argv[1]): pass"


def _cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def test_collection_counts_its_window_only(store):
    """Processes already running when a collection starts: their records and
    samples hold what they did inside the window (not since they started), and one
    still running at the end has its counters up to the end, not none."""
    marker = uuid.uuid4().hex[:10]
    long = subprocess.Popen(["python3", "-c", BURN, "60", marker])   # outlives the collection
    short = subprocess.Popen(["python3", "-c", BURN, "5", marker])   # exits inside it
    try:
        time.sleep(2)  # both have CPU of their own before the window
        col = subprocess.Popen(opensre_cmd() + ["collect", "--store", str(store), "--interval", "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = col.stderr.readline()
        assert "collecting host-wide" in line, line + col.stderr.read()
        at_start = _cpu_ns(long.pid), time.time_ns()
        short.wait()
        time.sleep(1.5)
        at_stop = _cpu_ns(long.pid)
        col.send_signal(signal.SIGINT)
        _, err = col.communicate(timeout=30)
        at_end = _cpu_ns(long.pid), time.time_ns()
    finally:
        long.kill()
        short.kill()
    assert col.returncode == 0, err
    recs = {r["pid"]: r for r in export(store)}
    lr, sr = recs[long.pid], recs[short.pid]
    assert lr["observed_since_ns"] and sr["observed_since_ns"]
    # the long burner: its CPU inside the window as the kernel counts it, never its
    # CPU before. The baseline is taken before the "collecting" line, the last
    # sample after SIGINT: at least the CPU between those two readings, at most up
    # to the collector's exit (plus the moment between baseline and line)
    lcpu = lr["cpu_user_ns"] + lr["cpu_system_ns"]
    assert not lr["complete"] and lr["end_time_ns"] is None
    lo, hi = at_stop - at_start[0] - 20_000_000, at_end[0] - at_start[0] + 300_000_000
    assert lo <= lcpu <= hi, (lo, lcpu, hi)
    # the short one ran ~5 s, ~3 of them inside the window
    scpu = sr["cpu_user_ns"] + sr["cpu_system_ns"]
    assert sr["complete"] and scpu < 4.2e9, scpu
    # the series sums to the records and no interval holds more than one CPU's time
    samples = [json.loads(x) for x in subprocess.run(
        opensre_cmd() + ["export", "--store", str(store), "--what", "samples"], capture_output=True,
        text=True).stdout.splitlines()]
    for pid, cpu in ((long.pid, lcpu), (short.pid, scpu)):
        mine = [s for s in samples if s["pid"] == pid]
        assert abs(sum(s["cpu_ns"] for s in mine) - cpu) <= 1_000_000, pid
        assert max(s["cpu_ns"] for s in mine) <= 0.6e9, [s["cpu_ns"] for s in mine]  # 0.5 s ticks, one thread


def test_doctor_all_ok():
    p = subprocess.run(opensre_cmd() + ["doctor"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    for obj in ("proc", "sched", "net", "oom", "iter"):  # every probe family loads and attaches
        assert f"{obj}.bpf.o, " in p.stdout, p.stdout
    assert "[FAIL]" not in p.stdout


def test_doctor_without_privileges_says_what_to_do():
    p = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", *opensre_cmd(), "doctor"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "[FAIL] privileges" in p.stdout and "fix: run with sudo" in p.stdout


def test_run_records_its_sampling_interval(observe, store):
    from opensre.store import Store

    observe(["sleep", "0.3"], "--name", "iv", "--interval", "0.2", check_status=0)
    observe(["true"], "--name", "nos", "--no-samples", check_status=0)
    s = Store(store, readonly=True)
    assert s.resolve_run("iv").sample_interval_s == 0.2
    assert s.resolve_run("nos").sample_interval_s is None  # no series, no resolution
