"""The tool catalogue's format: catalog.yaml beside this file and the user's
tool rule files in the same format (documented at the top of catalog.yaml),
parsed into catalogue entries, renames and excludes for ToolIdentifier.
A malformed file raises RuleError("FILE:LINE: message")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ..rulefile import Fail, fields, read_rule_doc
from .rules import Match, parse_match

__all__ = ["BUILTIN_CATALOG", "KEEP", "Rename", "ToolSpec", "load_file"]

BUILTIN_CATALOG = Path(__file__).with_name("catalog.yaml")

_HINT = "fix the file: the format is documented at the top of opensre/correlate/catalog.yaml"


@dataclass(frozen=True)
class ToolSpec:
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


KEEP = object()  # a rename that leaves the subcommand/category as identified


@dataclass(frozen=True)
class Rename:
    match: Match
    tool: str
    subcommand: object = KEEP  # str | None | KEEP
    category: object = KEEP


_TOP_KEYS = ("version", "tools", "rename", "exclude")
_TOOL_KEYS = frozenset(ToolSpec.__dataclass_fields__)
_OPTION = re.compile(r"[-+][^\s=]+")


def load_file(path: Path, tools: dict[str, ToolSpec], renames: list[Rename], excludes: list[Match]) -> None:
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
        excludes.append(parse_match(item, fail, "exclude"))


def _parse_tool(item: dict, fail: Fail) -> ToolSpec:
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

    tool = ToolSpec(
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


def _parse_rename(item: dict, fail: Fail) -> Rename:
    f, line, key_lines = fields(item), item["__line__"], item["__lines__"]
    for key in f:
        if key not in ("match", "tool", "subcommand", "category"):
            fail(key_lines[key], f"rename: unknown key {key!r} (expected match, tool, subcommand, category)")
    match = parse_match(item, fail, "rename")
    tool = f.get("tool")
    if not isinstance(tool, str) or not tool.strip():
        fail(key_lines.get("tool", line), "rename without a 'tool' (the new name)")
    for key in ("subcommand", "category"):
        if key in f and not isinstance(f[key], (str, type(None))):
            fail(key_lines[key], f"rename: '{key}' must be a string or null")
    return Rename(match, tool, f.get("subcommand", KEEP), f.get("category", KEEP))
