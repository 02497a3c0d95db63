"""What reaches a terminal from recorded data (argv, exe, comm, run and task
names, tool names) passes through here: `term` makes control characters visible
(`\\n`, `\\x1b`, ...), so no recorded string can move the cursor, clear the screen,
set the title, ring the bell or forge a line; `markup` also escapes rich markup
for views that render with rich. JSON and HTML outputs escape on their own."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), and the
# Unicode line/paragraph separators and bidi overrides that reorder what is shown
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def term(value) -> str:
    """`value` as text that is safe to print to a terminal (None -> "")."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    return _CONTROL.sub(_visible, s) if _CONTROL.search(s) else s


def markup(value) -> str:
    """term(value), with rich markup escaped: shown as written, never interpreted."""
    from rich.markup import escape

    return escape(term(value))
