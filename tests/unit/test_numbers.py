"""Numbers you can trust: peak cores, a task's concurrent memory and the run's exit
status, on synthetic stores whose truth is known by construction (the kernel
tests in tests/kernel/test_numbers.py check the same on real workloads)."""

from __future__ import annotations

import json

from opensre.analysis import tune
from opensre.analysis.facts import _progress, cpu_capacity
from opensre.correlate import correlate_run
from opensre.model import Exec, Host, Process, Run, Sample
from opensre.store import Store

S = 1_000_000_000
MS = 1_000_000
MiB = 1 << 20
T0 = 1_700_000_000 * S  # the run's start


def proc(pid, ppid, start, end, argv, *, cpu=0, peak=3 * MiB, exit_code=0, exit_signal=None, **kw) -> Process:
    return Process(pid=pid, start_time_ns=start, ppid=ppid, parent_start_time_ns=None, argv=argv, exe=argv[0],
                   comm=argv[0].rsplit("/", 1)[-1][:15], exec_count=1, complete=True, end_time_ns=end,
                   cpu_user_ns=cpu, cpu_system_ns=0, oncpu_ns=cpu, peak_rss_bytes=peak, exit_code=exit_code,
                   exit_signal=exit_signal, threads=1, **kw)


def sample(p: Process, t, cpu, rss) -> Sample:
    return Sample(p.pid, p.start_time_ns, t, cpu, rss, 0, 0, 0, 0, 0, 0, 0)


def make_store(tmp_path, name, cpus, procs, samples, *, exit_code=0, exit_signal=None, end=None):
    st = Store(tmp_path / f"{name}.sqlite")
    st.put_host(Host("h" + name, "vm", cpus=cpus, mem_bytes=64 << 30))
    run = Run(name, None, "run", "h" + name, command=["make"], start_time_ns=T0,
              end_time_ns=end or max(p.end_time_ns for p in procs), status="finished", exit_code=exit_code,
              exit_signal=exit_signal, root_pid=procs[0].pid, sample_interval_s=1.0)
    st.put_run(run)
    st.put_batch(name, procs, [Exec(p.pid, p.start_time_ns, p.start_time_ns, p.exe, p.argv, False, "/") for p in procs],
                 samples=samples)
    correlate_run(st, name)
    return st


def burners(n, rate, argv, *, final_dt=5 * MS, final_rate=1.0):
    """make -> sh (recipe) -> n workers, each at `rate` cores for 3 s, sampled every
    second; each exits `final_dt` after the last tick, on a core all that time
    (what made the 50 ms buckets count it twice). The truth: n x rate cores per second."""
    end = T0 + 3 * S + final_dt
    procs = [proc(10, 1, T0, end + MS, ["/usr/bin/make"]), proc(11, 10, T0 + MS, end + MS, ["/bin/sh", "-c", "x"])]
    samples = []
    for i in range(n):
        p = proc(20 + i, 11, T0 + 2 * MS, end, argv, cpu=0)
        for k in (1, 2, 3):
            samples.append(sample(p, T0 + k * S, int(rate * (S - (2 * MS if k == 1 else 0))), 5 * MiB))
        samples.append(sample(p, end, int(final_rate * final_dt), 5 * MiB))
        p.cpu_user_ns = p.oncpu_ns = sum(s.cpu_ns for s in samples if s.pid == p.pid)
        procs.append(p)
    return procs, samples


def task(res, name_has):
    (t,) = [t for t in res.tasks if name_has in t.task_name]
    return t


def test_peak_cores_never_above_the_host(tmp_path):
    # 5 workers at 0.4 cores = 2.0 cores on a 2-CPU host; per-process rates summed
    # into 50 ms buckets said 5 x (0.4 + 1.0) = 7.0
    procs, samples = burners(5, 0.4, ["/usr/bin/burn"])
    st = make_store(tmp_path, "a", 2, procs, samples)
    res = tune(st, ["a"])
    t = task(res, "burn")
    assert 1.9 <= t.peak_cores <= 2.0, t.peak_cores
    assert t.cpu_capacity == 2.0
    (rec,) = [r for r in res.recommendations if "burn" in r.task_type]
    assert rec.evidence["peak_cores_max"] <= 2.0


def test_overallocated_cpu_found_once_peaks_are_true(tmp_path):
    # asked for 8 threads on a 16-CPU host, used 2 cores: over-allocated (the inflated
    # 7.0 peak hid it behind the "peak <= half of given" rule)
    procs, samples = burners(5, 0.4, ["/usr/bin/burn", "--threads", "8"])
    st = make_store(tmp_path, "b", 16, procs, samples)
    res = tune(st, ["b"])
    t = task(res, "burn")
    assert 1.9 <= t.peak_cores <= 2.05 and t.given.cpus == 8
    assert any(f.classification == "overallocated_cpu" for f in res.findings if f.task_id == t.task_id)


