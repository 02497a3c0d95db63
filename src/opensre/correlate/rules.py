"""The `match:` that tool rules (rename, exclude) and run rules share: which
processes a rule is about, by tool name glob, subcommand glob, exe path glob and
argv regex (RE2: it runs on argv anyone on the host controls)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..rulefile import Fail, fields, user_regex

__all__ = ["Match", "parse_match", "base_name", "TOOL_MATCH_KEYS", "RUN_MATCH_KEYS"]

TOOL_MATCH_KEYS = ("tool", "subcommand", "exe_glob", "argv_regex")
RUN_MATCH_KEYS = ("tool", "exe_glob", "argv_regex")  # a run's root has no subcommand to match


def base_name(word: str) -> str:
    """The last path component (`/usr/bin/gzip` -> `gzip`, `dir/` -> `dir`)."""
    return word.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Match:
    """Every given condition must hold; an absent one holds for every process."""

    tool: str | None = None
    subcommand: str | None = None
    exe_glob: str | None = None  # with a `/`, on the whole path; else on its basename
    argv_regex: re.Pattern | None = None

    def hits(self, tool: str, subcommand: str | None, exe: str, joined_argv: str) -> bool:
        if self.tool is not None and not fnmatch.fnmatchcase(tool, self.tool):
            return False
        if self.subcommand is not None and (subcommand is None or not fnmatch.fnmatchcase(subcommand, self.subcommand)):
            return False
        if self.exe_glob is not None:
            target = exe if "/" in self.exe_glob else base_name(exe)
            if not fnmatch.fnmatchcase(target, self.exe_glob):
                return False
        return self.argv_regex is None or self.argv_regex.search(joined_argv) is not None


def parse_match(item: dict, fail: Fail, what: str, keys: tuple[str, ...] = TOOL_MATCH_KEYS) -> Match:
    """The `match:` mapping of one rule (`what` names the rule's kind in messages)."""
    m = item.get("match")
    if not isinstance(m, dict):
        fail(item["__lines__"].get("match", item["__line__"]), f"{what}: 'match' must be a mapping")
    f, key_lines = fields(m), m["__lines__"]
    if not f:
        fail(m["__line__"], f"{what}: 'match' is empty, it would match every process")
    for key, value in f.items():
        if key not in keys:
            fail(key_lines[key], f"{what}: unknown match key {key!r} (expected one of {', '.join(keys)})")
        if not isinstance(value, str) or not value:
            fail(key_lines[key], f"{what}: match {key!r} must be a non-empty string")
    regex = None
    if "argv_regex" in f:
        regex = user_regex(f["argv_regex"], lambda msg: fail(key_lines["argv_regex"], f"{what}: {msg}"))
    return Match(tool=f.get("tool"), subcommand=f.get("subcommand"), exe_glob=f.get("exe_glob"), argv_regex=regex)
