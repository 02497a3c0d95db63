"""`opensre export`: a run's records of one kind as JSON Lines."""

from __future__ import annotations

import contextlib
import sys

from .args import common
from .shared import open_store


def add_parser(sub) -> None:
    from ..export import KINDS

    e = sub.add_parser("export", help="export a run's records")
    common(e)
    e.add_argument("--run", default="latest", help="run id, name, id prefix or 'latest'")
    e.add_argument("--format", choices=["jsonl"], default="jsonl")
    e.add_argument("--what", choices=list(KINDS), default="processes",
                   help="processes (default), tasks, tools (invocations), execs, samples (time series), "
                        "events (OOM kills, TCP connections), host (host time series)")
    e.add_argument("-o", "--output", help="file (default stdout)")


def run(args) -> int:
    from ..export import write_records
    from ..safefile import open_output

    store = open_store(args, readonly=True)
    r = store.resolve_run(args.run)
    # a file: written beside it and renamed (never a half file, never through a link)
    with open_output(args.output, "export") if args.output else contextlib.nullcontext(sys.stdout) as out:
        write_records(out, store, r.run_id, args.what)
    if args.output:
        from ..store import give_to_invoking_user

        give_to_invoking_user(args.output)
    return 0
