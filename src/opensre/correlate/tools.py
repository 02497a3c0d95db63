"""Which tool an observed process really runs, and its subcommand.

A process record gives its exe path, argv and comm. The tool doing the work is
often not the exe: `env LC_ALL=C sort`, `/usr/bin/time -v bwa mem`,
`conda run -n qc samtools flagstat`, `python3 train.py`,
`java -jar picard.jar SortSam`. ToolIdentifier walks the argv the way each
program would: it skips a wrapper's options to reach the command it runs,
follows an interpreter to its script (or module, jar or class), and for tools
with subcommands reads the first non-option argument. It reads argv only, never
the environment or the filesystem.

What each program is (wrapper, interpreter, tool with subcommands) and how its
options take values is data: catalog.yaml next to this file, then user files in
the same format that can also rename tools and exclude helpers. The schema is
documented at the top of catalog.yaml:

    tools:    [{name, category, aliases, subcommands, options, clusters,
                wrapper, verbs, skip, interpreter, code, module, script}]
    rename:   [{match: {tool, subcommand, exe_glob, argv_regex}, tool, subcommand, category}]
    exclude:  [{match: {...}}]

catalog.py parses those files (a malformed one raises RuleError("FILE:LINE: message"));
rules.py holds the `match:` that renames and excludes share with run rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from ..model import tool_label
from .catalog import BUILTIN_CATALOG, KEEP, Rename, ToolSpec, load_file
from .rules import Match, base_name

__all__ = ["ToolId", "ToolIdentifier", "BUILTIN_CATALOG", "UNKNOWN", "tool_label"]

UNKNOWN = "unknown"  # the tool of a process with no exe, argv or comm
# Wrappers and interpreters followed per process: enough for any real chain,
# and a bound on pathological argvs (`env env env ... `).
_MAX_HOPS = 16
_SCRIPT_EXTS = (".py", ".R", ".r", ".pl", ".sh", ".bash", ".jl", ".rb", ".js", ".jar", ".zip")
_VERSION = re.compile(r"[-.]?\d+(?:\.\d+)*$")  # python3.11 -> python, perl5.36 -> perl
_JAR_VERSION = re.compile(r"[-_]\d.*$")  # gatk-package-4.5.0.0-local -> gatk-package
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")  # env's VAR=value
# Snakemake runs `script:` directives as .snakemake/scripts/tmpXXXXXXXX.<name>.py.
_SMK_SCRIPT = re.compile(r"tmp\w{8}\.(.+)")
# A subcommand is a word; a path, a `KEY=value` or free text is an argument.
_SUBCOMMAND = re.compile(r"[A-Za-z0-9_][\w.:+-]{0,63}")


@dataclass(frozen=True)
class ToolId:
    """What a process runs: ("samtools", "sort"), ("gatk", "HaplotypeCaller")."""

    tool: str
    subcommand: str | None
    category: str | None  # from the catalogue, None if unknown
    wrapper_chain: tuple[str, ...] = ()  # wrappers seen through, outermost first, e.g. ("env", "time")
    excluded: bool = False  # a user rule marked it as a helper to hide from tool lists


def _scan(t: ToolSpec, args: Sequence[str], i: int = 0) -> tuple[str, str | None, int]:
    """Skips options from args[i] on, as `t` would parse them. Returns (kind,
    value, index after it):
      ("arg", word, j)     the first positional argument
      ("code", None, j)    an inline-code option (python -c, bash -c)
      ("module", name, j)  the value of a `module` option (python -m NAME)
      ("script", path, j)  the value of a `script` option (java -jar PATH)
      ("end", None, n)     no positional argument
    Options in t.options consume the next argument; any other option is a flag."""
    n = len(args)
    while i < n:
        a = args[i]
        if a == "--":  # end of options
            return ("arg", args[i + 1], i + 2) if i + 1 < n else ("end", None, n)
        if a in t.options:  # also catches shells' +o
            i += 2
            continue
        if len(a) < 2 or a[0] != "-":
            return "arg", a, i + 1
        name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
        if name in t.code:
            return "code", None, i + 1
        for kind, opts in (("module", t.module), ("script", t.script)):
            if name in opts:
                if eq:
                    return kind, value, i + 1
                return (kind, args[i + 1], i + 2) if i + 1 < n else ("end", None, n)
        if name in t.options:  # --opt=value
            i += 1
            continue
        if a.startswith("--") or len(a) == 2 or not t.clusters:  # a flag
            i += 1
            continue
        # `-xyz`: a short option with its value attached (-n5, -mfoo, -oL) or a
        # cluster of short flags whose last may take the next argument
        # (bash -euo pipefail, python -um mod). Only the first and last letters
        # are checked (getopt would need every flag listed); inline code is
        # recognised anywhere in the cluster (bash -lc, perl -ne).
        head, last = a[:2], "-" + a[-1]
        if head in t.module or head in t.script:
            return ("module" if head in t.module else "script"), a[2:], i + 1
        if head in t.options:
            i += 1
            continue
        if any("-" + ch in t.code for ch in a[1:]):
            return "code", None, i + 1
        if last in t.module or last in t.script:
            kind = "module" if last in t.module else "script"
            return (kind, args[i + 1], i + 2) if i + 1 < n else ("end", None, n)
        i += 2 if last in t.options else 1
    return "end", None, n


class ToolIdentifier:
    """Identifies the tool of a process from its exe, argv and comm."""

    def __init__(self, tools: Iterable[ToolSpec], renames: Iterable[Rename] = (), excludes: Iterable[Match] = ()):
        self._tools = {t.name: t for t in tools}
        self._renames = tuple(renames)
        self._excludes = tuple(excludes)
        index: dict[str, str] = {}
        for t in self._tools.values():
            index.update((a, t.name) for a in t.aliases)
        index.update((name, name) for name in self._tools)  # a name beats another tool's alias
        self._index = index
        self._lower: dict[str, str] = {}
        for k, v in index.items():
            self._lower.setdefault(k.lower(), v)

    @classmethod
    def from_files(cls, extra: Iterable[str | Path] = ()) -> "ToolIdentifier":
        """The built-in catalogue, then each user rule file in order. Parsed once per
        process while the files are unchanged (`opensre run` checks the rules before
        the command and uses them after it)."""
        paths = [Path(p) for p in (BUILTIN_CATALOG, *extra)]
        try:
            stamp = tuple((str(p), st.st_mtime_ns, st.st_size) for p in paths for st in (p.stat(),))
        except OSError:
            stamp = None  # a missing file: load_file says so
        hit = _PARSED.get(stamp) if stamp else None
        if hit is not None:
            return hit
        out = cls._parse(paths)
        if stamp:
            _PARSED.clear()
            _PARSED[stamp] = out
        return out

    @classmethod
    def _parse(cls, paths: list[Path]) -> "ToolIdentifier":
        tools: dict[str, ToolSpec] = {}
        renames: list[Rename] = []
        excludes: list[Match] = []
        for path in paths:
            load_file(path, tools, renames, excludes)
        return cls(tools.values(), renames, excludes)

    # ------------------------------------------------------------ queries

    def category(self, tool: str) -> str | None:
        """The catalogue category of a tool name, an alias or an exe path."""
        t = self._tools.get(self._name(tool))
        return t.category if t else None

    def is_shell(self, tool: str) -> bool:
        return self.category(tool) == "shell"

    def identify(self, exe: str, argv: list[str], comm: str = "") -> ToolId:
        """The tool behind wrappers and interpreters, then the user's rename and
        exclude rules. Never raises on odd input: an unknown program is its own
        tool (exe basename, else argv[0]'s, else comm) with category None."""
        exe, argv, comm = exe or "", list(argv or ()), comm or ""
        tid = self._identify(exe, argv, comm)
        target, joined = exe or (argv[0] if argv else ""), " ".join(argv)
        for r in self._renames:
            if r.match.hits(tid.tool, tid.subcommand, target, joined):
                category = r.category
                if category is KEEP:
                    category = self.category(r.tool) or tid.category
                sub = tid.subcommand if r.subcommand is KEEP else r.subcommand
                tid = replace(tid, tool=r.tool, subcommand=sub, category=category)
                break
        if any(m.hits(tid.tool, tid.subcommand, target, joined) for m in self._excludes):
            tid = replace(tid, excluded=True)
        return tid

    # ------------------------------------------------------- identification

    def _identify(self, exe: str, argv: list[str], comm: str) -> ToolId:
        word, args = self._start(exe, argv)
        # With neither exe nor argv[0], comm: a bare name, not a path ("kworker/0:1").
        name = self._name(word) if word else (comm if "/" in comm else self._name(comm))
        chain: list[str] = []
        for _ in range(_MAX_HOPS):
            t = self._tools.get(name)
            if t is None:
                break
            if t.wrapper:
                verb, rest = self._unwrap(t, args)
                if rest:
                    chain.append(t.name)
                    name, args = self._name(rest[0]), rest[1:]
                    continue
                if verb is not None:  # `singularity exec IMG` with nothing to run
                    return ToolId(t.name, verb, t.category, tuple(chain))
            elif t.interpreter:
                hop = self._interpret(t, args)
                if hop:
                    name, args = hop
                    continue
                return ToolId(t.name, None, t.category, tuple(chain))
            return ToolId(t.name, self._subcommand(t, args), t.category, tuple(chain))
        return ToolId(name or UNKNOWN, None, self.category(name), tuple(chain))

    def _start(self, exe: str, argv: list[str]) -> tuple[str, list[str]]:
        """The program word to start from (exe or argv[0]) and its arguments."""
        a0 = argv[0].lstrip("-") if argv else ""  # "-bash": a login shell
        args = argv[1:]
        if exe and a0 and base_name(exe) != base_name(a0) and any(base_name(exe) == base_name(a) for a in argv[1:3]):
            # A script run through its #! line: the kernel runs [interpreter,
            # (#! argument,) script, args...] but exe may name the script.
            # Walking from the interpreter finds the script with its arguments.
            return a0, args
        # Trust the exe, except where it says nothing: an exec'd fd (runc,
        # fexecve) or a multi-call binary (busybox) whose argv[0] we know.
        anonymous = exe.startswith(("/proc/", "/dev/fd/", "memfd:"))
        if exe and not anonymous and (not a0 or self._known(exe) or not self._known(a0)):
            return exe, args
        return (a0 or exe), args

    def _unwrap(self, t: ToolSpec, args: list[str]) -> tuple[str | None, list[str]]:
        """(verb, the wrapped command and its arguments); the command is empty
        when `t` wraps nothing here (`conda install`, a bare `nohup`)."""
        verb, i = None, 0
        if t.verbs:
            kind, word, i = _scan(t, args)
            if kind != "arg" or word not in t.verbs:
                return None, []
            verb = word
        skipped = 0
        while True:
            kind, word, j = _scan(t, args, i)
            if kind != "arg":
                return verb, []
            if _ASSIGN.match(word) or skipped < t.skip:  # VAR=value, DURATION, IMAGE
                skipped += not _ASSIGN.match(word)
                i = j
                continue
            return verb, args[j - 1 :]

    def _interpret(self, t: ToolSpec, args: list[str]) -> tuple[str, list[str]] | None:
        """(program, its arguments) for an interpreter running a script, module,
        jar or class; None when it runs inline code, stdin or nothing."""
        kind, word, j = _scan(t, args)
        if kind not in ("arg", "module", "script") or not word or word == "-":
            return None
        if kind == "arg" and self.is_shell(t.name) and base_name(word).startswith("."):
            # Engine-generated task scripts (Nextflow's .command.sh and .command.run)
            # are not tools: the shell is running the task's commands.
            return None
        name = self._name(word, dotted=kind != "script")
        return (name, args[j:]) if name else None

    def _subcommand(self, t: ToolSpec, args: list[str]) -> str | None:
        if not t.subcommands:
            return None
        kind, word, _ = _scan(t, args)
        return word if kind == "arg" and _SUBCOMMAND.fullmatch(word) else None

    # ------------------------------------------------------------- names

    def _find(self, word: str) -> str | None:
        return self._index.get(word) or self._lower.get(word.lower())

    def _known(self, word: str) -> bool:
        return self._name(word) in self._tools

    def _name(self, word: str, dotted: bool = False) -> str:
        """The tool name for a command word: an exe or script path, a jar, or
        (dotted=True) possibly a Python module or Java class name."""
        base = base_name(word)
        m = _SMK_SCRIPT.fullmatch(base)
        if m and "/.snakemake/scripts/" in "/" + word:
            base = m.group(1)
        stem = base
        ext = next((x for x in _SCRIPT_EXTS if base.endswith(x) and len(base) > len(x)), "")
        if ext:
            stem = base[: -len(ext)]
            if ext == ".jar":
                stem = _JAR_VERSION.sub("", stem) or stem
        for candidate in (base, stem, _VERSION.sub("", base)):
            if candidate and (hit := self._find(candidate)):
                return hit
        if dotted and not ext and "." in base:
            parts = base.split(".")
            if parts[-1][:1].isupper():  # a Java class: its simple name (org.foo.Main -> Main)
                return self._find(parts[-1]) or parts[-1]
            return self._find(parts[0]) or base  # a Python module: its package when we know it
        return stem


_PARSED: dict[tuple, ToolIdentifier] = {}  # from_files(): the last parse, by its files' (path, mtime, size)


