"""`opensre run -- CMD`: run a command and observe it and everything it starts."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OpenSREError, UsageError
from .args import common, positive_float
from .shared import default_store, open_store, preflight, redactor, say, try_


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run a command and observe it and everything it starts",
                       usage="opensre run [options] -- CMD [ARGS...]")
    common(r, collect=True)
    r.add_argument("--name", help="a name for this run")
    r.add_argument("--as-root", action="store_true", help="under sudo, run CMD as root instead of the invoking user")
    r.add_argument("--linger", type=positive_float, default=2.0, metavar="S",
                   help="after CMD exits, wait up to S seconds for processes it left behind (default 2)")
    r.add_argument("-q", "--quiet", action="store_true", help="no summary")
    r.add_argument("--no-live", action="store_true", help="do not publish a live view for `opensre top`")
    r.add_argument("--html", metavar="FILE", help="also write the run's HTML report (as `opensre report`)")
    r.add_argument("--rules", action="append", default=[], metavar="FILE",
                   help="tool rules (YAML: rename tools, exclude helpers); repeatable")
    r.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")


def run(args) -> int:
    from ..collect import run_command
    from ..correlate import tool_identifier
    from ..errors import CommandNotStarted
    from .args import collector_options

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise UsageError("no command given", "usage: opensre run [options] -- CMD [ARGS...]")
    preflight()
    redact = redactor(args)
    # every rule source (tools.yaml, rules.yaml beside the store, --rules) fails before the command runs
    ident = tool_identifier(args.store or default_store(), args.rules)
    if args.html:  # a target that would be refused fails before the command runs
        from ..safefile import check_output

        check_output(os.path.abspath(args.html), "report")
    store = open_store(args)
    try:
        res = run_command(cmd, store, name=args.name, opts=collector_options(args, False), redact=redact,
                          as_invoking_user=not args.as_root, linger_s=args.linger, closed_fds=args.closed_fds)
    except CommandNotStarted as e:  # as a shell says it: one line, 127 (not found) or 126
        say(str(e))
        return e.exit_status
    if res.store_error:
        where = f"; {res.run.process_count} processes stored, the rest saved to {res.spill_path}" if res.spill_path \
            else "; records could not be saved anywhere"
        say(f"{res.store_error}{where}")
    elif _correlate(store, res, ident):
        _after(args, store, res)
    return res.exit_status


def _correlate(store, res, ident) -> bool:
    """The run's tasks and tools, fed from the records the collector kept (not read
    back from the store). False, said, when they could not be computed."""
    from ..correlate import correlate_run

    procs, execs = res.records or (None, None)
    try:  # the command ran: its status stands whatever happens here
        correlate_run(store, res.run.run_id, procs=procs, execs=execs, run=res.run, identifier=ident)
    except OpenSREError as e:
        say(f"run {res.run.run_id} stored, but its tasks could not be computed: {e.one_line()}")
        return False
    return True


def _after(args, store, res) -> None:
    """The summary and the --html report."""
    from ..report import run_summary

    if not args.quiet:
        procs = res.records[0] if res.records else list(store.processes(res.run.run_id))
        print(run_summary(res.run, procs, str(store.path)), file=sys.stderr)
    if args.html:
        from ..store import give_to_invoking_user
        from .report import write_report

        try_(write_report, store, res.run.run_id, args.html)
        give_to_invoking_user(args.html)
