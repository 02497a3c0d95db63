"""Robustness: killed collector, undersized ring buffer, no privileges, no BTF."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

from conftest import opensre_cmd
from test_completeness import build_storm


def _runs(store):
    out = subprocess.run(opensre_cmd() + ["runs", "--store", str(store)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _bpf_ids(pid: int) -> dict[str, set[int]]:
    """The BPF programs, links and maps the process `pid` holds, from its own fds
    (/proc/PID/fdinfo: `prog_id`, `link_id`, `map_id`): our objects, not the host's."""
    ids: dict[str, set[int]] = {"prog_id": set(), "link_id": set(), "map_id": set()}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}").read().splitlines() if ":" in l)
        except OSError:
            continue
        # a link's fdinfo also names its program: it counts as the link
        key = next((k for k in ("link_id", "prog_id", "map_id") if k in fields), None)
        if key:
            ids[key].add(int(fields[key]))
    return ids


def _alive_ids(kind: str, ids: set[int]) -> set[int]:
    """Those of `ids` (bpftool `prog` or `link`) that the kernel still has."""
    out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True, check=True).stdout
    return {o["id"] for o in json.loads(out) if "id" in o} & ids


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for t in os.listdir(f"/proc/{p}/task"):
            try:
                kids = [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def test_kill_9_collector_keeps_store_readable(observe, store):
    first = observe(["bash", "-c", "/bin/true; /bin/true"], "--name", "earlier", check_status=0)
    before = first.export()
    assert len(before) == 2  # bash execs the last command itself
    victim = subprocess.Popen(opensre_cmd() + ["run", "--store", str(store), "--name", "victim", "--", "sleep", "30"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while "victim" not in _runs(store) or not _descendants(victim.pid):
        assert time.time() < deadline
        time.sleep(0.2)
    # the collector's own BPF objects, from its own fds (another collector on the host has its own)
    held = _bpf_ids(victim.pid)
    assert len(held["prog_id"]) >= 4 and held["link_id"], held  # at least fork/exec/exit/free, attached
    assert _alive_ids("prog", held["prog_id"]) == held["prog_id"]  # bpftool sees exactly these now
    # the workload it started, held by pidfd: signalled after the collector is gone, never by name
    kids = [os.pidfd_open(p) for p in _descendants(victim.pid)]
    assert kids
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    for fd in kids:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fd)
    listing = _runs(store)
    assert "interrupted" in listing and "earlier" in listing
    assert first.export(run="earlier") == before
    assert sqlite3.connect(store).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # nothing is pinned: the kernel freed the collector's programs and links with its fds.
    # Freeing is deferred (RCU, a workqueue): on a busy host that can take a while.
    deadline = time.time() + 30
    while (left := _alive_ids("prog", held["prog_id"]) | _alive_ids("link", held["link_id"])):
        assert time.time() < deadline, left
        time.sleep(0.2)


def test_undersized_ring_buffer_reports_drops(observe, store, tmp_path):
    exe = build_storm(tmp_path)
    obs = observe([str(exe), "5", "5", "20", "1"], "--ringbuf-size", "4K", "--drain-ms", "1000", check_status=0)
    line = next(l for l in obs.stderr.splitlines() if l.strip().startswith("drops"))
    n = int(line.split()[1])
    assert n > 0, obs.stderr
    assert "dropped_" in line
    row = sqlite3.connect(store).execute("SELECT drops FROM runs").fetchone()
    assert row[0] == n
    assert f" {n} " in _runs(store)


def test_without_privileges_one_clear_line(tmp_path):
    # root without capabilities: an empty bounding set leaves CapEff at zero
    p = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", *opensre_cmd(),
                        "run", "--store", str(tmp_path / "s.sqlite"), "--", "true"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "needs root" in p.stderr and "sudo" in p.stderr, p.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_missing_btf_one_clear_line(tmp_path):
    env = dict(os.environ, OPENSRE_BTF=str(tmp_path / "no-such-btf"))
    p = subprocess.run(opensre_cmd() + ["run", "--store", str(tmp_path / "s.sqlite"), "--", "true"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "kernel BTF not found" in p.stderr and "CONFIG_DEBUG_INFO_BTF" in p.stderr


def test_exit_status_and_command_not_found(observe):
    assert observe(["bash", "-c", "exit 7"]).returncode == 7
    o = observe(["definitely-not-a-command-xyz"])
    assert o.returncode == 127 and "command not found" in o.stderr


def test_runs_as_invoking_user_under_sudo(observe):
    env = dict(os.environ, SUDO_UID="65534", SUDO_GID="65534", SUDO_USER="nobody")
    o = observe(["id", "-u"], env=env, check_status=0)
    assert o.stdout.strip() == "65534"
    (rec,) = o.export()
    assert rec["uid"] == 65534


def _child_named(pid: int, comm: str) -> bool:
    try:
        kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
        return any(open(f"/proc/{k}/comm").read().strip() == comm for k in kids)
    except OSError:
        return False


def test_sigterm_is_forwarded_and_run_saved(store):
    p = subprocess.Popen(opensre_cmd() + ["run", "--store", str(store), "--", "sleep", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # signal once the command runs (a fixed sleep raced a slow start: SIGTERM before the handler)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _child_named(p.pid, "sleep"):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 128 + 15, err
    assert "exit sig 15" in err, err
    recs = subprocess.run(opensre_cmd() + ["export", "--store", str(store)], capture_output=True, text=True).stdout
    (rec,) = [json.loads(l) for l in recs.splitlines()]
    assert rec["exit_signal"] == 15 and rec["complete"]
