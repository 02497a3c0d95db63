"""Host-wide collection (`opensre collect`): every process on the host into one run,
until `stop()` or the duration is up.

Never prints: store failures reach the caller through `on_error`, the outcome comes
back as a HostCollection. A full disk does not stop the collection: from the first
failed write on, what the store cannot take goes to spill files."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import OpenSREError, StoreError
from ..model import Run
from .collector import Collector, CollectorOptions
from .hostinfo import local_host
from .runner import new_run_id

RUN_UPDATE_S = 5  # how often the run's row (processes, drops) is refreshed while collecting


@dataclass
class HostCollection:
    run: Run
    written: int = 0  # process records stored
    spilled: int = 0  # process records in spill files
    unsaved: int = 0  # process records no spill directory took
    failed: Exception | None = None  # the first store error: the store lacks records from then on
    spill_files: list[str] = field(default_factory=list)


def new_host_run(store, name: str | None = None) -> Run:
    """The run a host-wide collection records into; its host stored, older runs of
    collectors that died marked interrupted."""
    store.mark_interrupted()
    host = local_host()
    store.put_host(host)
    return Run(run_id=new_run_id(), name=name or f"collect@{host.hostname}", mode="collect",
               host_id=host.host_id, start_time_ns=time.time_ns(), collector_pid=os.getpid(),
               root_pid=os.getppid())  # where the collector was started from: never a detected run's root


def collect_host(store, run: Run, opts: CollectorOptions, redact=None, duration: float | None = None,
                 stop: Callable[[], bool] = lambda: False, on_started: Callable[[], None] | None = None,
                 on_error: Callable[[OpenSREError], None] | None = None) -> HostCollection:
    """Collect until stop() or `duration` seconds; `on_started` once the processes
    already running are seeded, `on_error` for the first store failure and for each
    failed refresh of the run's row."""
    on_error = on_error or (lambda e: None)
    col = Collector(store, run, opts, redact=redact)
    col.start()
    col.lower_priority()
    try:
        store.put_run(run)
        col.seed_existing()
        if on_started:
            on_started()
        failed, spills = _poll_until(col, store, run, duration, stop, on_error)
        failed = _finish(col, store, run, failed, spills)
    finally:
        col.close()
    return HostCollection(run, col.written, col.spilled, col.unsaved(), failed, sorted(f for f in spills if f))


def _poll_until(col: Collector, store, run: Run, duration, stop, on_error) -> tuple[Exception | None, set[str]]:
    deadline = time.monotonic() + duration if duration else None
    last = time.monotonic()
    spills: set[str] = set()
    failed = None
    while not stop() and (deadline is None or time.monotonic() < deadline):
        col.poll()
        if col.store_error:
            # a full disk: what the store cannot take goes to a spill file (memory stays bounded)
            if failed is None:
                failed = col.store_error
                on_error(failed)
            spills.add(col.spill() or "")
        if time.monotonic() - last > RUN_UPDATE_S:
            run.process_count = col.written
            run.drops, run.drop_detail = col.drops()
            try:
                store.put_run(run)
            except OpenSREError as e:
                on_error(e)
            last = time.monotonic()
    return failed, spills


def _finish(col: Collector, store, run: Run, failed, spills: set[str]) -> Exception | None:
    col.finish()
    run.end_time_ns = time.time_ns()  # after the last pass: the window holds every sample
    if col.store_error:
        failed = failed or col.store_error
        spills.add(col.spill() or "")
    run.status, run.process_count = "finished", col.written
    if col.spilled or col.unsaved():
        run.drop_detail = {**run.drop_detail, "spilled": col.spilled, "lost": col.unsaved()}
        run.drops += col.unsaved()
    try:
        store.put_run(run)
    except StoreError as e:
        failed = failed or e
    return failed
