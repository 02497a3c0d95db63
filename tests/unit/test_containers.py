import pytest

from opensre.collect.containers import CgroupContext, parse_cgroup_path

ID = "3f2a" + "0123456789abcdef" * 3 + "c0ffee0123ab"  # 64 hex
assert len(ID) == 64
ID2 = "ab" * 32
UID = "8b0c5c4e-1e0a-4f7b-9a54-2b6c7e8d9f10"
UIDU = UID.replace("-", "_")
STATIC_UID = "6e2f1c0a9b8d7e6f5a4b3c2d1e0f9a8b"  # static pods: 32-hex manifest hash


def C(**kw):
    return CgroupContext(**kw)


CASES = [
    # --- docker ---
    (f"/system.slice/docker-{ID}.scope",
     C(container_id=ID, container_runtime="docker", systemd_unit=f"docker-{ID}.scope")),
    (f"/docker/{ID}", C(container_id=ID, container_runtime="docker")),
    (f"/docker/{ID}/docker/{ID2}", C(container_id=ID2, container_runtime="docker")),  # dind: innermost
    (f"/moby/{ID}", C(container_id=ID, container_runtime="docker")),
    (f"0::/system.slice/docker-{ID}.scope",  # a whole /proc/PID/cgroup line is tolerated
     C(container_id=ID, container_runtime="docker", systemd_unit=f"docker-{ID}.scope")),
    (f"4:memory:/docker/{ID}", C(container_id=ID, container_runtime="docker")),
    # --- containerd ---
    (f"/system.slice/containerd.service/cri-containerd-{ID}.scope",
     C(container_id=ID, container_runtime="containerd", systemd_unit=f"cri-containerd-{ID}.scope")),
    (f"/k8s.io/{ID}", C(container_id=ID, container_runtime="containerd")),
    (f"/default/{ID}", C(container_id=ID, container_runtime="containerd")),  # nerdctl
    (f"/system.slice/nerdctl-{ID}.scope",
     C(container_id=ID, container_runtime="containerd", systemd_unit=f"nerdctl-{ID}.scope")),
    # --- CRI-O ---
    (f"/machine.slice/crio-{ID}.scope",
     C(container_id=ID, container_runtime="cri-o", systemd_unit=f"crio-{ID}.scope")),
    (f"/machine.slice/crio-conmon-{ID}.scope", C(systemd_unit=f"crio-conmon-{ID}.scope")),
    # --- podman ---
    (f"/machine.slice/libpod-{ID}.scope/container",
     C(container_id=ID, container_runtime="podman", systemd_unit=f"libpod-{ID}.scope")),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope",
     C(container_id=ID, container_runtime="podman", systemd_unit=f"libpod-{ID}.scope")),
    (f"/libpod_parent/libpod-{ID}", C(container_id=ID, container_runtime="podman")),
    (f"/machine.slice/libpod-conmon-{ID}.scope", C(systemd_unit=f"libpod-conmon-{ID}.scope")),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-{ID}.scope",
     C(systemd_unit=f"libpod-conmon-{ID}.scope")),
    # --- Kubernetes, systemd driver ---
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UIDU}.slice/cri-containerd-{ID}.scope",
     C(container_id=ID, container_runtime="containerd", pod_uid=UID, k8s_qos="burstable",
       systemd_unit=f"cri-containerd-{ID}.scope")),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UIDU}.slice/crio-{ID}.scope",
     C(container_id=ID, container_runtime="cri-o", pod_uid=UID, k8s_qos="besteffort",
       systemd_unit=f"crio-{ID}.scope")),
    (f"/kubepods.slice/kubepods-pod{UIDU}.slice/docker-{ID}.scope",
     C(container_id=ID, container_runtime="docker", pod_uid=UID, k8s_qos="guaranteed",
       systemd_unit=f"docker-{ID}.scope")),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UIDU}.slice/crio-conmon-{ID}.scope",
     C(pod_uid=UID, k8s_qos="burstable", systemd_unit=f"crio-conmon-{ID}.scope")),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UIDU}.slice",
     C(pod_uid=UID, k8s_qos="burstable")),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC_UID}.slice/cri-containerd-{ID}.scope",
     C(container_id=ID, container_runtime="containerd", pod_uid=STATIC_UID, k8s_qos="burstable",
       systemd_unit=f"cri-containerd-{ID}.scope")),
    # kind / kubelet --cgroup-root=/kubelet
    (f"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
     f"kubelet-kubepods-besteffort-pod{UIDU}.slice/cri-containerd-{ID}.scope",
     C(container_id=ID, container_runtime="containerd", pod_uid=UID, k8s_qos="besteffort",
       systemd_unit=f"cri-containerd-{ID}.scope")),
    # containerd with systemd_cgroup on cgroup v1
    (f"/system.slice/containerd.service/kubepods-burstable-pod{UIDU}.slice:cri-containerd:{ID}",
     C(container_id=ID, container_runtime="containerd", pod_uid=UID, k8s_qos="burstable",
       systemd_unit="containerd.service")),
    # --- Kubernetes, cgroupfs driver ---
    (f"/kubepods/burstable/pod{UID}/{ID}",
     C(container_id=ID, pod_uid=UID, k8s_qos="burstable")),
    (f"/kubepods/besteffort/pod{UID}/{ID}",
     C(container_id=ID, pod_uid=UID, k8s_qos="besteffort")),
    (f"/kubepods/pod{UID}/{ID}", C(container_id=ID, pod_uid=UID, k8s_qos="guaranteed")),
    (f"/kubepods/burstable/pod{UID}/crio-{ID}",
     C(container_id=ID, container_runtime="cri-o", pod_uid=UID, k8s_qos="burstable")),
    (f"/kubepods/burstable/pod{UID}/crio-conmon-{ID}", C(pod_uid=UID, k8s_qos="burstable")),
    (f"/kubepods/burstable/pod{UID}", C(pod_uid=UID, k8s_qos="burstable")),
    (f"/kubepods/burstable/pod{STATIC_UID}/{ID}",
     C(container_id=ID, pod_uid=STATIC_UID, k8s_qos="burstable")),
    # --- ECS ---
    (f"/ecs/{'5' * 32}/{ID}", C(container_id=ID)),
    (f"/ecs/{'5' * 32}/{'a' * 32}-1234567890", C(container_id=f"{'a' * 32}-1234567890")),
    # --- Slurm v1 (hybrid hosts: devices, freezer, memory, cpuset hierarchies) ---
    ("/slurm/uid_2101171/job_280678/step_interactive/task_0",
     C(slurm_job_id=280678, slurm_step="interactive", slurm_task="0")),
    ("10:devices:/slurm/uid_2101171/job_280678/step_interactive/task_0",
     C(slurm_job_id=280678, slurm_step="interactive", slurm_task="0")),
    ("/slurm/uid_1000/job_42/step_batch", C(slurm_job_id=42, slurm_step="batch")),
    ("/slurm/uid_1000/job_42/step_extern", C(slurm_job_id=42, slurm_step="extern")),
    ("/slurm/uid_1000/job_42/step_3/task_7", C(slurm_job_id=42, slurm_step="3", slurm_task="7")),
    ("/slurm/uid_1000/job_42", C(slurm_job_id=42)),
    ("/slurm_node17/uid_1000/job_42/step_0/task_1", C(slurm_job_id=42, slurm_step="0", slurm_task="1")),
    # --- Slurm v2 ---
    ("/system.slice/slurmstepd.scope/job_1392969/step_0/user/task_0",
     C(slurm_job_id=1392969, slurm_step="0", slurm_task="0", systemd_unit="slurmstepd.scope")),
    ("/system.slice/slurmstepd.scope/job_7/step_batch/user/task_0",
     C(slurm_job_id=7, slurm_step="batch", slurm_task="0", systemd_unit="slurmstepd.scope")),
    ("/system.slice/slurmstepd.scope/job_7/step_extern/user/task_special",
     C(slurm_job_id=7, slurm_step="extern", slurm_task="special", systemd_unit="slurmstepd.scope")),
    ("/system.slice/slurmstepd.scope/job_7/step_0/slurm",  # slurmstepd itself
     C(slurm_job_id=7, slurm_step="0", systemd_unit="slurmstepd.scope")),
    ("/system.slice/node01_slurmstepd.scope/job_7/step_1/user/task_2",
     C(slurm_job_id=7, slurm_step="1", slurm_task="2", systemd_unit="node01_slurmstepd.scope")),
    ("/system.slice/slurmstepd.scope/system", C(systemd_unit="slurmstepd.scope")),
    ("/system.slice/slurmstepd.scope/job_7", C(slurm_job_id=7, systemd_unit="slurmstepd.scope")),
    # --- systemd / sessions ---
    ("/user.slice/user-1000.slice/session-2.scope", C(systemd_unit="session-2.scope")),
    ("/system.slice/cron.service", C(systemd_unit="cron.service")),
    ("/init.scope", C(systemd_unit="init.scope")),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-1234.scope",
     C(systemd_unit="app-gnome-firefox-1234.scope")),
    ("/user.slice/user-1000.slice/user@1000.service/init.scope", C(systemd_unit="init.scope")),
    # cross-namespace path
    (f"/../../system.slice/docker-{ID}.scope",
     C(container_id=ID, container_runtime="docker", systemd_unit=f"docker-{ID}.scope")),
]

