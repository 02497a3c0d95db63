"""The report as a file: `report_data()`'s dict inlined as JSON together with the
page's script, styles and the vendored uPlot (MIT, assets/uPlot.LICENSE), written
beside a page of its own for each run a host-wide collection detected."""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..model import Run
from ..store import Store
from .data import Progress, ReportLimits, report_data
from .summary import fmt_bytes, fmt_s

__all__ = ["render_html", "write_report", "ReportFile", "MAX_DETECTED_PAGES"]

MAX_DETECTED_PAGES = 50


def _asset(name: str) -> str:
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


def _json_for_html(data: dict) -> str:
    # inside <script type="application/json">: only "</script" could end it; escape every "<"
    return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str).replace("<", "\\u003c")


def render_html(data: dict) -> str:
    h = data["header"]
    title = f"opensre report {h['run_id']}" + (f" ({h['name']})" if h.get("name") else "")
    page = _asset("report.html")
    parts = {
        "TITLE": html.escape(title),
        "STYLE": _asset("uPlot.min.css") + "\n" + _asset("report.css"),
        "UPLOT": _asset("uPlot.iife.min.js"),
        "SCRIPT": _asset("report.js"),
        "DATA": _json_for_html(data),
        "SUMMARY": html.escape(_text_summary(data)),
    }
    for k, v in parts.items():  # one replacement each, in order; values may contain anything
        page = page.replace("{{" + k + "}}", v.replace("{{", "{\u200b{") if k in ("TITLE", "SUMMARY") else v, 1)
    return page


def _text_summary(data: dict) -> str:
    """The header as text, in the page's <noscript> and for readers without a browser."""
    h = data["header"]
    return (f"run {h['run_id']} {h['status']}, exit {h['exit']}, wall {fmt_s(h['wall_ns'])}, "
            f"{h['processes']} processes, CPU {fmt_s(h['cpu_ns'])}, peak RSS {fmt_bytes(h['peak_rss'])}")


@dataclass
class ReportFile:
    path: Path
    bytes: int
    processes: int
    seconds: float
    notes: list[str]


def _detected_pages(store: Store, run: Run, path: Path) -> tuple[list[tuple[Run, Path]], int]:
    """A collection's detected runs that get a page of their own: PATH's stem plus
    the run id (report.html -> report.RUNID.html), the most CPU-hungry first; and
    how many runs were detected in all."""
    if run.mode != "collect":
        return [], 0
    runs = store.detected_runs(run.run_id)
    total = len(runs)
    if total > MAX_DETECTED_PAGES:
        cpu = {r.run_id: sum(t.cpu_ns for t in store.tasks(r.run_id)) for r in runs}
        runs = sorted(runs, key=lambda r: -cpu[r.run_id])[:MAX_DETECTED_PAGES]
    return [(r, path.with_name(f"{path.stem}.{r.run_id}{path.suffix or '.html'}")) for r in runs], total


def write_report(store: Store, run_ref: str, path: str | Path, compare: str | None = None,
                 limits: ReportLimits | None = None, progress: Progress | None = None,
                 tune_options: dict | None = None) -> ReportFile:
    t = time.perf_counter()
    run = store.resolve_run(run_ref)
    other = store.resolve_run(compare) if compare else None
    path = Path(path)
    detected, total = _detected_pages(store, run, path)
    data = report_data(store, run, other, limits, progress, tune_options,
                       links={d.run_id: f.name for d, f in detected})
    if len(detected) < total:
        data["notes"].append(f"detected runs: the {len(detected)} with the most CPU have a report of their own "
                             f"(`opensre report RUN` writes any other)")
    for d, f in detected:  # each detected run's own page beside this one, linked from its row
        write_report(store, d.run_id, f, limits=limits, tune_options=tune_options)
    text = render_html(data)
    from ..safefile import write_output

    size = write_output(path, text, "report")  # unique temp beside it, then renamed; never through a link
    return ReportFile(path, size, data["header"]["processes"], time.perf_counter() - t,
                      data["notes"])
