"""cgroup path -> workload context (container, Kubernetes pod, Slurm step, systemd unit).

Pure functions, no I/O. The path is the one in /proc/PID/cgroup (v2 line `0::/path`, or a
v1 hierarchy's path on hybrid hosts: both name things the same way) or one resolved from a
BPF cgroup id. The path is walked segment by segment, so nested cases (a container inside a
pod, docker-in-docker) yield the innermost match, and leading `/..` segments (paths seen
across cgroup namespaces) are harmless.

Forms recognised (as each runtime and systemd name their cgroups; the unit tests hold a
real path of each form):
  docker      /system.slice/docker-<id>.scope            /docker/<id>   /moby/<id>
  containerd  .../cri-containerd-<id>.scope              /k8s.io/<id>   /default/<id> (nerdctl)
  cri-o       .../crio-<id>.scope   /kubepods/.../crio-<id>   (crio-conmon-<id> is the monitor)
  podman      .../libpod-<id>.scope[/container]   /libpod_parent/libpod-<id>   (not libpod-conmon-)
  k8s pods    kubepods[-<qos>]-pod<uid_with_underscores>.slice    /kubepods[/<qos>]/pod<uid>
  slurm v1    /slurm[_<node>]/uid_<uid>/job_<job>[/step_<step>[/task_<n>]]
  slurm v2    /[<node>_]slurmstepd.scope/job_<job>[/step_<step>[/user/task_<n>]]
  ECS         /ecs/<task>/<id>   (id: 64 hex, or Fargate's <32 hex>-<digits>; runtime unknown)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_H64 = r"[0-9a-f]{64}"
# Pod uids are RFC 4122 UUIDs, except static (mirror) pods whose uid is a 32-hex manifest hash.
_UID_DASH = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
_UID_UNDERSCORE = r"[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}|[0-9a-f]{32}"

# Prefix used in cgroup names -> normalised runtime name.
_RUNTIMES = {
    "docker": "docker", "cri-dockerd": "docker", "moby": "docker",
    "cri-containerd": "containerd", "containerd": "containerd", "nerdctl": "containerd",
    "k8s.io": "containerd", "default": "containerd",  # containerd namespaces (cgroupfs driver)
    "crio": "cri-o",
    "libpod": "podman",
}

# systemd driver: "<runtime>-<id>.scope". cgroupfs driver names for CRI-O and podman carry the
# same prefix without ".scope". "crio-conmon-<id>" never matches: "conmon-" is not hex.
_PREFIXED = re.compile(rf"(?P<rt>docker|cri-containerd|crio|libpod|nerdctl|containerd|cri-dockerd)"
                       rf"-(?P<cid>{_H64})(?:\.scope)?")
# containerd with systemd_cgroup on a v1 host: ".../containerd.service/<pod>.slice:cri-containerd:<id>"
_COLON = re.compile(rf"(?P<pod>.*\.slice):(?P<rt>cri-containerd|crio|docker):(?P<cid>{_H64})")
# cgroupfs driver: a bare id under a parent naming the runtime (or under a pod, runtime unknown).
_BARE = re.compile(_H64)
_CGROUPFS_PARENTS = ("docker", "moby", "k8s.io", "default")
_ECS_ID = re.compile(rf"{_H64}|[0-9a-f]{{32}}-\d+")
_ECS_TASK = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")

# Not anchored at the segment start, so a kubelet --cgroup-root prefix ("kubelet-kubepods-...",
# as in kind) still matches. Guaranteed QoS pods sit directly under kubepods.
_POD_SYSTEMD = re.compile(rf"(?:.*-)?kubepods(?:-(?P<qos>besteffort|burstable))?-pod(?P<uid>{_UID_UNDERSCORE})\.slice")
_POD_CGROUPFS = re.compile(rf"pod(?P<uid>{_UID_DASH})")
_QOS_DIRS = ("besteffort", "burstable")

_STEP = re.compile(r"step_(?P<step>\d+|batch|extern|interactive)")
_JOB = re.compile(r"job_(?P<job>\d+)")
_UID_DIR = re.compile(r"uid_\d+")
_SLURM_V1_ROOT = re.compile(r"slurm(?:_[^/]+)?")
_SLURM_V2_ROOT = re.compile(r"(?:[^/]+_)?slurmstepd\.scope")
_TASK = re.compile(r"task_(?P<task>\d+|special)")

_PROC_CGROUP_LINE = re.compile(r"^\d+:[^:]*:(?=/)")


@dataclass(frozen=True)
class CgroupContext:
    container_id: str | None = None       # 64 hex (or an ECS/Fargate id)
    container_runtime: str | None = None  # docker | containerd | cri-o | podman | None (unknown)
    pod_uid: str | None = None            # Kubernetes pod uid, dashed form
    k8s_qos: str | None = None            # guaranteed | burstable | besteffort
    slurm_job_id: int | None = None
    slurm_step: str | None = None         # "0", "1", "batch", "extern", "interactive"
    slurm_task: str | None = None         # "0", "1", ..., "special"
    systemd_unit: str | None = None       # innermost *.scope or *.service


def parse_cgroup_path(path: str | None) -> CgroupContext:
    """Workload context from a cgroup path; an empty context when nothing is recognised."""
    if not path:
        return CgroupContext()
    # Tolerate a whole /proc/PID/cgroup line ("0::/x" or "4:memory:/x").
    path = _PROC_CGROUP_LINE.sub("", path.strip())
    segs = [s for s in path.split("/") if s]

    cid = runtime = pod_uid = qos = step = task = unit = None
    job: int | None = None
    for i, seg in enumerate(segs):
        prev = segs[i - 1] if i >= 1 else ""
        if seg.endswith((".scope", ".service")):
            unit = seg

        # --- containers (later = deeper, so the innermost wins) ---
        if m := _PREFIXED.fullmatch(seg):
            cid, runtime = m["cid"], _RUNTIMES[m["rt"]]
        elif m := _COLON.fullmatch(seg):
            cid, runtime = m["cid"], _RUNTIMES[m["rt"]]
            if p := _POD_SYSTEMD.fullmatch(m["pod"]):
                pod_uid, qos = _pod_uid(p["uid"]), p["qos"] or "guaranteed"
        elif _BARE.fullmatch(seg) and prev in _CGROUPFS_PARENTS:
            cid, runtime = seg, _RUNTIMES[prev]
        elif _BARE.fullmatch(seg) and _POD_CGROUPFS.fullmatch(prev):
            cid, runtime = seg, None  # docker or containerd: the path does not say which
        elif _ECS_ID.fullmatch(seg) and i >= 2 and segs[i - 2] == "ecs" and _ECS_TASK.fullmatch(prev):
            cid, runtime = seg, None

        # --- Kubernetes pods ---
        if m := _POD_SYSTEMD.fullmatch(seg):
            pod_uid, qos = _pod_uid(m["uid"]), m["qos"] or "guaranteed"
        elif (m := _POD_CGROUPFS.fullmatch(seg)) and (
                prev == "kubepods" or (prev in _QOS_DIRS and i >= 2 and segs[i - 2] == "kubepods")):
            pod_uid, qos = _pod_uid(m["uid"]), prev if prev in _QOS_DIRS else "guaranteed"

        # --- Slurm: job_<n> under uid_<n>/slurm[_node] (v1) or [node_]slurmstepd.scope (v2) ---
        if m := _JOB.fullmatch(seg):
            v1 = _UID_DIR.fullmatch(prev) and i >= 2 and _SLURM_V1_ROOT.fullmatch(segs[i - 2])
            v2 = _SLURM_V2_ROOT.fullmatch(prev)
            if v1 or v2:
                job, step, task = int(m["job"]), None, None
                rest = segs[i + 1:]
                if rest and (s := _STEP.fullmatch(rest[0])):
                    step = s["step"]
                    # v1: step_N/task_M ; v2: step_N/user/task_M (step_N/slurm is slurmstepd itself)
                    t = rest[1] if v1 and len(rest) > 1 else (
                        rest[2] if v2 and len(rest) > 2 and rest[1] == "user" else "")
                    if tm := _TASK.fullmatch(t):
                        task = tm["task"]

    return CgroupContext(cid, runtime, pod_uid, qos, job, step, task, unit)


def _pod_uid(uid: str) -> str:
    # The systemd driver escapes '-' in slice names, so uids appear with '_'.
    return uid.replace("_", "-")
