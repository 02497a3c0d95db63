"""Runs inside a host-wide collection: which processes form one workload.

`opensre collect` records every process of the host into one collection.
`detect_runs` splits it into runs, each a root process with its whole subtree:

  rule      a user rule matched the process (`runs:` in a runs file, below);
            checked first, so a user can name or carve out any subtree
  slurm     a Slurm job: every process whose cgroup names the job (one run per job)
  kubernetes, container
            a pod / container cgroup: every process in it (one run per pod or container)
  engine    a workflow engine or job runner: a process whose tool (after wrappers
            and interpreters) has catalogue category `engine` -- snakemake,
            nextflow, cromwell, miniwdl, cwltool, make, xargs, parallel, mpirun, ...
  script    a script started from a terminal: an interpreter or shell running a
            script file or module (`python train.py`, `bash x.sh`, `Rscript a.R`,
            `python -m pkg`) whose parent is an interactive shell (no -c, -s or
            script operand: `-bash`, `zsh -l`), a terminal multiplexer or a login
            service (tmux, screen, sshd, login, su, mosh-server). Kind "shell" for
            a shell script, "script" for the other interpreters.

Never runs: our own processes (`opensre top` from a terminal is the observer,
not a workload), a shell's start-up (scripts an interactive shell runs within
STARTUP_S of its start: its rc files' helpers, such as pyenv-init), catalogue
helpers hidden from tool lists, and what a user rule with `ignore: true`
matches (by tool, exe path glob or argv regex: `exe_glob: '*/.pyenv/*'`).

Outermost wins: once a process starts a run, its whole subtree belongs to that
run (a make started by snakemake, a python script in a Slurm job). A cgroup run
(slurm, container) also takes processes of its cgroup that are not in the first
member's subtree. The collector's own ancestors (the shell, sudo or test harness
it was started from, `session`) are never run roots nor cgroup-run members of
their own: they are the observer, not a workload. Every other process is
"unattributed". docs/correlation.md has the details.

User rules live in YAML files under a top-level `runs:` key (other top-level
keys are ignored, so the file may hold other sections):

    runs:
      - match: {argv_regex: 'train\\.py'}   # at least one of tool, exe_glob, argv_regex
        name: "training {argv}"            # required; {tool}, {pid}, {argv} are filled in
        kind: training                     # optional, default "named"
      - match: {exe_glob: '*/.pyenv/*'}
        ignore: true                       # never a run (its subtree neither); no name

A malformed file raises RuleError("FILE:LINE: message").
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..model import Process
from ..rulefile import Fail, failer, fields as rule_fields, parse_rule_doc, read_rule_doc
from .rules import RUN_MATCH_KEYS, Match, base_name, parse_match
from .tasks import Correlator, Key, Tree, key
from .tools import ToolIdentifier

__all__ = ["DetectedRun", "RunRule", "detect_runs", "load_run_rules", "parse_run_rules", "session_of",
           "UNATTRIBUTED"]

UNATTRIBUTED = "unattributed"  # the task_id of a collected process that belongs to no detected run

# Parents from which a script counts as "started by a user at a terminal".
TERMINAL_PARENTS = frozenset({"sshd", "sshd-session", "tmux", "tmux: server", "screen", "SCREEN", "login", "su",
                              "mosh-server", "dropbear", "zellij"})
_NAME_ARGV = 60  # characters of argv in a generated run name
STARTUP_S = 2.0  # scripts an interactive shell starts this soon after its own start are its start-up
_IGNORED = -1    # owner of a subtree that is no run (ours, ignored by a rule)
_HINT = "fix the file: the `runs:` format is documented in docs/correlation.md"


@dataclass
class DetectedRun:
    root: Key                      # (pid, start_time_ns) of its root process
    kind: str                      # snakemake, make, slurm, container, script, shell, named, ...
    name: str
    members: list[Key] = field(default_factory=list)  # the root first, then by start time


@dataclass(frozen=True)
class RunRule:
    name: str
    match: Match
    kind: str = "named"
    where: str = ""  # FILE:LINE, for messages
    ignore: bool = False  # a match is never a run, nor anything under it

    def hits(self, p: Process, tool: str) -> bool:
        return self.match.hits(tool, None, p.exe or "", " ".join(p.argv))

    def run_name(self, p: Process, tool: str) -> str:
        return self.name.format(tool=tool, pid=p.pid, argv=_short_argv(p))


def _short_argv(p: Process, tool: str | None = None) -> str:
    """The argv for a run's name: from the tool's own word when given (an engine
    run by an interpreter: `snakemake --cores 4`), with the program's basename."""
    words = list(p.argv)
    if tool and words:
        for i, w in enumerate(words[:6]):
            b = base_name(w)
            if b == tool or b.split(".")[0] == tool:
                words = words[i:]
                break
    if words:
        words[0] = base_name(words[0])
    text = " ".join(words) or p.comm or p.exe or "?"
    return text if len(text) <= _NAME_ARGV else text[: _NAME_ARGV - 1] + "…"


