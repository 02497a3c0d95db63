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

import gzip
import hashlib
import http.client
import os
import signal as _signal
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Iterator, Mapping

from ..errors import ExportError, RunStillRunning, UsageError
from ..model import Host, Process, Run, Task, failed

__all__ = ["Endpoint", "Target", "SpanFilter", "Telemetry", "ExportSummary", "SCHEMA_URL", "build", "endpoint_from_env",
           "export_run", "send", "trace_id", "run_span_id", "task_span_id", "process_span_id"]

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
DEFAULT_ENDPOINT = "http://localhost:4318"
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


# -- where to send ------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    url: str
    headers: Mapping[str, str]
    timeout_s: float = 10.0
    gzip: bool = False
    cafile: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where traces and metrics go, as the OTel exporter environment configures it."""

    traces: Target
    metrics: Target
    tries: int = 3          # attempts per request, for connection errors, timeouts, 429 and 5xx
    backoff_s: float = 0.5  # wait before the 2nd attempt; doubled before each further one

    def __str__(self) -> str:
        """For messages: the base URL both signals share, else both URLs; never credentials."""
        t, m = _shown(self.traces.url), _shown(self.metrics.url)
        if t.endswith("/v1/traces") and m == t[: -len("traces")] + "metrics":
            return t[: -len("/v1/traces")]
        return f"{t} and {m}"


def endpoint_from_env(url: str | None = None, env: Mapping[str, str] | None = None) -> Endpoint:
    """The OTLP/HTTP endpoint from `url` (a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT:
    /v1/traces and /v1/metrics are appended) or else the standard environment:
    OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT (used as they are), then
    OTEL_EXPORTER_OTLP_ENDPOINT, then http://localhost:4318; _HEADERS, _TIMEOUT (ms),
    _COMPRESSION (gzip) and _CERTIFICATE, signal-specific before generic."""
    env = os.environ if env is None else env
    return Endpoint(_target("traces", url, env), _target("metrics", url, env))


def _target(signal: str, url: str | None, env: Mapping[str, str]) -> Target:
    sig = signal.upper()

    def get(key: str) -> str | None:
        v = env.get(f"OTEL_EXPORTER_OTLP_{sig}_{key}") or env.get(f"OTEL_EXPORTER_OTLP_{key}")
        return v.strip() if v and v.strip() else None

    protocol = get("PROTOCOL")
    if protocol and protocol != "http/protobuf":
        raise UsageError(f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}: opensre sends OTLP as http/protobuf only",
                         "unset it or set it to http/protobuf, and point the endpoint at the HTTP port (4318)")
    if url:
        full = _append(url, signal)
    elif env.get(f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT", "").strip():
        full = env[f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT"].strip()
    else:
        full = _append(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINT, signal)
    u = urllib.parse.urlsplit(full)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise UsageError(f"not an http(s) URL for OTLP {signal}: {_shown(full)!r}",
                         "give e.g. --endpoint http://collector:4318")
    timeout = get("TIMEOUT")
    try:
        timeout_s = float(timeout) / 1000 if timeout else 10.0
    except ValueError:
        raise UsageError(f"OTEL_EXPORTER_OTLP_TIMEOUT is not a number of milliseconds: {timeout!r}") from None
    compression = get("COMPRESSION")
    if compression not in (None, "none", "gzip"):
        raise UsageError(f"OTEL_EXPORTER_OTLP_COMPRESSION {compression!r} is not supported", "use gzip or none")
    return Target(full, _headers(get("HEADERS")), timeout_s, compression == "gzip", get("CERTIFICATE"))


def _append(base: str, signal: str) -> str:
    return base.rstrip("/") + f"/v1/{signal}"


def _headers(text: str | None) -> dict[str, str]:
    """W3C-baggage-like `k1=v1,k2=v2`, values percent-decoded (the OTel spec's format)."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise UsageError("OTEL_EXPORTER_OTLP_HEADERS must be key=value pairs separated by commas")
        out[urllib.parse.unquote(k.strip())] = urllib.parse.unquote(v.strip())
    return out


def _shown(url: str) -> str:
    """A URL for a message: without user:password@."""
    u = urllib.parse.urlsplit(url)
    if u.username or u.password:
        u = u._replace(netloc=u.hostname + (f":{u.port}" if u.port else ""))
    return urllib.parse.urlunsplit(u)


# -- what is sent -------------------------------------------------------------------
@dataclass(frozen=True)
class SpanFilter:
    """Which process spans a huge run sends. Run and task spans are always sent, with
    their totals over all processes; metrics cover every process. A kept process whose
    parent was left out nests under its nearest kept ancestor in its task (else the task)."""

    min_duration_ns: int = 0        # leave out processes that lived shorter than this
    max_spans: int | None = None    # then keep at most this many, the most CPU first

    def keep(self, procs: list[Process], end_of) -> set[tuple[int, int]]:
        chosen = [p for p in procs if end_of(p) - p.start_time_ns >= self.min_duration_ns]
        if self.max_spans is not None and len(chosen) > self.max_spans:
            chosen.sort(key=lambda p: (-p.cpu_ns, p.start_time_ns, p.pid))
            chosen = chosen[: self.max_spans]
        return {(p.pid, p.start_time_ns) for p in chosen}


@dataclass
class ExportSummary:
    run_id: str
    trace_id: str
    spans: int = 0                 # sent: run, tasks, processes
    process_spans_left_out: int = 0  # by the span filter
    metric_points: int = 0
    requests: int = 0
    bytes: int = 0
    rejected_spans: int = 0        # the receiver's partial success
    rejected_points: int = 0
    messages: list[str] = field(default_factory=list)


def build(store, run: Run, span_filter: SpanFilter = SpanFilter(), batch: int = BATCH,
          service_name: str | None = None) -> "Telemetry":
    """A stored run's trace and metrics, ready to be iterated as requests.
    service_name: the resource's service.name (default $OTEL_SERVICE_NAME, else opensre)."""
    if run.status == "running":
        raise RunStillRunning(f"run {run.run_id} is still running", "export it once it has ended")
    return Telemetry(store, run, span_filter, batch,
                     service_name or os.environ.get("OTEL_SERVICE_NAME") or "opensre")


class Telemetry:
    """One run read from a StoreReader once: `traces()` and `metrics()` yield
    ExportTraceServiceRequest / ExportMetricsServiceRequest messages of at most
    `batch` spans (or processes' points) each; `summary` counts what they yielded."""

    def __init__(self, store, run: Run, span_filter: SpanFilter, batch: int, service_name: str = "opensre"):
        self.run, self.filter, self.batch, self.service_name = run, span_filter, max(1, batch), service_name
        self.host: Host | None = store.host(run.host_id)
        self.procs: list[Process] = list(store.processes(run.run_id))
        self.tasks: list[Task] = store.tasks(run.run_id)
        self.trace_id = trace_id(run.run_id)
        ends = [p.end_time_ns or p.start_time_ns for p in self.procs]
        self.end_ns = run.end_time_ns or max(ends + [run.start_time_ns])
        self.kept = span_filter.keep(self.procs, self._end)
        self.summary = ExportSummary(run.run_id, self.trace_id.hex(),
                                     process_spans_left_out=len(self.procs) - len(self.kept))
        self._oom: dict[tuple[int, int], list] = {}
        for ev in store.events(run.run_id, "oom_kill"):
            self._oom.setdefault((ev.pid, ev.start_time_ns), []).append(ev)
        self._rss: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for s in store.samples(run.run_id):
            if s.rss_bytes is not None:
                self._rss.setdefault((s.pid, s.start_time_ns), []).append((s.t_ns, s.rss_bytes))

    def _end(self, p: Process) -> int:
        # a process still running when collection ended has no end: the run's
        return p.end_time_ns if p.end_time_ns is not None else max(self.end_ns, p.start_time_ns)

    # -- resources --------------------------------------------------------------------
    def _resource_attrs(self) -> dict:
        r, h = self.run, self.host
        attrs = {"service.name": self.service_name,
                 "service.version": _version(),
                 # stable across exports: an exporter run after the fact has no instance of its own
                 "service.instance.id": r.host_id,
                 "host.id": r.host_id,  # our hash of /etc/machine-id (never the raw id, which is private)
                 "os.type": "linux",
                 "cicd.pipeline.name": _pipeline_name(r),
                 "cicd.pipeline.run.id": r.run_id}
        if h is not None:
            attrs.update({"host.name": h.hostname, "host.arch": _ARCH.get(h.arch, h.arch), "os.version": h.kernel})
        return attrs

    def _scoped(self, rs, scopes):
        """The resource and scope of one request; the ScopeSpans/ScopeMetrics to fill."""
        rs.schema_url = SCHEMA_URL
        _put(rs.resource.attributes, self._resource_attrs())
        sc = scopes.add(schema_url=SCHEMA_URL)
        sc.scope.name, sc.scope.version = "opensre", _version()
        return sc

    # -- traces -----------------------------------------------------------------------
    # Messages are filled in place (repeated.add()): building them as Python objects
    # and assigning them copies each one again (twice the time for a 100,000-process trace).
    def traces(self) -> Iterator:
        pb = proto()
        parents = self._span_parents()

        def fills():  # every span to send, as (how to fill it, with what)
            yield self._run_span, ()
            for t in self.tasks:
                yield self._task_span, (t,)
            for p in self.procs:
                key = (p.pid, p.start_time_ns)
                if key in self.kept:
                    yield self._process_span, (p, *parents[key])

        req = spans = None
        for fill, args in fills():
            if spans is None or len(spans) >= self.batch:
                if spans is not None:
                    self.summary.spans += len(spans)
                    yield req
                req = pb.ts.ExportTraceServiceRequest()
                spans = self._scoped(req.resource_spans.add(), req.resource_spans[0].scope_spans).spans
            fill(pb, spans.add(), *args)
        self.summary.spans += len(spans)
        yield req

    def _span_parents(self) -> dict[tuple[int, int], tuple[bytes, bytes | None]]:
        """(pid, start) of each kept process -> (its parent span id, the span id of its
        real parent process when that is sent but is not the parent span: a link).
        A process nests under its parent process when both are in the same task,
        else under its task (a task's root under the task, never under the engine
        that started it), else under the run; a parent left out by the filter is
        replaced by the nearest kept ancestor in the same task."""
        run_id = self.run.run_id
        by_key = {(p.pid, p.start_time_ns): p for p in self.procs}
        tasks = {t.task_id for t in self.tasks}

        def task_of(p: Process) -> str | None:
            return p.task_id if p.task_id in tasks else None

        def parent_key(p: Process):
            k = (p.ppid, p.parent_start_time_ns)
            return k if p.parent_start_time_ns is not None and k in by_key else None

        nearest: dict[tuple[int, int], tuple[int, int] | None] = {}  # nearest kept self-or-ancestor in its task

        def nearest_kept(k):
            chain = []
            while k not in nearest:
                if k in self.kept:
                    nearest[k] = k
                    break
                chain.append(k)
                pk = parent_key(by_key[k])
                if pk is None or task_of(by_key[pk]) != task_of(by_key[k]) or pk in chain:
                    nearest[k] = None
                    break
                k = pk
            found = nearest[k]
            for c in chain:
                nearest[c] = found
            return found

        out = {}
        for key in self.kept:
            p = by_key[key]
            pk = parent_key(p)
            up = nearest_kept(pk) if pk is not None and task_of(by_key[pk]) == task_of(p) else None
            if up is not None:
                parent = process_span_id(run_id, *up)
            elif task_of(p) is not None:
                parent = task_span_id(run_id, p.task_id)
            else:
                parent = run_span_id(run_id)
            link = process_span_id(run_id, *pk) if pk in self.kept and pk != up else None
            out[key] = (parent, link)
        return out

    def _run_span(self, pb, span) -> None:
        r = self.run
        result, error = _run_result(r)
        attrs = {"cicd.pipeline.name": _pipeline_name(r), "cicd.pipeline.run.id": r.run_id,
                 "cicd.pipeline.action.name": "RUN", "cicd.pipeline.result": result,
                 "opensre.run.mode": r.mode, "opensre.run.status": r.status, "opensre.run.drops": r.drops,
                 "opensre.run.process_count": len(self.procs),
                 "opensre.run.process_spans_left_out": self.summary.process_spans_left_out}
        if r.command:
            attrs["process.command_args"] = list(r.command)  # stored redacted, as every argv
        if r.exit_code is not None:
            attrs["process.exit.code"] = r.exit_code
        if r.parent_run_id:
            attrs["opensre.run.parent_run_id"] = r.parent_run_id
        if error:
            attrs["error.type"] = error
            _error(pb, span, "collector interrupted" if error == "interrupted" else
                   _error_text(r.exit_code, r.exit_signal, False))
        span.trace_id, span.span_id, span.name = self.trace_id, run_span_id(r.run_id), f"RUN {_pipeline_name(r)}"
        span.kind = pb.trace.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano, span.end_time_unix_nano = r.start_time_ns, max(self.end_ns, r.start_time_ns)
        _put(span.attributes, attrs)

    def _task_span(self, pb, span, t: Task) -> None:
        run_id = self.run.run_id
        bad = failed(t.exit_code, t.exit_signal) or t.oom_killed
        attrs = {"cicd.pipeline.task.name": t.task_name, "cicd.pipeline.task.run.id": t.task_id,
                 "cicd.pipeline.task.run.result": "failure" if bad else "success",
                 "opensre.task.engine": t.engine, "opensre.task.kind": t.kind,
                 "opensre.task.process_count": t.process_count, "opensre.task.cpu_ns": t.cpu_ns,
                 "opensre.task.peak_rss_bytes": t.peak_rss_bytes, "opensre.task.read_bytes": t.read_bytes,
                 "opensre.task.write_bytes": t.write_bytes, "opensre.task.tools": list(t.tools)}
        if t.memory_peak_bytes is not None:
            attrs["opensre.task.memory_peak_bytes"] = t.memory_peak_bytes
        if t.exit_code is not None:
            attrs["process.exit.code"] = t.exit_code
        if bad:
            attrs["error.type"] = _error_type(t.exit_code, t.exit_signal, t.oom_killed)
            _error(pb, span, _error_text(t.exit_code, t.exit_signal, t.oom_killed))
        end = t.end_time_ns if t.end_time_ns is not None else self.end_ns
        span.trace_id, span.span_id = self.trace_id, task_span_id(run_id, t.task_id)
        span.parent_span_id, span.name = run_span_id(run_id), t.task_name or t.task_id
        span.kind = pb.trace.Span.SPAN_KIND_INTERNAL
        span.start_time_unix_nano, span.end_time_unix_nano = t.start_time_ns, max(end, t.start_time_ns)
        _put(span.attributes, attrs)

    def _process_span(self, pb, span, p: Process, parent: bytes, link: bytes | None) -> None:
        key = (p.pid, p.start_time_ns)
        span.trace_id, span.span_id = self.trace_id, process_span_id(self.run.run_id, *key)
        span.parent_span_id, span.name = parent, p.tool or str(p.pid)
        span.kind = pb.trace.Span.SPAN_KIND_INTERNAL
        span.start_time_unix_nano, span.end_time_unix_nano = p.start_time_ns, self._end(p)
        attrs = _process_attrs(p)
        if failed(p.exit_code, p.exit_signal) or p.oom_killed:
            attrs["error.type"] = _error_type(p.exit_code, p.exit_signal, p.oom_killed)
            _error(pb, span, _error_text(p.exit_code, p.exit_signal, p.oom_killed))
        _put(span.attributes, attrs)
        for ev in self._oom.get(key, ()):
            e = span.events.add(time_unix_nano=ev.t_ns, name="oom_kill")
            _put(e.attributes, {f"opensre.oom.{k}": v for k, v in ev.data.items() if isinstance(v, (int, float, str))})
        if link:
            _put(span.links.add(trace_id=self.trace_id, span_id=link).attributes,
                 {"opensre.link.type": "parent_process"})

    # -- metrics ----------------------------------------------------------------------
    def metrics(self) -> Iterator:
        """Per process: CPU time by mode, disk and network bytes by direction (cumulative
        totals at its end, from its record: what the store holds), its RSS series (from
        the samples) and its peak RSS. Not filtered: every process is counted."""
        pb = proto()
        for i in range(0, len(self.procs), self.batch):
            req = pb.ms.ExportMetricsServiceRequest()
            rm = req.resource_metrics.add()
            sm = self._scoped(rm, rm.scope_metrics)
            n = self._metrics_of(pb, sm.metrics, self.procs[i:i + self.batch])
            if n:
                self.summary.metric_points += n
                yield req

    def _metrics_of(self, pb, metrics, procs: list[Process]) -> int:
        """Fills `metrics` with the points of `procs`; how many points."""
        M = pb.metrics
        cumulative = M.AGGREGATION_TEMPORALITY_CUMULATIVE

        def counter(name, unit, desc, monotonic=True):
            m = metrics.add(name=name, unit=unit, description=desc)
            m.sum.aggregation_temporality, m.sum.is_monotonic = cumulative, monotonic
            return m.sum.data_points

        cpu = counter("process.cpu.time", "s", "Total CPU seconds broken down by different CPU modes.")
        disk = counter("process.disk.io", "By", "Disk bytes transferred.")
        net = counter("process.network.io", "By", "Network bytes transferred.")
        mem = counter("process.memory.usage", "By", "The amount of physical memory in use.", monotonic=False)
        peak_m = metrics.add(name="opensre.process.memory.peak", unit="By",
                             description="Peak resident set size of the process's final program image (VmHWM).")
        peak = peak_m.gauge.data_points
        for p in procs:
            base = self._point_attrs(p)
            start, end = p.start_time_ns, self._end(p)
            for mode, ns in (("user", p.cpu_user_ns), ("system", p.cpu_system_ns)):
                if ns is not None:
                    _put(cpu.add(start_time_unix_nano=start, time_unix_nano=end, as_double=ns / 1e9).attributes,
                         base, "cpu.mode", mode)
            for out, key, pairs in ((disk, "disk.io.direction", (("read", p.read_bytes), ("write", p.write_bytes))),
                                    (net, "network.io.direction",
                                     (("transmit", p.net_tx_bytes), ("receive", p.net_rx_bytes)))):
                for d, v in pairs:
                    if v is not None:
                        _put(out.add(start_time_unix_nano=start, time_unix_nano=end, as_int=v).attributes,
                             base, key, d)
            for t, rss in self._rss.get((p.pid, p.start_time_ns), ()):
                _put(mem.add(start_time_unix_nano=start, time_unix_nano=t, as_int=rss).attributes, base)
            if p.peak_rss_bytes is not None:
                _put(peak.add(time_unix_nano=end, as_int=p.peak_rss_bytes).attributes, base)
        for i in reversed(range(len(metrics))):  # a metric without points is not sent
            m = metrics[i]
            if not len(getattr(m, m.WhichOneof("data")).data_points):
                del metrics[i]
        return len(cpu) + len(disk) + len(net) + len(mem) + len(peak)

    @staticmethod
    def _point_attrs(p: Process) -> dict:
        # a pid is reused over a long run: pid and creation time identify the process (semconv)
        attrs = {"process.pid": p.pid, "process.creation.time": _iso(p.start_time_ns),
                 "process.executable.name": p.tool}
        if p.task_id is not None:
            attrs["cicd.pipeline.task.run.id"] = p.task_id
        return attrs


def _process_attrs(p: Process) -> dict:
    """A process's span attributes: semantic-convention names where one exists, else
    opensre.process.<store field>. Only stored fields (argv stored redacted)."""
    a: dict = {"process.pid": p.pid, "process.parent_pid": p.ppid, "process.executable.name": p.tool}
    optional = {"process.executable.path": p.exe or None, "process.command_args": p.argv or None,
                "process.exit.code": p.exit_code, "process.working_directory": p.cwd,
                "process.real_user.id": p.uid, "process.linux.cgroup": p.cgroup_path,
                "container.id": p.container_id, "container.runtime.name": p.container_runtime,
                "k8s.pod.uid": p.pod_uid, "opensre.process.exit_signal": p.exit_signal,
                "opensre.process.slurm_job_id": p.slurm_job_id, "opensre.process.slurm_step": p.slurm_step,
                "opensre.process.cpu_user_ns": p.cpu_user_ns, "opensre.process.cpu_system_ns": p.cpu_system_ns,
                "opensre.process.peak_rss_bytes": p.peak_rss_bytes, "opensre.process.read_bytes": p.read_bytes,
                "opensre.process.write_bytes": p.write_bytes, "opensre.process.threads": p.threads}
    a.update((k, v) for k, v in optional.items() if v is not None)
    for flag in ("oom_killed", "argv_truncated", "argv_redacted", "core_dumped"):
        if getattr(p, flag):
            a[f"opensre.process.{flag}"] = True
    if not p.complete:
        a["opensre.process.complete"] = False  # still running when collection ended: counters as of then
    return a


# -- sending ------------------------------------------------------------------------
def send(target: Target, message, endpoint: Endpoint, summary: ExportSummary | None = None,
         sleep=time.sleep) -> None:
    """POST one request message to `target`; retried on connection errors, timeouts,
    429 and 5xx (endpoint.tries attempts, exponential backoff), never on another 4xx.
    ExportError when it was not delivered; a partial success is added to `summary`."""
    body = message.SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", "User-Agent": f"opensre/{_version()}", **target.headers}
    if target.gzip:
        body = gzip.compress(body, 6)
        headers["Content-Encoding"] = "gzip"
    ctx = ssl.create_default_context(cafile=target.cafile) if target.url.startswith("https:") else None
    why = ""
    for attempt in range(max(1, endpoint.tries)):
        if attempt:
            sleep(endpoint.backoff_s * 2 ** (attempt - 1))
        req = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=target.timeout_s, context=ctx) as resp:
                reply = resp.read()
        except urllib.error.HTTPError as e:
            why = f"HTTP {e.code} {e.reason}{_body_hint(e)}"
            if e.code == 429 or e.code >= 500:
                continue
            raise ExportError(f"OTLP endpoint {_shown(target.url)} refused the export: {why}",
                              "check the endpoint, its path and OTEL_EXPORTER_OTLP_HEADERS; the store is unchanged")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            why = _reason(e)
            continue
        if summary is not None:
            summary.requests += 1
            summary.bytes += len(body)
            _partial(message, reply, summary)
        return
    raise ExportError(f"OTLP export to {_shown(target.url)} failed after {endpoint.tries} tries: {why}",
                      "the store is unchanged: run the same export again when the endpoint is up")


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


