"""`opensre top`: the running tasks and tools of every live run, from the
snapshots collectors publish beside the store (store/live.py). Rates come from
two consecutive snapshots; tasks from the same correlation as stored runs."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..correlate import Correlator, tool_identifier, tool_label
from ..model import Process
from ..store.live import read_snapshots
from ..term import term
from .summary import fmt_bytes


def _rate(n: float) -> str:
    return "-" if n <= 0 else fmt_bytes(int(n)) + "/s"


class LiveView:
    def __init__(self, store_path: str | Path, rows: int = 30):
        self.path = store_path
        self.rows = rows
        self.snaps: list[dict] = []
        self._prev: dict[tuple, tuple] = {}   # (run, pid, start) -> (t_ns, cpu, read, write)
        self._rate: dict[tuple, tuple] = {}   # (run, pid, start) -> (cores, read/s, write/s)
        self.corr = Correlator(tool_identifier(store_path))
        self.skipped: list[str] = []  # malformed snapshot files left out

    def update(self) -> None:
        self.skipped: list[str] = []
        self.snaps = read_snapshots(self.path, self.skipped)
        prev, self._prev = self._prev, {}
        for s in self.snaps:
            t = s["t_ns"]
            for p in s["processes"]:
                k = (s["run_id"], p["pid"], p["start_time_ns"])
                cur = (t, p["cpu_ns"], p["read_bytes"], p["write_bytes"])
                self._prev[k] = cur
                old = prev.get(k)
                if old and t > old[0]:
                    dt = (t - old[0]) / 1e9
                    self._rate[k] = ((cur[1] - old[1]) / 1e9 / dt, (cur[2] - old[2]) / dt, (cur[3] - old[3]) / dt)
                elif old is None:  # first sight: average over its life so far
                    life = max((t - p["start_time_ns"]) / 1e9, 1e-3)
                    self._rate[k] = (p["cpu_ns"] / 1e9 / life, p["read_bytes"] / life, p["write_bytes"] / life)
        self._rate = {k: v for k, v in self._rate.items() if k in self._prev}

    def run_data(self, s: dict) -> dict:
        """One run's live figures by task: the same correlation as a stored run,
        so forked workers count in their parent's task."""
        procs = [Process(pid=p["pid"], start_time_ns=p["start_time_ns"], ppid=p["ppid"] or 0,
                         parent_start_time_ns=p["parent_start_time_ns"], exe=p["exe"] or "", comm=p["comm"] or "",
                         argv=list(p["argv"] or []),
                         exec_count=1 if p.get("exec_count") is None else p["exec_count"])
                 for p in s["processes"]]
        by_key = {(p["pid"], p["start_time_ns"]): p for p in s["processes"]}
        # a process that exec'd again (a Snakemake job's shell exec'ing its only command)
        # is recognised by its first argv, as in a stored run
        execs = {k: [list(p["first_argv"]), list(p["argv"] or [])] for k, p in by_key.items() if p.get("first_argv")}
        c = self.corr.correlate(s["run_id"], procs, execs)
        agg: dict[str, dict] = {}
        for proc in procs:
            k = (proc.pid, proc.start_time_ns)
            tid = c.task_of.get(k)
            a = agg.setdefault(tid, {"procs": 0, "cores": 0.0, "rss": 0, "rd": 0.0, "wr": 0.0, "tools": {}})
            a["procs"] += 1
            r = self._rate.get((s["run_id"], *k), (0.0, 0.0, 0.0))
            a["cores"] += r[0]
            a["rd"] += r[1]
            a["wr"] += r[2]
            a["rss"] += by_key[k]["rss_bytes"] or 0
            tool = self.corr.tool_of(proc)
            if not self.corr.is_shell(tool.tool):
                name = tool_label(tool.tool, tool.subcommand)
                a["tools"][name] = a["tools"].get(name, 0) + 1
        tasks = {t.task_id: t for t in c.tasks}
        rows = []
        for tid, a in sorted(agg.items(), key=lambda kv: -kv[1]["cores"]):
            task = tasks.get(tid)
            rows.append({"task_id": tid, "name": task.task_name if task else "?",
                         "kind": task.kind if task else "task", "engine": task.engine if task else None,
                         "cpu_cores": round(a["cores"], 3),
                         "rss_bytes": a["rss"], "processes": a["procs"],
                         "read_bytes_per_s": round(a["rd"]), "write_bytes_per_s": round(a["wr"]),
                         "tools": dict(sorted(a["tools"].items(), key=lambda x: -x[1])),
                         "age_s": round((s["t_ns"] - task.start_time_ns) / 1e9, 1) if task else 0})
        return {"run_id": s["run_id"], "name": s.get("name"), "command": s.get("command") or [],
                "cpu_cores": round(sum(r["cpu_cores"] for r in rows), 3),
                "rss_bytes": sum(r["rss_bytes"] for r in rows), "processes": len(procs),
                "finished_processes": s.get("finished_processes", 0), "drops": s.get("drops", 0),
                "elapsed_s": round((s["t_ns"] - s["start_time_ns"]) / 1e9, 1), "t_ns": s["t_ns"], "tasks": rows}

    def data(self) -> dict:
        """`top --format json`: {"runs": [run_data, ...]}."""
        return {"runs": [self.run_data(s) for s in self.snaps]}

    def _run_table(self, run: dict) -> Table:
        t = Table(expand=False, pad_edge=False)
        # figures never shrink (a cut number misleads); the names give way first
        for col, width in (("TASK", None), ("RUNNING TOOLS", None), ("PROCS", 5), ("CPU", 5), ("RSS", 10),
                           ("READ", 12), ("WRITE", 12), ("AGE", 5)):
            if width is None:
                t.add_column(col, overflow="ellipsis", no_wrap=True, max_width=40, ratio=1)
            else:
                t.add_column(col, justify="right", no_wrap=True, min_width=width)
        rows = run["tasks"]
        for r in rows[:self.rows]:
            name = f"[{r['name']}]" if r["kind"] == "engine" else r["name"]
            tools = ", ".join(f"{n}×{k}" if k > 1 else n for n, k in r["tools"].items())
            t.add_row(Text(term(name)), Text(term(tools) or "-"), str(r["processes"]), f"{r['cpu_cores']:.2f}",
                      fmt_bytes(r["rss_bytes"]), _rate(r["read_bytes_per_s"]), _rate(r["write_bytes_per_s"]),
                      f"{r['age_s']:.0f}s")
        if len(rows) > self.rows:
            t.caption = f"{len(rows) - self.rows} more tasks (use -n)"
        return t

    def renderable(self):
        if self.skipped:
            note = Text(f"opensre top: left out {len(self.skipped)} malformed live snapshot(s): "
                        f"{term(', '.join(sorted(self.skipped)[:3]))}")
            return Group(note, self._frame())
        return self._frame()

    def _frame(self):
        if not self.snaps:
            return Text(f"opensre top: no running run publishes a live view in {term(Path(self.path).parent)}\n"
                        "(start one with `sudo opensre run -- CMD`; `opensre collect --live` host-wide)")
        parts = []
        for run in self.data()["runs"]:
            head = Text.assemble((term(run["name"] or run["run_id"]), "bold"),
                                 f"  {term(run['run_id'])[:12]}  {term(' '.join(run['command']))[:60]}\n",
                                 f"elapsed {run['elapsed_s']:.0f}s  running {run['processes']} processes  "
                                 f"finished {run['finished_processes']}  CPU {run['cpu_cores']:.2f} cores  "
                                 f"drops {run['drops']}  updated "
                                 f"{time.strftime('%H:%M:%S', time.localtime(run['t_ns'] / 1e9))}")
            parts += [head, self._run_table(run)]
        return Group(*parts)

    def text(self, width: int = 120) -> str:
        buf = io.StringIO()
        Console(file=buf, width=width, no_color=True, color_system=None).print(self.renderable())
        return buf.getvalue()
