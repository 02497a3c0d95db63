"""Versioned schema. Each migration moves the store one version up; never edit a
released step, add the next one."""

SCHEMA_VERSION = 11

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
    2: """
ALTER TABLE processes ADD COLUMN net_tx_bytes INTEGER;
ALTER TABLE processes ADD COLUMN net_rx_bytes INTEGER;
ALTER TABLE processes ADD COLUMN oncpu_ns INTEGER;
ALTER TABLE processes ADD COLUMN runq_wait_ns INTEGER;
ALTER TABLE processes ADD COLUMN blocked_io_ns INTEGER;
ALTER TABLE processes ADD COLUMN sleep_ns INTEGER;
ALTER TABLE processes ADD COLUMN oom_killed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE processes ADD COLUMN container_id TEXT;
ALTER TABLE processes ADD COLUMN container_runtime TEXT;
ALTER TABLE processes ADD COLUMN pod_uid TEXT;
ALTER TABLE processes ADD COLUMN slurm_job_id INTEGER;
ALTER TABLE processes ADD COLUMN slurm_step TEXT;
CREATE TABLE samples (
    run_id TEXT NOT NULL REFERENCES runs, pid INTEGER NOT NULL, start_time_ns INTEGER NOT NULL,
    t_ns INTEGER NOT NULL, cpu_ns INTEGER, rss_bytes INTEGER, read_bytes INTEGER, write_bytes INTEGER,
    net_tx_bytes INTEGER, net_rx_bytes INTEGER, runq_wait_ns INTEGER, blocked_io_ns INTEGER, sleep_ns INTEGER
);
CREATE INDEX samples_proc ON samples(run_id, pid, start_time_ns, t_ns);
CREATE TABLE events (
    run_id TEXT NOT NULL REFERENCES runs, kind TEXT NOT NULL, pid INTEGER, start_time_ns INTEGER,
    t_ns INTEGER NOT NULL, data TEXT
);
CREATE INDEX events_run ON events(run_id, t_ns);
CREATE TABLE host_samples (
    run_id TEXT NOT NULL REFERENCES runs, t_ns INTEGER NOT NULL, cpu_util REAL, cpu_count INTEGER,
    mem_total_bytes INTEGER, mem_used_bytes INTEGER, psi_cpu_some_us INTEGER, psi_memory_some_us INTEGER,
    psi_memory_full_us INTEGER, psi_io_some_us INTEGER, psi_io_full_us INTEGER
);
CREATE INDEX host_samples_run ON host_samples(run_id, t_ns);
""",
    3: """
ALTER TABLE processes ADD COLUMN cwd TEXT;
ALTER TABLE execs ADD COLUMN cwd TEXT;
""",
    4: """
ALTER TABLE processes ADD COLUMN task_id TEXT;
CREATE TABLE tasks (
    run_id TEXT NOT NULL REFERENCES runs, task_id TEXT NOT NULL, task_name TEXT, engine TEXT, kind TEXT,
    start_time_ns INTEGER, end_time_ns INTEGER, process_count INTEGER, cpu_ns INTEGER, peak_rss_bytes INTEGER,
    read_bytes INTEGER, write_bytes INTEGER, exit_code INTEGER, exit_signal INTEGER, oom_killed INTEGER,
    tools TEXT, root_pid INTEGER, root_start_time_ns INTEGER, workdir TEXT, runq_wait_ns INTEGER,
    blocked_io_ns INTEGER, net_tx_bytes INTEGER, net_rx_bytes INTEGER,
    PRIMARY KEY (run_id, task_id)
);
CREATE INDEX tasks_name ON tasks(task_name);
CREATE TABLE tools (
    run_id TEXT NOT NULL REFERENCES runs, task_id TEXT NOT NULL, tool TEXT, subcommand TEXT, category TEXT,
    pid INTEGER, start_time_ns INTEGER, end_time_ns INTEGER, cpu_ns INTEGER, peak_rss_bytes INTEGER,
    read_bytes INTEGER, write_bytes INTEGER, exit_code INTEGER, exit_signal INTEGER
);
CREATE INDEX tools_run ON tools(run_id, task_id);
CREATE INDEX tools_tool ON tools(tool, subcommand);
""",
    # runs detected inside a host-wide collection (mode "detected") point at it;
    # their processes stay stored under the collection, found via their tasks
    5: """
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
CREATE INDEX runs_parent ON runs(parent_run_id);
""",
    # what each process's cgroups give it (tune's "given" resources)
    6: """
ALTER TABLE processes ADD COLUMN cpu_limit_cores REAL;
ALTER TABLE processes ADD COLUMN cpuset_cpus INTEGER;
ALTER TABLE processes ADD COLUMN memory_limit_bytes INTEGER;
""",
    # the time-series resolution a run was recorded with (readers used to infer it)
    7: """
ALTER TABLE runs ADD COLUMN sample_interval_s REAL;
""",
    # which probe families ran, in which kernel variant, and which could not (JSON)
    8: """
ALTER TABLE runs ADD COLUMN probes TEXT;
""",
    # a task's peak concurrent memory: the largest sum of its live processes' RSS
    # (tasks.peak_rss_bytes stays the largest single process)
    9: """
ALTER TABLE tasks ADD COLUMN memory_peak_bytes INTEGER;
""",
    # tune's per-task figures from the processes, command lines and time series,
    # computed once at correlation (analysis/facts.py, AGGREGATES_VERSION): what
    # --pipeline needs per task without reading a million rows; missing or stale
    # rows are computed on the fly
    10: """
CREATE TABLE task_aggregates (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, version INTEGER NOT NULL, end_ns INTEGER,
    sleep_ns INTEGER, major_faults INTEGER, max_threads INTEGER, cgroups TEXT, size_flags TEXT,
    target_rule TEXT, peak_cores REAL, longest_stall_ns INTEGER,
    PRIMARY KEY (run_id, task_id)
);
""",
    # the host's architecture (uname -m): cost compares it with an instance type's
    11: """
ALTER TABLE hosts ADD COLUMN arch TEXT;
""",
}