def _partial(message, reply: bytes, summary: ExportSummary) -> None:
    pb = proto()
    traces = isinstance(message, pb.ts.ExportTraceServiceRequest)
    resp = (pb.ts.ExportTraceServiceResponse if traces else pb.ms.ExportMetricsServiceResponse)()
    try:
        resp.ParseFromString(reply)
    except Exception:  # a receiver that answers text ("OK") or JSON: nothing partial said
        return
    ps = resp.partial_success
    n = ps.rejected_spans if traces else ps.rejected_data_points
    if traces:
        summary.rejected_spans += n
    else:
        summary.rejected_points += n
    if n or ps.error_message:
        summary.messages.append(f"{n} {'spans' if traces else 'points'} rejected"
                                + (f": {ps.error_message}" if ps.error_message else ""))


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None) or e
    if isinstance(r, ConnectionRefusedError):
        return "connection refused"
    if isinstance(r, TimeoutError):
        return "timed out"
    text = getattr(r, "strerror", None) or str(r) or type(r).__name__
    return " ".join(str(text).split())


def _body_hint(e: urllib.error.HTTPError) -> str:
    try:
        text = e.read(300).decode("utf-8")
    except Exception:
        return ""
    text = " ".join(text.split())
    return f" ({text[:200]})" if text and text.isprintable() else ""


