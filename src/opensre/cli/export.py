"""`opensre export`: a run's records of one kind as JSON Lines, or the run as an OTLP trace and metrics."""

from __future__ import annotations

import contextlib
import sys

from .args import count, common, positive_float
from .shared import open_store, say


def add_parser(sub) -> None:
    from ..export import KINDS

    e = sub.add_parser("export", help="export a run's records")
    common(e)
    e.add_argument("--run", default="latest", help="run id, name, id prefix or 'latest'")
    e.add_argument("--format", choices=["jsonl", "otlp"], default="jsonl",
                   help="jsonl (default), or otlp: the run as a trace and metrics to --endpoint (docs/otlp.md)")
    e.add_argument("--what", choices=list(KINDS), default="processes",
                   help="processes (default), tasks, tools (invocations), execs, samples (time series), "
                        "events (OOM kills, TCP connections), host (host time series)")
    e.add_argument("-o", "--output", help="file (default stdout)")
    _otlp_options(e)


def run(args) -> int:
    from ..export import write_records
    from ..safefile import open_output

    store = open_store(args, readonly=True)
    r = store.resolve_run(args.run)
    if args.format == "otlp":
        return _otlp(args, store, r)
    # a file: written beside it and renamed (never a half file, never through a link)
    with open_output(args.output, "export") if args.output else contextlib.nullcontext(sys.stdout) as out:
        write_records(out, store, r.run_id, args.what)
    if args.output:
        from ..store import give_to_invoking_user

        give_to_invoking_user(args.output)
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
    from ..errors import UsageError
    from ..export.otlp import SpanFilter, endpoint_from_env, export_run

    if args.output:
        raise UsageError("-o is for --format jsonl: --format otlp sends to --endpoint")
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
