"""tune on the real Snakemake pipeline of the correlation test: two runs, the
second with `samtools sort` slowed on purpose, must flag exactly that task type;
the emitted Snakemake profile must load in real Snakemake (--dry-run), and the
Kubernetes, Slurm and Nextflow snippets must be valid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import opensre_cmd
from smk_pipeline import SAMPLES, SNAKEFILE, make_data

SLOW = "; i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done"  # a bash builtin loop: no new tool, ~1.5 s


def _run(tmp: Path, store: Path, name: str, snakefile: str) -> None:
    (tmp / "Snakefile").write_text(snakefile)
    smk = Path(sys.executable).parent / "snakemake"
    p = subprocess.run(opensre_cmd() + ["run", "-q", "--store", str(store), "--name", name, "--", str(smk),
                                        "--cores", "2", "--quiet", "all", "-d", str(tmp), "-s", str(tmp / "Snakefile")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]


def _tune(store: Path, *args: str) -> str:
    p = subprocess.run(opensre_cmd() + ["tune", "--store", str(store), *args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_compare_flags_the_slowed_tool_and_snippets_are_valid(tmp_path, store):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        make_data(d)
    fast = SNAKEFILE.format(samples=SAMPLES)
    sort_cmd = "samtools sort -@ 1 -o {output} {input}"
    assert sort_cmd in fast
    _run(a, store, "smk", fast)
    _run(b, store, "smk", fast.replace(sort_cmd, sort_cmd + SLOW))
    from opensre.store import Store

    ids = [r.run_id for r in Store(store, readonly=True).runs_named("smk")]
    assert len(ids) == 2

    res = json.loads(_tune(store, "--compare", ids[0], ids[1], "--format", "json"))
    # only samtools sort was made to do more work (CPU). Wall time also grows for any
    # step when the machine gets busy between the two runs, and tune rightly says so:
    # other steps may be flagged on duration, never on CPU
    flagged = {d["task_type"] for d in res["comparison"] if d["regression"] and d["metric"] != "duration_s"}
    dur = next(d for d in res["comparison"] if d["task_type"] == "sort" and d["metric"] == "duration_s")
    print("\n" + "\n".join(f"{d['task_type']:<32} {d['metric']:<15} {d['before']:>12} {d['after']:>12} "
                           f"noise {d['noise']:<6} {'REGRESSION' if d['regression'] else ''}"
                           for d in res["comparison"]))
    assert flagged == {"sort"}, flagged  # the rule's name: Snakemake's job records name the task type
    assert dur["regression"] and dur["after"] - dur["before"] >= 1.0 and dur["n_before"] == len(SAMPLES)
    # the pipeline view: the latest run against the ones before it, sized from all
    pipe = json.loads(_tune(store, "--pipeline", "smk", "--format", "json"))
    assert pipe["run_ids"] == [ids[1]] and pipe["options"]["baseline"] == [ids[0]]
    assert {d["task_type"] for d in pipe["comparison"]
            if d["regression"] and d["metric"] != "duration_s"} == {"sort"}
    assert all(r["evidence"]["runs"] == 2 for r in pipe["recommendations"])

    # with the Snakefile, task types are rule names and the profile loads in Snakemake
    snakefile = a / "Snakefile"
    (a / "Snakefile").write_text(fast)
    res = json.loads(_tune(store, ids[0], "--workflow", str(snakefile), "--format", "json"))
    rules = set(re.findall(r"^rule (\w+):", fast, re.M)) - {"all"}
    assert {r["task_type"] for r in res["recommendations"]} == rules
    align = next(t for t in res["tasks"] if t["task_type"] == "align")
    assert align["given"] == {**align["given"], "cpus": 2.0, "cpus_source": "Snakefile threads (align)"}

    prof = _tune(store, ids[0], "--workflow", str(snakefile), "--emit", "snakemake")
    doc = yaml.safe_load(prof)
    assert set(doc["set-threads"]) == rules and set(doc["set-resources"]) == rules
    pdir = tmp_path / "profile"
    pdir.mkdir()
    (pdir / "config.yaml").write_text(prof)
    smk = Path(sys.executable).parent / "snakemake"
    dry = subprocess.run([str(smk), "--profile", str(pdir), "-n", "-F", "all", "-d", str(a), "-s", str(snakefile),
                          "--cores", "2"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "align" in dry.stdout + dry.stderr

    k8s_text = _tune(store, ids[0], "--workflow", str(snakefile), "--emit", "k8s")
    (tmp_path / "k8s.yaml").write_text(k8s_text)
    kv = subprocess.run([str(Path(sys.executable).parent / "kubernetes-validate"), "--strict",
                         str(tmp_path / "k8s.yaml")], capture_output=True, text=True, timeout=120)
    assert kv.returncode == 0, kv.stdout + kv.stderr
    k8s = [d for d in yaml.safe_load_all(k8s_text) if d]
    assert {d["metadata"]["annotations"]["opensre.io/task-type"] for d in k8s} == rules
    qty_cpu, qty_mem = re.compile(r"^\d+(\.\d+)?m?$"), re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
    for c in (d["spec"]["template"]["spec"]["containers"][0] for d in k8s):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", c["name"]) and len(c["name"]) <= 63
        for kind in ("requests", "limits"):
            assert qty_cpu.match(c["resources"][kind]["cpu"]) and qty_mem.match(c["resources"][kind]["memory"])

    slurm = _tune(store, ids[0], "--workflow", str(snakefile), "--emit", "slurm")
    flags = [l for l in slurm.splitlines() if l and not l.startswith("#")]
    assert len(flags) == len(rules)
    for l in flags:
        assert re.fullmatch(r"--cpus-per-task=\d+ --mem=\d+M --time=\d\d:\d\d:\d\d", l), l

    nf = _tune(store, ids[0], "--workflow", str(snakefile), "--emit", "nextflow")
    from groovy_config import parse

    tree = parse(nf)
    sel = tree["process"]
    assert {k.split(":", 1)[1].strip().strip("'") for k in sel} == rules
    for body in sel.values():
        assert int(body["cpus"]) >= 1 and re.fullmatch(r"'\d+(\.\d+)? GB'", body["memory"])