# -- small helpers ------------------------------------------------------------------
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm32", "i686": "x86", "i386": "x86",
         "ppc64le": "ppc64", "ppc64": "ppc64", "s390x": "s390x"}
_CANCEL_SIGNALS = {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP}


def _pipeline_name(r: Run) -> str:
    if r.name:
        return r.name
    if r.command:
        return os.path.basename(r.command[0]) or r.command[0]
    return r.mode


def _run_result(r: Run) -> tuple[str, str | None]:
    """cicd.pipeline.result and error.type of a run."""
    if r.status == "interrupted":
        return "error", "interrupted"  # its collector was killed: how the run ended is unknown
    if r.exit_signal in _CANCEL_SIGNALS:
        return "cancellation", _signal_name(r.exit_signal)
    if failed(r.exit_code, r.exit_signal):
        return "failure", _error_type(r.exit_code, r.exit_signal, False)
    return "success", None


def _error_type(code, sig, oom) -> str:
    if oom:
        return "oom_killed"
    if sig:
        return _signal_name(sig)
    return str(code)


def _error_text(code, sig, oom) -> str:
    how = f"killed by signal {sig} ({_signal_name(sig)})" if sig else f"exit code {code}"
    return f"chosen by the OOM killer, {how}" if oom else how


def _signal_name(sig: int) -> str:
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _error(pb, span, message: str) -> None:
    # success leaves the status unset, the OTel default for an operation that did not fail
    span.status.code, span.status.message = pb.trace.Status.STATUS_CODE_ERROR, message


def _iso(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds (datetime keeps microseconds only)."""
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


def _put(repeated, attrs: dict, key: str | None = None, value=None) -> None:
    """Append attrs (and key=value) to a repeated KeyValue field, in place."""
    add = repeated.add
    for k, v in attrs.items():
        _set(add(key=k).value, v)
    if key is not None:
        _set(add(key=key).value, value)


def _set(any_value, v) -> None:
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
            _set(values.add(), x)
    else:
        any_value.string_value = str(v)


def _version() -> str:
    from .. import __version__

    return __version__

