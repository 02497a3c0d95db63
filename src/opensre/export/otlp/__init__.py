"""OTLP export: a stored run as one trace (run span -> task spans -> process spans)
and its processes' metrics, sent as OTLP/HTTP protobuf (POST /v1/traces, /v1/metrics).

Building is kept apart from sending: `build()` reads a run through the StoreReader
methods and yields the official `opentelemetry-proto` request messages (no I/O);
`send()` posts them with bounded retries; `export_run()` does both. Names follow the
OpenTelemetry semantic conventions (schema SCHEMA_URL); the mapping, the ids and the
span filter are documented in docs/otlp.md.

Ids are derived from the run, not random: the trace id from the run id, a span id
from (run id, task id) or (run id, pid, start time), each with its own salt, so that
exporting a run again sends the same ids and a backend that keys spans by them keeps
one copy. `opentelemetry-proto` is an optional extra, imported on first use."""

from __future__ import annotations

import time

from ...model import Run
from .attrs import BATCH, SCHEMA_URL, process_span_id, run_span_id, task_span_id, trace_id
from .endpoint import Endpoint, Target, endpoint_from_env
from .send import send
from .telemetry import ExportSummary, SpanFilter, Telemetry, build

__all__ = ["Endpoint", "Target", "SpanFilter", "Telemetry", "ExportSummary", "SCHEMA_URL", "build", "endpoint_from_env",
           "export_run", "send", "trace_id", "run_span_id", "task_span_id", "process_span_id"]


def export_run(store, run: Run, endpoint: Endpoint, span_filter: SpanFilter = SpanFilter(),
               batch: int = BATCH, service_name: str | None = None, sleep=time.sleep) -> ExportSummary:
    """Build and send a stored run: its trace, then its metrics. Reads only; a
    failure raises ExportError and can be repeated (same ids)."""
    t = build(store, run, span_filter, batch, service_name)
    for req in t.traces():
        send(endpoint.traces, req, endpoint, t.summary, sleep)
    for req in t.metrics():
        send(endpoint.metrics, req, endpoint, t.summary, sleep)
    return t.summary