def _interactive_shell(argv: list[str]) -> bool:
    """A shell reading commands from a terminal: only options, none of them -c
    (inline code) or -s (stdin script), and no script operand."""
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--rcfile", "--init-file", "-o", "+o"):
            i += 2
            continue
        if not a.startswith(("-", "+")) or a == "-" or a == "--":
            return False
        if not a.startswith("--") and ("c" in a[1:] or "s" in a[1:]):
            return False
        i += 1
    return True


class _Detector:
    def __init__(self, corr: Correlator):
        self.corr = corr
        self.ident = corr.ident

    def engine(self, p: Process) -> str | None:
        t = self.corr.tool_of(p)
        return t.tool if t.category == "engine" else None

    def script(self, p: Process) -> str | None:
        """'shell' or 'script' when p is an interpreter (or a wrapper of one)
        running a script file or module, else None."""
        t = self.corr.tool_of(p)
        if self.ident.category(t.tool) in ("shell", "interpreter") or t.tool == "unknown":
            return None
        words = [p.exe, p.argv[0].lstrip("-")] if p.argv else [p.exe]
        if p.argv and self.ident.category(base_name(p.argv[0])) == "wrapper":
            # through wrappers (sudo, nohup, env VAR=x): their first plain word
            rest = [a for a in p.argv[1:6] if not a.startswith("-") and "=" not in a]
            words += rest[:1]
        for w in words:
            c = self.ident.category(base_name(w)) if w else None
            if c in ("shell", "interpreter"):
                return "shell" if c == "shell" else "script"
        return None

    def ours(self, p: Process) -> bool:
        """opensre itself (its CLI, whatever interpreter runs it): the observer."""
        words = [base_name(w) for w in p.argv[:3]]
        return "opensre" in words or ("-m" in words and words[words.index("-m") + 1:][:1] == ["opensre"])

    def terminal(self, q: Process) -> bool:
        if q.tool in TERMINAL_PARENTS or q.comm in TERMINAL_PARENTS:
            return True
        if not q.argv:
            return False
        return self.ident.category(base_name(q.argv[0].lstrip("-"))) == "shell" and _interactive_shell(q.argv)


def detect_runs(procs: list[Process], rules: Iterable[RunRule] = (), *, correlator: Correlator | None = None,
                session: Iterable[Key] = ()) -> list[DetectedRun]:
    """The runs among the processes of a host-wide collection, ordered by their
    root's start. Processes in none of them are unattributed. `session`: the
    processes the collector was started from (never run roots). Roots are
    recognised from each record's last argv."""
    finder = _RunFinder(procs, correlator or Correlator(ToolIdentifier.from_files()), set(session))
    rules = list(rules)
    if rules:
        finder.walk(lambda p: finder.by_rule(p, rules))
    finder.walk(finder.auto)
    return finder.runs_found()


class _RunFinder:
    """One detection: which run owns each process (`owner`: process -> index in `runs`)."""

    def __init__(self, procs: list[Process], corr: Correlator, session: set[Key]):
        self.corr, self.det, self.tree, self.session = corr, _Detector(corr), Tree(procs), session
        self.owner: dict[Key, int] = {}
        self.runs: list[DetectedRun] = []
        self.groups: dict[tuple, int] = {}  # (kind, cgroup id) -> its run

    def walk(self, decide) -> None:
        """Depth-first from the roots; decide(p) -> run index or None for an
        unowned process; a subtree takes its root's run."""
        stack = [(p, None) for p in reversed(self.tree.roots)]
        while stack:
            p, inherited = stack.pop()
            k = key(p)
            if k in self.owner:
                inherited = self.owner[k]  # claimed earlier (a user rule): its subtree goes with it
            elif inherited is None:
                inherited = decide(p)
            if inherited is not None:
                self.owner[k] = inherited
            stack.extend((c, inherited) for c in reversed(self.tree.children[k]))

    def new_run(self, p: Process, kind: str, name: str) -> int:
        self.runs.append(DetectedRun(key(p), kind, name))
        return len(self.runs) - 1

    def by_rule(self, p: Process, rules: list[RunRule]) -> int | None:
        if key(p) in self.session:
            return None
        tool = self.corr.tool_of(p).tool
        for r in rules:
            if r.hits(p, tool):
                return _IGNORED if r.ignore else self.new_run(p, r.kind, r.run_name(p, tool))
        return None

    def auto(self, p: Process) -> int | None:
        k = key(p)
        if k in self.session:
            return None
        if self.det.ours(p):
            return _IGNORED
        g = _cgroup_unit(p)
        if g is not None:
            if g not in self.groups:
                self.groups[g] = self.new_run(p, g[0], _CGROUP_LABEL[g[0]](g[1]))
            return self.groups[g]
        e = self.det.engine(p)
        if e:
            return self.new_run(p, e, f"{e}: {_short_argv(p, e)}")
        par = self.tree.parent[k]
        if par is not None:
            s = self.det.script(p)
            q = self.tree.by_key[par]
            if s and self.det.terminal(q) and not self.corr.tool_of(p).excluded and not _startup(p, q, self.det):
                return self.new_run(p, s, f"{s}: {_short_argv(p)}")
        return None

    def runs_found(self) -> list[DetectedRun]:
        """The runs with their members (root first, then by start time), by their root's start."""
        tree, runs = self.tree, self.runs
        for p in tree.procs:  # by start time
            i = self.owner.get(key(p))
            if i is not None and i != _IGNORED:
                runs[i].members.append(key(p))
        for r in runs:
            if r.kind in _CGROUP_LABEL:
                # the root of a cgroup run: its earliest member whose parent is not one
                ms = set(r.members)
                r.root = next(m for m in r.members if tree.parent[m] not in ms)
            r.members.remove(r.root)
            r.members.insert(0, r.root)
        out = [r for r in runs if r.members]
        out.sort(key=lambda r: (r.root[1], r.root[0]))
        return out


