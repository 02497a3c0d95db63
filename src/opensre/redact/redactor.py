"""Masks secrets in argv before anything is stored or exported.

The rules are data (rules.yaml next to this file, then optional user files) so
that users can add or disable them without touching code. There are two kinds,
because secrets reach a command line in two ways:

* flag rules know that the *value* of an option is secret (`--password X`,
  `--token=X`, `mysql -pX`); the value itself has no recognisable shape, and in
  the `--flag X` form it is a separate argument that no per-argument regex sees;
* pattern rules recognise a secret by its shape (URL credentials, AWS keys,
  JWTs, `token=...`) anywhere inside any argument, including a whole script
  passed as one argument to `bash -c`.

The schema is documented at the top of rules.yaml.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, NoReturn, Union

from ..regex import group_span
from ..rulefile import Fail, fields as rule_fields, read_rule_doc, rule_files, user_regex

BUILTIN_RULES = Path(__file__).with_name("rules.yaml")
MASK = "***"

_HINT = "fix the file: the rule format is documented at the top of opensre/redact/rules.yaml"
_FORMS = frozenset({"equals", "next", "attached"})
_RULE_KEYS = {
    "flag": {"name", "kind", "description", "flags", "forms", "tools", "value"},
    "pattern": {"name", "kind", "description", "regex"},
}
_WHITESPACE = re.compile(r"(\s+)")
# By default the whole value of a secret flag is masked ((?s): newlines included).
_WHOLE_VALUE = re.compile(r"(?s).+")
# The word an argv bound cut short: it may be the head of a secret too short to be
# recognised (`ghp_abcdefghijklm` of a 40-character token), so it is masked whole.
# A word ends at whitespace and at the separators secrets follow (key=, user:, @).
_CUT_WORD = re.compile(r"[^\s=:;,&@'\"]+\Z")


def _mask(m: re.Match) -> str:
    """The replacement for one match: its `secret` group (without one, the whole
    match) becomes the mask, and the rest of the match is kept as context."""
    start, end = group_span(m, "secret") or m.span()
    if start >= end:
        # Nothing to hide. This also stops a regex that can match "" from
        # sprinkling masks between characters.
        return m.group(0)
    return m.string[m.start() : start] + MASK + m.string[end : m.end()]


def _long_key(token: str) -> tuple[bool, str] | None:
    """How long options compare: `--client-secret`, `-client_secret` and
    `--Client-Secret` are one option (tools disagree on all three spellings).
    The bool separates dashed options from bare words such as
    `aws configure set aws_secret_access_key X`."""
    name = token.lstrip("-")
    dashes = len(token) - len(name)
    if not name or dashes > 2:
        return None
    return dashes > 0, name.lower().replace("_", "-")


def _is_short(flag: str) -> bool:
    # Single-letter options are compared exactly: mysql's -p is the password, -P the port.
    return len(flag) == 2 and flag[0] == "-" and flag[1] != "-"


def _looks_like_long_option(token: str) -> bool:
    # `mongod --auth --port 27017`, `psql --password --host h`: some secret-sounding
    # options are switches. A following `--long-option` is not their value (a
    # password that starts with "--" is rare enough to accept that trade).
    return token.startswith("--") and token[2:3].isalpha()


@dataclass(frozen=True)
class FlagRule:
    name: str
    short: frozenset[str]  # exact single-letter flags, e.g. "-p"
    long: frozenset[tuple[bool, str]]  # _long_key() of the other flags
    forms: frozenset[str]
    tools: frozenset[str]  # empty: applies to every command
    value: re.Pattern

    def _is_flag(self, token: str) -> bool:
        if token in self.short:
            return True
        return not _is_short(token) and _long_key(token) in self.long

    def mask_value(self, value: str) -> str:
        return self.value.sub(_mask, value, count=1)

    def apply(self, token: str) -> tuple[str, bool]:
        """(token with an inline secret masked, whether the next argument is the value)."""
        if self._is_flag(token):
            return token, "next" in self.forms
        head, eq, value = token.partition("=")
        if eq and "equals" in self.forms and self._is_flag(head):
            return f"{head}={self.mask_value(value)}", False
        if "attached" in self.forms and len(token) > 2 and token[:2] in self.short:
            # A bare `-p` never gets here: for mysql that is the interactive prompt.
            return token[:2] + self.mask_value(token[2:]), False
        return token, False


@dataclass(frozen=True)
class PatternRule:
    name: str
    regex: re.Pattern

    def apply(self, text: str) -> str:
        return self.regex.sub(_mask, text)


Rule = Union[FlagRule, PatternRule]


class Redactor:
    """Applies flag rules along an argv, then pattern rules to every argument."""

    MASK = MASK

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._flags = [r for r in self.rules if isinstance(r, FlagRule)]
        self._patterns = [r for r in self.rules if isinstance(r, PatternRule)]

    @classmethod
    def from_files(cls, extra: Iterable[str | Path] = ()) -> "Redactor":
        """The built-in rules, then each user file in order."""
        rules: dict[str, Rule] = {}
        for path in (BUILTIN_RULES, *extra):
            _load_file(Path(path), rules, builtin=Path(path) == BUILTIN_RULES)
        return cls(rules.values())

    def redact_argv(self, argv: list[str], truncated: bool = False) -> tuple[list[str], bool]:
        """(argv with secrets masked, whether anything was masked). Never adds
        or removes arguments, so positions stay meaningful. `truncated`: the argv
        was cut at the collector's bound, so its last word is a fragment that may be
        the head of a secret: it is masked whatever it looks like."""
        out = [self.redact_text(a) for a in self._scan(argv, set())]
        if truncated and out:
            out[-1] = mask_cut_tail(out[-1])
        return out, out != list(argv)

    def redact_path(self, path: str | None) -> str | None:
        """A path (cwd, exe) with secrets masked: the pattern rules, as for any argument
        (`/home/u/tok_ghp_.../run` -> `/home/u/tok_***/run`). Flag rules do not apply:
        a path has no options. None stays None."""
        return None if path is None else self.redact_text(path)

    def redact_text(self, s: str) -> str:
        """The pattern rules applied to one free-form string."""
        for rule in self._patterns:
            s = rule.apply(s)
        return s

    def _scan(self, args: list[str], seen: set[str]) -> list[str]:
        """Flag rules along a list of words. `seen` holds the basenames of the
        words before the current one, which is how tool rules find their tool
        behind wrappers (`sudo mysql`, `env X=1 /usr/bin/curl`)."""
        out = list(args)
        i = 0
        while i < len(out):
            token, takes_value = out[i], False
            for rule in self._flags:
                if rule.tools and rule.tools.isdisjoint(seen):
                    continue
                token, wants_next = rule.apply(token)
                if wants_next and i + 1 < len(out) and not _looks_like_long_option(out[i + 1]):
                    out[i + 1] = rule.mask_value(out[i + 1])
                    takes_value = True
            if _WHITESPACE.search(token):
                # One argument holding a command line (`bash -c "mysql -pX db"`,
                # `ssh host "curl -u u:p ..."`): run the flag rules over its words.
                # The words hold no whitespace, so this recurses only once.
                parts = _WHITESPACE.split(token)
                parts[::2] = self._scan(parts[::2], set(seen))
                token = "".join(parts)
            out[i] = token
            seen.add(os.path.basename(args[i]))
            i += 2 if takes_value else 1  # a masked value is not itself a flag
        return out


def mask_cut_tail(arg: str) -> str:
    """`arg` with its last word (the part a bound cut short) masked."""
    m = _CUT_WORD.search(arg)
    if m is None or arg.endswith(MASK):
        return arg
    return arg[:m.start()] + MASK


def redact_rule_files(given: Iterable[str | Path] = ()) -> list[Path]:
    """The user files the built-in rules are followed by: the user's redact.yaml when
    there is one, then the given ones (--redact-rules)."""
    return rule_files("redact.yaml", given)


@lru_cache(maxsize=None)
def default_redactor() -> Redactor:
    """The built-in rules plus the user's file when there is one (cached)."""
    return Redactor.from_files(redact_rule_files())


