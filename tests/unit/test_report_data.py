"""The HTML report's data preparation (no browser, no root): downsampling keeps the
totals, caps keep the rows that matter and say so, the comparison lines up task
types, and the page is one file with nothing to fetch. The store is filled through
its API, as the collector and correlation would."""

from __future__ import annotations

import json
import re

import pytest

from opensre.cli.main import main
from opensre.model import Event, Host, Process, Run, Sample, Task, ToolUse
from opensre.report.html import (F_FAILED, F_OOM, SERIES_COLS, ReportLimits, bucket_plan, compare_rows, downsample,
                                 render_html, report_data, task_type, write_report)
from opensre.store import Store

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def _proc(pid, start, end, task, *, ppid=1, pstart=None, cpu=S, rss=10 << 20, code=0, oom=False, argv=None):
    return Process(pid=pid, start_time_ns=start, end_time_ns=end, ppid=ppid, parent_start_time_ns=pstart,
                   exe=f"/usr/bin/{(argv or ['tool'])[0]}", comm=(argv or ["tool"])[0], argv=argv or ["tool", str(pid)],
                   exit_code=code, cpu_user_ns=cpu, cpu_system_ns=0, peak_rss_bytes=rss, read_bytes=1000,
                   write_bytes=2000, complete=True, exec_count=1, oom_killed=oom, task_id=task)


