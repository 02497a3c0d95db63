"""A real Snakemake pipeline (bwa, samtools, bcftools) under `opensre run`: every
job is one task with the right tools, task figures are the sums/max of their
processes, nothing is unattributed, and Snakemake's own benchmark files are
compared with ours (printed; ours are exact, psutil polling is not)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from conftest import opensre_cmd
from smk_pipeline import RULES, SAMPLES, SNAKEFILE, make_data


def test_snakemake_pipeline(tmp_path, store):
    make_data(tmp_path)
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(samples=SAMPLES))
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
        root_argv = " ".join(next(m for m in by_task[t["task_id"]] if m["pid"] == t["root_pid"])["argv"])
        sample = next((s for s in SAMPLES if f"/{s}." in root_argv or f" {s}." in root_argv), None)
        matched[(rule, sample)] = t
    assert len(matched) == len(jobs)
    for u in tools:
        assert u["tool"] not in ("bash", "sh", "snakemake")

    # Snakemake's own benchmark files against ours
    lines = [f"{'rule':<10} {'sample':<6} {'smk cpu_time s':>15} {'ours cpu s':>11} {'smk max_rss MB':>15} "
             f"{'ours peak MB':>13} {'smk s':>7} {'ours s':>7}"]
    for (rule, sample), t in sorted(matched.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        f = tmp_path / "bench" / (f"{rule}.{sample}.tsv" if sample else f"{rule}.tsv")
        row = next(csv.DictReader(open(f), delimiter="\t"))
        wall = (t["end_time_ns"] - t["start_time_ns"]) / 1e9
        smk_rss = row.get("max_rss", "NA")
        lines.append(f"{rule:<10} {sample or '-':<6} {row.get('cpu_time', 'NA'):>15} {t['cpu_ns'] / 1e9:>11.3f} "
                     f"{smk_rss:>15} {t['peak_rss_bytes'] / 2**20:>13.1f} {float(row['s']):>7.2f} {wall:>7.2f}")
    report = "\n".join(lines)
    print("\nSnakemake benchmark: files vs OpenSRE (ours are kernel accounting, theirs psutil polling)\n" + report)
    (Path(__file__).parent.parent.parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent.parent.parent / "artifacts" / "snakemake_benchmark_vs_opensre.txt").write_text(report + "\n")
