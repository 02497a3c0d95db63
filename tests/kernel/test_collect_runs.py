"""Host-wide `opensre collect` while different workloads run concurrently: each
process is attributed to the right detected run, none crosses, and the rest of
the host is explicitly unattributed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid

from conftest import opensre_cmd

DETECTED = re.compile(r"^\s+run ([0-9a-f]{12})\s+(\d+) processes\s+(\S+)\s+(.*)$")


def export(store, what="processes", run="latest"):
    out = subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--run", run, "--what", what],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def subtree(recs, root_pid: int, after_ns: int) -> set[tuple[int, int]]:
    """The process `root_pid` started after `after_ns` and all its descendants, by creation links."""
    root = next(r for r in recs if r["pid"] == root_pid and r["start_time_ns"] >= after_ns)
    kids: dict[tuple[int, int], list[dict]] = {}
    for r in recs:
        if r["parent_start_time_ns"] is not None:
            kids.setdefault((r["ppid"], r["parent_start_time_ns"]), []).append(r)
    out, todo = set(), [root]
    while todo:
        r = todo.pop()
        k = (r["pid"], r["start_time_ns"])
        out.add(k)
        todo += kids.get(k, [])
    return out


def test_concurrent_workloads_are_separate_runs(store, tmp_path):
    marker = uuid.uuid4().hex[:10]
    data = "\n".join(f"{(i * 7919) % 100003} {marker}" for i in range(200000)) + "\n"
    # A: make -j2, recipes compressing and sorting generated files
    a = tmp_path / f"a_{marker}"
    a.mkdir()
    for n in ("f1", "f2", "f3"):
        (a / f"{n}.txt").write_text(data)
    (a / "Makefile").write_text(
        "all: f1.txt.gz f2.sorted f3.txt.gz\n"
        "%.txt.gz: %.txt\n\tsleep 0.5; gzip -kf $<\n"
        "%.sorted: %.txt\n\tsleep 0.5; sort $< > $@\n")
    # B: xargs -P2 over a file list, each item through `sh -c`
    b = tmp_path / f"b_{marker}"
    b.mkdir()
    for n in ("g1", "g2", "g3", "g4"):
        (b / f"{n}.txt").write_text(data)
    (b / "list").write_text("".join(f"{b}/g{i}.txt\n" for i in range(1, 5)))
    # C: a shell script typed into an interactive-looking shell (commands on stdin)
    c = tmp_path / f"c_{marker}"
    c.mkdir()
    (c / "in.txt").write_text(data)
    (c / f"job_{marker}.sh").write_text("sleep 0.5\nsort -r in.txt > out.txt\nwc -l out.txt > /dev/null\n")

    col = subprocess.Popen(opensre_cmd() + ["collect", "--store", str(store)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = col.stderr.readline()
        assert "collecting host-wide" in line, line + col.stderr.read()
        t0 = time.time_ns()
        wa = subprocess.Popen(["make", "-C", str(a), "-j2"], stdout=subprocess.DEVNULL)
        wb = subprocess.Popen(["xargs", "-a", str(b / "list"), "-P2", "-n1",
                               "sh", "-c", 'sleep 0.4; gzip -kf "$1"; sort "$1" > "$1.sorted"', marker],
                              stdout=subprocess.DEVNULL)
        wc = subprocess.Popen(["bash", "--norc", "--noprofile"], stdin=subprocess.PIPE, cwd=c, text=True,
                              stdout=subprocess.DEVNULL)
        wc.communicate(f"bash job_{marker}.sh\nexit\n", timeout=60)
        assert wa.wait(timeout=60) == 0 and wb.wait(timeout=60) == 0 and wc.returncode == 0
        assert (a / "f2.sorted").exists() and (b / "g4.txt.gz").exists() and (c / "out.txt").exists()
        time.sleep(1.0)  # the last exits reach the store
    finally:
        col.send_signal(signal.SIGINT)
        _, err = col.communicate(timeout=120)
    assert col.returncode == 0, err

    # the collector printed the runs it detected; each workload is one of them
    printed = {m.group(1): m.group(4) for m in map(DETECTED.match, err.splitlines()) if m}
    recs = export(store)  # the collection: every process of the host
    script = next(r for r in recs if r["ppid"] == wc.pid and r["argv"] == ["bash", f"job_{marker}.sh"])
    roots = {"a": subtree(recs, wa.pid, t0), "b": subtree(recs, wb.pid, t0), "c": subtree(recs, script["pid"], t0)}
    members = {rid: {(r["pid"], r["start_time_ns"]): r for r in export(store, "processes", rid)} for rid in printed}
    rid_of = {}
    for w, keys in roots.items():
        root = min(keys, key=lambda k: k[1])
        (rid_of[w],) = [rid for rid, got in members.items() if root in got]
    run_a, run_b, run_c = rid_of["a"], rid_of["b"], rid_of["c"]
    assert printed[run_a].startswith("make: make -C /")
    assert printed[run_b].startswith("xargs: xargs -a /")
    assert printed[run_c] == f"shell: bash job_{marker}.sh"
    assert len({run_a, run_b, run_c}) == 3
    expect = {run_a: roots["a"], run_b: roots["b"], run_c: roots["c"]}
    feeder = next(r for r in recs if r["pid"] == wc.pid and r["start_time_ns"] >= t0)
    assert len(expect[run_a]) >= 7  # make, 3 recipe shells, sleeps, gzip/sort
    assert len(expect[run_b]) >= 9  # xargs, 4 x (sh, sleep, gzip, sort)
    assert len(expect[run_c]) >= 4  # the script, sleep, sort, wc
    spans = {}
    for rid, keys in expect.items():
        got = members[rid]
        assert set(got) == keys, (rid, printed[rid])  # exactly its workload: nothing missing, nothing crossing
        tasks = {t["task_id"] for t in export(store, "tasks", rid)}
        assert all(r["task_id"] in tasks for r in got.values())
        spans[rid] = (min(r["start_time_ns"] for r in got.values()), max(r["end_time_ns"] for r in got.values()))
    assert not expect[run_a] & expect[run_b] and not expect[run_b] & expect[run_c]
    # they did run concurrently
    assert spans[run_a][0] < spans[run_b][1] and spans[run_b][0] < spans[run_a][1]
    assert spans[run_a][0] < spans[run_c][1] and spans[run_c][0] < spans[run_a][1]
    # task ids of the whole collection are unique across its runs
    by_id = {}
    for rid in printed:
        for t in export(store, "tasks", rid):
            assert t["task_id"] not in by_id
            by_id[t["task_id"]] = rid
    # in the collection: ours point at their run's tasks, the typing shell and the harness are unattributed
    for r in recs:
        k = (r["pid"], r["start_time_ns"])
        for rid, keys in expect.items():
            if k in keys:
                assert by_id[r["task_id"]] == rid
    assert next(r for r in recs if r["pid"] == feeder["pid"] and r["start_time_ns"] == feeder["start_time_ns"])[
        "task_id"] == "unattributed"
    assert all(r["task_id"] for r in recs)  # every process: a task, or explicitly unattributed

    listing = subprocess.run(opensre_cmd() + ["runs", "--store", str(store)], capture_output=True, text=True,
                             check=True).stdout
    for rid in (run_a, run_b, run_c):
        assert any(l.startswith(rid) and "↳" in l for l in listing.splitlines()), listing


def test_malformed_run_rules_stop_collect_before_it_starts(store, tmp_path):
    rules = tmp_path / "runs.yaml"
    rules.write_text("runs:\n  - match: {argv_regex: 'x'}\n    name: a\n  - match: {argv_regex: '('}\n    name: b\n")
    p = subprocess.run(opensre_cmd() + ["collect", "--store", str(store), "--run-rules", str(rules)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and f"{rules}:4: runs: invalid regex" in p.stderr, p.stderr
    assert not store.exists()  # nothing started
