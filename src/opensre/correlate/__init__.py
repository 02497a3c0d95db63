"""Correlation: runs, tasks and tools from process records.

Pure Python over the store: runs without root, on a copied store file.
"""

from __future__ import annotations

from pathlib import Path

from .tasks import Correlation, Correlator
from .tools import ToolId, ToolIdentifier

__all__ = ["Correlation", "Correlator", "ToolId", "ToolIdentifier", "correlate_run"]


def correlate_run(store, run_id: str, rule_files: list[str | Path] = ()) -> Correlation:
    """(Re)compute a stored run's tasks and tool invocations and store them."""
    from .tools import user_rules_path

    # built-in catalogue < the user's file < the store's rules.yaml < --rules files
    files = [f for f in (user_rules_path(), Path(store.path).parent / "rules.yaml") if f.is_file()]
    files += list(rule_files)
    execs: dict[tuple[int, int], list[list[str]]] = {}
    for e in store.execs(run_id):
        execs.setdefault((e.pid, e.start_time_ns), []).append(e.argv)
    c = Correlator(ToolIdentifier.from_files(files)).correlate(run_id, list(store.processes(run_id)), execs)
    store.put_correlation(run_id, c.tasks, c.tools, c.task_of)
    return c
