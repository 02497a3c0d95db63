"""What every user rule file shares (redaction, tools, runs): where it lives, one
loader, YAML that remembers line numbers so that a bad rule is reported as
FILE:LINE (the one failure type, RuleError), and how its regexes are compiled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, NoReturn

import yaml

from .errors import RuleError
from .regex import RegexError, compile_user

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


def rule_files(user: str, given: Iterable[str | Path] = (), store_path: str | Path | None = None,
               beside: str | None = None) -> list[Path]:
    """Every file of one kind of rule, in the order they apply (a later one adds to and
    overrides the earlier): the user's config_path(USER), BESIDE next to the store,
    then the GIVEN ones (--rules). The first two only where they exist, with exists()
    and not is_file(): a FIFO or directory there is refused by the reader, not skipped."""
    found = [config_path(user)]
    if store_path is not None and beside:
        found.append(Path(store_path).parent / beside)
    return [f for f in found if f.exists()] + [Path(f) for f in given]


def user_regex(src: str, bad: Callable[[str], NoReturn]):
    """A pattern from a user's file, compiled with RE2 (linear time on anyone's argv,
    see opensre.regex); bad(message) when RE2 refuses it."""
    try:
        return compile_user(src)
    except RegexError as e:
        bad(f"invalid regex {src!r} ({e})")


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


def fields(m: dict) -> dict:
    """A parsed mapping without the line bookkeeping. Not popped: a YAML alias can
    make two places share one dict."""
    return {k: v for k, v in m.items() if k not in ("__line__", "__lines__")}


def read_rule_doc(path: Path, hint: str, keys: tuple[str, ...], others: bool = False) -> tuple[dict | None, Fail]:
    """A rule file's top level, and the `fail` that names its lines (see parse_rule_doc)."""
    fail = failer(str(path), hint)
    return parse_rule_doc(read_text(path, fail), fail, keys, others), fail


def parse_rule_doc(text: str, fail: Fail, keys: tuple[str, ...], others: bool = False) -> dict | None:
    """None when the text is empty (a valid, empty rule set), else a mapping whose keys
    are among `keys` (`others`: other keys are left to another reader, as a runs file
    may hold tool rules too), with `version` 1 where `keys` has one and it is given."""
    doc = parse_yaml(text, fail)
    if doc is None:
        return None
    if not isinstance(doc, dict):
        fail(1, "expected a mapping with " + " and/or ".join(repr(k) for k in keys if k != "version"))
    lines = doc["__lines__"]
    for key in fields(doc):
        if key not in keys and not others:
            fail(lines[key], f"unknown key {key!r} (expected one of {', '.join(keys)})")
    if "version" in keys and doc.get("version", 1) != 1:
        fail(lines["version"], f"unsupported version {doc['version']!r} (expected 1)")
    return doc
