import os

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


def test_mountinfo_parsing():
    text = ("30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
            "35 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    v2, mem = _mounts(text)
    assert str(v2) == "/sys/fs/cgroup/unified" and str(mem) == "/sys/fs/cgroup/memory"
