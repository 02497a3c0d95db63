"""Recommendations as config to paste back into a workflow (syntax per
docs/tune.md): Nextflow `process { withName: ... }`, a Snakemake profile
(`set-threads`/`set-resources`), sbatch flags, Kubernetes Job patches with
requests/limits (valid under `kubernetes-validate --strict`)."""

from __future__ import annotations

import math
import re

import yaml

from ..errors import UsageError
from .result import Recommendation, TuneResult

FORMATS = ("nextflow", "snakemake", "slurm", "k8s")
_IDENT = re.compile(r"^[A-Za-z_][\w:.-]*$")
_RUNTIME_FACTOR = 2.0  # a time limit of twice the slowest task seen (p95), at least a minute


def _runtime_s(r: Recommendation) -> int:
    return max(60, int(math.ceil(r.evidence.get("wall_s_p95", 0) * _RUNTIME_FACTOR)))


def _gb(b: int) -> str:
    g = b / 1e9
    return f"{math.ceil(g * 10) / 10:g}"


def nextflow(recs: list[Recommendation]) -> str:
    lines = ["// opensre tune: recommended resources per process", "process {"]
    for r in recs:
        body = [f"cpus = {r.cpus}", f"memory = '{_gb(r.memory_bytes)} GB'",
                f"time = '{math.ceil(_runtime_s(r) / 60)}m'"]
        if not _IDENT.match(r.task_type):  # tasks named by their tools: the user knows which process
            lines += [f"    // tasks running {r.task_type}: put the process name in and uncomment",
                      f"    // withName: 'PROCESS_NAME' {{ {'; '.join(body)} }}"]
            continue
        lines += [f"    withName: '{r.task_type}' {{"] + [f"        {b}" for b in body] + ["    }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def snakemake(recs: list[Recommendation]) -> str:
    named = [r for r in recs if _IDENT.match(r.task_type) and re.match(r"^[A-Za-z_]\w*$", r.task_type)]
    doc = {"set-threads": {r.task_type: r.cpus for r in named},
           "set-resources": {r.task_type: {"mem_mb": math.ceil(r.memory_bytes / 1e6),
                                           "runtime": math.ceil(_runtime_s(r) / 60)} for r in named}}
    head = "# opensre tune: Snakemake profile (save as profiles/default/config.yaml or use --profile DIR)\n"
    skipped = [r.task_type for r in recs if r not in named]
    if skipped:
        head += "".join(f"# {t!r} is not a rule name (run tune with --workflow Snakefile): skipped\n"
                        for t in skipped)
    if not named:
        return head
    return head + yaml.safe_dump(doc, sort_keys=False)


def _hms(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def slurm(recs: list[Recommendation]) -> str:
    lines = ["# opensre tune: sbatch flags per task type"]
    for r in recs:
        lines.append(f"# {r.task_type}")
        lines.append(f"--cpus-per-task={r.cpus} --mem={math.ceil(r.memory_bytes / 2**20)}M "
                     f"--time={_hms(_runtime_s(r))}")
    return "\n".join(lines) + "\n"


def _k8s_name(t: str) -> str:
    """A DNS-1123 label (container and Job names): lower case, digits and '-', 63 at most."""
    s = re.sub(r"[^a-z0-9-]+", "-", t.lower()).strip("-")[:63].strip("-")
    return s or "task"


K8S_HEAD = """\
# opensre tune: Kubernetes resources per task type, as strategic-merge patches of a Job
# (batch/v1), one document per task type; each passes `kubernetes-validate --strict`.
# A patch matches your Job by metadata.name and your container by its name: rename both
# to yours (the names here are the task types'). Then either
#   kustomize: save each document as a file, list each under `patches:` (`- path: FILE`)
#              in kustomization.yaml, then `kubectl apply -k DIR`
#   or one Job: kubectl patch --local -f job.yaml --type=strategic --patch-file=FILE -o yaml \\
#                 | kubectl create -f -
# (a Job's pod template cannot change once created: patch the manifest, then create the Job;
#  for a CronJob the same resources go under spec.jobTemplate.spec.template)
"""


def k8s(recs: list[Recommendation]) -> str:
    docs, used = [], set()
    for r in recs:
        name = _k8s_name(r.task_type)
        n = 2
        while name in used:  # two task types that read the same as a name
            tail = f"-{n}"
            name = _k8s_name(r.task_type)[:63 - len(tail)].rstrip("-") + tail
            n += 1
        used.add(name)
        mem = f"{math.ceil(r.memory_bytes / 2**20)}Mi"
        res = {"requests": {"cpu": str(r.cpus), "memory": mem}, "limits": {"cpu": str(r.cpus), "memory": mem}}
        docs.append({"apiVersion": "batch/v1", "kind": "Job",
                     "metadata": {"name": name, "annotations": {"opensre.io/task-type": r.task_type}},
                     "spec": {"template": {"spec": {"containers": [{"name": name, "resources": res}]}}}})
    if not docs:
        return K8S_HEAD + "# (no recommendations)\n"
    return K8S_HEAD + "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs)


def emit(result: TuneResult, fmt: str) -> str:
    fn = {"nextflow": nextflow, "snakemake": snakemake, "slurm": slurm, "k8s": k8s}.get(fmt)
    if fn is None:
        raise UsageError(f"unknown --emit format {fmt!r}", f"one of {', '.join(FORMATS)}")
    return fn(result.recommendations)
