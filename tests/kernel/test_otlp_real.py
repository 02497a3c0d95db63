"""A real run (opensre run, real BPF, a small process tree) exported with
`opensre export --format otlp` to a loopback OTLP/HTTP receiver, decoded with the
official opentelemetry-proto messages, checked against the store."""

from __future__ import annotations

import subprocess

import pytest

from conftest import opensre_cmd
from opensre.export.otlp import process_span_id, run_span_id, task_span_id, trace_id
from opensre.store import Store
from otlp_sink import OtlpSink, attrs

MS = 1_000_000
# two jobs of a shell (one sleeping pipeline, one failing), a fork that never execs, a file read
TREE = ["bash", "-c", "sh -c 'sleep 0.3; ls / > /dev/null' & "
        "sh -c 'cat /etc/os-release > /dev/null; exit 3' & "
        "(dd if=/dev/zero of=/dev/null bs=1M count=30 2>/dev/null) & wait"]


def _export(store, url, *args) -> subprocess.CompletedProcess:
    r = subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--format", "otlp", "--endpoint", url,
                                        *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    store = tmp_path_factory.mktemp("otlp") / "store.sqlite"
    r = subprocess.run(opensre_cmd() + ["run", "--store", str(store), "--", *TREE], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    s = Store(store, readonly=True)
    run = s.resolve_run("latest")
    data = run, list(s.processes(run.run_id)), s.tasks(run.run_id)
    s.close()
    return store, data


def test_one_trace_per_run_matches_the_store(recorded):
    store, (run, procs, tasks) = recorded
    assert len(procs) >= 6 and tasks
    with OtlpSink() as sink:
        _export(store, sink.url)
    spans = sink.spans()
    ids = {s.span_id for s in spans}
    assert len(ids) == len(spans) == 1 + len(tasks) + len(procs)
    assert {s.trace_id for s in spans} == {trace_id(run.run_id)}
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].span_id == run_span_id(run.run_id)
    assert not [s for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    by_id = {s.span_id: s for s in spans}
    task_spans = {task_span_id(run.run_id, t.task_id) for t in tasks}
    assert all(by_id[t].parent_span_id == roots[0].span_id for t in task_spans)
    for p in procs:
        span = by_id[process_span_id(run.run_id, p.pid, p.start_time_ns)]
        a = attrs(span.attributes)
        assert a["process.pid"] == p.pid and a["process.parent_pid"] == p.ppid
        assert abs(span.start_time_unix_nano - p.start_time_ns) <= MS
        assert abs(span.end_time_unix_nano - p.end_time_ns) <= MS
        # up the chain: processes of its task, then its task span, then the run span
        chain, s = [], span
        while s.parent_span_id:
            s = by_id[s.parent_span_id]
            chain.append(s.span_id)
        assert chain[-1] == roots[0].span_id and chain[-2] == task_span_id(run.run_id, p.task_id)
        assert not task_spans & set(chain[:-2])
        if p.exit_code == 3:
            assert span.status.code == 2 and a["process.exit.code"] == 3 and a["error.type"] == "3"
        if p.argv:
            assert a["process.command_args"] == p.argv
    assert any(p.exit_code == 3 for p in procs)

    cpu = {}
    for pt in sink.metrics()["process.cpu.time"]:
        a = attrs(pt.attributes)
        cpu[(a["process.pid"], pt.start_time_unix_nano, a["cpu.mode"])] = pt.as_double
    for p in procs:
        assert cpu[(p.pid, p.start_time_ns, "user")] == pytest.approx(p.cpu_user_ns / 1e9, abs=1e-9)
        assert cpu[(p.pid, p.start_time_ns, "system")] == pytest.approx(p.cpu_system_ns / 1e9, abs=1e-9)
    assert sum(cpu.values()) == pytest.approx(sum(p.cpu_ns for p in procs) / 1e9, abs=1e-6)
    res = attrs(sink.resource_metrics()[0].resource.attributes)
    assert res["cicd.pipeline.run.id"] == run.run_id and res["host.name"] and res["host.arch"]


def test_re_export_sends_identical_ids(recorded):
    store, _ = recorded
    got = []
    for _ in range(2):
        with OtlpSink() as sink:
            _export(store, sink.url)
        got.append(sorted((s.trace_id, s.span_id, s.parent_span_id, s.start_time_unix_nano, s.end_time_unix_nano)
                          for s in sink.spans()))
    assert got[0] == got[1]
