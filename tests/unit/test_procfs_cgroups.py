import os
import shutil
import tempfile
from pathlib import Path

from opensre.collect import procfs
from opensre.collect.cgroups import CgroupResolver, _mounts


def test_parse_stat_with_parens_in_comm():
    text = "123 (we(ird) x) S 45 1 1 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1 0 9876 100 10 18446744073709551615"
    comm, ppid, start, flags = procfs.parse_stat(text)
    assert (comm, ppid, start) == ("we(ird) x", 45, 9876)


def test_read_proc_fixture_tree(tmp_path):
    d = tmp_path / "77"
    d.mkdir()
    (d / "stat").write_text("77 (tool) S 1 77 77 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0")
    (d / "cmdline").write_bytes(b"tool\0--in\0a b\0")
    (d / "status").write_text("Name:\ttool\nUid:\t1000\t1000\t1000\t1000\n")
    (d / "environ").write_bytes(b"SECRET=never-read\0")
    info = procfs.read_proc(77, tmp_path)
    assert info.argv == ["tool", "--in", "a b"] and info.ppid == 1 and info.uid == 1000
    assert info.start_boot_ns == 500 * (10**9 // procfs.CLK_TCK)
    assert procfs.list_pids(tmp_path) == [77]


def test_cgroup_resolver_maps_inode_to_path(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "system.slice" / "docker-abc.scope").mkdir(parents=True)
    mem = tmp_path / "mem"
    (mem / "slurm" / "uid_1" / "job_5").mkdir(parents=True)
    r = CgroupResolver(v2, mem)
    scope = os.stat(v2 / "system.slice" / "docker-abc.scope").st_ino
    job = os.stat(mem / "slurm" / "uid_1" / "job_5").st_ino
    assert r.path(scope) == "/system.slice/docker-abc.scope"
    assert r.path(os.stat(v2).st_ino) == "/"
    # hybrid host: v2 says root, the v1 memory cgroup says where it really runs
    assert r.effective(os.stat(v2).st_ino, job) == (job, "/slurm/uid_1/job_5")
    assert r.effective(scope, job) == (scope, "/system.slice/docker-abc.scope")


def test_a_cgroup_made_since_the_last_scan_resolves_at_once():
    """A fresh cgroup (an id above every one scanned) is found without waiting out the
    rescan interval: its process may be gone, and its record with it, by then."""
    v2 = Path(tempfile.mkdtemp(dir="/dev/shm")) / "v2"  # tmpfs numbers inodes in order, as cgroupfs does
    (v2 / "old").mkdir(parents=True)
    r = CgroupResolver(v2, None)
    assert r.path(os.stat(v2 / "old").st_ino) == "/old"  # the first scan
    (v2 / "job").mkdir()  # tmpfs and cgroupfs give a new directory a larger inode number
    job = os.stat(v2 / "job").st_ino
    assert job > os.stat(v2 / "old").st_ino
    assert r.path(job) == "/job"  # well inside RESCAN_INTERVAL_S
    assert r.path(job - 10**6 if job > 10**6 else 1) is None  # an id from before: gone, no rescan storm
    shutil.rmtree(v2.parent)


def test_mountinfo_parsing():
    text = ("30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
            "35 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    v2, mem = _mounts(text)
    assert str(v2) == "/sys/fs/cgroup/unified" and str(mem) == "/sys/fs/cgroup/memory"


def test_limits_tightest_along_the_path(tmp_path):
    """cgroup limits as the kernel applies them: the tightest of a cgroup and its
    ancestors; "max" and v1's huge sentinel mean no limit; a cpuset of every CPU
    is no restriction."""
    from opensre.collect.limits import LimitReader

    v2, mem1, cpu1 = tmp_path / "u", tmp_path / "memory", tmp_path / "cpu"
    job = v2 / "slurm" / "job_7" / "step_0"
    job.mkdir(parents=True)
    (v2 / "slurm" / "memory.max").write_text("max\n")
    (v2 / "slurm" / "job_7" / "memory.max").write_text(str(4 << 30))
    (job / "memory.max").write_text(str(8 << 30))          # looser than its parent: the parent's counts
    (v2 / "slurm" / "job_7" / "cpu.max").write_text("max 100000\n")
    (job / "cpu.max").write_text("250000 100000\n")
    (job / "cpuset.cpus.effective").write_text("0-3,8\n")
    r = LimitReader(mounts={"v2": v2}, host_cpus=16)
    lim = r.of_paths({"v2": "/slurm/job_7/step_0"})
    assert (lim.cpu_limit_cores, lim.cpuset_cpus, lim.memory_limit_bytes) == (2.5, 5, 4 << 30)
    assert LimitReader(mounts={"v2": v2}, host_cpus=5).of_paths({"v2": "/slurm/job_7/step_0"}).cpuset_cpus is None
    assert r.of_paths({"v2": "/slurm"}).memory_limit_bytes is None

    (mem1 / "a" / "b").mkdir(parents=True)
    (mem1 / "a" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1: unlimited
    (mem1 / "a" / "b" / "memory.limit_in_bytes").write_text(str(64 << 20))
    (cpu1 / "a").mkdir(parents=True)
    (cpu1 / "a" / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu1 / "a" / "cpu.cfs_period_us").write_text("100000\n")
    r1 = LimitReader(mounts={"memory": mem1, "cpu": cpu1}, host_cpus=16)
    assert r1.of_paths({"memory": "/a/b", "cpu": "/a"}).memory_limit_bytes == 64 << 20
    assert r1.of_paths({"memory": "/a", "cpu": "/a"}) == type(r1.of_paths({}))()  # nothing limited
    # a process already gone: the paths we resolved are used
    assert r1.of_pid(2**22 + 7, {"memory": "/a/b"}).memory_limit_bytes == 64 << 20
