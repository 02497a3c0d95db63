"""Host-wide `opensre collect`: new processes fully observed, processes already
running flagged `observed_since_ns`, denylisted ones and the collector absent."""

from __future__ import annotations

import json
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