def _store(tmp_path, n_tasks=3, procs_per_task=4, run_id="r1", name="pipe", samples=True, fail_task=None):
    """A run of n_tasks tasks, each a shell with tool children that sample every second."""
    st = Store(tmp_path / "s.sqlite")
    st.put_host(Host("h", "box", cpus=4, mem_bytes=8 << 30))
    procs, smp, tasks, tools, task_of = [], [], [], [], {}
    pid = 100
    for k in range(n_tasks):
        tid = f"t{k + 1:04d}"
        start = T0 + k * 10 * S
        sh = _proc(pid, start, start + 8 * S, tid, argv=["bash", "-c", "work"], cpu=S // 100)
        procs.append(sh)
        members = [sh]
        pid += 1
        for j in range(procs_per_task - 1):
            failing = fail_task == k and j == 0
            p = _proc(pid, start + S // 2, start + 7 * S + S // 2, tid, ppid=sh.pid, pstart=sh.start_time_ns,
                      cpu=6 * S, rss=(100 + j) << 20, code=1 if failing else 0, oom=failing, argv=["align", f"s{k}"])
            procs.append(p)
            members.append(p)
            tools.append(ToolUse(run_id, tid, "align", None, p.pid, p.start_time_ns, p.end_time_ns, cpu_ns=p.cpu_ns,
                                 peak_rss_bytes=p.peak_rss_bytes, exit_code=p.exit_code))
            if samples:  # one core busy for 6 of its 7 seconds, then its exit sample
                for i in range(1, 8):
                    t = start + S // 2 + i * S
                    smp.append(Sample(p.pid, p.start_time_ns, t, S if i <= 6 else 0, (50 + 10 * i) << 20, 0, 0, 0, 0,
                                      S // 10, 0, 0))
            pid += 1
        for m in members:
            task_of[(m.pid, m.start_time_ns)] = tid
        tasks.append(Task(run_id, tid, f"align [{k:02x}/abcdef]", "nextflow", start, start + 8 * S,
                          process_count=len(members), cpu_ns=sum(m.cpu_ns for m in members),
                          peak_rss_bytes=max(m.peak_rss_bytes for m in members), exit_code=0,
                          oom_killed=any(m.oom_killed for m in members), tools=["align"], root_pid=sh.pid,
                          root_start_time_ns=sh.start_time_ns))
    run = Run(run_id=run_id, name=name, mode="run", host_id="h", command=["nextflow", "run", "x.nf"], start_time_ns=T0,
              end_time_ns=T0 + n_tasks * 10 * S, status="finished", exit_code=0, process_count=len(procs))
    st.put_run(run)
    victim = [p for p in procs if p.oom_killed]
    events = [Event("oom_kill", p.pid, p.start_time_ns, p.end_time_ns,
                    {"comm": "align", "rss_bytes": 1 << 30, "memcg_limit_bytes": 2 << 30}) for p in victim]
    st.put_batch(run_id, procs, samples=smp, events=events)
    st.put_correlation(run_id, tasks, tools, task_of)
    return st, run


def test_bucket_plan_caps_points():
    assert bucket_plan(0, 10 * S, S, 240) == (S, 10)
    w, n = bucket_plan(0, 3600 * S, S, 240)
    assert n <= 240 and w * n >= 3600 * S


def test_downsample_keeps_totals_and_rates():
    ss = {(1, 0): [(i * S, S, 100 << 20, 4096, 0, 0, 0, S // 2, 0) for i in range(1, 101)]}
    procs = {(1, 0): (0, 100 * S, 100 << 20)}
    full = downsample(ss, procs, 0, 100 * S, S, 1000)
    assert full["n"] == 100 and full["step"] == S
    assert all(v == pytest.approx(1.0) for v in full["cpu"])  # one core busy throughout
    small = downsample(ss, procs, 0, 100 * S, S, 10)
    assert small["n"] == 10 and small["step"] == 10 * S
    # rates stay rates: still one core, 4 KiB/s, half a thread waiting
    assert all(v == pytest.approx(1.0) for v in small["cpu"])
    assert all(v == pytest.approx(4096, abs=1) for v in small["read"])
    assert all(v == pytest.approx(0.5) for v in small["runq"])
    # and the total CPU is the samples' sum
    assert sum(small["cpu"]) * small["step"] == pytest.approx(100 * S)
    assert max(small["rss"]) == 100 << 20


def test_downsample_spreads_a_late_pass_over_its_real_interval():
    # 1 s ticks, but the third pass came 0.6 s late (a busy host): a burner's 1.6 s
    # of CPU since the second pass is one core over 1.6 s, not 1.6 cores over 1 s
    ss = {(1, 0): [(S, S, 1 << 20, 0, 0, 0, 0, 0, 0), (2 * S + 6 * S // 10, 16 * S // 10, 1 << 20, 0, 0, 0, 0, 0, 0)]}
    procs = {(1, 0): (0, None, 1 << 20)}
    ticks = [0, S, 2 * S + 6 * S // 10]
    d = downsample(ss, procs, 0, 26 * S // 10, S // 10, 26, ticks)
    assert max(d["cpu"]) == pytest.approx(1.0) and min(d["cpu"]) == pytest.approx(1.0)
    assert max(downsample(ss, procs, 0, 26 * S // 10, S // 10, 26)["cpu"]) > 1.5  # what the interval guess gave


def test_downsample_last_partial_bucket_is_a_rate_over_its_own_span():
    # a burner sampled at 1 s and exiting at 1.5 s used one core all along, not half of one at the end
    ss = {(1, 0): [(S, S, 1 << 20, 0, 0, 0, 0, 0, 0), (3 * S // 2, S // 2, 1 << 20, 0, 0, 0, 0, 0, 0)]}
    d = downsample(ss, {(1, 0): (0, 3 * S // 2, 1 << 20)}, 0, 3 * S // 2, S, 100)
    assert d["n"] == 2 and d["cpu"] == [pytest.approx(1.0), pytest.approx(1.0)]


def test_downsample_rss_is_held_between_sparse_samples_and_summed():
    # an idle process emits no row: its RSS holds until its end
    ss = {(1, 0): [(S, S, 10 << 20, 0, 0, 0, 0, 0, 0)], (2, 0): [(S, S, 5 << 20, 0, 0, 0, 0, 0, 0)]}
    procs = {(1, 0): (0, 10 * S, 0), (2, 0): (0, 10 * S, 0)}
    d = downsample(ss, procs, 0, 10 * S, S, 100)
    assert d["rss"][-1] == 15 << 20 and d["rss"][5] == 15 << 20


def test_report_data_shapes_and_totals(tmp_path):
    st, run = _store(tmp_path, n_tasks=3, fail_task=1)
    d = report_data(st, run)
    h = d["header"]
    assert h["processes"] == 12 and h["tasks"] == 3 and h["oom_kills"] == 1 and h["failed"] == 1
    assert h["cpu_ns"] == 3 * (S // 100 + 3 * 6 * S)
    assert h["interval_ns"] == S and h["samples"] > 0
    assert d["notes"] == []
    tasks = [dict(zip(d["task_cols"], r)) for r in d["tasks"]]
    assert [t["id"] for t in tasks] == ["t0001", "t0002", "t0003"]
    assert tasks[1]["flags"] & F_OOM and tasks[1]["cls"] in ("oom_killed", "failed")
    assert tasks[1]["mem_limit"] == 2 << 30  # from the OOM event
    # three tool processes at one core each during the task
    ser = dict(zip(SERIES_COLS, d["series"][0]))
    assert max(ser["cpu"]) == pytest.approx(3.0)
    tools = [dict(zip(d["tool_cols"], r)) for r in d["tools"]]
    assert len(tools) == 9 and any(u["flags"] & F_OOM for u in tools) and any(u["flags"] & F_FAILED for u in tools)
    # the process table is a tree: shells at depth 0 with their tools under them
    procs = [dict(zip(d["proc_cols"], r)) for r in d["procs"]]
    assert len(procs) == 12
    for p in procs:
        if p["depth"]:
            assert procs[p["parent"]]["depth"] == p["depth"] - 1
    assert "tune" in d and ("available" in d["tune"])


def test_caps_keep_flagged_rows_and_say_so(tmp_path):
    st, run = _store(tmp_path, n_tasks=40, procs_per_task=5, fail_task=33)
    lim = ReportLimits(tasks=10, tools=12, tools_per_task=2, processes=15, points_per_task=240, points_total=50)
    d = report_data(st, run, limits=lim)
    assert len(d["tasks"]) == 10 and len(d["tools"]) <= 12
    ids = [r[0] for r in d["tasks"]]
    assert "t0034" in ids  # the failed task survives the cap
    assert ids == sorted(ids)  # still in time order
    procs = [dict(zip(d["proc_cols"], r)) for r in d["procs"]]
    assert any(p["flags"] & F_OOM for p in procs)
    assert len(procs) <= 15  # kept rows and their ancestors together
    series = [dict(zip(SERIES_COLS, s)) for s in d["series"] if s]
    assert series and all(max(len(s["cpu"]), s["n"]) <= 5 for s in series)  # 50 points over 10 tasks
    notes = " ".join(d["notes"])
    for what in ("task table", "tool invocations", "process table", "time series"):
        assert what in notes, notes
    assert d["header"]["processes"] == 200  # totals stay whole
    assert sum(r[1] for r in d["tool_totals"]) == 200


def test_compare_rows_by_task_type():
    def t(tid, name, dur, cpu, rss, kind="task"):
        return Task("r", tid, name, "nextflow", 0, dur, cpu_ns=cpu, peak_rss_bytes=rss, kind=kind)

    a = [t("t1", "align [ab/cdef01]", 10 * S, 20 * S, 1 << 30), t("t2", "align [12/345678]", 20 * S, 40 * S, 2 << 30),
         t("t3", "sort", 5 * S, 5 * S, 100), t("t0", "nextflow (engine)", 40 * S, S, 10, kind="engine")]
    b = [t("t1", "align [cd/000000]", 5 * S, 10 * S, 1 << 30), t("t4", "call", S, S, 1)]
    ra = Run("a", "x", "run", "h", start_time_ns=0, end_time_ns=40 * S)
    rb = Run("b", "x", "run", "h", start_time_ns=0, end_time_ns=20 * S)
    rows = {r["type"]: r for r in compare_rows(a, b, ra, rb, (66 * S, 2 << 30), (11 * S, 1 << 30))}
    assert task_type("align [ab/cdef01]") == "align"
    al = rows["align"]
    assert al["a"]["n"] == 2 and al["b"]["n"] == 1
    assert al["a"]["dur"] == 15 * S and al["d_dur"] == -10 * S and al["r_dur"] == pytest.approx(1 / 3)
    assert al["d_cpu"] == 10 * S - 60 * S and al["d_rss"] == -(1 << 30)
    assert rows["sort"]["b"] is None and rows["sort"]["d_cpu"] is None
    assert rows["call"]["a"] is None
    assert rows["(engine)"]["a"]["n"] == 1
    whole = rows["(whole run)"]
    assert whole["d_dur"] == -20 * S and whole["r_cpu"] == pytest.approx(1 / 6)


def test_html_is_one_offline_file(tmp_path):
    st, run = _store(tmp_path, n_tasks=2)
    st.put_run(Run(run_id="r1", name="</script><script>alert(1)</script>", mode="run", host_id="h",
                   command=["x"], start_time_ns=T0, end_time_ns=T0 + 20 * S, status="finished", exit_code=0))
    page = render_html(report_data(st, st.resolve_run("r1")))
    assert page.count("</script>") == 3  # uPlot, the data, ours: the run name cannot close a script
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=""", page)
    assert "default-src 'none'" in page
    blob = page.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(blob)["header"]["name"].startswith("</script>")


def test_cli_report_and_compare(tmp_path, capsys):
    st, _ = _store(tmp_path, n_tasks=3)
    st.close()
    path = tmp_path / "s.sqlite"
    out = tmp_path / "r.html"
    assert main(["report", "--store", str(path), "-o", str(out)]) == 0
    assert out.stat().st_size > 50_000 and "report of run r1 written to" in capsys.readouterr().err
    assert main(["report", "r1", "--store", str(path), "-o", str(out), "--compare", "r1"]) == 0
    assert '"compare":{"a":' in out.read_text()
    assert main(["report", "nope", "--store", str(path), "-o", str(out)]) == 1
    assert main(["report", "--store", str(path), "-o", str(tmp_path / "no" / "such" / "dir.html")]) == 1
    assert "cannot write report" in capsys.readouterr().err


def test_write_report_without_samples(tmp_path):
    st, run = _store(tmp_path, n_tasks=2, samples=False)
    r = write_report(st, "latest", tmp_path / "x.html")
    assert r.processes == 8 and r.bytes == (tmp_path / "x.html").stat().st_size


def test_missing_probe_families_are_a_completeness_gap(tmp_path):
    st, run = _store(tmp_path, n_tasks=1)
    assert report_data(st, run)["header"]["probes_missing"] == {}
    run.probes = {"net": "inet_sock_set_state (without per-process bytes)", "sched": "off"}
    st.put_run(run)
    h = report_data(st, st.resolve_run(run.run_id))["header"]
    assert h["probes_missing"] == {"net": "inet_sock_set_state (without per-process bytes)"}
