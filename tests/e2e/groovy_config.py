"""A small grammar check for Nextflow config blocks (Nextflow itself needs a JVM
and a download): `name { ... }`, `withName: 'X' { ... }`, `key = value`, `//`
comments, ';' or newline separators. parse() returns nested dicts of raw value
text and raises SyntaxError with a line number on anything else."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""[ \t\r]*(?:(//[^\n]*)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(\{|\}|=|;|:|\n)|([A-Za-z_][\w.]*)|([\d.]+(?:\.[A-Za-z]+)?)|(\S))""")


def _tokens(text: str):
    line = 1
    for m in _TOKEN.finditer(text):
        comment, string, punct, ident, number, other = m.groups()
        if comment:
            continue
        if other:
            raise SyntaxError(f"line {line}: unexpected {other!r}")
        tok = string or punct or ident or number
        if tok is None:
            continue
        yield tok, line
        line += tok.count("\n")


def parse(text: str) -> dict:
    toks = [t for t in _tokens(text)]
    pos = 0

    def peek():
        return toks[pos][0] if pos < len(toks) else None

    def take(expect=None):
        nonlocal pos
        if pos >= len(toks):
            raise SyntaxError("unexpected end of config")
        tok, line = toks[pos]
        if expect is not None and tok != expect:
            raise SyntaxError(f"line {line}: expected {expect!r}, got {tok!r}")
        pos += 1
        return tok

    def skip_seps():
        while peek() in ("\n", ";"):
            take()

    def block() -> dict:
        out = {}
        while True:
            skip_seps()
            if peek() in (None, "}"):
                return out
            name = take()
            if not re.match(r"^[A-Za-z_]", name):
                raise SyntaxError(f"line {toks[pos - 1][1]}: expected a name, got {name!r}")
            if peek() == ":":  # a selector: withName: 'X' { ... }
                take(":")
                sel = take()
                if not (sel[0] in "'\"" and sel[-1] == sel[0]):
                    raise SyntaxError(f"line {toks[pos - 1][1]}: selector must be a quoted string")
                take("{")
                out[f"{name}: {sel}"] = block()
                take("}")
            elif peek() == "{":
                take("{")
                out[name] = block()
                take("}")
            else:
                take("=")
                val = take()
                if val in ("{", "}", "=", ";", "\n", ":"):
                    raise SyntaxError(f"line {toks[pos - 1][1]}: missing value for {name}")
                out[name] = val
                if peek() not in ("\n", ";", "}", None):
                    raise SyntaxError(f"line {toks[pos][1]}: expected end of statement after {name}")

    res = block()
    if peek() is not None:
        raise SyntaxError(f"line {toks[pos][1]}: unexpected {peek()!r}")
    return res
