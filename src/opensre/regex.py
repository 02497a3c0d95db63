"""Regular expressions from users' rule files (redaction patterns and values,
tool and run rules' `argv_regex`) run on argv that anyone on the host controls,
so they are compiled with RE2 (google-re2): matching is linear in the input, and
a pattern such as `(a+)+$` cannot hang the collector. RE2 has no backreferences
and no lookaround; a pattern that needs them is refused with one line when the
file is loaded. The built-in rules (reviewed, shipped with OpenSRE) keep Python's
`re`, whose lookbehind they use."""

from __future__ import annotations

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would log each refused pattern to stderr


class RegexError(ValueError):
    """A pattern RE2 cannot compile; str() is one line."""


def compile_user(pattern: str):
    """An RE2 pattern with the `re` API the rules use (search, sub, groupindex)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        msg = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise RegexError(f"{msg} (RE2 syntax: no backreferences or lookaround)") from None


def group_span(m, name: str) -> tuple[int, int] | None:
    """The span of a named group of a match from `re` or RE2 (RE2's span() takes
    only numbers); None when the pattern has no such group."""
    idx = m.re.groupindex.get(name)
    return None if idx is None else m.span(idx)
