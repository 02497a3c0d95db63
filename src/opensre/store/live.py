"""Live snapshots: what a running collection sees now, for `opensre top` in
another terminal. One small JSON file per running run beside the store,
replaced atomically each sample tick, removed when the run ends. Only argv (as
stored: bounded and redacted) and counters; a reader never needs root."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import OutputError, UsageError
from ..safefile import read_user_text, write_output
from .owner import give_to_invoking_user
from .rows import collector_alive

FIELDS = ["pid", "start_time_ns", "ppid", "parent_start_time_ns", "exe", "comm", "argv", "cpu_ns", "rss_bytes",
          "read_bytes", "write_bytes", "net_tx_bytes", "net_rx_bytes", "exec_count", "first_argv"]
ARGV_ITEMS = 16
FIRST_ARGV_CHARS = 2000  # a job's `bash -c SCRIPT`: enough of the script to know it is a job


def live_dir(store_path: str | Path) -> Path:
    p = Path(store_path)
    return p.with_name(p.name + ".live")


def write_snapshot(store_path: str | Path, run_id: str, doc: dict) -> None:
    d = live_dir(store_path)
    d.mkdir(exist_ok=True)
    if d.is_symlink() or not d.is_dir():  # a planted link would send root's writes elsewhere
        raise OutputError(f"refusing to write live snapshots into {d}: not a directory of its own",
                          "remove it, or run with --no-live")
    f = d / f"{run_id}.json"
    write_output(f, json.dumps(doc, separators=(",", ":")), "live snapshot")  # unique temp, then rename
    give_to_invoking_user(d, f)  # readable by the user who ran sudo, as the store is


def remove_snapshot(store_path: str | Path, run_id: str) -> None:
    try:
        (live_dir(store_path) / f"{run_id}.json").unlink()
    except OSError:
        pass


def read_snapshots(store_path: str | Path, skipped: list | None = None) -> list[dict]:
    """The snapshots of runs whose collector is still alive (a killed collector's
    file is stale), oldest run first. A malformed one is left out (its file name
    appended to `skipped`): a reader never trusts what is in that directory."""
    out = []
    d = live_dir(store_path)
    if not d.is_dir():
        return out
    for f in d.glob("*.json"):
        try:
            doc = json.loads(read_user_text(f, "live snapshot", limit=256 << 20))
        except (UsageError, ValueError):
            continue  # being replaced, or unreadable
        doc = _valid(doc)
        if doc is None:
            if skipped is not None:
                skipped.append(f.name)
            continue
        if doc.get("collector_pid") and not collector_alive(doc["collector_pid"]):
            continue
        doc["processes"] = [dict(zip(FIELDS, row)) for row in doc["processes"]]
        out.append(doc)
    return sorted(out, key=lambda d: d.get("start_time_ns", 0))


_INT_FIELDS = {"pid", "start_time_ns", "cpu_ns", "read_bytes", "write_bytes"}
_OPT_INT_FIELDS = {"ppid", "parent_start_time_ns", "rss_bytes", "net_tx_bytes", "net_rx_bytes"}


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _valid(doc) -> dict | None:
    """`doc` when it has the shape write_snapshot gives it, else None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("run_id"), str) or not _int(doc.get("t_ns")) \
            or not _int(doc.get("start_time_ns")) or not isinstance(doc.get("processes", []), list):
        return None
    if not isinstance(doc.get("name"), (str, type(None))) or not isinstance(doc.get("command") or [], list) \
            or not all(isinstance(a, str) for a in doc.get("command") or []):
        return None
    for k in ("collector_pid", "finished_processes", "drops"):
        if k in doc and doc[k] is not None and not _int(doc[k]):
            return None
    doc.setdefault("processes", [])
    for row in doc["processes"]:
        if not isinstance(row, list) or len(row) != len(FIELDS):
            return None
        p = dict(zip(FIELDS, row))
        if not all(_int(p[k]) for k in _INT_FIELDS) or not all(p[k] is None or _int(p[k]) for k in _OPT_INT_FIELDS):
            return None
        if not all(isinstance(p[k], (str, type(None))) for k in ("exe", "comm")):
            return None
        for k in ("argv", "first_argv"):
            if not isinstance(p[k], (list, type(None))) or not all(isinstance(a, str) for a in p[k] or []):
                return None
        if not (p["exec_count"] is None or _int(p["exec_count"])):
            return None
    return doc
