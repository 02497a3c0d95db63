"""`opensre export`: a run's records of one kind as JSON Lines, runs as a Parquet lake
(a directory or s3://bucket/prefix; docs/lake.md), or a run as an OTLP trace and
metrics (docs/otlp.md)."""

from __future__ import annotations

import contextlib
import sys

from ..errors import UsageError
from .args import age, common, count, positive_float
from .shared import open_store, say


def add_parser(sub) -> None:
    from ..export import KINDS

    e = sub.add_parser("export", help="export a run's records (JSON Lines), runs as a Parquet lake, "
                                      "or a run as OTLP")
    common(e)
    which = e.add_mutually_exclusive_group()
    which.add_argument("--run", help="run id, name, id prefix or 'latest' (the default)")
    which.add_argument("--since", type=age, metavar="DURATION",
                       help="parquet: every run active in the last DURATION (30d, 12h, 90m)")
    e.add_argument("--format", choices=["jsonl", "parquet", "otlp"], default="jsonl",
                   help="jsonl (default); parquet: a lake under --to; otlp: the run as a trace and metrics "
                        "to --endpoint")
    e.add_argument("--what", choices=list(KINDS),
                   help="jsonl: processes (default), tasks, tools (invocations), execs, samples (time series), "
                        "events (OOM kills, TCP connections), host (host time series)")
    e.add_argument("-o", "--output", help="jsonl: file (default stdout)")
    e.add_argument("--to", metavar="DEST", help="parquet: a directory or s3://bucket/prefix (every table)")
    _otlp_options(e)


def run(args) -> int:
    if args.format == "parquet":
        return _lake(args)
    if args.to or args.since is not None:
        raise UsageError("--to and --since go with --format parquet")
    from ..export import write_records
    from ..safefile import open_output

    store = open_store(args, readonly=True)
    r = store.resolve_run(args.run or "latest")
    if args.format == "otlp":
        return _otlp(args, store, r)
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


def _otlp_options(e) -> None:
    o = e.add_argument_group("otlp")
    o.add_argument("--endpoint", metavar="URL",
                   help="OTLP/HTTP base URL (/v1/traces, /v1/metrics appended); default from "
                        "OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_EXPORTER_OTLP_* variables, else "
                        "http://localhost:4318")
    o.add_argument("--min-duration", type=positive_float, default=0, metavar="S",
                   help="leave out spans of processes that lived shorter than S seconds (metrics keep them)")
    o.add_argument("--max-spans", type=count, metavar="N",
                   help="send at most N process spans, those with the most CPU (metrics keep every process)")


def _otlp(args, store, r) -> int:
    from ..export.otlp import SpanFilter, endpoint_from_env, export_run

    if args.output or args.what:
        raise UsageError("--format otlp sends the whole run to --endpoint (no -o, no --what)")
    endpoint = endpoint_from_env(args.endpoint)
    s = export_run(store, r, endpoint, SpanFilter(int(args.min_duration * 1e9), args.max_spans))
    left = f" ({s.process_spans_left_out} process spans left out by the filter)" if s.process_spans_left_out else ""
    print(f"run {r.run_id}: trace {s.trace_id}, {s.spans} spans{left}, {s.metric_points} metric points "
          f"sent to {endpoint}")
    if s.rejected_spans or s.rejected_points:
        say(f"the OTLP receiver did not take everything: {'; '.join(s.messages)}")
        return 1
    if s.messages:  # a partial success that rejected nothing is a warning (OTLP spec)
        say(f"the OTLP receiver warned: {'; '.join(s.messages)}")
    return 0
