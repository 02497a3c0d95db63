"""The records of one collection on their way out: one store transaction per
drain, held in memory while the store refuses them (a full disk), and as a last
resort a spill file of JSON Lines (docs/architecture.md, "Spill files")."""

from __future__ import annotations

import os

from ..errors import StoreError
from ..model import Event, Exec, Process, Run, Sample
from ..store import Store


class Pending:
    """Records decoded and not yet stored. The process table and the sampler append
    to the lists; flush() and spill() empty them."""

    def __init__(self, store: Store, run: Run):
        self.store, self.run = store, run
        self.done: list[Process] = []
        self.execs: list[Exec] = []
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.host_samples: list = []
        self.written = 0  # process records the store took
        self.spilled = 0  # process records written to a spill file instead of the store
        self.store_error: StoreError | None = None
        # what was stored, kept for the end-of-run correlation (keep())
        self._kept: tuple[dict, list] | None = None
        self._keep_limit = 0

    def __bool__(self) -> bool:
        return bool(self.done or self.execs or self.samples or self.events or self.host_samples)

    def _clear(self) -> None:
        self.done, self.execs, self.samples, self.events, self.host_samples = [], [], [], [], []

    def flush(self) -> None:
        """Everything held, to the store in one transaction; on a store error they
        stay held (`store_error`) and the next flush tries again."""
        if not self:
            return
        try:
            self.store.put_batch(self.run.run_id, self.done, self.execs, self.samples, self.events,
                                 self.host_samples)
        except StoreError as e:
            self.store_error = e
            return
        self.store_error = None
        self.written += len(self.done)
        if self._kept is not None:
            procs, execs = self._kept
            for p in self.done:
                procs[(p.pid, p.start_time_ns)] = p  # as the store's INSERT OR REPLACE keeps it
            execs.extend(self.execs)
            if len(procs) > self._keep_limit:
                self._kept = None  # too many to hold: correlation reads the store instead
        self._clear()

    def keep(self, limit: int) -> None:
        """Keep every record stored from now on (up to `limit` processes) in memory."""
        self._kept, self._keep_limit = ({}, []), limit

    def kept(self) -> tuple[list[Process], list[Exec]] | None:
        """The records stored since keep(), as the store returns them (processes by
        start, then pid; execs by time), or None when more than the limit were
        stored or something could not be stored."""
        if self._kept is None or self.store_error is not None:
            return None
        procs, execs = self._kept
        return (sorted(procs.values(), key=lambda p: (p.start_time_ns, p.pid)),
                sorted(execs, key=lambda e: e.t_ns))

    def spill(self) -> str | None:
        """Write everything held as JSON Lines outside the store; `opensre import`
        loads the file later. Returns the path; None when nothing was held or no
        directory could take them (they stay held: `unsaved()` counts them)."""
        if not self:
            return None
        import tempfile

        name = f"opensre-spill-{self.run.run_id}.jsonl"
        for d in (os.environ.get("OPENSRE_SPILL_DIR"), "/dev/shm", tempfile.gettempdir()):
            path = os.path.join(d, name) if d and os.path.isdir(d) else None
            if path and self._spill_to(path):
                self.spilled += len(self.done)
                self._clear()
                return path
        return None

    def _spill_to(self, path: str) -> bool:
        import dataclasses
        import json

        from ..errors import OutputError
        from ..export import process_record
        from ..safefile import open_append_private

        rid = self.run.run_id
        try:
            with open_append_private(path, "spill file") as f:
                for p in self.done:
                    f.write(json.dumps(process_record(rid, p)) + "\n")
                for kind, recs in (("exec", self.execs), ("sample", self.samples), ("event", self.events)):
                    for r in recs:
                        f.write(json.dumps({"run_id": rid, "record": kind, **dataclasses.asdict(r)}) + "\n")
                for h in self.host_samples:
                    f.write(json.dumps({"run_id": rid, "record": "host_sample", **h.__dict__}) + "\n")
        except (OSError, OutputError):
            return False
        return True

    def unsaved(self) -> int:
        """Process records held that neither the store nor a spill file took."""
        return len(self.done)

