"""`opensre runs` lists stored runs, `runs rm RUN...` removes runs, `opensre prune`
removes runs older than a duration."""

from __future__ import annotations

import sys
import time

from ..errors import UsageError
from ..term import term
from .args import age, common, count
from .shared import open_store

HEADER = f"{'RUN':<12} {'STARTED':<19} {'WALL':>9} {'PROCS':>6} {'EXIT':>5} {'DROPS':>5} {'STATUS':<11} NAME / COMMAND"


def add_parser(sub) -> None:
    rs = sub.add_parser("runs", help="list stored runs; `runs rm RUN...` removes runs",
                        usage="opensre runs [-n N] [--store S]\n"
                              "       opensre runs rm RUN [RUN ...] [--store S] [--vacuum]")
    common(rs)
    rs.add_argument("-n", type=count, default=20, help="how many (default 20)")
    rs.add_argument("action", nargs="?", choices=["rm"], help="rm: remove the runs named and all their records")
    rs.add_argument("refs", nargs="*", metavar="RUN", help="with rm: run id, name, id prefix or 'latest'")
    rs.add_argument("--vacuum", action="store_true", help="with rm: shrink the store file afterwards")

    pr = sub.add_parser("prune", help="remove runs older than a duration, with all their records")
    common(pr)
    pr.add_argument("--older-than", type=age, required=True, metavar="DURATION",
                    help="runs started longer ago than this: 30d, 12h, 90m, 2w")
    pr.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    pr.add_argument("--vacuum", action="store_true", help="shrink the store file afterwards")


def run(args) -> int:
    if args.action == "rm":
        return run_rm(args)
    if args.refs:
        raise UsageError(f"unknown runs action {args.refs[0]!r}", "`opensre runs` lists, `opensre runs rm RUN` removes")
    store = open_store(args, readonly=True)
    runs = store.runs(args.n, detected=False)
    if not runs:
        print("no runs yet")
        return 0
    print(HEADER)
    for r in runs:
        print(_line(r, ""))
        if r.mode == "collect":  # the runs detected in it, indented under it
            for d in store.detected_runs(r.run_id):
                print(_line(d, "  ↳ "))
    return 0


def _line(r, indent: str) -> str:
    from ..report import fmt_s
    from ..term import term

    start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.start_time_ns / 1e9))
    wall = fmt_s(r.end_time_ns - r.start_time_ns) if r.end_time_ns else "-"
    ex = f"s{r.exit_signal}" if r.exit_signal else ("-" if r.exit_code is None else str(r.exit_code))
    label = indent + term(r.name or " ".join(r.command))
    return f"{term(r.run_id):<12} {start:<19} {wall:>9} {r.process_count:>6} {ex:>5} {r.drops:>5} {r.status:<11} {label[:64]}"


def run_rm(args) -> int:
    from ..correlate.runs import UNATTRIBUTED
    from ..errors import RunStillRunning

    if not args.refs:
        raise UsageError("runs rm: no run given", "usage: opensre runs rm RUN [RUN ...]")
    store = open_store(args)
    runs = [store.resolve_run(r) for r in args.refs]  # every name resolves before anything goes
    for r in runs:
        if r.status == "running":
            raise RunStillRunning(f"run {r.run_id} is still running", "remove it once it has ended; nothing removed")
    for r in runs:
        print(_removed(r, store.delete_run(r.run_id, UNATTRIBUTED)))
    if args.vacuum:
        store.vacuum()
    return 0


def run_prune(args) -> int:
    from ..correlate.runs import UNATTRIBUTED

    store = open_store(args, readonly=args.dry_run)
    cutoff = time.time_ns() - int(args.older_than * 1e9)
    old = store.runs_older_than(cutoff)
    for r in old:
        if r.status == "running":
            print(f"kept run {r.run_id}: still running", file=sys.stderr)
    gone = [r for r in old if r.status != "running"]
    for r in gone:
        if args.dry_run:
            print(f"would remove run {r.run_id} {term(r.name or ' '.join(r.command))}")
        else:
            print(_removed(r, store.delete_run(r.run_id, UNATTRIBUTED)))
    if args.vacuum and not args.dry_run:
        store.vacuum()
    print(f"{'would remove' if args.dry_run else 'removed'} {len(gone)} run(s) started before "
          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(cutoff / 1e9))}", file=sys.stderr)
    return 0


def _removed(run, n: dict) -> str:
    what = ", ".join(f"{v} {k}" for k, v in n.items() if v and k not in ("runs", "hosts"))
    extra = f" (and {n['runs'] - 1} run(s) detected in it)" if n.get("runs", 0) > 1 else ""
    return f"removed run {run.run_id} {term(run.name or ' '.join(run.command))}{extra}: {what or 'no records'}"