# ---------------------------------------------------------------- loading


def _str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def _load_file(path: Path, rules: dict[str, Rule], builtin: bool = False) -> None:
    """Parses one rule file into `rules` (name -> rule, in order), applying its
    `disable` list first. Raises RuleError naming the file and line."""

    doc, fail = read_rule_doc(path, _HINT, ("version", "disable", "rules"))
    if doc is None:
        return
    lines = doc["__lines__"]

    disable = doc.get("disable") or []
    if not _str_list(disable):
        fail(lines["disable"], "'disable' must be a list of rule names")
    for name in disable:
        # Unknown names are ignored: a renamed built-in must not break a user's
        # file, and the failure mode is more masking, never less.
        rules.pop(name, None)

    items = doc.get("rules") or []
    if not isinstance(items, list):
        fail(lines["rules"], "'rules' must be a list")
    here: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            fail(lines["rules"], f"each rule must be a mapping, got {item!r}")
        rule = _parse_rule(item, fail, builtin)
        if rule.name in here:
            fail(item["__line__"], f"duplicate rule name {rule.name!r}")
        here.add(rule.name)
        rules.pop(rule.name, None)  # a user rule with a built-in's name replaces it
        rules[rule.name] = rule


def _parse_rule(item: dict, fail: Fail, builtin: bool = False) -> Rule:
    line = item["__line__"]
    fields = rule_fields(item)
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        fail(line, "rule without a 'name'")

    def bad(msg: str) -> NoReturn:
        fail(line, f"rule {name!r}: {msg}")

    def regex(key: str, default: re.Pattern | None = None) -> re.Pattern:
        src = fields.get(key)
        if src is None and default is not None:
            return default
        if not isinstance(src, str) or not src:
            bad(f"{key!r} must be a non-empty regex string")
        if not builtin:  # a user's pattern runs on anyone's argv: RE2
            return user_regex(src, bad)
        try:
            return re.compile(src)
        except re.error as e:
            bad(f"invalid regex {src!r} ({e.msg})")

    kind = fields.get("kind")
    if kind not in _RULE_KEYS:
        bad(f"unknown kind {kind!r} (expected 'flag' or 'pattern')")
    for key in fields:
        if key not in _RULE_KEYS[kind]:
            bad(f"unknown key {key!r} for a {kind} rule")
    if "description" in fields and not isinstance(fields["description"], str):
        bad("'description' must be a string")

    if kind == "pattern":
        return PatternRule(name, regex("regex"))

    flags = fields.get("flags")
    if not _str_list(flags) or not flags:
        bad("'flags' must be a non-empty list of option names")
    for f in flags:
        if _long_key(f) is None or "=" in f or _WHITESPACE.search(f):
            bad(f"invalid flag {f!r}")
    forms = fields.get("forms", ["equals", "next"])
    if not _str_list(forms) or not forms or not set(forms) <= _FORMS:
        bad(f"'forms' must be a list of {', '.join(sorted(_FORMS))}")
    tools = fields.get("tools", [])
    if not _str_list(tools):
        bad("'tools' must be a list of program names")
    return FlagRule(
        name=name,
        short=frozenset(f for f in flags if _is_short(f)),
        long=frozenset(_long_key(f) for f in flags if not _is_short(f)),
        forms=frozenset(forms),
        tools=frozenset(tools),
        value=regex("value", _WHOLE_VALUE),
    )
