"""tune's pure parts: flag parsing, Snakefile reading, classification
thresholds, sizing rules, comparison floors, emitters, price table. The kernel
tests (tests/kernel/test_tune_workloads.py) run the same code on real workloads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from opensre.analysis import Floors, Thresholds, compare, emit
from opensre.analysis.classify import classify
from opensre.analysis.cost import cheapest_fit, instance, price_table
from opensre.analysis.result import CLASSIFICATIONS, Given, TaskFacts, TuneResult
from opensre.analysis.rightsize import percentile, recommend
from opensre.analysis.sizeflags import size_flags
from opensre.analysis.workflow import match_rule, read_snakefile, rule_from_argv
from opensre.errors import UsageError

S = 1_000_000_000
MiB = 1 << 20


def facts(**kw) -> TaskFacts:
    d = dict(run_id="r1", task_id="t1", task_name="x", task_type="x", engine="generic", start_time_ns=0,
             end_time_ns=10 * S, wall_ns=10 * S, cpu_ns=0, runq_wait_ns=0, blocked_io_ns=0, sleep_ns=0,
             peak_rss_bytes=100 * MiB, read_bytes=0, write_bytes=0, major_faults=0, max_threads=1, peak_cores=0.0,
             longest_stall_ns=0, exit_code=0, exit_signal=None, oom_killed=False, oom_limit_bytes=None)
    d.update(kw)
    return TaskFacts(**d)


def classes(t, **th) -> set[str]:
    return {f.classification for f in classify(t, Thresholds(**th))}


def test_flags():
    assert size_flags(["bwa", "mem", "-t", "8", "ref.fa"])[0]["cpus"] == 8
    assert size_flags(["sort", "-t", ",", "-k2"]) == []  # sort -t is a separator
    assert size_flags(["ls", "-t", "4"]) == []           # -t means threads only for tools that say so
    (th, mem) = size_flags(["samtools", "sort", "-@", "3", "-m", "1G", "in.bam"])
    assert th["cpus"] == 4 and mem["memory_bytes"] == 4 << 30  # -m is per thread
    assert size_flags(["java", "-Xmx2g", "-jar", "x.jar"])[0]["memory_bytes"] == 2 << 30
    assert size_flags(["tool", "--threads=16"])[0]["cpus"] == 16
    assert size_flags(["tool", "--max-mem", "500M"])[0]["memory_bytes"] == 500 * MiB
    assert size_flags(["tool", "--threads", "many"]) == []


def test_snakefile_rules_and_matching(tmp_path):
    f = tmp_path / "Snakefile"
    f.write_text('rule all:\n    input: "a"\n'
                 'rule align:\n    threads: 4\n    resources: mem_mb=8000, runtime=30\n'
                 '    shell: "bwa mem -t {threads} ref.fa {input.fq} | samtools view -b -o {output} -"\n'
                 "rule sort:\n    shell:\n        '''\n        samtools sort -o {output} {input}\n        '''\n"
                 'rule idx:\n    shell: "samtools index {input}"\n'
                 'rule plot:\n    input: "a"\n    script: "scripts/plot.py"\n')
    rules = read_snakefile(f)
    assert rules["align"].threads == 4 and rules["align"].memory_bytes == 8_000_000_000
    bash = lambda cmd: ["/bin/bash", "-c", "set -euo pipefail;  " + cmd]  # noqa: E731
    assert match_rule(rules, [bash("bwa mem -t 4 ref.fa r/S1.fq | samtools view -b -o a/S1.bam -")]).name == "align"
    assert match_rule(rules, [bash("samtools sort -o a.bam b.bam")]).name == "sort"
    assert match_rule(rules, [bash("samtools index a/S1.bam")]).name == "idx"
    assert match_rule(rules, [bash("gzip x")]) is None
    assert match_rule(rules, [["python", "/w/.snakemake/scripts/tmpab12cd34.plot.py"]]).name == "plot"
    assert rule_from_argv([["python", "-m", "snakemake", "--target-jobs", "align:s=S1", "--cores", "2"]]) == "align"
    assert rule_from_argv([["python", "-m", "snakemake", "--target-jobs", "'call::s=S1'"]]) == "call"
    assert rule_from_argv([["snakemake", "--cores", "2"]]) is None
    assert match_rule(rules, [["samtools", "index", "a.bam"]]) is None  # not a Snakemake job's shell
    with pytest.raises(UsageError):
        read_snakefile(tmp_path / "missing")


def test_classification_thresholds():
    assert classes(facts(cpu_ns=10 * S)) == {"cpu_bound"}
    assert classes(facts(cpu_ns=5 * S, runq_wait_ns=5 * S)) == {"cpu_starved"}
    assert classes(facts(cpu_ns=1 * S, blocked_io_ns=4 * S, write_bytes=1 << 30)) == {"io_bound"}
    assert classes(facts(cpu_ns=1 * S, blocked_io_ns=int(0.2 * S))) == set()
    assert classes(facts(sleep_ns=10 * S, longest_stall_ns=10 * S), idle_after_s=5) == {"idle"}
    assert classes(facts(sleep_ns=10 * S, longest_stall_ns=10 * S)) == set()  # default: 60 s
    assert classes(facts(exit_code=1)) == {"failed"}
    assert classes(facts(exit_code=141)) == set() and classes(facts(exit_signal=13)) == set()  # SIGPIPE
    assert classes(facts(exit_signal=9, oom_killed=True, oom_limit_bytes=64 * MiB)) == {"oom_killed"}
    near = facts(given=Given(memory_bytes=110 * MiB, memory_source="task cgroup memory limit"))
    assert classes(near) == {"memory_bound"}
    assert classes(facts(host_memory_pressure=0.3)) == {"memory_bound"}
    assert classes(facts(host_memory_pressure=0.01)) == set()
    host = facts(given=Given(memory_bytes=110 * MiB, memory_source="host"))
    assert classes(host) == set()  # the host's size is not a request
    over = facts(cpu_ns=10 * S, peak_cores=1.0, given=Given(cpus=8, cpus_source="argv -t 8"))
    assert classes(over) == {"cpu_bound", "overallocated_cpu"}
    big = facts(given=Given(memory_bytes=4 << 30, memory_source="task cgroup memory limit"))
    assert classes(big) == {"overallocated_memory"}
    # too short to judge a share; failures still count
    assert classes(facts(wall_ns=S // 10, cpu_ns=S // 10)) == set()
    assert classes(facts(wall_ns=S // 10, exit_code=2)) == {"failed"}
    for t in (near, over, big):
        assert all(f.classification in CLASSIFICATIONS for f in classify(t))


def test_host_pressure_share():
    from opensre.analysis.facts import _pressure

    hs = [{"t_ns": i * S, "psi_memory_some_us": i * 250_000} for i in range(10)]  # 25% stalled
    assert _pressure(hs, 2 * S, 6 * S) == 0.25
    assert _pressure(hs[:1], 0, S) is None
    assert _pressure([{"t_ns": 0, "psi_memory_some_us": None}] * 3, 0, S) is None


def test_rightsizing_rules():
    assert percentile([1, 2, 3, 4, 100], 0.95) == 100 and percentile([5], 0.9) == 5
    few = [facts(task_id=f"t{i}", peak_rss_bytes=(100 + i) * MiB, cpu_ns=10 * S) for i in range(3)]
    (r,) = recommend(few)
    assert r.memory_bytes >= 102 * MiB * 1.5 and r.evidence["few_samples"] and r.cpus == 1
    many = [facts(task_id=f"t{i}", peak_rss_bytes=1000 * MiB, cpu_ns=10 * S) for i in range(20)]
    (r,) = recommend(many)
    assert 1200 * MiB <= r.memory_bytes < 1300 * MiB and not r.evidence["few_samples"]
    # an OOM kill raises the figure above the limit it died at, whatever the peaks say
    oom = many[:5] + [facts(task_id="t99", peak_rss_bytes=60 * MiB, oom_killed=True, exit_signal=9,
                            oom_limit_bytes=2 << 30)]
    (r,) = recommend(oom)
    assert r.memory_bytes >= 4 << 30 and "OOM" in r.reason
    # starved tasks are sized by what they wanted (on-CPU + run-queue), capped by their threads
    st = [facts(task_id=f"t{i}", cpu_ns=20 * S, runq_wait_ns=15 * S, max_threads=4) for i in range(5)]
    assert recommend(st)[0].cpus == 4
    one_thread = [facts(task_id=f"t{i}", cpu_ns=10 * S, runq_wait_ns=30 * S, max_threads=1) for i in range(5)]
    assert recommend(one_thread)[0].cpus == 1
    # a retried failure sizes from every attempt
    retry = [facts(task_id="a", exit_code=1, peak_rss_bytes=900 * MiB), facts(task_id="b", start_time_ns=S)]
    (r,) = recommend(retry)
    assert r.memory_bytes >= 900 * MiB and "retried" in r.reason


def test_compare_floors():
    before = [facts(task_id=f"a{i}", task_type="sort", wall_ns=S + i * S // 20) for i in range(3)]
    slow = [facts(task_id=f"b{i}", task_type="sort", wall_ns=3 * S) for i in range(3)]
    d = next(x for x in compare(before, slow) if x.metric == "duration_s")
    assert d.regression and not d.improvement and d.n_before == 3
    # 2x on a 10 ms task is jitter: under the absolute floor
    tiny_a = [facts(task_type="idx", wall_ns=S // 100)]
    tiny_b = [facts(task_type="idx", wall_ns=S // 50)]
    assert not any(x.regression for x in compare(tiny_a, tiny_b))
    # a side whose own tasks spread 3x raises the bar
    noisy = [facts(task_type="n", wall_ns=S), facts(task_type="n", wall_ns=3 * S)]
    assert not next(x for x in compare(noisy, [facts(task_type="n", wall_ns=4 * S)])
                    if x.metric == "duration_s").regression
    assert next(x for x in compare(before, before[:1], Floors(rel=0.01)) if x.metric == "duration_s").ratio


def _result(types=("align", "sort", "bwa mem | samtools view")) -> TuneResult:
    ts = [facts(task_id=f"t{i}", task_type=t, task_name=t, cpu_ns=20 * S, max_threads=4, peak_rss_bytes=3 << 30)
          for i, t in enumerate(types)]
    return TuneResult(["r1"], ts, [], [], recommend(ts))


def test_emitters_are_valid_config(tmp_path):
    res = _result()
    prof = yaml.safe_load(emit(res, "snakemake"))
    assert prof["set-threads"] == {"align": 2, "sort": 2}  # not a rule name: left out
    assert prof["set-resources"]["align"]["mem_mb"] >= 3 * 1074
    assert "'bwa mem | samtools view' is not a rule name" in emit(res, "snakemake")
    k8s = [d["spec"]["template"]["spec"]["containers"][0] for d in yaml.safe_load_all(emit(res, "k8s")) if d]
    assert [c["name"] for c in k8s] == ["align", "bwa-mem-samtools-view", "sort"]
    assert k8s[0]["resources"]["requests"] == {"cpu": "2", "memory": k8s[0]["resources"]["limits"]["memory"]}
    nf = emit(res, "nextflow")
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "e2e"))
    from groovy_config import parse

    tree = parse(nf)
    assert set(tree["process"]) == {"withName: 'align'", "withName: 'sort'"}
    assert tree["process"]["withName: 'align'"]["cpus"] == "2"
    # a type named by its tools is a commented block that parses once the user names the process
    filled = nf.replace("// withName: 'PROCESS_NAME'", "withName: 'ALIGN'")
    assert parse(filled)["process"]["withName: 'ALIGN'"]["memory"] == "'4.9 GB'"
    assert "--cpus-per-task=2" in emit(res, "slurm")
    with pytest.raises(UsageError):
        emit(res, "cwl")


def test_price_table_and_instance_fit():
    t = price_table()
    assert len(t) >= 50 and all(v.usd_per_hour > 0 and v.vcpus >= 2 for v in t.values())
    m = instance("m5.xlarge")
    assert (m.vcpus, m.memory_gib) == (4, 16)
    fit = cheapest_fit(4, 30 << 30)
    assert fit.vcpus >= 4 and fit.memory_gib >= 30
    assert all(v.usd_per_hour >= fit.usd_per_hour for v in t.values() if v.vcpus >= 4 and v.memory_gib >= 30)
    with pytest.raises(UsageError):
        instance("z9.huge")


def test_analysis_never_imports_the_loader_or_collector():
    code = ("import sys, opensre.analysis, opensre.report.tune_text, opensre.sweep.aws, opensre.sweep.execution, "
            "opensre.sweep.render; "
            "bad = [m for m in sys.modules if m.startswith(('opensre.bpf', 'opensre.collect', 'opensre.cli'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_cli_tune_bad_arguments(tmp_path):
    from opensre.cli.main import main

    from opensre.store import Store

    assert main(["tune", "--store", str(tmp_path / "none.sqlite")]) == 1  # no store: one-line error
    Store(tmp_path / "s.sqlite").close()
    s = str(tmp_path / "s.sqlite")
    assert main(["tune", "--store", s, "a", "--compare", "b", "c"]) == 2
    assert main(["tune", "--store", s, "--pipeline", "nope"]) == 2
    assert main(["tune", "--store", s, "--instance-type", "z9.huge"]) == 1  # no runs yet: store error first
    with pytest.raises(SystemExit) as e:
        main(["tune", "--store", s, "--emit", "cwl"])
    assert e.value.code == 2


def test_cli_tune_explains_a_run_without_tasks(tmp_path, capsys):
    from opensre.cli.main import main
    from opensre.model import Host, Run
    from opensre.store import Store

    st = Store(tmp_path / "s.sqlite")
    st.put_host(Host("h", "vm", cpus=2, mem_bytes=1 << 30))
    st.put_run(Run("c1", "host", "collect", "h", status="finished", start_time_ns=1, end_time_ns=2))
    st.close()
    assert main(["tune", "--store", str(tmp_path / "s.sqlite"), "c1", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert "host-wide collection" in out.err and '"findings": []' in out.out


def test_cost_split_idle_share_and_savings():
    from opensre.analysis.cost import run_cost
    from opensre.model import ToolUse

    # a 4-CPU host at $3.60/h = $0.00025 per core-second; a 100 s run costs $0.10
    ts = [facts(task_id="a", task_type="sort", cpu_ns=100 * S, wall_ns=100 * S,
                given=Given(cpus=4, cpus_source="argv -@ 3")),
          facts(task_id="b", task_type="idx", cpu_ns=20 * S)]
    tools = [ToolUse("r1", "a", "samtools", "sort", 1, 0, 100 * S, cpu_ns=100 * S)]
    recs = recommend(ts)
    c = run_cost(100.0, 4, 3.6, ts, tools, recs, "test")
    assert c["run_usd"] == pytest.approx(0.1)
    assert c["tasks_usd"] == {"a": pytest.approx(0.025), "b": pytest.approx(0.005)}
    assert c["idle_usd"] == pytest.approx(0.07) and c["idle_share"] == pytest.approx(0.7)
    assert c["tools_usd"] == {"samtools sort": pytest.approx(0.025)}
    (sv,) = c["savings"]  # sort asked for 4 CPUs, needs 1: 3 cores x 100 s freed
    assert sv["task_type"] == "sort" and sv["core_seconds_freed"] == 300 and sv["usd"] == pytest.approx(0.075)


def test_text_report_colour_only_when_asked():
    from opensre.report.tune_text import render

    res = _result()
    res.findings = classify(facts(cpu_ns=10 * S))
    plain, coloured = render(res, color=False), render(res, color=True)
    assert "\x1b[" not in plain and "cpu_bound" in plain and "Recommendations" in plain
    assert "\x1b[" in coloured
