"""Correlation on real process trees: Nextflow's task layout, make recipes,
Python multiprocessing, and user rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import opensre_cmd

NF_HASHES = ["ab/cdef0123456789abcdef0123456789", "7f/00112233445566778899aabbccddee"]


def export(store, what):
    out = subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--what", what],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]


def nextflow_workdir(base: Path, h: str, script: str, name: str | None = None) -> Path:
    d = base / "work" / h
    d.mkdir(parents=True)
    # the shape Nextflow writes: .command.run (its header names the task) sets up and
    # runs .command.sh through bash
    head = f"# NEXTFLOW TASK: {name}\n" if name else ""
    (d / ".command.run").write_text(f"#!/bin/bash\n{head}set -e\n/bin/bash -ue .command.sh > .command.out\n"
                                    "echo $? > .exitcode\n")
    (d / ".command.sh").write_text(f"#!/bin/bash -ue\n{script}\n")
    return d


def test_nextflow_task_layout(observe, store, tmp_path):
    (tmp_path / "in.txt").write_text("ACGT\n" * 50000)
    dirs = [nextflow_workdir(tmp_path, NF_HASHES[0], f"gzip -c {tmp_path}/in.txt > out.gz; sort {tmp_path}/in.txt | uniq -c",
                             name="COMPRESS (in)"),
            nextflow_workdir(tmp_path, NF_HASHES[1], f"wc -l {tmp_path}/in.txt; cat {tmp_path}/in.txt | tr A T > t.txt")]
    # a stand-in for the Nextflow JVM: it starts each task in its work dir, as the local executor does
    launcher = "; ".join(f"(cd {d} && /bin/bash -ue .command.run)" for d in dirs)
    observe(["bash", "-c", launcher], check_status=0)
    tasks = [t for t in export(store, "tasks") if t["kind"] == "task"]
    assert len(tasks) == 2 and all(t["engine"] == "nextflow" for t in tasks)
    # named like Nextflow logs them: the process name and tag its .command.run states, [2 hex/6 hex]
    assert tasks[0]["task_name"] == "COMPRESS (in) [ab/cdef01]", tasks[0]["task_name"]
    assert "[7f/001122]" in tasks[1]["task_name"]  # no header: its tools name it
    assert tasks[0]["workdir"] == str(dirs[0]) and tasks[1]["workdir"] == str(dirs[1])
    assert {"gzip", "sort", "uniq"} <= set(tasks[0]["tools"])
    assert {"wc", "cat", "tr"} <= set(tasks[1]["tools"])
    procs = export(store, "processes")
    for r in procs:
        assert r["task_id"]
    by_task = {t["task_id"]: t for t in tasks}
    gz = next(r for r in procs if r["comm"] == "gzip")
    assert gz["cwd"] == str(dirs[0]) and by_task[gz["task_id"]] is tasks[0]


def test_make_recipes_and_multiprocessing_workers(observe, store, tmp_path):
    (tmp_path / "Makefile").write_text(
        "all: a b\n"
        "a:\n\tgzip -c /etc/services > a.gz\n"
        f"b:\n\t{sys.executable} -c 'import multiprocessing as m; m.Pool(3).map(abs, range(100))'\n")
    observe(["make", "-C", str(tmp_path), "-j2"], check_status=0)
    tasks = [t for t in export(store, "tasks") if t["kind"] == "task"]
    assert sorted(t["engine"] for t in tasks) == ["make", "make"]
    names = sorted(t["task_name"] for t in tasks)
    assert names[0] == "gzip" and names[1].startswith("python")
    py = next(t for t in tasks if t["task_name"].startswith("python"))
    assert py["process_count"] >= 4  # the pool's workers stay in their parent's task
    tools = [u for u in export(store, "tools") if u["task_id"] == py["task_id"]]
    assert len(tools) == 1 and tools[0]["tool"] == "python"  # forked workers fold into the invocation


def test_rules_rename_and_exclude(observe, store, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rename:\n  - match: {tool: gzip}\n    tool: compressor\n"
                     "exclude:\n  - match: {tool: readlink}\n")
    observe(["bash", "-c", "readlink /proc/self/exe >/dev/null; gzip -c /etc/services >/dev/null"],
            "--rules", str(rules), check_status=0)
    tools = {u["tool"] for u in export(store, "tools")}
    assert "compressor" in tools and "gzip" not in tools and "readlink" not in tools
    # the excluded helper still counts towards its task
    procs = export(store, "processes")
    assert all(r["task_id"] for r in procs)


def test_malformed_rules_one_line_with_file_and_line(tmp_path, store):
    rules = tmp_path / "bad.yaml"
    rules.write_text("rename:\n  - match: {tool: gzip}\n    tool: x\n  - match: {argv_regex: '('}\n    tool: y\n")
    p = subprocess.run(opensre_cmd() + ["run", "--store", str(store), "--rules", str(rules), "--", "true"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and f"{rules}:4:" in p.stderr, p.stderr
    assert not store.exists()  # nothing ran
