"""Versioned schema. Each migration moves the store one version up; never edit a
released step, add the next one."""

SCHEMA_VERSION = 1

MIGRATIONS = {
    1: """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE hosts (
    host_id TEXT PRIMARY KEY, hostname TEXT, machine_id TEXT, boot_id TEXT,
    kernel TEXT, cpus INTEGER, mem_bytes INTEGER
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, name TEXT, mode TEXT NOT NULL, host_id TEXT REFERENCES hosts,
    command TEXT, start_time_ns INTEGER, end_time_ns INTEGER, status TEXT NOT NULL,
    exit_code INTEGER, exit_signal INTEGER, root_pid INTEGER, collector_pid INTEGER,
    drops INTEGER NOT NULL DEFAULT 0, drop_detail TEXT, process_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_start ON runs(start_time_ns);
CREATE TABLE processes (
    run_id TEXT NOT NULL REFERENCES runs, pid INTEGER NOT NULL, start_time_ns INTEGER NOT NULL,
    ppid INTEGER, parent_start_time_ns INTEGER, end_time_ns INTEGER,
    exe TEXT, comm TEXT, argv TEXT, argv_truncated INTEGER, argv_redacted INTEGER,
    uid INTEGER, gid INTEGER, cgroup_id INTEGER, cgroup_path TEXT,
    pidns INTEGER, mntns INTEGER, netns INTEGER,
    exit_code INTEGER, exit_signal INTEGER, core_dumped INTEGER,
    cpu_user_ns INTEGER, cpu_system_ns INTEGER, peak_rss_bytes INTEGER, maxrss_bytes INTEGER,
    rchar INTEGER, wchar INTEGER, syscr INTEGER, syscw INTEGER,
    read_bytes INTEGER, write_bytes INTEGER, cancelled_write_bytes INTEGER,
    voluntary_ctxt_switches INTEGER, involuntary_ctxt_switches INTEGER,
    minor_faults INTEGER, major_faults INTEGER, threads INTEGER, exec_count INTEGER,
    observed_since_ns INTEGER, complete INTEGER NOT NULL, io_inclusive INTEGER,
    PRIMARY KEY (run_id, pid, start_time_ns)
);
CREATE INDEX processes_parent ON processes(run_id, ppid);
CREATE TABLE execs (
    run_id TEXT NOT NULL REFERENCES runs, pid INTEGER NOT NULL, start_time_ns INTEGER NOT NULL,
    t_ns INTEGER NOT NULL, exe TEXT, argv TEXT, argv_truncated INTEGER
);
CREATE INDEX execs_proc ON execs(run_id, pid, start_time_ns);
""",
}
