"""Runs inside a host-wide collection: detection on synthetic process lists, user
naming rules, malformed rule files, and storage of detected runs."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from conftest import assert_file_line_error
from opensre.cli.main import main
from opensre.correlate import correlate_collection
from opensre.correlate.runs import UNATTRIBUTED, detect_runs, load_run_rules, parse_run_rules, session_of
from opensre.errors import RuleError
from opensre.model import Host, Process, Run
from opensre.store import Store

S = 1_000_000_000


def P(pid, ppid, t, argv, exe=None, **kw) -> Process:
    """A finished process started at second t (its parent is found by pid and start)."""
    kw.setdefault("end_time_ns", (t + 50) * S)
    return Process(pid=pid, start_time_ns=t * S, ppid=ppid, argv=list(argv), comm=os.path.basename(argv[0])[:15],
                   exe=exe or "/usr/bin/" + os.path.basename(argv[0]).lstrip("-"), exec_count=1, complete=True,
                   cpu_user_ns=1000, cpu_system_ns=10, **kw)


def base_host() -> list[Process]:
    """init, daemons, an ssh login shell and a tmux server with a shell in it."""
    return [
        P(1, 0, 0, ["/sbin/init"]),
        P(50, 1, 1, ["/usr/sbin/cron", "-f"]),
        P(51, 50, 30, ["/bin/sh", "-c", "run-parts /etc/cron.hourly"], exe="/bin/sh"),
        P(52, 51, 30, ["run-parts", "/etc/cron.hourly"]),
        P(60, 1, 1, ["/usr/lib/systemd/systemd-journald"]),
        P(100, 1, 1, ["sshd: /usr/sbin/sshd -D"], exe="/usr/sbin/sshd"),
        P(101, 100, 2, ["sshd: alice [priv]"], exe="/usr/sbin/sshd"),
        P(102, 101, 2, ["-bash"], exe="/usr/bin/bash"),
        P(110, 1, 2, ["tmux", "new", "-s", "w"], exe="/usr/bin/tmux"),
        P(111, 110, 3, ["-zsh"], exe="/usr/bin/zsh"),
    ]


def runs_by_kind(runs):
    return {r.kind: r for r in runs}


def members(run) -> set[int]:
    return {k[0] for k in run.members}


def test_two_engines_nested_make_and_unattributed_daemons():
    procs = base_host() + [
        # snakemake from the ssh shell; one job runs make, which runs gzip
        P(200, 102, 10, ["/usr/bin/python3.11", "/usr/local/bin/snakemake", "--cores", "4"], exe="/usr/bin/python3.11"),
        P(201, 200, 11, ["/bin/bash", "-c", "set -euo pipefail; make -C sub"], exe="/bin/bash"),
        P(202, 201, 12, ["make", "-C", "sub"]),
        P(203, 202, 13, ["/bin/sh", "-c", "gzip -k a.txt"], exe="/bin/sh"),
        P(204, 203, 13, ["gzip", "-k", "a.txt"]),
        # nextflow (a JVM) in tmux, concurrently, with a task
        P(300, 111, 10, ["java", "-Xmx1g", "-cp", "nf.jar", "nextflow.cli.Launcher", "run", "main.nf"],
          exe="/usr/lib/jvm/bin/java"),
        P(301, 300, 12, ["/bin/bash", "-ue", ".command.run"], exe="/bin/bash", cwd="/w/work/ab/cdef012345"),
        P(302, 301, 12, ["sort", "x.txt"]),
    ]
    runs = detect_runs(procs)
    assert [r.kind for r in runs] == ["snakemake", "nextflow"]
    smk, nf = runs
    assert smk.root == (200, 10 * S) and members(smk) == {200, 201, 202, 203, 204}  # make inside: outermost wins
    assert smk.name == "snakemake: snakemake --cores 4"
    assert members(nf) == {300, 301, 302} and nf.name.startswith("nextflow: ")
    assert nf.members[0] == nf.root
    owned = members(smk) | members(nf)
    # daemons, their cron job, the login shells: unattributed
    assert not owned & {1, 50, 51, 52, 60, 100, 101, 102, 110, 111}


def test_scripts_started_from_a_terminal_and_not_otherwise():
    procs = base_host() + [
        P(400, 102, 10, ["python3", "train.py", "--epochs", "3"], exe="/usr/bin/python3.12"),
        P(401, 400, 11, ["python3", "train.py", "--epochs", "3"], exe="/usr/bin/python3.12"),  # a worker
        P(402, 111, 10, ["bash", "backup.sh"], exe="/usr/bin/bash"),
        P(403, 402, 11, ["tar", "czf", "b.tgz", "/home"]),
        P(404, 110, 10, ["Rscript", "plot.R"], exe="/usr/lib/R/bin/Rscript"),  # a tmux pane's command
        P(405, 102, 12, ["sudo", "python3", "serve.py"], exe="/usr/bin/sudo"),
        P(406, 405, 12, ["python3", "serve.py"], exe="/usr/bin/python3"),
        # not scripts from a terminal:
        P(410, 102, 20, ["gzip", "-9", "big"]),                      # a binary
        P(411, 102, 20, ["python3"], exe="/usr/bin/python3"),         # a REPL
        P(412, 102, 20, ["bash", "-c", "echo hi"], exe="/usr/bin/bash"),  # inline code
        P(413, 51, 30, ["python3", "cleanup.py"], exe="/usr/bin/python3"),  # cron's `sh -c`, not a terminal
        P(414, 102, 20, ["ls", "python", "x.py"], exe="/usr/bin/ls"),
    ]
    runs = detect_runs(procs)
    roots = {r.root[0]: r for r in runs}
    assert set(roots) == {400, 402, 404, 405}
    assert roots[400].kind == "script" and members(roots[400]) == {400, 401}
    assert roots[400].name == "script: python3 train.py --epochs 3"
    assert roots[402].kind == "shell" and members(roots[402]) == {402, 403}
    assert roots[404].kind == "script"
    assert members(roots[405]) == {405, 406}


def test_slurm_job_is_one_run_across_steps_and_its_engine_inside():
    procs = base_host() + [
        P(600, 1, 5, ["/usr/sbin/slurmd"]),
        P(601, 600, 10, ["slurmstepd: [77.batch]"], exe="/usr/sbin/slurmstepd", slurm_job_id=77, slurm_step="batch"),
        P(602, 601, 10, ["/bin/bash", "/var/spool/slurmd/job00077/slurm_script"], exe="/bin/bash",
          slurm_job_id=77, slurm_step="batch"),
        P(603, 602, 11, ["snakemake", "-j2"], exe="/usr/bin/python3", slurm_job_id=77, slurm_step="batch"),
        P(604, 603, 12, ["bwa", "mem", "r.fa", "x.fq"], slurm_job_id=77, slurm_step="batch"),
        # an srun step: another slurmstepd under slurmd, same job
        P(610, 600, 20, ["slurmstepd: [77.0]"], exe="/usr/sbin/slurmstepd", slurm_job_id=77, slurm_step="0"),
        P(611, 610, 20, ["hostname"], slurm_job_id=77, slurm_step="0"),
        # another job
        P(620, 600, 15, ["slurmstepd: [78.batch]"], exe="/usr/sbin/slurmstepd", slurm_job_id=78, slurm_step="batch"),
        P(621, 620, 15, ["sleep", "100"], slurm_job_id=78, slurm_step="batch"),
        # a container: its processes under the runtime's shim, not under who asked for it
        P(700, 1, 30, ["containerd-shim-runc-v2", "-id", "abc"]),
        P(701, 700, 31, ["nginx"], container_id="c0ffee" * 10 + "abcd", container_runtime="containerd"),
        P(702, 701, 31, ["nginx"], container_id="c0ffee" * 10 + "abcd", container_runtime="containerd"),
        # a pod: its containers together
        P(710, 1, 40, ["containerd-shim-runc-v2", "-id", "p"]),
        P(711, 710, 41, ["/pause"], pod_uid="5f3c-aa", container_id="aa" * 32),
        P(712, 710, 42, ["python3", "serve.py"], exe="/usr/bin/python3", pod_uid="5f3c-aa", container_id="bb" * 32),
    ]
    runs = detect_runs(procs)
    by = {r.name: r for r in runs}
    job = by["slurm job 77"]
    assert job.kind == "slurm" and job.root == (601, 10 * S)
    assert members(job) == {601, 602, 603, 604, 610, 611}  # the snakemake inside stays in the job
    assert members(by["slurm job 78"]) == {620, 621}
    c = by["container c0ffeec0ffee"]
    assert c.kind == "container" and members(c) == {701, 702} and c.root == (701, 31 * S)
    assert 600 not in {k[0] for r in runs for k in r.members}  # slurmd itself: unattributed
    pod = by["pod 5f3c-aa"]
    assert pod.kind == "kubernetes" and members(pod) == {711, 712}
    # a collector started inside the pod: its session is not part of the pod's run
    runs = detect_runs(procs, session={(711, 41 * S)})
    assert members(next(r for r in runs if r.kind == "kubernetes")) == {712}


def test_collector_session_is_never_a_root():
    # `make test` -> pytest -> (opensre collect, make -C a, xargs): the harness that
    # started the collector is the observer; the workloads beside it are runs
    procs = base_host() + [
        P(800, 102, 5, ["make", "test"]),
        P(801, 800, 6, ["/usr/bin/python3", "-m", "pytest", "tests"], exe="/usr/bin/python3"),
        P(802, 801, 10, ["make", "-C", "a", "-j2"]),
        P(803, 802, 11, ["/bin/sh", "-c", "gzip -k f"], exe="/bin/sh"),
        P(804, 801, 10, ["xargs", "-a", "list", "-P2", "-n1", "gzip"]),
        P(805, 804, 11, ["gzip", "f2"]),
    ]
    assert len(detect_runs(procs)) == 1  # without the session, `make test` swallows everything
    session = session_of(procs, 801, 7 * S)
    assert session == {(801, 6 * S), (800, 5 * S), (102, 2 * S), (101, 2 * S), (100, S), (1, 0)}
    runs = detect_runs(procs, session=session)
    assert [(r.kind, members(r)) for r in runs] == [("make", {802, 803}), ("xargs", {804, 805})]
    assert session_of(procs, 9999, 7 * S) == set()


def test_user_rule_names_a_run_first():
    rules = parse_run_rules(textwrap.dedent("""
        tools: [{name: ignored}]          # other keys are another loader's business
        runs:
          - match: {argv_regex: '^python\\S* train\\.py'}  # not the `sh -c` above it
            name: "training {argv}"
            kind: training
          - match: {tool: gzip, exe_glob: '/opt/*'}
            name: "vendored gzip {pid}"
    """), "runs.yaml")
    assert len(rules) == 2
    procs = base_host() + [
        P(200, 102, 10, ["make", "all"]),
        P(201, 200, 11, ["/bin/sh", "-c", "python3 train.py --lr 1"], exe="/bin/sh"),
        P(202, 201, 11, ["python3", "train.py", "--lr", "1"], exe="/usr/bin/python3"),
        P(203, 202, 12, ["nvidia-smi"]),
        P(204, 200, 13, ["gzip", "x"], exe="/usr/bin/gzip"),
        P(300, 60, 20, ["/opt/gz/gzip", "y"], exe="/opt/gz/gzip"),  # under a daemon: a run only by the rule
    ]
    runs = detect_runs(procs, rules=rules)
    by = {r.root[0]: r for r in runs}
    assert by[202].kind == "training" and by[202].name == "training python3 train.py --lr 1"
    assert members(by[202]) == {202, 203}  # carved out of the make run
    assert by[200].kind == "make" and members(by[200]) == {200, 201, 204}
    assert by[300].name == "vendored gzip 300" and by[300].kind == "named"


@pytest.mark.parametrize("text, line, msg", [
    ("runs:\n  - match: {argv_regex: 'x'}\n    name: a\n  - match: {argv_regex: '('}\n    name: b\n", 4, "invalid regex"),
    ("runs:\n  - match: {argv_regex: 'x'}\n", 2, "needs a 'name'"),
    ("runs:\n  - match: {argv: 'x'}\n    name: a\n", 2, "unknown match key 'argv'"),
    ("runs:\n  - match: {}\n    name: a\n", 2, "'match' is empty"),
    ("runs:\n  - name: a\n", 2, "'match' must be a mapping"),
    ("runs:\n  - match: {tool: x}\n    name: a\n    colour: red\n", 4, "unknown key 'colour'"),
    ("runs:\n  - match: {tool: x}\n    name: 'a {user}'\n", 3, "unknown placeholder {user}"),
    ("runs:\n  - match: {tool: x}\n    name: a\n    kind: two words\n", 4, "'kind' must be one word"),
    ("runs: {a: 1}\n", 1, "'runs' must be a list"),
    ("runs:\n  - match: {tool: x\n    name: a\n", 3, "YAML syntax error"),
])
def test_malformed_rule_file_names_file_and_line(tmp_path, text, line, msg):
    f = tmp_path / "runs.yaml"
    f.write_text(text)
    assert_file_line_error(lambda: load_run_rules([f]), f, line, msg)


def test_rule_file_without_runs_is_empty(tmp_path):
    f = tmp_path / "tools.yaml"
    f.write_text("rename:\n  - match: {tool: gzip}\n    tool: z\n")
    assert load_run_rules([f]) == []
    assert parse_run_rules("") == []
    with pytest.raises(RuleError, match="cannot read"):
        load_run_rules([tmp_path / "missing.yaml"])


# ------------------------------------------------------------------ storage


def collection(tmp_path) -> tuple[Store, Run, list[Process]]:
    s = Store(tmp_path / "s.sqlite")
    s.put_host(Host("h1", "node1"))
    run = Run(run_id="coll00000001", name="collect@node1", mode="collect", host_id="h1", start_time_ns=4 * S,
              end_time_ns=90 * S, status="finished", collector_pid=os.getpid(), root_pid=801)
    procs = collect_procs()
    run.process_count = len(procs)
    s.put_run(run)
    s.put_batch(run.run_id, procs)
    return s, run, procs


def collect_procs() -> list[Process]:
    procs = base_host() + [
        P(800, 102, 3, ["make", "test"]),
        P(801, 800, 3, ["/usr/bin/python3", "-m", "pytest"], exe="/usr/bin/python3"),
        P(802, 801, 10, ["make", "-C", "a", "-j2"]),
        P(803, 802, 11, ["/bin/sh", "-c", "gzip -k f"], exe="/bin/sh"),
        P(804, 803, 11, ["gzip", "-k", "f"]),
        P(805, 802, 11, ["/bin/sh", "-c", "sort g > h"], exe="/bin/sh"),
        P(810, 801, 10, ["xargs", "-a", "list", "-P2", "-n1", "gzip"]),
        P(811, 810, 11, ["gzip", "f2"]),
        P(812, 810, 11, ["gzip", "f3"]),
    ]
    return procs


def test_correlate_collection_stores_detected_runs(tmp_path, capsys):
    s, coll, procs = collection(tmp_path)
    runs = correlate_collection(s, coll.run_id)
    assert [r.name for r in runs] == ["make: make -C a -j2", "xargs: xargs -a list -P2 -n1 gzip"]
    mk, xa = runs
    assert all(r.mode == "detected" and r.parent_run_id == coll.run_id and r.status == "finished" for r in runs)
    assert mk.process_count == 4 and xa.process_count == 3 and mk.root_pid == 802
    # a detected run reads like any run: its processes, tasks, tools
    assert {p.pid for p in s.processes(mk.run_id)} == {802, 803, 804, 805}
    assert {p.pid for p in s.processes(xa.run_id)} == {810, 811, 812}
    mtasks, xtasks = s.tasks(mk.run_id), s.tasks(xa.run_id)
    assert {t.engine for t in mtasks if t.kind == "task"} == {"make"}
    assert len([t for t in xtasks if t.kind == "task"]) == 2
    ids = [t.task_id for t in mtasks + xtasks]
    assert len(ids) == len(set(ids)) and all(i.startswith(("r1.", "r2.")) for i in ids)
    assert {u.tool for u in s.tools(mk.run_id)} == {"gzip"}
    # every process: one task of one detected run, or explicitly unattributed
    all_procs = list(s.processes(coll.run_id))
    assert len(all_procs) == len(procs)
    task_run = {t.task_id: t.run_id for t in mtasks + xtasks}
    for p in all_procs:
        if p.pid in (802, 803, 804, 805):
            assert task_run[p.task_id] == mk.run_id
        elif p.pid in (810, 811, 812):
            assert task_run[p.task_id] == xa.run_id
        else:
            assert p.task_id == UNATTRIBUTED
    # "latest" is still the collection; runs can list it alone
    assert s.resolve_run("latest").run_id == coll.run_id
    assert [r.run_id for r in s.runs(detected=False)] == [coll.run_id]
    assert {r.run_id for r in s.runs()} == {coll.run_id, mk.run_id, xa.run_id}
    # re-detection replaces, with the same ids
    again = correlate_collection(s, coll.run_id)
    assert [r.run_id for r in again] == [mk.run_id, xa.run_id]
    assert len(s.runs()) == 3 and len(s.tasks(mk.run_id)) == len(mtasks)
    # a rule carving a run out changes the set; the old ones are gone
    rules = tmp_path / "mine.yaml"
    rules.write_text("runs:\n  - match: {argv_regex: '^gzip f3$'}\n    name: the f3 job\n")
    third = correlate_collection(s, coll.run_id, run_rule_files=[rules])
    assert sorted(r.name for r in third) == ["make: make -C a -j2", "the f3 job", "xargs: xargs -a list -P2 -n1 gzip"]
    assert len(s.runs()) == 4
    assert {p.pid for p in s.processes(xa.run_id)} == {810, 811}
    s.close()


def test_cli_lists_shows_and_exports_detected_runs(tmp_path, capsys):
    s, coll, _ = collection(tmp_path)
    store = str(s.path)
    s.close()
    assert main(["correlate", "--store", store, coll.run_id]) == 0
    out = capsys.readouterr().out
    assert "2 runs detected" in out and "make: make -C a -j2" in out
    assert f"{len(base_host()) + 2} of {len(base_host()) + 9} processes unattributed" in out
    s = Store(store, readonly=True)
    mk = s.detected_runs(coll.run_id)[0]
    assert main(["runs", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(coll.run_id)
    assert lines[2].startswith(mk.run_id) and "↳ make: make -C a -j2" in lines[2]
    assert main(["show", "--store", store, mk.run_id]) == 0
    out = capsys.readouterr().out
    assert "processes  4" in out and "gzip" in out
    assert main(["show", "--store", store, coll.run_id]) == 0
    assert "2 runs detected" in capsys.readouterr().out
    assert main(["export", "--store", store, "--run", mk.run_id, "--what", "processes"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert sorted(r["pid"] for r in rows) == [802, 803, 804, 805]
    assert main(["export", "--store", store, "--run", mk.run_id, "--what", "tasks"]) == 0
    tasks = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert {r["task_id"] for r in rows} <= {t["task_id"] for t in tasks}
    # correlate on a detected run re-detects its collection
    assert main(["correlate", "--store", store, mk.run_id]) == 0
    assert "re-detecting" in capsys.readouterr().out
    assert [r.run_id for r in Store(store, readonly=True).detected_runs(coll.run_id)][0] == mk.run_id


def test_older_store_reads_and_migrates(tmp_path):
    import sqlite3

    from opensre.store.schema import MIGRATIONS, SCHEMA_VERSION

    f = tmp_path / "v4.sqlite"
    db = sqlite3.connect(f)
    for v in range(1, 5):
        db.executescript(MIGRATIONS[v])
    db.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    db.execute("INSERT INTO runs (run_id, name, mode, status, start_time_ns) VALUES ('old1', 'x', 'collect', 'finished', 5)")
    db.commit()
    db.close()
    ro = Store(f, readonly=True)
    assert ro.resolve_run("latest").run_id == "old1" and ro.runs(detected=False)[0].parent_run_id is None
    assert ro.detected_runs("old1") == [] and list(ro.processes("old1")) == []
    ro.close()
    rw = Store(f)
    assert rw.schema_version() == SCHEMA_VERSION and rw.resolve_run("old1").parent_run_id is None


def test_a_new_shells_start_up_helpers_and_opensre_itself_are_no_runs():
    # a new login shell sources its rc files: pyenv's init scripts run within its first
    # second; then the user starts `opensre top` and, later, a real script
    procs = base_host() + [
        P(300, 101, 100, ["-bash"], exe="/usr/bin/bash"),
        P(301, 300, 100.2, ["bash", "/home/alice/.pyenv/libexec/pyenv-init", "-"], exe="/usr/bin/bash"),
        P(302, 300, 100.4, ["bash", "/home/alice/.pyenv/libexec/pyenv-rehash"], exe="/usr/bin/bash"),
        P(303, 300, 100.5, ["bash", "/home/alice/.bashrc.d/prompt.sh"], exe="/usr/bin/bash"),
        P(310, 300, 140, ["/usr/bin/python3", "/work/.venv/bin/opensre", "top"], exe="/usr/bin/python3.11"),
        P(311, 300, 150, ["/usr/bin/python3", "-m", "opensre", "show"], exe="/usr/bin/python3.11"),
        P(320, 300, 200, ["python3", "train.py"], exe="/usr/bin/python3.11"),
    ]
    runs = detect_runs(procs)
    assert [r.root[0] for r in runs] == [320], [(r.root, r.name) for r in runs]


def test_an_ignore_rule_matches_exe_paths_and_argv():
    rules = parse_run_rules(textwrap.dedent("""\
        runs:
          - match: {exe_glob: '/opt/helpers/*'}
            ignore: true
          - match: {argv_regex: 'nightly-sync'}
            ignore: true
        """))
    procs = base_host() + [
        P(400, 102, 60, ["/opt/helpers/report.sh"], exe="/opt/helpers/report.sh"),
        P(401, 102, 70, ["python3", "/srv/nightly-sync.py"], exe="/usr/bin/python3.11"),
        P(402, 401, 71, ["make", "-C", "/srv"]),  # an engine under an ignored script is no run either
        P(403, 102, 80, ["python3", "train.py"], exe="/usr/bin/python3.11"),
    ]
    runs = detect_runs(procs, rules=rules)
    assert [r.root[0] for r in runs] == [403]
    with pytest.raises(RuleError, match="'ignore' must be true or false"):
        parse_run_rules("runs:\n  - match: {tool: x}\n    ignore: maybe\n")


def test_runs_rm_of_a_detected_run_and_of_its_collection(tmp_path, capsys):
    """A detected run goes with its tasks and tools, its processes stay in the
    collection (unattributed); the collection goes with everything, detected runs too."""
    s, coll, procs = collection(tmp_path)
    mk, xa = correlate_collection(s, coll.run_id)
    s.close()
    st = str(tmp_path / "s.sqlite")
    assert main(["runs", "--store", st, "rm", mk.run_id]) == 0
    s = Store(st)
    assert [r.run_id for r in s.detected_runs(coll.run_id)] == [xa.run_id] and not s.tasks(mk.run_id)
    kept = {p.pid: p.task_id for p in s.processes(coll.run_id)}
    assert len(kept) == len(procs) and all(kept[p] == UNATTRIBUTED for p in (802, 803, 804, 805))
    assert {p.pid for p in s.processes(xa.run_id)} == {810, 811, 812}  # the other detected run intact
    s.close()
    assert main(["runs", "--store", st, "rm", coll.run_id]) == 0
    assert "(and 1 run(s) detected in it)" in capsys.readouterr().out
    s = Store(st, readonly=True)
    assert s.runs() == [] and s.host("h1") is None
    assert not list(s.processes(coll.run_id)) and not s.tasks(xa.run_id)
    assert main(["runs", "--store", st, "rm"]) == 2  # nothing named