def test_peak_cores_capped_by_quota_and_cpuset():
    assert cpu_capacity({"cgroups": [{"cpu_limit_cores": 0.5, "cpuset_cpus": 4}]}, Host("h", "", cpus=8)) == 0.5
    assert cpu_capacity({"cgroups": [{"cpu_limit_cores": None, "cpuset_cpus": 3}]}, Host("h", "", cpus=8)) == 3
    # one cgroup without a limit: the host
    assert cpu_capacity({"cgroups": [{"cpu_limit_cores": 1, "cpuset_cpus": None},
                                     {"cpu_limit_cores": None, "cpuset_cpus": None}]}, Host("h", "", cpus=8)) == 8
    # a row spanning two seconds spreads evenly: 2 s of CPU over 2 s is one core, not two
    rows = [("t", 1, 0, 2 * S, 2 * S, 0)]
    peak, _ = _progress(rows, {"t": (0, 2 * S)})
    assert abs(peak["t"] - 1.0) < 1e-9


def _mem_store(tmp_path, name, concurrent: bool):
    """make -> sh -> four python processes holding 100 MiB each (resident at each
    tick, kernel high-water mark 101 MiB), at once or one after another, plus one
    short process (50 MiB) that lived within a tick, during the first python's life."""
    procs = [proc(10, 1, T0, T0 + 10 * S, ["/usr/bin/make"]), proc(11, 10, T0 + MS, T0 + 10 * S, ["/bin/sh", "-c", "x"])]
    samples = [sample(procs[1], T0 + S, 1000, 3 * MiB)]
    for i in range(4):
        start = T0 + 10 * MS + (0 if concurrent else i * 2 * S)
        p = proc(20 + i, 11, start, start + 1_500 * MS, ["/usr/bin/python3", "-c", "alloc"], peak=101 * MiB)
        samples += [sample(p, start + 500 * MS, 10 * MS, 100 * MiB), sample(p, start + 1_500 * MS, 10 * MS, 0)]
        procs.append(p)
    procs.append(proc(40, 11, T0 + 200 * MS, T0 + 300 * MS, ["/usr/bin/cat"], peak=50 * MiB))
    return make_store(tmp_path, name, 2, procs, samples)


def test_memory_is_the_concurrent_footprint(tmp_path):
    st = _mem_store(tmp_path, "m", True)
    (t,) = [t for t in st.tasks("m") if t.kind == "task"]
    # the truth by construction: 4 x 100..101 MiB + the shell's 3 + cat's 50, all live at once
    assert 453 * MiB <= t.memory_peak_bytes <= 457 * MiB, t.memory_peak_bytes / MiB
    assert t.peak_rss_bytes == 101 * MiB  # still the largest single process
    res = tune(st, ["m"])
    (rec,) = [r for r in res.recommendations]
    assert rec.memory_bytes >= 420 * MiB and rec.evidence["memory_peak_bytes_max"] == t.memory_peak_bytes
    # exported and shown
    from opensre.cli.main import main

    st.close()
    out = tmp_path / "tasks.jsonl"
    assert main(["export", "--store", str(tmp_path / "m.sqlite"), "--run", "m", "--what", "tasks",
                 "-o", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert max(r["memory_peak_bytes"] for r in rows) == t.memory_peak_bytes


def test_memory_of_sequential_processes_is_not_summed(tmp_path):
    st = _mem_store(tmp_path, "q", False)
    (t,) = [t for t in st.tasks("q") if t.kind == "task"]
    # one python at a time (+ the shell, + cat during the first): 101 + 3 + 50 at most
    assert 101 * MiB <= t.memory_peak_bytes <= 155 * MiB, t.memory_peak_bytes / MiB


def test_run_root_exit_status_on_its_task(tmp_path):
    # bash -c 'sleep 0.1; exit 4': bash is the run's root and the engine task's root
    procs = [proc(10, 1, T0, T0 + 200 * MS, ["/bin/bash", "-c", "sleep 0.1; exit 4"], exit_code=4),
             proc(11, 10, T0 + MS, T0 + 150 * MS, ["/bin/sleep", "0.1"])]
    st = make_store(tmp_path, "x", 2, procs, [], exit_code=4)
    (root,) = [t for t in st.tasks("x") if t.root_pid == 10]
    assert (root.exit_code, root.exit_signal) == (4, None)
    res = tune(st, ["x"])
    assert res.to_json()["runs"] == [{"run_id": "x", "status": "finished", "exit_code": 4, "exit_signal": None,
                                     "failed": True}]
    # a root whose record lacks the status (killed collector state): the reaped wait status stands
    procs = [proc(10, 1, T0, T0 + 200 * MS, ["/bin/bash", "-c", "kill -TERM $$"], exit_code=None),
             proc(11, 10, T0 + MS, T0 + 150 * MS, ["/bin/sleep", "0.1"])]
    st = make_store(tmp_path, "y", 2, procs, [], exit_code=None, exit_signal=15)
    (root,) = [t for t in st.tasks("y") if t.root_pid == 10]
    assert (root.exit_code, root.exit_signal) == (None, 15)
