"""`opensre show RUN`: a run's summary and its tasks and tools, process tree or timeline."""

from __future__ import annotations

from .args import common, count
from .shared import open_store


def add_parser(sub) -> None:
    s = sub.add_parser("show", help="a run's summary and process tree")
    common(s)
    s.add_argument("run", nargs="?", default="latest", help="run id, name, id prefix or 'latest'")
    s.add_argument("--width", type=int, default=80, help="command column width")
    s.add_argument("--timeline", action="store_true", help="per-process timeline of CPU, memory and waits")
    s.add_argument("--tree", action="store_true", help="the process tree instead of tasks and tools")
    s.add_argument("--rows", type=count, default=200, metavar="N",
                   help="at most N task rows (failed and most CPU first; default 200)")


def run(args) -> int:
    from ..report import process_tree, run_summary, task_view
    from ..report.detected import detected_lines

    store = open_store(args, readonly=True)
    r = store.resolve_run(args.run)
    procs = list(store.processes(r.run_id))
    print(run_summary(r, procs))
    print()
    if r.mode == "collect":
        detected = store.detected_runs(r.run_id)
        if detected:
            print(detected_lines(detected, len(procs)))
            print()
    if args.tree:
        print(process_tree(procs, width=args.width))
        return 0
    if args.timeline:
        from ..report.timeline import timeline

        print(timeline(r, procs, list(store.samples(r.run_id)), list(store.events(r.run_id)), width=args.width))
    else:
        tasks = store.tasks(r.run_id)
        if tasks:
            print(task_view(tasks, store.tools(r.run_id), limit=args.rows))
        else:
            print(process_tree(procs, width=args.width))
    return 0
