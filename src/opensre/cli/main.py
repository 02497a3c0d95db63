"""The thin CLI: parse -> call the library -> render -> map errors to exit codes.

One module per command, each with `add_parser(sub)` and `run(args) -> int`; this one
builds the parser from them and maps errors to exit codes.

Exit codes: the command's own status for `run`; 0 ok; 1 an OpenSRE error (one line
on stderr); 2 bad arguments."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from ..errors import OpenSREError, UsageError
from . import collect, correlate, doctor, export, import_, report, run, runs, show, sweep, top, tune
from .args import EXIT_ERROR, EXIT_USAGE, Parser
from .shared import default_store, say

# in the order `opensre --help` lists them
PARSERS = (run, collect, correlate, runs, show, export, tune, sweep, report, top, import_, doctor)

COMMANDS = {"import": import_.run, "run": run.run, "collect": collect.run, "runs": runs.run, "show": show.run,
            "export": export.run, "doctor": doctor.run, "tune": tune.run, "top": top.run, "correlate": correlate.run,
            "report": report.run, "sweep": sweep.run, "prune": runs.run_prune}

_TOP_OPTIONS = {"-h", "--help", "--version"}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="opensre", description="eBPF execution observability for pipelines and batch jobs")
    p.add_argument("--version", action="version", version=f"opensre {__import__('opensre').__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in PARSERS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    closed = _reserve_std_fds()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    for a in argv:  # before the command: argparse would only say a command is required
        if not a.startswith("-"):
            break
        if a.split("=", 1)[0] not in _TOP_OPTIONS:
            parser.error(f"unrecognized argument: {a}")
    args = parser.parse_args(argv)
    args.closed_fds = closed
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        say(e.one_line())
        return EXIT_USAGE
    except OpenSREError as e:
        say(e.one_line())
        return EXIT_ERROR
    except sqlite3.DatabaseError as e:  # a store that turns out damaged past its first pages
        from ..store.db import damaged

        say(damaged(getattr(args, "store", None) or default_store(), e).one_line())
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _reserve_std_fds() -> tuple[int, ...]:
    """stdin/stdout/stderr that were closed (`>&-`) get /dev/null, so that no file
    we open lands on them (a pipe on fd 1 would become the command's stdout); the
    command `run` starts gets them closed again, as it was asked. Returns them."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        got = os.open(os.devnull, os.O_RDWR)
        if got != fd:  # lower fds are open: the lowest free one is this one
            os.dup2(got, fd)
            os.close(got)
    if 1 in closed or sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    if 2 in closed or sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)
    return tuple(closed)


if __name__ == "__main__":
    sys.exit(main())
