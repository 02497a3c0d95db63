"""A redactor as the collector calls it, each distinct argv and path redacted once:
pipelines repeat the same command lines thousands of times."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from .redactor import Redactor, redact_rule_files

CACHE_SIZE = 4096


def cached(r: Redactor) -> Callable[..., tuple[list[str], bool]]:
    """argv, truncated -> (argv, changed), with `.path` for cwd and exe paths (a path
    can hold a token: the pattern rules, once per path). The form Collector's
    `redact` takes."""

    @lru_cache(maxsize=CACHE_SIZE)
    def argv_once(argv: tuple, truncated: bool) -> tuple:
        out, changed = r.redact_argv(list(argv), truncated)
        return tuple(out), changed

    def redact(argv: list[str], truncated: bool = False) -> tuple[list[str], bool]:
        out, changed = argv_once(tuple(argv), bool(truncated))
        return list(out), changed

    redact.path = lru_cache(maxsize=CACHE_SIZE)(r.redact_path)
    return redact


def collection_redactor(extra: Iterable[str | Path] = ()) -> Callable[..., tuple[list[str], bool]]:
    """The built-in rules, the user's file when there is one, then the files given
    (redact_rule_files: the one order of rule sources); cached."""
    return cached(Redactor.from_files(redact_rule_files(extra)))
