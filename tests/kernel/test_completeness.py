"""Completeness: a fork storm of short-lived processes, every one recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import WORKLOADS

MIDS, SUBS, LEAVES = 10, 10, 20  # 10 + 100 + 2000 processes under the root


def build_storm(tmp: Path) -> Path:
    exe = tmp / "storm"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(WORKLOADS / "storm.c")], check=True)
    return exe


def test_fork_storm_every_process_recorded(observe, tmp_path):
    exe = build_storm(tmp_path)
    obs = observe([str(exe), str(MIDS), str(SUBS), str(LEAVES), "42"], check_status=0)
    recs = obs.export()
    root = next(r for r in recs if r["argv"][:1] == [str(exe)])
    by_key = {(r["pid"], r["start_time_ns"]): r for r in recs}

    def parent(r):
        return by_key.get((r["ppid"], r["parent_start_time_ns"]))

    leaves = [r for r in recs if r["argv"][:2] == ["storm", "leaf"]]
    assert len(leaves) == MIDS * SUBS * LEAVES
    assert len(recs) == 1 + MIDS + MIDS * SUBS + len(leaves)
    assert sorted(int(r["argv"][2]) for r in leaves) == list(range(MIDS * SUBS * LEAVES))
    incomplete = [(r["pid"], r["ppid"], r["argv"], r["exec_count"]) for r in recs if not r["complete"]]
    assert not incomplete, (incomplete, obs.stderr)
    for leaf in leaves:
        lid, ms = int(leaf["argv"][2]), int(leaf["argv"][3])
        assert leaf["exit_code"] == lid % 200 and leaf["exit_signal"] is None
        life_ms = (leaf["end_time_ns"] - leaf["start_time_ns"]) / 1e6
        sub = parent(leaf)
        # it slept ms; it lived within its parent, which waited for it (an upper
        # bound in wall time would only measure how busy the machine is)
        assert ms <= life_ms, (lid, ms, life_ms)
        # (a leaf's record closes at its last switch-out, which can follow its reaping
        # by its parent by a few ms on a slow machine)
        assert sub["start_time_ns"] <= leaf["start_time_ns"] and leaf["end_time_ns"] <= sub["end_time_ns"] + 50e6, lid
        mid = parent(sub)
        assert parent(mid) is root
        assert sub["exec_count"] == 0 and mid["exec_count"] == 0  # forked, never exec'd
    assert "drops      0" in obs.stderr, obs.stderr


@pytest.mark.guest
def test_exec_chain_keeps_one_process_and_every_exec(observe):
    obs = observe(["bash", "-c", "exec env -- sh -c 'exec true'"], check_status=0)
    recs = obs.export()
    assert len(recs) == 1
    assert recs[0]["exec_count"] == 4 and recs[0]["exe"].endswith("true")
    execs = obs.export("execs")
    assert [e["exe"].rsplit("/", 1)[-1] for e in execs] == ["bash", "env", "sh", "true"]
