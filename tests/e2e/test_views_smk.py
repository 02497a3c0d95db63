"""A real Snakemake run under `opensre run`, then the views that read the
Snakefile: `report --workflow` (its snippets and "now" column come from the
rules) and `tune --emit k8s` (objects the real validator accepts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import WORKLOADS, opensre_cmd

PY = os.path.realpath(sys.executable)
SNAKEFILE = f"""
rule all:
    input: "b.txt"
rule burn:
    output: "a.txt"
    threads: 2
    resources: mem_mb=512
    shell: "{PY} {WORKLOADS / 'tune_wl.py'} burn 1 > {{output}}"
rule copy:
    input: "a.txt"
    output: "b.txt"
    resources: mem_mb=256
    shell: "cat {{input}} > {{output}}"
"""


def cli(store, *args):
    p = subprocess.run(opensre_cmd() + [args[0], "--store", str(store), *args[1:]], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_report_and_k8s_read_the_workflow(tmp_path, store):
    sf = tmp_path / "Snakefile"
    sf.write_text(SNAKEFILE)
    smk = Path(sys.executable).parent / "snakemake"
    cli(store, "run", "-q", "--name", "smk", "--", str(smk), "--cores", "2", "--quiet", "all", "-d", str(tmp_path),
        "-s", str(sf))

    out = tmp_path / "r.html"
    cli(store, "report", "smk", "--workflow", str(sf), "-o", str(out))
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', out.read_text(), re.S)
    tune = json.loads(m.group(1))["tune"]
    assert tune["available"] and tune["options"]["workflow"] == str(sf)
    recs = {r["task_type"]: r for r in tune["recommendations"]}
    assert {"burn", "copy"} <= set(recs)
    assert recs["burn"]["current_cpus"] == 2 and recs["burn"]["current_memory_bytes"] == 512 * 10**6  # "now"
    prof = yaml.safe_load(tune["snippets"]["snakemake"])
    assert {"burn", "copy"} <= set(prof["set-threads"]) and "mem_mb" in prof["set-resources"]["burn"]
    assert "withName: 'burn'" in tune["snippets"]["nextflow"]
    bad = subprocess.run(opensre_cmd() + ["report", "--store", str(store), "smk", "--workflow",
                                          str(tmp_path / "none"), "-o", str(tmp_path / "x.html")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.html").exists()

    k8s = cli(store, "tune", "smk", "--workflow", str(sf), "--emit", "k8s").stdout
    (tmp_path / "k8s.yaml").write_text(k8s)
    kv = subprocess.run([str(Path(sys.executable).parent / "kubernetes-validate"), "--strict",
                         str(tmp_path / "k8s.yaml")], capture_output=True, text=True, timeout=120)
    assert kv.returncode == 0, kv.stdout + kv.stderr
    docs = [d for d in yaml.safe_load_all(k8s) if d]
    burn = next(d for d in docs if d["metadata"]["name"] == "burn")
    assert burn["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"].endswith("Mi")
