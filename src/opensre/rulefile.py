"""What every user rule file shares (redaction, tools, runs): where it lives, and
YAML that remembers line numbers so that a bad rule is reported as FILE:LINE."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, NoReturn

import yaml

from .errors import RuleError

Fail = Callable[[int | None, str], NoReturn]


# libyaml's parser when PyYAML has it: the bundled catalogues parse ~10x faster
# (they are read on every `opensre run`), with the same marks for line numbers
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_SafeLoader):
    """Records where each mapping starts (`__line__`) and where each of its keys
    is (`__lines__`), so that a semantic error can name its line."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__lines__"] = {self.construct_object(k): k.start_mark.line + 1 for k, _ in node.value}
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def config_path(name: str) -> Path:
    """$XDG_CONFIG_HOME/opensre/NAME, by default ~/.config/opensre/NAME (a relative
    XDG_CONFIG_HOME is ignored, as the XDG spec says)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "opensre" / name


def failer(where: str, hint: str) -> Fail:
    """A function that raises the one-line RuleError `WHERE:LINE: message`."""

    def fail(line: int | None, msg: str) -> NoReturn:
        raise RuleError(f"{where}:{line}: {msg}" if line else f"{where}: {msg}", hint)

    return fail


def parse_yaml(text: str, fail: Fail) -> Any:
    """YAML with line numbers; a syntax error fails with the parser's line."""
    try:
        return yaml.load(text, Loader=LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        if getattr(e, "context", None):
            problem = f"{e.context}: {problem}"
        fail(mark.line + 1 if mark else None, "YAML syntax error: " + " ".join(str(problem).split()))


def read_text(path: Path, fail: Fail) -> str:
    """A rule file's text: a regular UTF-8 file of bounded size (a FIFO is refused,
    never read blocking)."""
    from .errors import UsageError
    from .safefile import read_user_text

    try:
        return read_user_text(path, "rule file")
    except UsageError as e:
        fail(None, str(e).replace(f" {path}", "", 1))


def read_yaml(path: Path, fail: Fail) -> Any:
    return parse_yaml(read_text(path, fail), fail)


def fields(m: dict) -> dict:
    """A parsed mapping without the line bookkeeping. Not popped: a YAML alias can
    make two places share one dict."""
    return {k: v for k, v in m.items() if k not in ("__line__", "__lines__")}


def read_rule_doc(path: Path, hint: str, keys: tuple[str, ...]) -> tuple[dict | None, Fail]:
    """A rule file's top level: (None, fail) when it is empty (a valid, empty rule
    set), else a mapping whose keys are among `keys`, with `version` 1 if given."""
    fail = failer(str(path), hint)
    doc = read_yaml(path, fail)
    if doc is None:
        return None, fail
    if not isinstance(doc, dict):
        fail(1, "expected a mapping with " + " and/or ".join(repr(k) for k in keys if k != "version"))
    lines = doc["__lines__"]
    for key in fields(doc):
        if key not in keys:
            fail(lines[key], f"unknown key {key!r} (expected one of {', '.join(keys)})")
    if doc.get("version", 1) != 1:
        fail(lines["version"], f"unsupported version {doc['version']!r} (expected 1)")
    return doc, fail
