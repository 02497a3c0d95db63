"""Every probe family on the running kernel, in the variant this kernel gets
(bpf/families.py), and what happens when one cannot run. `make test-kernels`
runs this tier inside older kernels too: the assertions hold on each."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import WORKLOADS, opensre_cmd
from opensre.store import Store

TRUTH = str(WORKLOADS / "truth.py")


def _run_record(store):
    s = Store(store, readonly=True)
    try:
        return s.resolve_run("latest")
    finally:
        s.close()


@pytest.mark.guest
def test_doctor_names_every_family_and_its_variant():
    p = subprocess.run(opensre_cmd() + ["doctor"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "FAIL" not in p.stdout, p.stdout
    for fam in ("lifecycle", "sched", "net", "oom", "samples"):
        assert f"] {fam}: " in p.stdout, p.stdout
    assert "tracefs" not in p.stdout  # no program needs it


@pytest.mark.guest
def test_workload_truth_with_this_kernels_variants(observe):
    """The issue's bar, on whatever kernel runs the tier: CPU within 3% or 50 ms
    of getrusage, peak RSS within 2% of VmHWM, TCP bytes within 1%."""
    obs = observe([sys.executable, TRUTH, "mixed", "200", "1.5", "32"], check_status=0)
    rep = next(json.loads(line) for line in obs.stdout.splitlines() if line.startswith("{"))
    rec = next(r for r in obs.export() if r["pid"] == rep["pid"])
    run = _run_record(obs.store)
    assert not run.degraded_probes(), run.probes  # CI's kernels run every family in full
    cpu = rec["cpu_user_ns"] + rec["cpu_system_ns"]
    if os.environ.get("OPENSRE_ACCURACY_OUT"):  # make test-kernels prints it per kernel
        with open(os.environ["OPENSRE_ACCURACY_OUT"], "w") as f:
            json.dump({"cpu": (cpu, rep["cpu_ns"]), "peak_rss": (rec["peak_rss_bytes"], rep["vmhwm_bytes"]),
                       "tcp_tx": (rec["net_tx_bytes"], rep["tcp_sent"]),
                       "tcp_rx": (rec["net_rx_bytes"], rep["tcp_received"])}, f)
    assert abs(cpu - rep["cpu_ns"]) <= max(0.03 * rep["cpu_ns"], 50e6), (cpu, rep["cpu_ns"])
    assert rep["vmhwm_bytes"] > 200 << 20
    assert abs(rec["peak_rss_bytes"] - rep["vmhwm_bytes"]) <= 0.02 * rep["vmhwm_bytes"], \
        (rec["peak_rss_bytes"], rep["vmhwm_bytes"])
    assert rep["tcp_sent"] == rep["tcp_received"] == 32 << 20
    assert abs(rec["net_tx_bytes"] - rep["tcp_sent"]) <= 0.01 * rep["tcp_sent"], rec["net_tx_bytes"]
    assert abs(rec["net_rx_bytes"] - rep["tcp_received"]) <= 0.01 * rep["tcp_received"], rec["net_rx_bytes"]


@pytest.mark.guest
def test_sched_variant_for_kernels_before_5_18(observe, tmp_path):
    """The sched_switch variant that reads the task's state (for kernels whose
    tracepoint has no prev_state) measures the same blocked time."""
    env = dict(os.environ, OPENSRE_VARIANTS="sched:state")
    obs = observe([sys.executable, TRUTH, "io", str(tmp_path), "32"], env=env, check_status=0)
    run = _run_record(obs.store)
    assert run.probes["sched"] == "tp_btf/sched_switch (task state field)", run.probes
    (rec,) = [r for r in obs.export() if r["comm"].startswith("python")]
    assert rec["blocked_io_ns"] > 0  # fsync of 32 MiB blocks in D


@pytest.mark.guest
def test_a_missing_family_is_said_and_recorded_not_zeroed(observe):
    """Connections only (no sock_*_length tracepoints, no trampolines): the run
    goes on, says what it lacks, and stores no per-process bytes rather than 0."""
    env = dict(os.environ, OPENSRE_VARIANTS="net:conns")
    obs = observe([sys.executable, TRUTH, "mixed", "10", "0.1", "4"], env=env, check_status=0)
    run = _run_record(obs.store)
    assert "without per-process bytes" in run.degraded_probes()["net"]
    assert "probes     net: inet_sock_set_state (without per-process bytes" in obs.stderr, obs.stderr
    rec = next(r for r in obs.export() if r["comm"].startswith("python"))
    assert rec["net_tx_bytes"] is None and rec["net_rx_bytes"] is None
    conns = [e for e in obs.export("events") if e["kind"] == "tcp_connection"]
    assert conns and max(e["bytes_sent"] or 0 for e in conns) >= 4 << 20  # the TCP totals stay


def test_unavailable_family_continues_unless_required(observe):
    env = dict(os.environ, OPENSRE_VARIANTS="oom:nonexistent")
    obs = observe(["true"], env=env, check_status=0)
    run = _run_record(obs.store)
    assert run.probes["oom"].startswith("unavailable: variant 'nonexistent'"), run.probes
    assert "probes     oom: unavailable" in obs.stderr
    req = observe(["touch", str(obs.store) + ".ran"], "--require", "oom", env=env)
    assert req.returncode == 1, req.stderr
    assert "oom probes unavailable" in req.stderr and "Traceback" not in req.stderr
    assert not os.path.exists(str(obs.store) + ".ran")  # nothing ran without the asked-for probes


def test_doctor_names_the_family_that_cannot_load():
    env = dict(os.environ, OPENSRE_VARIANTS="net:nonexistent")
    p = subprocess.run(opensre_cmd() + ["doctor"], capture_output=True, text=True, env=env)
    assert p.returncode != 0
    assert "[FAIL] net: variant 'nonexistent'" in p.stdout, p.stdout
    assert "[ok  ] oom:" in p.stdout  # the others are still checked


@pytest.mark.parametrize("flag", ["--no-net"])
def test_require_contradicting_no_is_a_usage_error(observe, flag):
    obs = observe(["true"], flag, "--require", "net")
    assert obs.returncode == 2 and "contradicts" in obs.stderr and "Traceback" not in obs.stderr


@pytest.mark.guest
def test_lifecycle_without_trampolines_keeps_the_peak(observe):
    """Where fentry is not allowed, the variant without it still gets a program's
    exact peak from maxrss when the program outgrew its pre-exec image."""
    env = dict(os.environ, OPENSRE_VARIANTS="lifecycle:tp")
    obs = observe([sys.executable, TRUTH, "mem", "200"], env=env, check_status=0)
    rep = next(json.loads(line) for line in obs.stdout.splitlines() if line.startswith("{"))
    rec = next(r for r in obs.export() if r["pid"] == rep["pid"])
    assert abs(rec["peak_rss_bytes"] - rep["vmhwm_bytes"]) <= 0.02 * rep["vmhwm_bytes"], \
        (rec["peak_rss_bytes"], rep["vmhwm_bytes"])


@pytest.mark.guest
def test_thread_state_is_never_allocated_under_the_runqueue_lock():
    """Where task storage still allocates with kmalloc (before 6.4: its map has no
    `bpf_ma`, as bpftool reads the kernel's BTF), the per-thread state that
    sched_switch creates lives in the preallocated hash; elsewhere in task storage."""
    dump = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                          capture_output=True, text=True, check=True).stdout
    body = dump[dump.index("struct bpf_local_storage_map {"):]
    kmalloc = "bpf_ma;" not in body[:body.index("};")]
    p = subprocess.run(opensre_cmd() + ["doctor"], capture_output=True, text=True)
    (line,) = [x for x in p.stdout.splitlines() if "] lifecycle: " in x]
    assert ("thread state in a hash map (task storage allocates with kmalloc before 6.4)" in line) == kmalloc, line
    assert ("thread state in a hash map" in line) == kmalloc, line


@pytest.mark.guest
def test_thread_state_without_task_storage(observe, tmp_path):
    """Before 5.11 (no task storage) per-thread state lives in a hash by tid:
    the blocked time it feeds is measured the same, for every thread."""
    env = dict(os.environ, OPENSRE_VARIANTS="tstate:hash")
    obs = observe([sys.executable, TRUTH, "threads", "3", str(tmp_path)], env=env, check_status=0)
    run = _run_record(obs.store)
    assert "thread state in a hash map" in run.probes["lifecycle"], run.probes
    (rec,) = [r for r in obs.export() if r["comm"].startswith("python")]
    assert rec["threads"] == 4 and rec["blocked_io_ns"] > 0  # each thread fsyncs 1 MiB
    obs2 = observe([sys.executable, TRUTH, "io", str(tmp_path), "16"], env=env, check_status=0)
    (rec2,) = [r for r in obs2.export(run="latest") if r["comm"].startswith("python")]
    assert rec2["blocked_io_ns"] > 0
