"""Process tree -> tasks and tool invocations, without workflow integration.

Task boundaries come from what each engine leaves in the process tree:
  snakemake   each job's shell/script subtree under the Snakemake process
  nextflow    each `.command.run` subtree (its work dir names the task)
  make        each recipe shell under make (recursive makes recurse)
  xargs/parallel  each child
  slurm, kubernetes  a step / container cgroup
  generic     direct children of the run's root (the root alone if it has none),
              but not a program's forks that never exec (they are its workers)
Processes above the task roots (the engine, the run's root shell) form one
`engine` task, so every process belongs to exactly one task. Forked workers that
never exec (Python multiprocessing) stay with their parent's task and tool.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass

from ..model import Process, Task, ToolUse
from .engines import EngineNames
from .tools import ToolId, ToolIdentifier, tool_label

ENGINES_BY_CHILDREN = {"snakemake", "make", "gmake", "xargs", "parallel", "cromwell", "miniwdl", "nextflow"}
_NF_WORK = re.compile(r"(?:^|/)([0-9a-f]{2}/[0-9a-f]{6,30})/?$")

Key = tuple[int, int]


@dataclass
class Correlation:
    tasks: list[Task]
    tools: list[ToolUse]
    task_of: dict[Key, str]  # process (pid, start_time_ns) -> task_id


def key(p: Process) -> Key:
    return p.pid, p.start_time_ns


class Tree:
    """Parent/children links among the processes of one run."""

    def __init__(self, procs: list[Process]):
        self.procs = sorted(procs, key=lambda p: (p.start_time_ns, p.pid))
        self.by_key = by_key = {(p.pid, p.start_time_ns): p for p in self.procs}
        by_pid: dict[int, list[Process]] = defaultdict(list)
        for p in self.procs:
            by_pid[p.pid].append(p)
        self.parent: dict[Key, Key | None] = {}
        self.children: dict[Key, list[Process]] = defaultdict(list)
        parent, children = self.parent, self.children
        for p in self.procs:
            par = None
            if p.parent_start_time_ns is not None and (p.ppid, p.parent_start_time_ns) in by_key:
                par = (p.ppid, p.parent_start_time_ns)
            else:
                # the latest process with that pid started before this one
                for q in reversed(by_pid.get(p.ppid, ())):
                    if q.start_time_ns <= p.start_time_ns and q is not p:
                        par = (q.pid, q.start_time_ns)
                        break
            parent[(p.pid, p.start_time_ns)] = par
            if par is not None:
                children[par].append(p)
        self.roots = [p for p in self.procs if parent[(p.pid, p.start_time_ns)] is None]


def _snakemake_job(argvs: list[list[str]]) -> bool:
    """A Snakemake job, as opposed to one of its helpers (uname, the cbc scheduler
    solver, git): a `shell:` job runs `bash -c "set -euo pipefail; ..."` (its
    default shell prefix; bash may then exec the only command), a `script:` job
    runs `.snakemake/scripts/tmpXXXXXXXX.<name>`, a `wrapper:` one its wrapper."""
    for argv in argvs:
        if "-c" in argv[1:3] and argv[-1].lstrip().startswith("set -euo pipefail"):
            return True
        if any(".snakemake/scripts/" in a or ".snakemake/wrappers/" in a for a in argv[1:4]):
            return True
    return False


# engine -> which of its children are task roots (default: all of them)
JOB_PREDICATES = {"snakemake": _snakemake_job}


def _nf_workdir(p: Process) -> str | None:
    """The work dir of a Nextflow task root (`bash [-ue] .command.run` in it)."""
    for a in p.argv[1:]:
        if a.endswith(".command.run"):
            d = os.path.dirname(a)
            if not d.startswith("/") and p.cwd:
                d = os.path.normpath(os.path.join(p.cwd, d))
            return d or p.cwd
    return None


class Correlator:
    def __init__(self, identifier: ToolIdentifier, engine_files: bool = True):
        """engine_files: name tasks from the engines' own bookkeeping (engines.py)."""
        self.ident = identifier
        self._cache: dict[tuple, ToolId] = {}
        self._shell: dict[str, bool] = {}
        self.names = EngineNames() if engine_files else None

    def is_shell(self, tool: str) -> bool:
        v = self._shell.get(tool)
        if v is None:
            v = self._shell[tool] = self.ident.is_shell(tool)
        return v

    def tool_of(self, p: Process) -> ToolId:
        k = (p.exe, tuple(p.argv), p.comm)
        t = self._cache.get(k)
        if t is None:
            t = self._cache[k] = self.ident.identify(p.exe, list(p.argv), p.comm)
        return t

    def correlate(self, run_id: str, procs: list[Process],
                  execs: dict[Key, list[list[str]]] | None = None) -> Correlation:
        """`execs`: every argv each process exec'd, in order (the record keeps the last)."""
        tree = Tree(procs)
        execs = execs or {}
        tool = {key(p): self.tool_of(p) for p in tree.procs}
        roots = self._engine_roots(tree, tool, execs) or _unit_roots(tree) or self._generic_roots(tree)

        # every process goes to its nearest task-root ancestor, else to the engine task
        owner: dict[Key, Key | None] = {}
        for p in tree.procs:  # sorted by start: parents before children
            k = key(p)
            if k in roots:
                owner[k] = k
            else:
                par = tree.parent[k]
                owner[k] = owner.get(par) if par is not None else None

        engine_name = next((e for e, _ in roots.values() if e != "generic"), "generic")
        members: dict[Key | None, list[Process]] = defaultdict(list)
        for p in tree.procs:
            members[owner[key(p)]].append(p)
        ordered = sorted((k for k in members if k is not None), key=lambda k: (k[1], k[0]))
        tasks, tools, task_of = [], [], {}
        if None in members:
            ordered.insert(0, None)
        for i, rk in enumerate(ordered, 1):
            tid = f"t{i:04d}"
            ms = members[rk]
            for m in ms:
                task_of[key(m)] = tid
            uses = self._tool_uses(run_id, tid, ms, tree, tool, owner, rk)
            tools.extend(uses)
            if rk is not None:
                root = tree.by_key[rk]
            else:  # the engine task: its root is the run's root process (the first tree root in it)
                root = next((r for r in tree.roots if owner[key(r)] is None), None)
            eng, wd = roots.get(rk, (engine_name, None)) if rk is not None else (engine_name, None)
            t = _task(run_id, tid, eng, ms, root, uses, wd)
            if rk is not None and self.names is not None:
                self._engine_name(t, eng, root, execs.get(rk) or [root.argv], wd)
            if rk is None:
                t.kind = "engine"
                t.task_name = f"{engine_name} (engine)" if engine_name != "generic" else "(run root)"
            tasks.append(t)
        return Correlation(tasks, tools, task_of)

    def _engine_roots(self, tree: Tree, tool: dict[Key, ToolId],
                      execs: dict[Key, list[list[str]]]) -> dict[Key, tuple[str, str | None]]:
        """Task root -> (engine, workdir) for the jobs the engines in the tree started."""
        roots: dict[Key, tuple[str, str | None]] = {}

        def engine_of(p: Process) -> str | None:
            t = tool[key(p)].tool
            return t if t in ENGINES_BY_CHILDREN else None

        def visit(p: Process, engine: str | None) -> None:
            k = key(p)
            wd = _nf_workdir(p)
            if wd is not None:
                roots[k] = ("nextflow", wd)
                return
            if engine and engine_of(p) is None:
                is_job = JOB_PREDICATES.get(engine)
                if is_job is None or is_job(execs.get(k) or [p.argv]):
                    roots[k] = (engine, None)
                return  # a helper of the engine: stays in the engine's task
            e = engine_of(p)
            if e == "nextflow":
                e = None  # its task roots are recognised by .command.run, wherever they are
            for c in tree.children[k]:
                if e and c.exec_count == 0 and engine_of(c) == e:
                    visit(c, None)  # the engine's own forks (Snakemake's job threads run in-process)
                else:
                    visit(c, e)

        for r in tree.roots:
            visit(r, None)
        return roots

    def _generic_roots(self, tree: Tree) -> dict[Key, tuple[str, str | None]]:
        """The fallback: the children of the root(s), else the root itself."""
        roots: dict[Key, tuple[str, str | None]] = {}
        for r in tree.roots:
            # a worker forked without exec by a program (multiprocessing, a
            # server's pre-fork) is part of its parent's work, not a task; a
            # shell's fork is a subshell, the start of a job like any child
            shell = self.is_shell(r.comm)  # the program, not the script it runs
            kids = [c for c in tree.children[key(r)] if c.exec_count or shell]
            for c in kids:
                roots[key(c)] = ("generic", None)
            if not kids:
                roots[key(r)] = ("generic", None)
        return roots

    def _engine_name(self, t: Task, engine: str, root: Process, argvs: list[list[str]], wd: str | None) -> None:
        """The name the engine gave the job, where it wrote one down."""
        if engine == "snakemake":
            for argv in argvs:
                rule = self.names.snakemake_rule(root.cwd, argv)
                if rule:
                    t.task_name = rule
                    return
        elif engine == "nextflow" and wd:
            name = self.names.nextflow_task(wd)
            if name:
                m = _NF_WORK.search(wd)
                t.task_name = f"{name} [{m.group(1)[:9] if m else os.path.basename(wd)}]"

    def _tool_uses(self, run_id, tid, ms, tree, tool, owner, rk) -> list[ToolUse]:
        """One invocation per exec'd process that is a real tool (not a shell,
        wrapper or excluded helper); forks that never exec fold into it."""
        uses: dict[Key, ToolUse] = {}
        home: dict[Key, Key | None] = {}
        for p in ms:  # by start time
            k = key(p)
            tid_ = tool[k]
            par = tree.parent[k]
            if p.exec_count == 0 and par is not None and par in home and owner.get(par) == owner.get(k):
                home[k] = home[par]
            elif (p.exec_count == 0 or tid_.excluded or self.is_shell(tid_.tool)
                  or tid_.category in ("engine", "shell")):
                home[k] = None  # a subshell-like fork, a shell, an engine or a hidden helper
            else:
                home[k] = k
                uses[k] = ToolUse(run_id, tid, tid_.tool, tid_.subcommand, p.pid, p.start_time_ns, p.end_time_ns,
                                  exit_code=p.exit_code, exit_signal=p.exit_signal, category=tid_.category)
            h = home[k]
            if h is not None:
                u = uses[h]
                u.cpu_ns += p.cpu_ns
                u.peak_rss_bytes = max(u.peak_rss_bytes, p.peak_rss_bytes or 0)
                u.read_bytes += p.read_bytes or 0
                u.write_bytes += p.write_bytes or 0
                if p.end_time_ns and (u.end_time_ns or 0) < p.end_time_ns:
                    u.end_time_ns = p.end_time_ns
        return list(uses.values())


