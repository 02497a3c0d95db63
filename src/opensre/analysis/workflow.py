"""What a workflow definition asks for, when the user points tune at it
(`--workflow Snakefile`): rule names, `threads:` and `resources:` per rule, and
each rule's `shell:` template, turned into a pattern that recognises the rule's
jobs from the command line the kernel saw. Only files the user names are read."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from .sizeflags import parse_size

_RULE = re.compile(r"^(?:rule|checkpoint)\s+([A-Za-z_]\w*)\s*:")
_DIRECTIVE = re.compile(r"^(\s+)(threads|resources|shell|script)\s*:\s*(.*)$")
_SMK_SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^/.]+\.(?P<script>[^/]+)$")
_SMK_TARGET = re.compile(r"^(?P<rule>[A-Za-z_]\w*)::?")
_SMK_PREFIX = re.compile(r"^\s*set -euo pipefail;\s*")


@dataclass
class Rule:
    name: str
    threads: int | None = None
    memory_bytes: int | None = None
    shell: str | None = None
    script: str | None = None       # basename of its `script:` file
    pattern: re.Pattern | None = None
    literal_len: int = 0
    resources: dict = field(default_factory=dict)


def _template_pattern(shell: str) -> tuple[re.Pattern, int]:
    """`bwa mem -t {threads} ref.fa {input.fq}` -> a regex of its literal parts with
    a wildcard per placeholder ({{ and }} are literal braces)."""
    parts, lit, i = [], 0, 0
    while i < len(shell):
        if shell.startswith("{{", i) or shell.startswith("}}", i):
            parts.append(re.escape(shell[i]))
            lit += 1
            i += 2
        elif shell[i] == "{":
            j = shell.find("}", i)
            j = len(shell) - 1 if j < 0 else j
            parts.append(r".*?")
            i = j + 1
        elif shell[i].isspace():
            parts.append(r"\s+")
            while i < len(shell) and shell[i].isspace():
                i += 1
        else:
            parts.append(re.escape(shell[i]))
            lit += 1
            i += 1
    return re.compile("".join(parts).strip(), re.S), lit


def _literal(text: str, path: Path, lineno: int):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _resources(text: str) -> dict:
    out = {}
    for m in re.finditer(r"(\w+)\s*=\s*(\"[^\"]*\"|'[^']*'|[\d.]+)", text):
        v = m.group(2)
        out[m.group(1)] = v.strip("\"'") if v[0] in "\"'" else float(v) if "." in v else int(v)
    return out


def read_snakefile(path: str | Path) -> dict[str, Rule]:
    p = Path(path)
    from ..safefile import read_user_text

    lines = read_user_text(p, "workflow file").splitlines()  # a regular UTF-8 file, or one line why not
    rules: dict[str, Rule] = {}
    cur: Rule | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _RULE.match(line)
        if m:
            cur = rules.setdefault(m.group(1), Rule(m.group(1)))
            i += 1
            continue
        if line and not line[0].isspace():
            cur = None
        d = _DIRECTIVE.match(line) if cur else None
        if d:
            key, rest = d.group(2), d.group(3).strip()
            if not rest and i + 1 < len(lines):  # the value on the next line(s)
                i += 1
                rest = lines[i].strip()
            if key == "shell" and rest[:3] in ('"""', "'''"):
                q = rest[:3]
                body = rest[3:]
                while q not in body and i + 1 < len(lines):
                    i += 1
                    body += "\n" + lines[i]
                cur.shell = body.split(q, 1)[0]
            elif key == "shell":
                v = _literal(rest, p, i + 1)
                cur.shell = v if isinstance(v, str) else None
            elif key == "script":
                v = _literal(rest, p, i + 1)
                cur.script = v.rsplit("/", 1)[-1] if isinstance(v, str) else None
            elif key == "threads":
                v = _literal(rest, p, i + 1)
                cur.threads = v if isinstance(v, int) else None
            elif key == "resources":
                r = _resources(rest)
                cur.resources = r
                if "mem_mb" in r and isinstance(r["mem_mb"], (int, float)):
                    cur.memory_bytes = int(r["mem_mb"] * 1_000_000)
                elif "mem" in r and isinstance(r["mem"], str):
                    cur.memory_bytes = parse_size(r["mem"].replace(" ", ""))
        i += 1
    for r in rules.values():
        if r.shell:
            r.pattern, r.literal_len = _template_pattern(r.shell.strip())
    return rules


def match_rule(rules: dict[str, Rule], argvs: list[list[str]]) -> Rule | None:
    """The rule whose shell template produced one of these command lines (a
    Snakemake job runs `bash -c "set -euo pipefail;  <cmd>"`); the most specific
    template wins when several match."""
    best = None
    for argv in argvs:
        for a in argv[1:4]:  # a `script:` job runs .snakemake/scripts/tmpXXXXXXXX.<script basename>
            m = _SMK_SCRIPT.search(a)
            if m:
                r = next((r for r in rules.values() if r.script == m.group("script")), None)
                if r is not None:
                    return r
        if "-c" not in argv[1:3] or not _SMK_PREFIX.match(argv[-1]):
            continue
        cmd = _SMK_PREFIX.sub("", argv[-1]).strip()
        for r in rules.values():
            if r.pattern is not None and r.pattern.fullmatch(cmd):
                if best is None or r.literal_len > best.literal_len:
                    best = r
    return best


def rule_from_argv(argvs: list[list[str]]) -> str | None:
    """The rule a Snakemake job names on its own command line: jobs run as a
    separate Snakemake process (`run:` and shadow jobs, cluster and remote jobs)
    carry `--target-jobs 'rule:wildcards'` (older releases `rule::`)."""
    for argv in argvs:
        for i, a in enumerate(argv[:-1]):
            if a == "--target-jobs":
                m = _SMK_TARGET.match(argv[i + 1].strip("'\""))
                if m:
                    return m.group("rule")
    return None
