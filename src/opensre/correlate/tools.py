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

A malformed file raises RuleError("FILE:LINE: message").
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, NoReturn, Sequence

from ..regex import RegexError, compile_user
from ..rulefile import config_path, fields, read_rule_doc

__all__ = ["ToolId", "ToolIdentifier", "BUILTIN_CATALOG", "UNKNOWN", "user_rules_path"]

BUILTIN_CATALOG = Path(__file__).with_name("catalog.yaml")
UNKNOWN = "unknown"  # the tool of a process with no exe, argv or comm

_HINT = "fix the file: the format is documented at the top of opensre/correlate/catalog.yaml"
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


@dataclass(frozen=True)
class _Tool:
    """One catalogue entry (see catalog.yaml for the meaning of each field)."""

    name: str
    category: str | None = None
    aliases: tuple[str, ...] = ()
    subcommands: bool = False
    options: frozenset[str] = frozenset()
    wrapper: bool = False
    verbs: frozenset[str] = frozenset()
    skip: int = 0
    interpreter: bool = False
    code: frozenset[str] = frozenset()
    module: frozenset[str] = frozenset()
    script: frozenset[str] = frozenset()
    clusters: bool = True


@dataclass(frozen=True)
class _Match:
    tool: str | None = None
    subcommand: str | None = None
    exe_glob: str | None = None
    argv_regex: re.Pattern | None = None

    def hits(self, tid: ToolId, exe: str, joined_argv: str) -> bool:
        if self.tool is not None and not fnmatch.fnmatchcase(tid.tool, self.tool):
            return False
        if self.subcommand is not None and (
            tid.subcommand is None or not fnmatch.fnmatchcase(tid.subcommand, self.subcommand)
        ):
            return False
        if self.exe_glob is not None:
            target = exe if "/" in self.exe_glob else _base(exe)
            if not fnmatch.fnmatchcase(target, self.exe_glob):
                return False
        return self.argv_regex is None or self.argv_regex.search(joined_argv) is not None


_KEEP = object()  # a rename that leaves the subcommand/category as identified


@dataclass(frozen=True)
class _Rename:
    match: _Match
    tool: str
    subcommand: object = _KEEP  # str | None | _KEEP
    category: object = _KEEP


def _base(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]


def _scan(t: _Tool, args: Sequence[str], i: int = 0) -> tuple[str, str | None, int]:
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

    def __init__(self, tools: Iterable[_Tool], renames: Iterable[_Rename] = (), excludes: Iterable[_Match] = ()):
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
            stamp = None  # a missing file: _load_file says so
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
        tools: dict[str, _Tool] = {}
        renames: list[_Rename] = []
        excludes: list[_Match] = []
        for path in paths:
            _load_file(path, tools, renames, excludes)
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
            if r.match.hits(tid, target, joined):
                category = r.category
                if category is _KEEP:
                    category = self.category(r.tool) or tid.category
                sub = tid.subcommand if r.subcommand is _KEEP else r.subcommand
                tid = replace(tid, tool=r.tool, subcommand=sub, category=category)
                break
        if any(m.hits(tid, target, joined) for m in self._excludes):
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
        if exe and a0 and _base(exe) != _base(a0) and any(_base(exe) == _base(a) for a in argv[1:3]):
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

    def _unwrap(self, t: _Tool, args: list[str]) -> tuple[str | None, list[str]]:
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

    def _interpret(self, t: _Tool, args: list[str]) -> tuple[str, list[str]] | None:
        """(program, its arguments) for an interpreter running a script, module,
        jar or class; None when it runs inline code, stdin or nothing."""
        kind, word, j = _scan(t, args)
        if kind not in ("arg", "module", "script") or not word or word == "-":
            return None
        if kind == "arg" and self.is_shell(t.name) and _base(word).startswith("."):
            # Engine-generated task scripts (Nextflow's .command.sh and .command.run)
            # are not tools: the shell is running the task's commands.
            return None
        name = self._name(word, dotted=kind != "script")
        return (name, args[j:]) if name else None

    def _subcommand(self, t: _Tool, args: list[str]) -> str | None:
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
        base = _base(word)
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


def user_rules_path() -> Path:
    return config_path("tools.yaml")


# ---------------------------------------------------------------- loading

_TOP_KEYS = ("version", "tools", "rename", "exclude")
_TOOL_KEYS = frozenset(_Tool.__dataclass_fields__)
_PARSED: dict[tuple, "ToolIdentifier"] = {}  # from_files(): the last parse, by its files' (path, mtime, size)
_MATCH_KEYS = frozenset({"tool", "subcommand", "exe_glob", "argv_regex"})
_OPTION = re.compile(r"[-+][^\s=]+")

Fail = Callable[[int | None, str], NoReturn]


