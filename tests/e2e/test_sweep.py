"""`opensre sweep` against a real AWS API (moto's server, started here) seeded with
known waste and busy look-alikes: the waste is flagged, priced and ranked, the
look-alikes are not, nothing in the account changed, and a write is refused before it
is sent. And against this host: a process a run left behind is `left_running`, found
by pid and start time."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from conftest import free_port, opensre_cmd, start_moto
from sweep_account import CREDS, seed, snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def account():
    port = free_port()
    p = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        yield endpoint, seed(endpoint)
    finally:
        p.terminate()
        p.wait(timeout=10)


def _sweep(endpoint: str, *args: str, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **CREDS, "AWS_ENDPOINT_URL": endpoint, **(env_extra or {})}
    env.pop("AWS_PROFILE", None)
    return subprocess.run(opensre_cmd() + ["sweep", "--aws", "--no-store", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_seeded_account_waste_found_priced_ranked_and_nothing_changed(account):
    endpoint, ids = account
    before = snapshot(endpoint)
    r = _sweep(endpoint, "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    by_id = {f["resource_id"]: f for f in out["findings"]}
    want = {ids["idle"]: "idle_instance", ids["waste_vol"]: "unattached_volume", ids["free_eip"]: "unassociated_eip",
            ids["nat"]: "idle_nat_gateway"}
    for rid, kind in want.items():
        assert by_id[rid]["kind"] == kind, by_id.get(rid)
        assert by_id[rid]["monthly_cost_usd"] > 0 and by_id[rid]["evidence"]
    for rid in (ids["busy"], ids["used_vol"], ids["used_eip"], ids["nat_eip"], ids["batch"]):
        assert rid not in by_id
    costs = [f["monthly_cost_usd"] for f in out["findings"]]
    assert costs == sorted(costs, reverse=True)
    assert out["summary"]["total_monthly_cost_usd"] == pytest.approx(sum(costs), abs=0.05)
    # 500 GiB gp3 at $0.08; m5.xlarge at $0.192/h x 730 h
    assert by_id[ids["waste_vol"]]["monthly_cost_usd"] == pytest.approx(40.0)
    assert by_id[ids["idle"]]["monthly_cost_usd"] == pytest.approx(140.16)
    idle = by_id[ids["idle"]]
    assert idle["aws_view"]["trusted_advisor"]["flagged"] and idle["aws_view"]["compute_optimizer"]["finding"] == "Idle"
    assert idle["idle_duration_s"] > 13 * 86400 and idle["confidence"] == "high"
    # the nightly batch host: Trusted Advisor's daily average calls it idle, Compute Optimizer's peak and ours do not
    batch, = [d for d in out["summary"]["aws_rules_only"] if d["resource_id"] == ids["batch"]]
    assert batch["trusted_advisor"]["flagged"] and batch["compute_optimizer"]["finding"] == "NotIdle"
    assert snapshot(endpoint) == before
    print(json.dumps(out, indent=1))


def test_min_monthly_cost_and_text(account):
    endpoint, ids = account
    r = _sweep(endpoint, "--min-monthly-cost", "35")
    assert r.returncode == 0, r.stderr
    assert ids["idle"] in r.stdout and ids["waste_vol"] in r.stdout and ids["free_eip"] not in r.stdout
    assert r.stdout.startswith("sweep: ") and len(r.stdout.splitlines()) < 30


def test_write_refused_before_it_is_sent(account):
    from opensre.errors import ReadOnlyViolation
    from opensre.sweep.aws import ReadOnlyAWS

    endpoint, ids = account
    os.environ.update({**CREDS, "AWS_ENDPOINT_URL": endpoint})
    try:
        ec2 = ReadOnlyAWS(["us-east-1"]).client("ec2", "us-east-1")
        with pytest.raises(ReadOnlyViolation, match="TerminateInstances"):
            ec2.terminate_instances(InstanceIds=[ids["idle"]])
        with pytest.raises(ReadOnlyViolation, match="DeleteVolume"):
            ec2.delete_volume(VolumeId=ids["waste_vol"])
        state = ec2.describe_instances(InstanceIds=[ids["idle"]])["Reservations"][0]["Instances"][0]["State"]
        assert state["Name"] == "running"
    finally:
        for k in (*CREDS, "AWS_ENDPOINT_URL"):
            os.environ.pop(k, None)


def test_one_service_unreachable_others_swept(account):
    endpoint, ids = account
    dead = f"http://127.0.0.1:{free_port()}"
    r = _sweep(endpoint, "--format", "json", env_extra={"AWS_ENDPOINT_URL_CLOUDWATCH": dead})
    assert r.returncode == 0, r.stderr
    kinds = {f["kind"] for f in json.loads(r.stdout)["findings"]}
    assert {"unattached_volume", "unassociated_eip"} <= kinds and "idle_instance" not in kinds
    lines = [x for x in r.stderr.splitlines() if x.startswith("opensre: cannot read")]
    assert any("cloudwatch us-east-1" in x and "unreachable" in x for x in lines), r.stderr
    r = _sweep(dead, "--format", "json")  # nothing readable at all
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert sum(x.startswith("opensre: cannot read ec2") for x in r.stderr.splitlines()) == 5, r.stderr


def test_left_running_names_the_pid_a_run_left(observe, store):
    o = observe(["bash", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! ; exit 0"], "--linger", "1")
    assert o.returncode == 0, o.stderr
    pid = int(o.stdout.split()[0])
    try:
        r = subprocess.run(opensre_cmd() + ["sweep", "--store", str(store), "--format", "json"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        left = [f for f in json.loads(r.stdout)["findings"] if f["kind"] == "left_running"]
        assert [f["detail"]["pid"] for f in left] == [pid], r.stdout
        ev = {e["what"]: e["value"] for e in left[0]["evidence"]}
        assert abs(ev["start_time_ns"] - ev["live_start_time_ns"]) < 1e9 and "sleep 300" in ev["argv"]
    finally:
        os.kill(pid, signal.SIGKILL)
    r = subprocess.run(opensre_cmd() + ["sweep", "--store", str(store), "--format", "json"], capture_output=True,
                       text=True, timeout=60)
    assert not json.loads(r.stdout)["findings"]  # gone: nothing left behind
