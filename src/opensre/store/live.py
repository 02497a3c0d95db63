"""Live snapshots: what a running collection sees now, for `opensre top` in
another terminal. One small JSON file per running run beside the store,
replaced atomically each sample tick, removed when the run ends. Only argv (as
stored: bounded and redacted) and counters; a reader never needs root."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .db import _alive, give_to_invoking_user

FIELDS = ["pid", "start_time_ns", "ppid", "parent_start_time_ns", "exe", "comm", "argv", "cpu_ns", "rss_bytes",
          "read_bytes", "write_bytes", "net_tx_bytes", "net_rx_bytes", "exec_count"]
ARGV_ITEMS = 16


def live_dir(store_path: str | Path) -> Path:
    p = Path(store_path)
    return p.with_name(p.name + ".live")


def write_snapshot(store_path: str | Path, run_id: str, doc: dict) -> None:
    d = live_dir(store_path)
    d.mkdir(exist_ok=True)
    f = d / f"{run_id}.json"
    tmp = d / f".{run_id}.json.tmp"
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    give_to_invoking_user(d, tmp)  # readable by the user who ran sudo, as the store is
    os.replace(tmp, f)


def remove_snapshot(store_path: str | Path, run_id: str) -> None:
    try:
        (live_dir(store_path) / f"{run_id}.json").unlink()
    except OSError:
        pass


def read_snapshots(store_path: str | Path) -> list[dict]:
    """The snapshots of runs whose collector is still alive (a killed collector's
    file is stale), oldest run first."""
    out = []
    d = live_dir(store_path)
    if not d.is_dir():
        return out
    for f in d.glob("*.json"):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # being replaced, or unreadable
        if doc.get("collector_pid") and not _alive(doc["collector_pid"]):
            continue
        doc["processes"] = [dict(zip(FIELDS, row)) for row in doc.get("processes", [])]
        out.append(doc)
    return sorted(out, key=lambda d: d.get("start_time_ns", 0))