def _load_file(path: Path, tools: dict[str, _Tool], renames: list[_Rename], excludes: list[_Match]) -> None:
    """Parses one rule file into the accumulators. Raises RuleError naming the file and line."""

    doc, fail = read_rule_doc(path, _HINT, _TOP_KEYS)
    if doc is None:
        return
    lines = doc["__lines__"]

    def items(key: str) -> list[dict]:
        value = doc.get(key) or []
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            fail(lines[key], f"'{key}' must be a list of mappings")
        return value

    here: dict[str, int] = {}  # names and aliases defined in this file -> line
    for item in items("tools"):
        tool = _parse_tool(item, fail)
        for word in (tool.name, *tool.aliases):
            if word in here:
                fail(item["__line__"], f"tool {tool.name!r}: {word!r} is already defined on line {here[word]}")
            here[word] = item["__line__"]
        tools.pop(tool.name, None)  # a later entry with the same name replaces the earlier
        tools[tool.name] = tool
    for item in items("rename"):
        renames.append(_parse_rename(item, fail))
    for item in items("exclude"):
        for key in fields(item):
            if key != "match":
                fail(item["__lines__"][key], f"exclude: unknown key {key!r} (expected 'match')")
        excludes.append(_parse_match(item, fail, "exclude"))


def _parse_tool(item: dict, fail: Fail) -> _Tool:
    f, line, key_lines = fields(item), item["__line__"], item["__lines__"]
    name = f.get("name")
    if not isinstance(name, str) or not name.strip():
        fail(line, "tool without a 'name' (quote names YAML reads as other types, e.g. 'yes')")

    def bad(key: str, msg: str) -> NoReturn:
        fail(key_lines.get(key, line), f"tool {name!r}: {msg}")

    for key in f:
        if key not in _TOOL_KEYS:
            bad(key, f"unknown key {key!r}")
    if not isinstance(f.get("category", ""), (str, type(None))):
        bad("category", "'category' must be a string")
    for key in ("subcommands", "wrapper", "interpreter", "clusters"):
        if not isinstance(f.get(key, key == "clusters"), bool):
            bad(key, f"'{key}' must be true or false")
    skip = f.get("skip", 0)
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        bad("skip", "'skip' must be a whole number >= 0")

    def words(key: str, pattern: re.Pattern | None = None) -> tuple[str, ...]:
        v = f.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            bad(key, f"'{key}' must be a list of strings")
        for x in v:
            if pattern and not pattern.fullmatch(x):
                bad(key, f"invalid option {x!r} in '{key}' (expected e.g. -x or --name, without a value)")
        return tuple(v)

    tool = _Tool(
        name=name,
        category=f.get("category"),
        aliases=words("aliases"),
        subcommands=f.get("subcommands", False),
        options=frozenset(words("options", _OPTION)),
        wrapper=f.get("wrapper", False),
        verbs=frozenset(words("verbs")),
        skip=skip,
        interpreter=f.get("interpreter", False),
        code=frozenset(words("code", _OPTION)),
        module=frozenset(words("module", _OPTION)),
        script=frozenset(words("script", _OPTION)),
        clusters=f.get("clusters", True),
    )
    if tool.wrapper and tool.interpreter:
        bad("interpreter", "a tool is a wrapper or an interpreter, not both")
    for key in ("verbs", "skip"):
        if key in f and not tool.wrapper:
            bad(key, f"'{key}' needs 'wrapper: true'")
    for key in ("code", "module", "script"):
        if key in f and not tool.interpreter:
            bad(key, f"'{key}' needs 'interpreter: true'")
    return tool


def _parse_match(item: dict, fail: Fail, what: str) -> _Match:
    m = item.get("match")
    if not isinstance(m, dict):
        fail(item["__lines__"].get("match", item["__line__"]), f"{what}: 'match' must be a mapping")
    f, key_lines = fields(m), m["__lines__"]
    if not f:
        fail(m["__line__"], f"{what}: 'match' is empty, it would match every process")
    for key, value in f.items():
        if key not in _MATCH_KEYS:
            fail(key_lines[key], f"{what}: unknown match key {key!r} (expected one of {', '.join(sorted(_MATCH_KEYS))})")
        if not isinstance(value, str) or not value:
            fail(key_lines[key], f"{what}: match {key!r} must be a non-empty string")
    regex = None
    if "argv_regex" in f:
        try:
            regex = compile_user(f["argv_regex"])  # RE2: linear time on anyone's argv
        except RegexError as e:
            fail(key_lines["argv_regex"], f"{what}: invalid regex {f['argv_regex']!r} ({e})")
    return _Match(tool=f.get("tool"), subcommand=f.get("subcommand"), exe_glob=f.get("exe_glob"), argv_regex=regex)


def _parse_rename(item: dict, fail: Fail) -> _Rename:
    f, line, key_lines = fields(item), item["__line__"], item["__lines__"]
    for key in f:
        if key not in ("match", "tool", "subcommand", "category"):
            fail(key_lines[key], f"rename: unknown key {key!r} (expected match, tool, subcommand, category)")
    match = _parse_match(item, fail, "rename")
    tool = f.get("tool")
    if not isinstance(tool, str) or not tool.strip():
        fail(key_lines.get("tool", line), "rename without a 'tool' (the new name)")
    for key in ("subcommand", "category"):
        if key in f and not isinstance(f[key], (str, type(None))):
            fail(key_lines[key], f"rename: '{key}' must be a string or null")
    return _Rename(match, tool, f.get("subcommand", _KEEP), f.get("category", _KEEP))