_CGROUP_LABEL = {"slurm": lambda job: f"slurm job {job}", "kubernetes": lambda uid: f"pod {str(uid)[:12]}",
                 "container": lambda cid: f"container {str(cid)[:12]}"}


def _cgroup_unit(p: Process) -> tuple | None:
    """(kind, id) of the Slurm job, else the pod, else the container whose cgroup holds p."""
    if p.slurm_job_id is not None:
        return "slurm", p.slurm_job_id
    if p.pod_uid:
        return "kubernetes", p.pod_uid
    if p.container_id:
        return "container", p.container_id
    return None


def _startup(p: Process, shell: Process, det: _Detector) -> bool:
    """A script an interactive shell ran as part of its own start-up (its rc files)."""
    if det.ident.category(base_name(shell.argv[0].lstrip("-")) if shell.argv else "") != "shell":
        return False  # a multiplexer or sshd: what it starts is the user's
    if "--norc" in shell.argv and ("--noprofile" in shell.argv or not shell.argv[0].startswith("-")):
        return False  # it reads no rc file: nothing it runs is start-up
    return p.start_time_ns - shell.start_time_ns < STARTUP_S * 1e9


def session_of(procs: list[Process], pid: int, at_ns: int) -> set[Key]:
    """The process `pid` that was alive at `at_ns` and its ancestors: where a
    collector was started from (a collection's root_pid at its start)."""
    cands = [p for p in procs if p.pid == pid and p.start_time_ns <= at_ns
             and (p.end_time_ns is None or p.end_time_ns >= at_ns)]
    if not cands:
        return set()
    tree = Tree(procs)
    k: Key | None = key(max(cands, key=lambda p: p.start_time_ns))
    out: set[Key] = set()
    while k is not None and k not in out:
        out.add(k)
        k = tree.parent[k]
    return out


# ---------------------------------------------------------------- rule files

_RULE_KEYS = ("match", "name", "kind", "ignore")
_PLACEHOLDERS = {"tool", "pid", "argv"}


_TOP_KEYS = ("runs",)  # other keys are left to other readers: the file may hold tool rules too


def load_run_rules(files: Iterable[str | Path]) -> list[RunRule]:
    """The `runs:` rules of each file, in order (the first rule that matches wins)."""
    out: list[RunRule] = []
    for f in files:
        doc, fail = read_rule_doc(Path(f), _HINT, _TOP_KEYS, others=True)
        out += _rules_of(doc, fail, str(f))
    return out


def parse_run_rules(text: str, where: str = "<rules>") -> list[RunRule]:
    fail = failer(where, _HINT)
    return _rules_of(parse_rule_doc(text, fail, _TOP_KEYS, others=True), fail, where)


def _rules_of(doc: dict | None, fail: Fail, where: str) -> list[RunRule]:
    items = doc.get("runs") if doc else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        fail(doc["__lines__"]["runs"], "'runs' must be a list of mappings")
    return [_parse_rule(item, fail, where) for item in items]


def _parse_rule(item: dict, fail: Fail, where: str) -> RunRule:
    line, lines = item["__line__"], item["__lines__"]
    fields = rule_fields(item)
    for k in fields:
        if k not in _RULE_KEYS:
            fail(lines[k], f"runs: unknown key {k!r} (expected {', '.join(_RULE_KEYS)})")
    ignore = fields.get("ignore", False)
    if not isinstance(ignore, bool):
        fail(lines["ignore"], "runs: 'ignore' must be true or false")
    name = fields.get("name", "ignored" if ignore else None)
    if not isinstance(name, str) or not name.strip():
        fail(lines.get("name", line), "runs: a rule needs a 'name' (a non-empty string) or 'ignore: true'")
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(name) if f is not None}
    except ValueError as e:
        fail(lines["name"], f"runs: bad name {name!r} ({e})")
    bad = used - _PLACEHOLDERS
    if bad:
        fail(lines["name"], f"runs: unknown placeholder {{{sorted(bad)[0]}}} in name (expected {{tool}}, {{pid}} or {{argv}})")
    kind = fields.get("kind", "named")
    if not isinstance(kind, str) or not re.fullmatch(r"[\w.-]{1,32}", kind):
        fail(lines.get("kind", line), "runs: 'kind' must be one word")
    match = parse_match(item, fail, "runs", RUN_MATCH_KEYS)
    return RunRule(name=name, match=match, kind=kind, where=f"{where}:{line}", ignore=ignore)
