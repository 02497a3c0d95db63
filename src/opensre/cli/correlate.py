"""`opensre correlate RUN`: recompute a run's tasks and tools (e.g. with new rules)."""

from __future__ import annotations

from .args import common


def add_parser(sub) -> None:
    co = sub.add_parser("correlate", help="recompute a run's tasks and tools (e.g. with new rules)")
    common(co)
    co.add_argument("run", nargs="?", default="latest", help="run id, name, id prefix or 'latest'")
    co.add_argument("--rules", action="append", default=[], metavar="FILE", help="tool rules (YAML); repeatable")
    co.add_argument("--run-rules", action="append", default=[], metavar="FILE",
                    help="run rules (YAML) for a host-wide collection; repeatable")


def run(args) -> int:
    from ..correlate import correlate_collection, correlate_run
    from ..report.detected import detected_lines
    from ..store import Store

    Store(args.store, readonly=True).close()  # an existing store of ours: never creates or initialises one
    store = Store(args.store)
    r = store.resolve_run(args.run)
    if r.parent_run_id:  # a detected run: redo the detection in its collection
        print(f"run {r.run_id} was detected in collection {r.parent_run_id}: re-detecting its runs")
        r = store.resolve_run(r.parent_run_id)
    if r.mode == "collect":
        detected = correlate_collection(store, r.run_id, args.rules, args.run_rules)
        print(f"collection {r.run_id}:")
        print(detected_lines(detected, r.process_count or None))
        return 0
    c = correlate_run(store, r.run_id, args.rules)
    print(f"run {r.run_id}: {len(c.tasks)} tasks, {len(c.tools)} tool invocations, "
          f"{len(c.task_of)} processes attributed")
    return 0
