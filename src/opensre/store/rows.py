"""How records become SQL rows and back: the column lists of the tables and the
codecs of their JSON and boolean columns. Shared by the writer and the reader."""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import os

from ..model import PROCESS_FIELDS, Process, Run, Task, ToolUse

TASK_FIELDS = [f.name for f in dataclasses.fields(Task)]
TOOL_FIELDS = [f.name for f in dataclasses.fields(ToolUse)]
# task_aggregates' figures per task; AGG_JSON of them are stored as JSON
AGG_COLS = ["end_ns", "sleep_ns", "major_faults", "max_threads", "cgroups", "size_flags", "target_rule",
            "peak_cores", "longest_stall_ns"]
AGG_JSON = ("cgroups", "size_flags")
TASK_FACT_TASK = ["task_id", "task_name", "engine", "start_time_ns", "end_time_ns", "cpu_ns", "peak_rss_bytes",
                  "memory_peak_bytes", "read_bytes", "write_bytes", "runq_wait_ns", "blocked_io_ns", "exit_code",
                  "exit_signal", "oom_killed", "tools"]
TASK_FACT_COLUMNS = TASK_FACT_TASK + AGG_COLS
RUN_COLS = ["run_id", "name", "mode", "host_id", "command", "start_time_ns", "end_time_ns", "status",
            "exit_code", "exit_signal", "root_pid", "collector_pid", "drops", "drop_detail", "process_count",
            "parent_run_id", "sample_interval_s", "probes"]
_JSON_RUN_COLS = ("command", "drop_detail", "probes")
_BOOL_FIELDS = {"argv_truncated", "argv_redacted", "core_dumped", "complete", "io_inclusive", "oom_killed"}
HOST_SAMPLE_FIELDS = ["t_ns", "cpu_util", "cpu_count", "mem_total_bytes", "mem_used_bytes", "psi_cpu_some_us",
                      "psi_memory_some_us", "psi_memory_full_us", "psi_io_some_us", "psi_io_full_us"]
ARGV_IDX = PROCESS_FIELDS.index("argv")
GET_PROCESS_FIELDS = operator.attrgetter(*PROCESS_FIELDS)
# astuple() deep-copies: 10x slower
_GET_TASK, _GET_TOOL = operator.attrgetter(*TASK_FIELDS), operator.attrgetter(*TOOL_FIELDS)
_TOOLS_IDX = TASK_FIELDS.index("tools")


def insert_sql(table: str, cols: list[str], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"


def task_row(t: Task) -> list:
    row = list(_GET_TASK(t))
    row[_TOOLS_IDX] = json.dumps(row[_TOOLS_IDX])
    return row


def tool_row(u: ToolUse) -> tuple:
    return _GET_TOOL(u)


def process_from_row(row) -> Process:
    d = dict(zip(PROCESS_FIELDS, row))
    d["argv"] = json.loads(d["argv"]) if d["argv"] else []
    for f in _BOOL_FIELDS:
        d[f] = bool(d[f])
    return Process(**d)


def run_row(r: Run) -> list:
    return [json.dumps(getattr(r, c)) if c in _JSON_RUN_COLS else getattr(r, c) for c in RUN_COLS]


def run_from_row(row) -> Run:
    d = dict(row)
    if d["status"] == "running" and not collector_alive(d["collector_pid"]):
        d["status"] = "interrupted"  # its collector was killed; readers see it as such
    d["command"] = json.loads(d["command"]) if d["command"] else []
    d["drop_detail"] = json.loads(d["drop_detail"]) if d["drop_detail"] else {}
    d["probes"] = json.loads(d["probes"]) if d.get("probes") else {}  # a read-only older store lacks it
    return Run(**d)


def task_stats(rows) -> dict[str, dict]:
    """StoreReader.task_process_stats from rows (task_id, cgroup_path, cpu_limit_cores,
    cpuset_cpus, memory_limit_bytes, sum sleep_ns, sum major_faults, max threads), one per
    task and cgroup: each backend's query, folded the same way."""
    out: dict[str, dict] = {}
    for r in rows:
        d = out.setdefault(r[0], {"sleep_ns": 0, "major_faults": 0, "max_threads": 0, "cgroups": []})
        d["sleep_ns"] += r[5] or 0
        d["major_faults"] += r[6] or 0
        d["max_threads"] = max(d["max_threads"], r[7] or 0)
        d["cgroups"].append({"path": r[1], "cpu_limit_cores": r[2], "cpuset_cpus": r[3], "memory_limit_bytes": r[4]})
    return out


@functools.lru_cache(maxsize=1 << 14)
def cached_json(text: str | None):
    """Decoded JSON, once per distinct text (a pipeline's runs repeat the same cgroups and flags)."""
    return json.loads(text) if text else []


def collector_alive(pid) -> bool:
    """Whether a run's collector (or a live snapshot's writer) still exists."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a live pid may be a different program now; good enough with the status check
    return True
