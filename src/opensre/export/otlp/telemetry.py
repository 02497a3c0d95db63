"""What an OTLP export sends: a stored run read once through the StoreReader methods
(no I/O besides), as trace and metrics request messages of bounded size."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

from ...errors import RunStillRunning
from ...model import Host, Process, Run, Task, failed
from .attrs import (ARCH, BATCH, SCHEMA_URL, error_text, error_type, iso, pipeline_name, process_span_id, proto,
                    put, run_result, run_span_id, set_error, task_span_id, trace_id, version)


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
                 "service.version": version(),
                 # stable across exports: an exporter run after the fact has no instance of its own
                 "service.instance.id": r.host_id,
                 "host.id": r.host_id,  # our hash of /etc/machine-id (never the raw id, which is private)
                 "os.type": "linux",
                 "cicd.pipeline.name": pipeline_name(r),
                 "cicd.pipeline.run.id": r.run_id}
        if h is not None:
            attrs.update({"host.name": h.hostname, "host.arch": ARCH.get(h.arch, h.arch), "os.version": h.kernel})
        return attrs

    def _scoped(self, rs, scopes):
        """The resource and scope of one request; the ScopeSpans/ScopeMetrics to fill."""
        rs.schema_url = SCHEMA_URL
        put(rs.resource.attributes, self._resource_attrs())
        sc = scopes.add(schema_url=SCHEMA_URL)
        sc.scope.name, sc.scope.version = "opensre", version()
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
        result, error = run_result(r)
        attrs = {"cicd.pipeline.name": pipeline_name(r), "cicd.pipeline.run.id": r.run_id,
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
            set_error(pb, span, "collector interrupted" if error == "interrupted" else
                   error_text(r.exit_code, r.exit_signal, False))
        span.trace_id, span.span_id, span.name = self.trace_id, run_span_id(r.run_id), f"RUN {pipeline_name(r)}"
        span.kind = pb.trace.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano, span.end_time_unix_nano = r.start_time_ns, max(self.end_ns, r.start_time_ns)
        put(span.attributes, attrs)

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
            attrs["error.type"] = error_type(t.exit_code, t.exit_signal, t.oom_killed)
            set_error(pb, span, error_text(t.exit_code, t.exit_signal, t.oom_killed))
        end = t.end_time_ns if t.end_time_ns is not None else self.end_ns
        span.trace_id, span.span_id = self.trace_id, task_span_id(run_id, t.task_id)
        span.parent_span_id, span.name = run_span_id(run_id), t.task_name or t.task_id
        span.kind = pb.trace.Span.SPAN_KIND_INTERNAL
        span.start_time_unix_nano, span.end_time_unix_nano = t.start_time_ns, max(end, t.start_time_ns)
        put(span.attributes, attrs)

    def _process_span(self, pb, span, p: Process, parent: bytes, link: bytes | None) -> None:
        key = (p.pid, p.start_time_ns)
        span.trace_id, span.span_id = self.trace_id, process_span_id(self.run.run_id, *key)
        span.parent_span_id, span.name = parent, p.tool or str(p.pid)
        span.kind = pb.trace.Span.SPAN_KIND_INTERNAL
        span.start_time_unix_nano, span.end_time_unix_nano = p.start_time_ns, self._end(p)
        attrs = _process_attrs(p)
        if failed(p.exit_code, p.exit_signal) or p.oom_killed:
            attrs["error.type"] = error_type(p.exit_code, p.exit_signal, p.oom_killed)
            set_error(pb, span, error_text(p.exit_code, p.exit_signal, p.oom_killed))
        put(span.attributes, attrs)
        for ev in self._oom.get(key, ()):
            e = span.events.add(time_unix_nano=ev.t_ns, name="oom_kill")
            put(e.attributes, {f"opensre.oom.{k}": v for k, v in ev.data.items() if isinstance(v, (int, float, str))})
        if link:
            put(span.links.add(trace_id=self.trace_id, span_id=link).attributes,
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
                    put(cpu.add(start_time_unix_nano=start, time_unix_nano=end, as_double=ns / 1e9).attributes,
                         base, "cpu.mode", mode)
            for out, key, pairs in ((disk, "disk.io.direction", (("read", p.read_bytes), ("write", p.write_bytes))),
                                    (net, "network.io.direction",
                                     (("transmit", p.net_tx_bytes), ("receive", p.net_rx_bytes)))):
                for d, v in pairs:
                    if v is not None:
                        put(out.add(start_time_unix_nano=start, time_unix_nano=end, as_int=v).attributes,
                             base, key, d)
            for t, rss in self._rss.get((p.pid, p.start_time_ns), ()):
                put(mem.add(start_time_unix_nano=start, time_unix_nano=t, as_int=rss).attributes, base)
            if p.peak_rss_bytes is not None:
                put(peak.add(time_unix_nano=end, as_int=p.peak_rss_bytes).attributes, base)
        for i in reversed(range(len(metrics))):  # a metric without points is not sent
            m = metrics[i]
            if not len(getattr(m, m.WhichOneof("data")).data_points):
                del metrics[i]
        return len(cpu) + len(disk) + len(net) + len(mem) + len(peak)

    @staticmethod
    def _point_attrs(p: Process) -> dict:
        # a pid is reused over a long run: pid and creation time identify the process (semconv)
        attrs = {"process.pid": p.pid, "process.creation.time": iso(p.start_time_ns),
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

