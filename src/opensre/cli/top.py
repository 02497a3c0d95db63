"""`opensre top`: live view of the running tasks and tools, from the collectors'
live snapshots (another terminal, no root)."""

from __future__ import annotations

import json
import sys
import time

from .args import common, count, interval


def add_parser(sub) -> None:
    tp = sub.add_parser("top", help="live view of the running tasks and tools (another terminal, no root)")
    common(tp)
    tp.add_argument("--interval", type=interval, default=1.0, metavar="S", help="refresh every S seconds")
    tp.add_argument("--once", action="store_true", help="print one frame (two snapshots apart) and exit")
    tp.add_argument("-n", "--rows", type=count, default=30, help="rows per run (default 30)")
    tp.add_argument("--format", choices=["text", "json"], default="text",
                    help="json: one document per refresh, {\"runs\": [{run_id, name, cpu_cores, rss_bytes, "
                         "processes, tasks: [...]}]} (with --once: one)")


def run(args) -> int:
    from ..report.live import LiveView
    from ..store import default_store_path

    view = LiveView(args.store or default_store_path(), rows=args.rows)
    if args.once or args.format == "json":
        return _frames(view, args)
    from rich.console import Console
    from rich.live import Live

    con = Console()
    with Live(view.renderable(), console=con, screen=con.is_terminal, auto_refresh=False) as live:
        while True:
            view.update()
            live.update(view.renderable(), refresh=True)
            time.sleep(args.interval)


def _frames(view, args) -> int:
    """Plain frames (text or JSON) until --once's first."""
    view.update()
    while True:
        time.sleep(args.interval)
        view.update()
        if args.format == "json":
            sys.stdout.write(json.dumps(view.data()) + "\n")
            sys.stdout.flush()
        else:
            sys.stdout.write(view.text(width=160))
        if args.once:
            return 0