def _unit_roots(tree: Tree) -> dict[Key, tuple[str, str | None]]:
    """Without engine jobs: one task per cgroup-defined unit (Slurm step, pod, container)."""
    units: dict[tuple, list[Process]] = defaultdict(list)
    for p in tree.procs:
        if p.slurm_job_id is not None:
            units[("slurm", p.slurm_job_id, p.slurm_step)].append(p)
        elif p.pod_uid or p.container_id:
            units[("kubernetes" if p.pod_uid else "container", p.pod_uid, p.container_id)].append(p)
    roots: dict[Key, tuple[str, str | None]] = {}
    for unit, members in units.items():
        top = [m for m in members if tree.parent[key(m)] is None
               or tree.by_key[tree.parent[key(m)]] not in members]
        for m in top:
            roots[key(m)] = (unit[0], None)
    return roots


def _task(run_id: str, tid: str, engine: str, ms: list[Process], root: Process | None,
          uses: list[ToolUse], workdir: str | None) -> Task:
    names: list[str] = []
    for u in sorted(uses, key=lambda u: u.start_time_ns):
        lab = tool_label(u.tool, u.subcommand)
        if lab not in names:
            names.append(lab)
    # one pass over the members (a task of a storm has thousands)
    ends = []
    complete, start, cpu, peak, rd, wr, oom, rq, blk, tx, rx = True, None, 0, 0, 0, 0, False, 0, 0, 0, 0
    for m in ms:
        e = m.end_time_ns
        if e:
            ends.append(e)
        else:
            complete = False
        st = m.start_time_ns
        if start is None or st < start:
            start = st
        cpu += (m.cpu_user_ns or 0) + (m.cpu_system_ns or 0)
        pk = m.peak_rss_bytes or 0
        if pk > peak:
            peak = pk
        rd += m.read_bytes or 0
        wr += m.write_bytes or 0
        oom = oom or m.oom_killed
        rq += m.runq_wait_ns or 0
        blk += m.blocked_io_ns or 0
        tx += m.net_tx_bytes or 0
        rx += m.net_rx_bytes or 0
    if start is None:
        raise ValueError("a task without processes")  # as min() of nothing did
    name = " | ".join(names[:3]) + (" …" if len(names) > 3 else "")
    if not name:
        name = (root.tool if root else ms[0].tool) or "?"
    if workdir:
        m = _NF_WORK.search(workdir)
        name += f" [{m.group(1)[:9] if m else os.path.basename(workdir)}]"
    return Task(
        run_id=run_id, task_id=tid, task_name=name, engine=engine,
        start_time_ns=start, end_time_ns=max(ends) if ends and complete else None,
        process_count=len(ms), cpu_ns=cpu, peak_rss_bytes=peak, read_bytes=rd, write_bytes=wr,
        exit_code=root.exit_code if root else None, exit_signal=root.exit_signal if root else None,
        oom_killed=bool(oom), tools=names,
        root_pid=root.pid if root else None, root_start_time_ns=root.start_time_ns if root else None,
        workdir=workdir or (root.cwd if root else None),
        runq_wait_ns=rq, blocked_io_ns=blk, net_tx_bytes=tx, net_rx_bytes=rx)
