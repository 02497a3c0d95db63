"""`opensre collect`: observe the whole host until SIGINT/SIGTERM (or --duration)."""

from __future__ import annotations

import signal
import sys

from ..errors import OpenSREError
from .args import EXIT_ERROR, collector_options, common, duration
from .shared import default_store, open_store, preflight, redactor, say


def add_parser(sub) -> None:
    c = sub.add_parser("collect", help="observe the whole host until SIGINT/SIGTERM")
    common(c, collect=True)
    c.add_argument("--name", help="a name for this collection")
    c.add_argument("--duration", type=duration, metavar="S",
                   help="stop after S seconds (more than 0; default: until SIGINT/SIGTERM)")
    c.add_argument("--deny", action="append", default=[], metavar="COMM",
                   help="also ignore processes with this command name; repeatable")
    c.add_argument("--rules", action="append", default=[], metavar="FILE",
                   help="tool rules (YAML) for the detected runs' tasks and tools; repeatable")
    c.add_argument("--run-rules", action="append", default=[], metavar="FILE",
                   help="run rules (YAML, a `runs:` list) naming runs explicitly; repeatable")
    c.add_argument("--no-detect", action="store_true", help="do not detect runs in the collection when it ends")
    c.add_argument("--live", action="store_true", help="publish a live view for `opensre top` (costs CPU per tick)")


def run(args) -> int:
    from ..collect.hostwide import collect_host, new_host_run

    preflight()
    ident = rules = None
    if not args.no_detect:  # a bad rule file (given or auto-loaded) fails before anything starts
        from ..correlate import run_rules, tool_identifier

        where = args.store or default_store()
        ident, rules = tool_identifier(where, args.rules), run_rules(where, args.run_rules)
    redact = redactor(args)  # a bad redaction file too, before the store is made
    opts = collector_options(args, True)
    opts.denylist += args.deny
    store = open_store(args)
    host_run = new_host_run(store, args.name)
    stop = []
    old = {s: signal.signal(s, lambda *_: stop.append(1)) for s in (signal.SIGINT, signal.SIGTERM)}
    started = lambda: print(f"opensre: collecting host-wide into {store.path} (run {host_run.run_id}); "  # noqa: E731
                            "Ctrl-C to stop", file=sys.stderr)
    try:
        res = collect_host(store, host_run, opts, redact, args.duration, stop=lambda: bool(stop),
                           on_started=started, on_error=lambda e: say(e.one_line()))
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if res.failed is not None:
        say(_failure(res))
        return EXIT_ERROR
    _summary(store, res.run, None if args.no_detect else (ident, rules))
    return 0


def _failure(res) -> str:
    files = res.spill_files
    kept = f"; {res.spilled} process records saved to {', '.join(files)} (load them with " \
           f"`opensre import {files[0]} --store STORE`)" if files else ""
    lost = f"; {res.unsaved} process records could not be saved anywhere" if res.unsaved else ""
    return f"{res.failed}: {res.written} processes stored{kept}{lost}"


def _summary(store, run, detect) -> None:
    """The run's summary, then (`detect`: its rules) the runs detected in it."""
    from ..report import run_summary
    from ..report.detected import detected_lines

    procs = list(store.processes(run.run_id))
    print(run_summary(run, procs, str(store.path)), file=sys.stderr)
    if detect is None:
        return
    from ..correlate import correlate_collection

    try:
        detected = correlate_collection(store, run.run_id, identifier=detect[0], rules=detect[1])
    except OpenSREError as e:
        say(f"detecting runs: {e.one_line()}")
    else:
        print(detected_lines(detected, len(procs)), file=sys.stderr)
