"""OTLP export of a synthetic stored run (no root): what a real OTLP/HTTP receiver on
loopback decodes with the official opentelemetry-proto messages, the span filter, the
ids, the OTEL_* environment, and failures (unreachable, 5xx retried, 4xx) through the CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import pytest

from conftest import opensre_cmd
from opensre.correlate import correlate_run
from opensre.errors import UsageError
from opensre.export.otlp import (SpanFilter, build, endpoint_from_env, export_run, process_span_id, run_span_id,
                                 task_span_id, trace_id)
from opensre.model import Event, Host, Process, Run, Sample
from opensre.store import Store
from otlp_sink import OtlpSink, attrs

T = 1_700_000_000_000_000_000
MS, S = 1_000_000, 1_000_000_000


def _p(pid, ppid, pstart, start, end, argv, cpu_ms, **kw) -> Process:
    d = dict(pid=pid, start_time_ns=start, ppid=ppid, parent_start_time_ns=pstart, end_time_ns=end,
             exe=f"/usr/bin/{argv[0]}", comm=argv[0], argv=argv, exec_count=1, complete=end is not None,
             exit_code=0 if end is not None else None, cpu_user_ns=cpu_ms * MS, cpu_system_ns=cpu_ms * MS // 4,
             peak_rss_bytes=(cpu_ms + 1) << 20, read_bytes=cpu_ms * 4096, write_bytes=cpu_ms * 512,
             net_tx_bytes=7, net_rx_bytes=9, cwd="/data", uid=1000, cgroup_path="/system.slice/x.scope")
    d.update(kw)
    return Process(**d)


# make -j2 -> (bash -c 'gzip a' -> gzip -> gzip worker (1 ms, no exec) -> cat), (bash -c sort -> sort, OOM-killed),
# sleep still running when collection ended
PROCS = [
    _p(10, 1, None, T, T + 10 * S, ["make", "-j2"], 50),
    _p(11, 10, T, T + 1 * MS, T + 3 * S, ["bash", "-c", "gzip a"], 2),
    _p(12, 11, T + 1 * MS, T + 2 * MS, T + 2500 * MS, ["gzip", "a"], 900),
    _p(13, 12, T + 2 * MS, T + 3 * MS, T + 4 * MS, ["gzip", "a"], 1, exec_count=0),
    _p(14, 13, T + 3 * MS, T + 3500 * MS // 1000, T + 1 * S, ["cat", "a.part"], 30),
    _p(20, 10, T, T + 5 * MS, T + 4 * S, ["bash", "-c", "sort x"], 3, exit_code=2),
    _p(21, 20, T + 5 * MS, T + 6 * MS, T + 3900 * MS, ["sort", "x"], 1200, exit_code=None, exit_signal=9,
       oom_killed=True, container_id="c0ffee" * 10 + "abcd", pod_uid="0f1e2d3c-0000-4000-8000-000000000001"),
    _p(30, 10, T, T + 6 * S, None, ["sleep", "100"], 0),
]
N_SPANS = 1 + 4 + len(PROCS)  # the run, its tasks (make's engine, gzip | cat, sort, sleep), the processes
SAMPLES = [Sample(12, T + 2 * MS, T + k * S, 300 * MS, (100 + k) << 20, 4096, 0, 0, 0, 0, 0, 0) for k in (1, 2)]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("otlp") / "store.sqlite"
    s = Store(path)
    s.put_host(Host("h0", "buildhost", machine_id="f" * 32, boot_id="b", kernel="6.1.0", cpus=8, arch="x86_64"))
    run = Run(run_id="r1", name="build", mode="run", host_id="h0", command=["make", "-j2"], start_time_ns=T,
              end_time_ns=T + 10 * S, status="finished", exit_code=2, root_pid=10, process_count=len(PROCS))
    s.put_run(run)
    s.put_batch("r1", PROCS, samples=SAMPLES,
                events=[Event("oom_kill", 21, T + 6 * MS, T + 3900 * MS, {"rss_bytes": 1 << 30, "comm": "sort"})])
    correlate_run(s, "r1")
    s.close()
    return path


@pytest.fixture
def store(stored):
    s = Store(stored, readonly=True)
    yield s
    s.close()


def _send(store, span_filter=SpanFilter(), **kw):
    with OtlpSink() as sink:
        summary = export_run(store, store.resolve_run("r1"), endpoint_from_env(sink.url, {}), span_filter, **kw)
    return sink, summary


def _parent_chain(spans, span) -> list:
    by_id = {s.span_id: s for s in spans}
    out = []
    while span.parent_span_id:
        span = by_id[span.parent_span_id]
        out.append(span)
    return out


def test_one_trace_run_tasks_processes(store):
    sink, summary = _send(store)
    spans = sink.spans()
    ids = {s.span_id for s in spans}
    assert len(ids) == len(spans) == summary.spans == N_SPANS
    assert {s.trace_id for s in spans} == {trace_id("r1")}
    (root,) = [s for s in spans if not s.parent_span_id]
    assert root.span_id == run_span_id("r1") and root.name == "RUN build"
    assert not [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    tasks = store.tasks("r1")
    task_ids = {task_span_id("r1", t.task_id) for t in tasks}
    assert {s.span_id for s in spans if s.parent_span_id == root.span_id} == task_ids
    procs = {(attrs(s.attributes)["process.pid"], s.start_time_unix_nano): s for s in spans
             if s.span_id not in task_ids | {root.span_id}}
    assert len(procs) == len(PROCS)
    for p in store.processes("r1"):
        span = procs[(p.pid, p.start_time_ns)]
        assert span.span_id == process_span_id("r1", p.pid, p.start_time_ns)
        assert span.start_time_unix_nano == p.start_time_ns
        assert span.end_time_unix_nano == (p.end_time_ns or T + 10 * S)  # still running: the run's end
        chain = _parent_chain(spans, span)
        assert chain[-1] is root and chain[-2].span_id == task_span_id("r1", p.task_id)
        assert all(c.span_id not in task_ids for c in chain[:-2])  # processes, then its task, then the run
    a = attrs(root.attributes)
    assert a["cicd.pipeline.run.id"] == "r1" and a["cicd.pipeline.result"] == "failure" and root.status.code == 2
    res = attrs(sink.resource_spans()[0].resource.attributes)
    assert res["host.name"] == "buildhost" and res["host.arch"] == "amd64" and res["host.id"] == "h0"
    assert sink.resource_spans()[0].schema_url.startswith("https://opentelemetry.io/schemas/")


def test_process_attributes_status_and_events(store):
    sink, _ = _send(store)
    by_pid = {attrs(s.attributes).get("process.pid"): s for s in sink.spans() if s.kind == 1}
    sort = by_pid[21]
    a = attrs(sort.attributes)
    assert sort.name == "sort" and sort.status.code == 2 and "signal 9" in sort.status.message
    assert a["process.command_args"] == ["sort", "x"] and a["process.parent_pid"] == 20
    assert a["error.type"] == "oom_killed" and a["container.id"] == PROCS[6].container_id
    assert a["k8s.pod.uid"] == PROCS[6].pod_uid and "process.exit.code" not in a
    assert [e.name for e in sort.events] == ["oom_kill"]
    assert attrs(by_pid[20].attributes)["process.exit.code"] == 2 and by_pid[20].status.code == 2
    gzip_ = attrs(by_pid[12].attributes)
    assert by_pid[12].status.code == 0 and gzip_["process.executable.path"] == "/usr/bin/gzip"
    assert gzip_["process.exit.code"] == 0 and gzip_["opensre.process.cpu_user_ns"] == 900 * MS
    assert attrs(by_pid[30].attributes)["opensre.process.complete"] is False
    # a task's root nests under its task, linked to the process that started it
    (link,) = by_pid[11].links
    assert link.span_id == process_span_id("r1", 10, T)


def test_metrics_equal_the_store(store):
    sink, summary = _send(store)
    m = sink.metrics()
    procs = {(p.pid, p.start_time_ns): p for p in store.processes("r1")}

    def value(pt):
        return pt.as_double if pt.WhichOneof("value") == "as_double" else pt.as_int

    def by_proc(name, attr=None):
        out = {}
        for pt in m[name]:
            a = attrs(pt.attributes)
            key = next(k for k in procs if k[0] == a["process.pid"])
            out[(key, a.get(attr))] = value(pt)
        return out

    cpu = by_proc("process.cpu.time", "cpu.mode")
    assert len(cpu) == 2 * len(procs)
    for k, p in procs.items():
        assert cpu[(k, "user")] == pytest.approx(p.cpu_user_ns / 1e9, abs=1e-9)
        assert cpu[(k, "system")] == pytest.approx(p.cpu_system_ns / 1e9, abs=1e-9)
    disk = by_proc("process.disk.io", "disk.io.direction")
    assert all(disk[(k, "read")] == p.read_bytes and disk[(k, "write")] == p.write_bytes for k, p in procs.items())
    net = by_proc("process.network.io", "network.io.direction")
    assert all(net[(k, "transmit")] == 7 and net[(k, "receive")] == 9 for k in procs)
    assert sorted(pt.as_int for pt in m["process.memory.usage"]) == [101 << 20, 102 << 20]
    peak = by_proc("opensre.process.memory.peak")
    assert all(peak[(k, None)] == p.peak_rss_bytes for k, p in procs.items())
    assert all(pt.start_time_unix_nano for pt in m["process.cpu.time"])
    assert attrs(m["process.cpu.time"][0].attributes)["process.creation.time"] == "2023-11-14T22:13:20.000000000Z"
    res = attrs(sink.resource_metrics()[0].resource.attributes)
    assert res["cicd.pipeline.run.id"] == "r1" and res["host.name"] == "buildhost"
    assert summary.metric_points == sum(len(v) for v in m.values())


def test_ids_are_deterministic(store):
    a, _ = _send(store)
    b, _ = _send(store, batch=2)  # other request boundaries, the same spans
    key = sorted((s.span_id, s.parent_span_id, s.start_time_unix_nano) for s in a.spans())
    assert key == sorted((s.span_id, s.parent_span_id, s.start_time_unix_nano) for s in b.spans())
    assert len([r for r in b.requests if r[0] == "/v1/traces"]) > 1
    assert trace_id("r1") != trace_id("r2") and process_span_id("r1", 1, 2) != process_span_id("r2", 1, 2)
    assert run_span_id("r1") != task_span_id("r1", "") != process_span_id("r1", 0, 0)


def test_min_duration_drops_short_processes_and_reparents(store):
    sink, summary = _send(store, SpanFilter(min_duration_ns=10 * MS))
    spans = sink.spans()
    ids = {s.span_id for s in spans}
    assert summary.process_spans_left_out == 1
    assert process_span_id("r1", 13, T + 3 * MS) not in ids
    cat = next(s for s in spans if s.span_id == process_span_id("r1", 14, T + 3500 * MS // 1000))
    assert cat.parent_span_id == process_span_id("r1", 12, T + 2 * MS)  # its parent's parent
    assert not [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    root = next(s for s in spans if not s.parent_span_id)
    assert attrs(root.attributes)["opensre.run.process_spans_left_out"] == 1
    assert len([p for p in sink.metrics()["process.cpu.time"]]) == 2 * len(PROCS)  # metrics keep every process


def test_max_spans_keeps_the_most_cpu(store):
    sink, summary = _send(store, SpanFilter(max_spans=2))
    spans = sink.spans()
    ids = {s.span_id for s in spans}
    pids = {attrs(s.attributes)["process.pid"] for s in spans if s.kind == 1 and "process.pid" in attrs(s.attributes)}
    assert pids == {12, 21} and summary.process_spans_left_out == len(PROCS) - 2
    assert len([s for s in spans if not s.parent_span_id]) == 1
    assert not [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]


def test_a_running_run_is_refused(stored, tmp_path):
    from opensre.errors import RunStillRunning

    r = Run(run_id="live", name=None, mode="run", host_id="h0", status="running")
    with pytest.raises(RunStillRunning):
        build(None, r)


def test_endpoint_from_environment():
    e = endpoint_from_env(None, {})
    assert (e.traces.url, e.metrics.url) == ("http://localhost:4318/v1/traces", "http://localhost:4318/v1/metrics")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318/base/",
           "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m.example/custom",
           "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x-tenant = t1",
           "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-only=traces",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
    e = endpoint_from_env(None, env)
    assert e.traces.url == "https://otel.example:4318/base/v1/traces" and e.metrics.url == "http://m.example/custom"
    assert e.traces.headers == {"x-only": "traces"}  # the signal's own variable wins, as in the SDK
    assert e.metrics.headers == {"api-key": "a b", "x-tenant": "t1"}
    assert e.traces.timeout_s == 2.5 and e.traces.gzip
    assert endpoint_from_env("http://u:secret@h:1", env).traces.url == "http://u:secret@h:1/v1/traces"
    assert "secret" not in str(endpoint_from_env("http://u:secret@h:1", {}))
    for bad in ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"},
                {"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}):
        with pytest.raises(UsageError):
            endpoint_from_env(None, bad)


# -- through the CLI: what a user sees ----------------------------------------------
def _cli(stored, *args, env=None):
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    e.update(env or {})
    t = time.monotonic()
    r = subprocess.run(opensre_cmd() + ["export", "--store", str(stored), "--run", "r1", "--format", "otlp", *args],
                       capture_output=True, text=True, timeout=60, env=e)
    return r, time.monotonic() - t


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_env_headers_gzip(stored):
    with OtlpSink() as sink:
        r, _ = _cli(stored, env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=t1",
                                 "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_SERVICE_NAME": "ci"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"run r1: trace {trace_id('r1').hex()}, {N_SPANS} spans")
    assert all(h.get("x-tenant") == "t1" and h.get("content-encoding") == "gzip" for h in sink.headers)
    assert attrs(sink.resource_spans()[0].resource.attributes)["service.name"] == "ci"


def test_cli_unreachable_endpoint_retries_then_one_line(stored, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = _digest(stored)
    r, took = _cli(stored, "--endpoint", f"http://127.0.0.1:{port}")
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert "failed after 3 tries: connection refused" in r.stderr and "store is unchanged" in r.stderr
    assert took >= 1.5  # backed off 0.5 s, then 1 s
    assert _digest(stored) == before


def test_cli_5xx_retried_then_fails(stored):
    before = _digest(stored)
    with OtlpSink(status=503, fail=100) as sink:
        r, _ = _cli(stored, "--endpoint", sink.url)
    assert r.returncode == 1 and sink.hits == 3, (sink.hits, r.stderr)
    assert len(r.stderr.splitlines()) == 1 and "HTTP 503" in r.stderr and "Traceback" not in r.stderr
    assert _digest(stored) == before


def test_cli_5xx_then_recovers(stored):
    with OtlpSink(status=502, fail=2) as sink:
        r, _ = _cli(stored, "--endpoint", sink.url)
    assert r.returncode == 0, r.stderr
    assert sink.hits == 2 + len(sink.requests) and len(sink.spans()) == N_SPANS


def test_cli_4xx_not_retried(stored):
    with OtlpSink(status=400, fail=100) as sink:
        r, _ = _cli(stored, "--endpoint", sink.url)
    assert r.returncode == 1 and sink.hits == 1
    assert len(r.stderr.splitlines()) == 1 and "HTTP 400" in r.stderr and "Traceback" not in r.stderr


def test_cli_partial_success_is_an_error(stored):
    with OtlpSink(reject=2) as sink:
        r, _ = _cli(stored, "--endpoint", sink.url)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    assert "2 spans rejected: too old" in r.stderr and "2 points rejected: too old" in r.stderr


def test_other_commands_do_not_import_opentelemetry(stored):
    code = ("import sys; from opensre.cli.main import main; "
            f"main(['export', '--store', {str(stored)!r}, '--run', 'r1']); "
            "sys.stderr.write(str(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'google')))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "[]", r.stderr


def test_without_the_package_one_line_names_the_install(stored):
    code = ("import sys; sys.modules['opentelemetry'] = None; from opensre.cli.main import main; "
            f"sys.exit(main(['export', '--store', {str(stored)!r}, '--run', 'r1', '--format', 'otlp']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "pip install 'opensre[otlp]'" in r.stderr
    assert len(r.stderr.splitlines()) == 1
