"""`opensre export`: a run's records of one kind as JSON Lines, or runs as a Parquet
lake (a directory or s3://bucket/prefix; docs/lake.md)."""

from __future__ import annotations

import contextlib
import sys

from ..errors import UsageError
from .args import age, common
from .shared import open_store


def add_parser(sub) -> None:
    from ..export import KINDS

    e = sub.add_parser("export", help="export a run's records (JSON Lines) or runs as a Parquet lake")
    common(e)
    which = e.add_mutually_exclusive_group()
    which.add_argument("--run", help="run id, name, id prefix or 'latest' (the default)")
    which.add_argument("--since", type=age, metavar="DURATION",
                       help="parquet: every run active in the last DURATION (30d, 12h, 90m)")
    e.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    e.add_argument("--what", choices=list(KINDS),
                   help="jsonl: processes (default), tasks, tools (invocations), execs, samples (time series), "
                        "events (OOM kills, TCP connections), host (host time series)")
    e.add_argument("-o", "--output", help="jsonl: file (default stdout)")
    e.add_argument("--to", metavar="DEST", help="parquet: a directory or s3://bucket/prefix (every table)")


def run(args) -> int:
    if args.format == "parquet":
        return _lake(args)
    if args.to or args.since is not None:
        raise UsageError("--to and --since go with --format parquet")
    from ..export import write_records
    from ..safefile import open_output

    store = open_store(args, readonly=True)
    r = store.resolve_run(args.run or "latest")
    # a file: written beside it and renamed (never a half file, never through a link)
    with open_output(args.output, "export") if args.output else contextlib.nullcontext(sys.stdout) as out:
        write_records(out, store, r.run_id, args.what or "processes")
    if args.output:
        from ..store import give_to_invoking_user

        give_to_invoking_user(args.output)
    return 0


def _lake(args) -> int:
    from ..export.lake import LocalDest, export_lake, open_dest, select_runs
    from ..store import give_to_invoking_user

    if args.output or args.what:
        raise UsageError("--format parquet writes every table under --to DEST (no -o, no --what)")
    if not args.to:
        raise UsageError("--format parquet needs --to DEST (a directory or s3://bucket/prefix)")
    dest = open_dest(args.to)  # a bad DEST fails before the store is opened
    store = open_store(args, readonly=True)
    runs = select_runs(store, args.run, args.since)
    if not runs:
        print(f"no run in {store.path} was active in the last {args.since:g} s: nothing exported")
        return 0
    try:
        done = export_lake(store, runs, dest)
    finally:
        if isinstance(dest, LocalDest):
            give_to_invoking_user(*dest.written)
    rows = ", ".join(f"{n:,} {t}" for t, n in done.rows.items() if t not in ("runs", "hosts"))
    print(f"exported {len(done.runs)} run{'s' * (len(done.runs) != 1)} to {done.dest}: {rows} ({done.files} files)")
    return 0
