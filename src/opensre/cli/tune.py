"""`opensre tune`: what held each task back and what it should be given."""

from __future__ import annotations

import json
import os
import sys

from ..errors import UsageError
from .args import common, positive_float, price
from .shared import lake_option, open_reader, say


def add_parser(sub) -> None:
    t = sub.add_parser("tune", help="what held each task back and what it should be given")
    common(t)
    lake_option(t)
    t.add_argument("runs", nargs="*", default=[], metavar="RUN",
                   help="run id, name, id prefix or 'latest' (default latest); several: analysed together")
    t.add_argument("--pipeline", metavar="NAME",
                   help="size from every run of this name (a pipeline's runs); the latest is compared with the ones before")
    t.add_argument("--baseline-runs", type=int, default=10, metavar="N",
                   help="with --pipeline: compare the latest run with the N runs before it (default 10)")
    t.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                   help="compare two runs (or comma-separated lists of runs) per task type")
    t.add_argument("--workflow", metavar="FILE", help="the Snakefile: rule names, threads and resources it asks for")
    t.add_argument("--format", choices=["text", "json"], default="text")
    t.add_argument("--emit", choices=["nextflow", "snakemake", "slurm", "k8s"],
                   help="print the recommendations as config to paste into the workflow")
    price(t)
    t.add_argument("--idle-after", type=positive_float, default=60.0, metavar="S",
                   help="no CPU or I/O progress for this long counts as idle/stalled (default 60)")
    t.add_argument("-o", "--output", help="file (default stdout)")


def run(args) -> int:
    from ..analysis import Thresholds, tune

    store = open_reader(args)
    runs, after, sizing, baseline = _runs(args, store)
    for ref in after or runs:  # the runs reported on: a running one has no tasks yet
        r = store.resolve_run(ref)
        if r.status == "running":
            from ..errors import RunStillRunning

            raise RunStillRunning(f"run {r.run_id} is still running: its tasks are known when it ends",
                                  "tune it then; watch it now with `opensre top`")
    res = tune(store, runs, workflow=args.workflow, thresholds=Thresholds(idle_after_s=args.idle_after),
               price_per_hour=args.price_per_hour, instance_type=args.instance_type, compare_with=after,
               sizing_runs=sizing, baseline=baseline)
    if not res.tasks:
        say(_nothing_to_tune(store.resolve_run(runs[0] if not after else after[0])))
    _write(args, _render(args, res))
    return 0


def _runs(args, store) -> tuple[list[str], list[str] | None, list[str] | None, list[str] | None]:
    """(runs, compared-with runs, sizing runs, baseline runs) the arguments name."""
    split = lambda ref: [x for x in ref.split(",") if x]  # noqa: E731
    sizing = baseline = None
    if args.compare:
        if args.runs:
            raise UsageError("give either RUN or --compare BEFORE AFTER, not both")
        runs, after = split(args.compare[0]), split(args.compare[1])
    else:
        runs, after = list(args.runs) or ["latest"], None
    if args.pipeline:
        named = [r for r in store.runs_named(args.pipeline) if r.status != "running"]  # one still going: not yet
        if not named:
            raise UsageError(f"no runs named {args.pipeline!r}", "list runs with `opensre runs`")
        sizing = [r.run_id for r in named]
        if not args.runs and not args.compare:
            runs = [named[-1].run_id]
            # the latest run against the pipeline's recent history: did it regress?
            baseline = [r.run_id for r in named[:-1]][-args.baseline_runs:]
    return runs, after, sizing, baseline


def _nothing_to_tune(r) -> str:
    if r.status == "running":
        hint = "it is still running: its tasks are known when it ends"
    elif r.mode == "collect":
        hint = "a host-wide collection: tune one of the runs detected in it (`opensre runs`)"
    else:
        hint = "it has no tasks: recompute them with `opensre correlate RUN`"
    return f"nothing to tune in run {r.run_id}: {hint}"


def _render(args, res) -> str:
    if args.emit:
        from ..analysis import emit

        return emit(res, args.emit)
    if args.format == "json":
        return json.dumps(res.to_json(), indent=1, default=str) + "\n"
    from ..report.tune_text import render

    tty = not args.output and sys.stdout.isatty()
    return render(res, color=tty and not os.environ.get("NO_COLOR"),
                  width=os.get_terminal_size().columns if tty else 120)


def _write(args, text: str) -> None:
    if not args.output:
        sys.stdout.write(text)
        return
    from ..safefile import write_output
    from ..store import give_to_invoking_user

    write_output(args.output, text, "tune output")
    give_to_invoking_user(args.output)
