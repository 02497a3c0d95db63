"""Every view tells the same truth (issue 13, items 4-7 and 11): parallel
efficiency, `tune --compare`, cost on the observed host, configs that apply,
removing runs. Pure parts here; the same code on real runs in
tests/kernel/test_tune_views.py."""

from __future__ import annotations

from opensre.analysis.classify import efficiency
from opensre.analysis.result import Given, TaskFacts

S = 1_000_000_000
MiB = 1 << 20


def facts(**kw) -> TaskFacts:
    d = dict(run_id="r1", task_id="t1", task_name="x", task_type="x", engine="generic", start_time_ns=0,
             end_time_ns=10 * S, wall_ns=10 * S, cpu_ns=0, runq_wait_ns=0, blocked_io_ns=0, sleep_ns=0,
             peak_rss_bytes=100 * MiB, read_bytes=0, write_bytes=0, major_faults=0, max_threads=1, peak_cores=0.0,
             longest_stall_ns=0, exit_code=0, exit_signal=None, oom_killed=False, oom_limit_bytes=None)
    d.update(kw)
    return TaskFacts(**d)


def test_parallel_efficiency_counts_a_pipelines_concurrent_cpu():
    # `a | b`: two single-threaded processes, 11.39 s of CPU in 10 s, up to 2 cores at once
    pipe = facts(cpu_ns=int(11.39 * S), max_threads=1, peak_cores=2.0)
    assert efficiency(pipe) == 0.57
    # given one CPU (a Snakefile's threads: 1) but it ran on two: the two it used count
    assert efficiency(facts(cpu_ns=int(11.39 * S), peak_cores=2.0,
                            given=Given(cpus=1, cpus_source="Snakefile threads (call)"))) == 0.57
    # no series (peak cores unknown): the average still bounds it
    assert efficiency(facts(cpu_ns=int(11.39 * S), peak_cores=0.0)) == 1.0
    # 8 CPUs asked for, one used: still low
    assert efficiency(facts(cpu_ns=10 * S, peak_cores=1.0, given=Given(cpus=8, cpus_source="argv -t 8"))) == 0.125
    assert efficiency(facts(cpu_ns=5 * S, max_threads=4, peak_cores=1.0)) == 0.125
    assert efficiency(facts(wall_ns=0)) is None


def test_flags_of_a_command_line_leave_out_file_names():
    from opensre.analysis.changes import flags, version_of

    assert flags(["samtools", "sort", "-m", "1M", "-@", "2", "-o", "out/x.bam", "in.bam"]) == \
        [("-m", "1M"), ("-@", "2"), ("-o", None)]
    assert flags(["sort", "--parallel=2", "-S", "64M", "-n", "f.txt"]) == \
        [("--parallel", "2"), ("-S", "64M"), ("-n", None)]
    assert flags(["tool", "--offset", "-5", "-"]) == [("--offset", "-5")]
    assert version_of("/opt/samtools-1.19.2/bin/samtools") == "1.19.2"
    assert version_of("/home/u/envs/bcftools=1.17/bin/bcftools") == "1.17"
    assert version_of("/usr/bin/sort") is None