NEGATIVES = [
    None, "", "/", "0::/", "/user.slice", "/system.slice",
    f"/system.slice/docker-{ID[:63]}.scope",        # 63 hex
    f"/system.slice/docker-{ID}0.scope",            # 65 hex
    f"/docker/{ID[:63]}",
    f"/docker/{ID.upper()}",                        # kernel paths are lower-case hex
    f"/home/user/{ID}",                             # bare id under an unknown parent
    f"/system.slice/podman-{ID}.scope",             # unknown prefix
    "/kubepods/burstable",                          # QoS level only, no pod
    "/kubepods.slice/kubepods-burstable.slice",
    f"/kubepods/burstable/pod{UID[:-1]}/{ID[:63]}",
    "/some/random/path/job_5/step_0",               # job_ not under slurm
    "/slurm/uid_x/job_5",
    "/slurm/uid_1/job_abc/step_0",
]


@pytest.mark.parametrize("path,expected", CASES)
def test_parse(path, expected):
    assert parse_cgroup_path(path) == expected


@pytest.mark.parametrize("path", NEGATIVES)
def test_negatives_have_no_workload(path):
    ctx = parse_cgroup_path(path)
    assert (ctx.container_id, ctx.container_runtime, ctx.pod_uid, ctx.k8s_qos,
            ctx.slurm_job_id, ctx.slurm_step, ctx.slurm_task) == (None,) * 7


def test_v1_and_v2_paths_agree():
    rel = f"/kubepods/burstable/pod{UID}/{ID}"
    lines = [f"0::{rel}", f"12:memory:{rel}", f"3:cpu,cpuacct:{rel}", f"1:name=systemd:{rel}", rel]
    assert len({parse_cgroup_path(x) for x in lines}) == 1


def test_trailing_slash_and_whitespace():
    assert parse_cgroup_path(f" /docker/{ID}/\n") == C(container_id=ID, container_runtime="docker")
