"""A real Snakemake pipeline (bwa, samtools, bcftools) under `opensre run`: every
job is one task with the right tools, task figures are the sums/max of their
processes, nothing is unattributed; each job's CPU, largest maxrss and wall time
agree with the kernel's own accounting of it (GNU time's getrusage of the job, see
smk_pipeline.TRUTH_SHELL), and Snakemake's own benchmark files differ from ours only
the way polling must (psutil every second: it misses what happens between polls)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from conftest import opensre_cmd
from smk_pipeline import RULES, SAMPLES, SNAKEFILE, TRUTH_PRELUDE, make_data, read_truth, truth_shell


def test_snakemake_pipeline(tmp_path, store):
    make_data(tmp_path)
    sh, truth_dir = truth_shell(tmp_path)
    (tmp_path / "Snakefile").write_text(TRUTH_PRELUDE.format(shell=sh) + SNAKEFILE.format(samples=SAMPLES))
    smk = Path(sys.executable).parent / "snakemake"
    p = subprocess.run(opensre_cmd() + ["run", "--store", str(store), "--name", "smk", "--",
                                        str(smk), "--cores", "2", "--quiet", "all", "-d", str(tmp_path),
                                        "-s", str(tmp_path / "Snakefile")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]

    def export(what):
        out = subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--what", what],
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(l) for l in out.splitlines()]

    procs, tasks, tools = export("processes"), export("tasks"), export("tools")
    assert all(r["task_id"] for r in procs), [r["argv"] for r in procs if not r["task_id"]]
    jobs = [t for t in tasks if t["kind"] == "task"]
    assert all(t["engine"] == "snakemake" for t in jobs)
    assert len(jobs) == 2 + 5 * len(SAMPLES), [t["task_name"] for t in jobs]

    by_task = {}
    for r in procs:
        by_task.setdefault(r["task_id"], []).append(r)
    for t in tasks:
        ms = by_task[t["task_id"]]
        assert t["process_count"] == len(ms)
        assert t["cpu_ns"] == sum(m["cpu_user_ns"] + m["cpu_system_ns"] for m in ms)
        assert t["peak_rss_bytes"] == max(m["peak_rss_bytes"] for m in ms)

    # each job is exactly one rule's job: its tools are that rule's tools
    matched = {}
    for t in jobs:
        rule = next((r for r, want in RULES.items() if set(t["tools"]) == want), None)
        assert rule, (t["task_name"], t["tools"])
        # named as the Snakefile names it, without --workflow: Snakemake's own job records
        assert t["task_name"] == rule, (t["task_name"], rule)
        root_argv = " ".join(next(m for m in by_task[t["task_id"]] if m["pid"] == t["root_pid"])["argv"])
        sample = next((s for s in SAMPLES if f"/{s}." in root_argv or f" {s}." in root_argv), None)
        matched[(rule, sample)] = t
    assert len(matched) == len(jobs)
    for u in tools:
        assert u["tool"] not in ("bash", "sh", "snakemake")

    # Each job against the kernel's own accounting of it (GNU time: getrusage of its
    # children, written when the job ends). The job's root process is the truth shell, its
    # child GNU time, whose children are everything else in the task.
    MS = 1_000_000
    for (rule, sample), t in matched.items():
        truth = read_truth(truth_dir / str(t["root_pid"]))
        ms = by_task[t["task_id"]]
        (root,) = [m for m in ms if m["pid"] == t["root_pid"]]
        (gtime,) = [m for m in ms if m["ppid"] == root["pid"] and m["exe"] == "/usr/bin/time"]
        kids = [m for m in ms if m is not root and m is not gtime]
        kids_cpu = sum(m["cpu_user_ns"] + m["cpu_system_ns"] for m in kids)
        # time prints user and system in 10 ms steps (truncated): 20 ms, plus 1 % for the split
        assert abs(kids_cpu - truth["cpu_s"] * 1e9) <= 20 * MS + 0.01 * kids_cpu, (rule, sample, kids_cpu, truth)
        # the task's figure adds the truth shell's and GNU time's own CPU: a few ms
        assert 0 <= t["cpu_ns"] - kids_cpu <= 50 * MS, (rule, sample, t["cpu_ns"], kids_cpu)
        # ru_maxrss of the children is the largest maxrss among them, in KiB: the same kernel counter
        assert max(m["maxrss_bytes"] for m in kids) == truth["maxrss_bytes"], (rule, sample, kids, truth)
        # peak_rss_bytes is the final image's VmHWM, at most the lifetime maximum
        assert t["peak_rss_bytes"] <= max(m["maxrss_bytes"] for m in ms)
        # time's wall clock runs from its fork of the job to its wait: inside the root's lifetime
        # (10 ms steps), which adds the shell's and time's start-up and exit
        wall = (t["end_time_ns"] - t["start_time_ns"]) / 1e9
        assert truth["wall_s"] - 0.01 <= wall <= truth["wall_s"] + 0.25, (rule, sample, wall, truth)

    # Snakemake's own benchmark files against ours. They poll with psutil (once a second at
    # first, then every 30 s): CPU is each process's user+system as last seen, so CPU after
    # the last poll and processes that lived between polls are missing; max_rss is the sum
    # of the RSS of the job's processes at the largest poll. So theirs can only be lower:
    # cpu_time <= ours, max_rss <= the sum of the processes' peaks. A job shorter than the
    # first poll gets NA. Their wall time `s` is measured by Snakemake around the job
    # (start, wait, bookkeeping): within ±0.5 s of the root process's lifetime.
    lines = [f"{'rule':<10} {'sample':<6} {'smk cpu_time s':>15} {'ours cpu s':>11} {'smk max_rss MB':>15} "
             f"{'ours peak MB':>13} {'smk s':>7} {'ours s':>7}"]
    seen_by_smk = 0
    for (rule, sample), t in sorted(matched.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        f = tmp_path / "bench" / (f"{rule}.{sample}.tsv" if sample else f"{rule}.tsv")
        row = next(csv.DictReader(open(f), delimiter="\t"))
        wall = (t["end_time_ns"] - t["start_time_ns"]) / 1e9
        smk_rss = row.get("max_rss", "NA")
        assert abs(float(row["s"]) - wall) <= 0.5, (rule, sample, row, wall)
        if row.get("cpu_time", "NA") != "NA":
            seen_by_smk += 1
            assert float(row["cpu_time"]) <= t["cpu_ns"] / 1e9 + 0.02, (rule, sample, row, t["cpu_ns"])
            peaks = sum(m["peak_rss_bytes"] for m in by_task[t["task_id"]]) / 2**20
            assert float(row["max_rss"]) <= peaks * 1.02 + 1, (rule, sample, row, peaks)
        lines.append(f"{rule:<10} {sample or '-':<6} {row.get('cpu_time', 'NA'):>15} {t['cpu_ns'] / 1e9:>11.3f} "
                     f"{smk_rss:>15} {t['peak_rss_bytes'] / 2**20:>13.1f} {float(row['s']):>7.2f} {wall:>7.2f}")
    report = "\n".join(lines)
    print("\nSnakemake benchmark: files vs OpenSRE (ours are kernel accounting, theirs psutil polling)\n" + report)
    (Path(__file__).parent.parent.parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent.parent.parent / "artifacts" / "snakemake_benchmark_vs_opensre.txt").write_text(report + "\n")
