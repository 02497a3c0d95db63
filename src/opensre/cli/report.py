"""`opensre report RUN -o FILE`: a self-contained HTML report of a run (also `run --html`)."""

from __future__ import annotations

import sys
import time

from .args import common, price
from .shared import lake_option, open_reader


def add_parser(sub) -> None:
    rp = sub.add_parser("report", help="a self-contained HTML report of a run (timeline, charts, tune, processes)")
    common(rp)
    lake_option(rp)
    rp.add_argument("run", nargs="?", default="latest", help="run id, name, id prefix or 'latest'")
    rp.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    rp.add_argument("--compare", metavar="RUN_B", help="a second run: side-by-side per task type")
    rp.add_argument("--workflow", metavar="FILE",
                    help="the Snakefile (as tune --workflow): rule names, threads and resources it asks for")
    price(rp)


def run(args) -> int:
    store = open_reader(args)
    opts = {k: v for k, v in (("price_per_hour", args.price_per_hour), ("instance_type", args.instance_type),
                              ("workflow", args.workflow)) if v}
    if args.workflow:  # a file that cannot be read fails here, not as a note inside the report
        from ..analysis.workflow import read_snakefile

        read_snakefile(args.workflow)
    write_report(store, args.run, args.output, args.compare, opts)
    return 0


def write_report(store, run_ref: str, path: str, compare: str | None = None, tune_options: dict | None = None):
    """The report written, with a progress line on stderr for big runs, and one line saying where."""
    from ..report.html import write_report as write

    run = store.resolve_run(run_ref)
    tty = sys.stderr.isatty()
    big = tty or (run.process_count or 0) > 10_000
    r = write(store, run.run_id, path, compare, progress=_progress(tty) if big else None, tune_options=tune_options)
    if big and tty:
        print("\r" + " " * 70 + "\r", end="", file=sys.stderr)
    capped = f"; {len(r.notes)} lists capped (see its Notes)" if r.notes else ""
    print(f"opensre: report of run {run.run_id} written to {r.path} ({r.bytes / 2**20:.1f} MiB, "
          f"{r.processes:,} processes, {r.seconds:.1f} s{capped})", file=sys.stderr)
    return r


def _progress(tty: bool):
    """A counter line, at most every 0.2 s on a terminal (2 s in a log): big runs take seconds."""
    shown = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] < (0.2 if tty else 2.0):
            return
        shown[0] = now
        text = f"opensre report: {stage} {done:,}" + (f"/{total:,}" if total else "")
        print(f"\r{text:<70}" if tty else text, end="" if tty else "\n", file=sys.stderr, flush=True)

    return progress
