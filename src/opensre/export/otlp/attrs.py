"""OpenTelemetry names and values the OTLP export uses: the protobuf modules (an
optional extra, imported once), the ids derived from a run, and the helpers that set
attributes, times and error statuses the semantic conventions' way."""

from __future__ import annotations

import hashlib
import os
import signal as _signal
import time
from types import SimpleNamespace

from ...errors import UsageError
from ...model import Run, failed


SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
# spans (or processes' metric points) per request: ~2 MB of protobuf, under the
# Collector's default 20 MiB request limit with room for long argvs
BATCH = 4096
INSTALL = "pip install 'opensre[otlp]'"

_pb = None


def proto():
    """The opentelemetry-proto message modules, imported once (an optional extra)."""
    global _pb
    if _pb is None:
        try:
            from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
            from opentelemetry.proto.common.v1 import common_pb2 as common
            from opentelemetry.proto.metrics.v1 import metrics_pb2 as metrics
            from opentelemetry.proto.resource.v1 import resource_pb2 as resource
            from opentelemetry.proto.trace.v1 import trace_pb2 as trace
        except ImportError as e:
            raise UsageError(f"OTLP export needs the opentelemetry-proto package ({e.name} not found)",
                             f"install it: {INSTALL}") from None
        _pb = SimpleNamespace(common=common, resource=resource, trace=trace, metrics=metrics, ts=ts, ms=ms)
    return _pb


# -- ids ----------------------------------------------------------------------------
def _digest(salt: bytes, size: int, *parts) -> bytes:
    h = hashlib.blake2b("\0".join(str(p) for p in parts).encode(), digest_size=size, person=salt).digest()
    # an all-zero id is invalid in OTLP; one in 2^64 hashes, but then not silently
    return h if any(h) else b"\1" * size


def trace_id(run_id: str) -> bytes:
    return _digest(b"opensre.trace", 16, run_id)


def run_span_id(run_id: str) -> bytes:
    return _digest(b"opensre.run", 8, run_id)


def task_span_id(run_id: str, task_id: str) -> bytes:
    return _digest(b"opensre.task", 8, run_id, task_id)


def process_span_id(run_id: str, pid: int, start_time_ns: int) -> bytes:
    return _digest(b"opensre.process", 8, run_id, pid, start_time_ns)


# -- small helpers ------------------------------------------------------------------
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm32", "i686": "x86", "i386": "x86",
         "ppc64le": "ppc64", "ppc64": "ppc64", "s390x": "s390x"}
CANCEL_SIGNALS = {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP}


def pipeline_name(r: Run) -> str:
    if r.name:
        return r.name
    if r.command:
        return os.path.basename(r.command[0]) or r.command[0]
    return r.mode


def run_result(r: Run) -> tuple[str, str | None]:
    """cicd.pipeline.result and error.type of a run."""
    if r.status == "interrupted":
        return "error", "interrupted"  # its collector was killed: how the run ended is unknown
    if r.exit_signal in CANCEL_SIGNALS:
        return "cancellation", signal_name(r.exit_signal)
    if failed(r.exit_code, r.exit_signal):
        return "failure", error_type(r.exit_code, r.exit_signal, False)
    return "success", None


def error_type(code, sig, oom) -> str:
    if oom:
        return "oom_killed"
    if sig:
        return signal_name(sig)
    return str(code)


def error_text(code, sig, oom) -> str:
    how = f"killed by signal {sig} ({signal_name(sig)})" if sig else f"exit code {code}"
    return f"chosen by the OOM killer, {how}" if oom else how


def signal_name(sig: int) -> str:
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def set_error(pb, span, message: str) -> None:
    # success leaves the status unset, the OTel default for an operation that did not fail
    span.status.code, span.status.message = pb.trace.Status.STATUS_CODE_ERROR, message


def iso(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds (datetime keeps microseconds only)."""
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


def put(repeated, attrs: dict, key: str | None = None, value=None) -> None:
    """Append attrs (and key=value) to a repeated KeyValue field, in place."""
    add = repeated.add
    for k, v in attrs.items():
        set_value(add(key=k).value, v)
    if key is not None:
        set_value(add(key=key).value, value)


def set_value(any_value, v) -> None:
    t = type(v)
    if t is str:
        any_value.string_value = v
    elif t is int:
        any_value.int_value = v
    elif t is bool:
        any_value.bool_value = v
    elif t is float:
        any_value.double_value = v
    elif t in (list, tuple):
        any_value.array_value.SetInParent()  # an empty list is still an (empty) array
        values = any_value.array_value.values
        for x in v:
            set_value(values.add(), x)
    else:
        any_value.string_value = str(v)


def version() -> str:
    from ... import __version__

    return __version__

