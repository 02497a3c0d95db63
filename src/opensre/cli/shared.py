"""What the commands share: one-line messages, the store they open, the checks
before collecting."""

from __future__ import annotations

import sys

from ..errors import OpenSREError


def say(line: str) -> None:
    """One line on stderr, its recorded parts (names, paths, argv) made safe for a terminal."""
    from ..term import term

    print(f"opensre: {term(line)}", file=sys.stderr)


def try_(fn, *a):
    """fn(*a); an OpenSRE error is said, not raised (the command's status stands)."""
    try:
        fn(*a)
    except OpenSREError as e:
        say(e.one_line())


def default_store():
    from ..store import default_store_path

    return default_store_path()


def open_store(args, readonly=False):
    from ..store import Store

    return Store(args.store, readonly=readonly)


def open_reader(args):
    """What read-only analysis reads: the lake `--lake` names, else the store."""
    if getattr(args, "lake", None):
        from ..store.lake import LakeReader

        return LakeReader(args.lake)
    return open_store(args, readonly=True)


def lake_option(p) -> None:
    p.add_argument("--lake", metavar="DEST", help="read the runs from a Parquet lake (a directory or "
                   "s3://bucket/prefix that `export --format parquet` wrote) instead of the store")


def preflight():
    """Fail on privileges/BTF before touching the store or starting anything."""
    from ..bpf.features import require_basics

    require_basics()


def redactor(args):
    from ..redact.cache import collection_redactor

    return collection_redactor(list(getattr(args, "redact_rules", []) or []))

