"""sweep's pure parts: the three EC2 rules on the same hours, prices, the finding
shape and ranking, the read-only hook, and the live-process match by pid and start time
on a fixture /proc tree."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from opensre.errors import ReadOnlyViolation, UsageError
from opensre.sweep import Evidence, Finding, Prices, Thresholds
from opensre.sweep.aws.session import refuse_writes
from opensre.sweep.execution import LiveProcs
from opensre.sweep.finding import ranked
from opensre.sweep.rules import Hourly, compute_optimizer, ours, trusted_advisor


def _hours(cpu, net=50_000.0, n=14 * 24):
    return [Hourly(3600.0 * k, cpu(k), cpu(k), net) for k in range(n)]


def test_rules_side_by_side():
    th = Thresholds()
    idle = _hours(lambda k: 1.5)
    assert ours(idle, th)[0] == "idle_instance"
    assert trusted_advisor(idle)["flagged"] and compute_optimizer(idle)["finding"] == "Idle"
    nightly = _hours(lambda k: 85.0 if k % 24 == 3 else 1.0)  # a batch host: one busy hour a night
    assert ours(nightly, th)[0] is None and trusted_advisor(nightly)["flagged"]
    assert compute_optimizer(nightly)["finding"] == "NotIdle"
    daemons = _hours(lambda k: 12.0 + k % 5)  # busy-looking, never above 20%
    assert ours(daemons, th)[0] == "underutilized_instance" and not trusted_advisor(daemons)["flagged"]
    assert ours(_hours(lambda k: 1.0, n=20), th)[0] is None  # too little data to say
    assert compute_optimizer(_hours(lambda k: 1.0, n=20))["finding"] == "InsufficientData"
    chatty = _hours(lambda k: 1.0, net=10e6)  # quiet CPU, 240 MB/day of network: not idle
    assert ours(chatty, th)[0] != "idle_instance" and not trusted_advisor(chatty)["flagged"]


def test_prices_bundled_and_overridden(tmp_path):
    p = Prices()
    usd, src = p.volume("gp3", 500, "us-east-1")
    assert usd == pytest.approx(40.0) and "2026-02-09" in src
    assert p.instance("m5.xlarge", "us-east-1")[0] == pytest.approx(0.192 * 730)
    usd, src = p.instance("m5.xlarge", "eu-west-1")
    assert usd == pytest.approx(0.192 * 730) and "no eu-west-1 price" in src
    assert p.instance("zz9.huge", "us-east-1")[0] is None
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"ec2": {"eu-west-1": {"m5.xlarge": 0.214}}, "nat_hour": {"us-east-1": 0.05}}))
    q = Prices(str(f))
    assert q.instance("m5.xlarge", "eu-west-1")[0] == pytest.approx(0.214 * 730)
    assert q.hourly("nat_hour", "NAT", "us-east-1")[0] == pytest.approx(36.5)
    f.write_text("{nope")
    with pytest.raises(UsageError, match=r"prices.json:1: not JSON"):
        Prices(str(f))


def _f(kind, cost, rid="r"):
    return Finding(kind, rid, "us-east-1", 1000.0, 400.0, (Evidence("x", 1, "test"),), cost, "look")


def test_finding_shape_and_ranking():
    d = _f("unattached_volume", 40.0).to_dict()
    for key in ("kind", "resource_id", "region", "detected_at", "idle_since", "idle_duration_s", "evidence",
                "monthly_cost_usd", "suggested_action", "confidence"):
        assert key in d
    assert d["idle_duration_s"] == 600 and d["evidence"][0]["source"] == "test"
    got = ranked([_f("unassociated_eip", 3.65, "a"), _f("idle_instance", 140.0, "b"), _f("left_running", 0.0, "c")], 1.0)
    assert [f.resource_id for f in got] == ["b", "a"]
    with pytest.raises(ValueError):
        _f("not_a_kind", 1.0)


def test_read_only_hook():
    for name in ("DescribeInstances", "GetMetricStatistics", "ListMetrics"):
        refuse_writes(model=SimpleNamespace(name=name))
    for name in ("TerminateInstances", "DeleteVolume", "StopInstances", "PutMetricData", "ReleaseAddress"):
        with pytest.raises(ReadOnlyViolation, match=name):
            refuse_writes(model=SimpleNamespace(name=name))


def test_live_process_matched_by_pid_and_start_time(tmp_path):
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text("b-1\n")
    (tmp_path / "42").mkdir()
    fields = ["S", "1"] + ["0"] * 9 + ["300", "200"] + ["0"] * 6 + ["5000", "0", "77"]  # fields 3.. of stat
    (tmp_path / "42/stat").write_text("42 (sleep ) x) " + " ".join(fields) + "\n")
    live = LiveProcs(tmp_path, offset_ns=10**18)
    st = live.stat(42)
    assert live.boot_id == "b-1" and st["comm"] == "sleep ) x"
    assert st["start_ns"] == 5000 * tick + 10**18 and st["cpu_s"] == pytest.approx(500 * tick / 1e9)
    assert live.stat(43) is None

