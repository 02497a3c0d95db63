"""Every view tells the same truth (issue 13, items 4-7 and 11): parallel
efficiency, `tune --compare`, cost on the observed host, configs that apply,
removing runs. Pure parts here; the same code on real runs in
tests/kernel/test_views_real.py."""

from __future__ import annotations

from opensre.analysis.classify import efficiency
from opensre.analysis.result import Given
from test_tune import S, facts  # one TaskFacts builder for the tune tests


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


def test_instance_types_architecture_and_shape():
    from opensre.analysis.cost import arch_of_type, cheapest_fit, host_arch, instance, shape_differences
    from opensre.model import Host

    assert [arch_of_type(t) for t in ("c7g.large", "m6gd.xlarge", "c6gn.large", "t4g.small", "m7i-flex.large",
                                      "c6a.large", "m5.large", "g5.xlarge", "g5g.xlarge")] == \
        ["arm64"] * 4 + ["x86_64"] * 4 + ["arm64"]
    assert cheapest_fit(2, 1 << 30, "x86_64").arch == "x86_64"
    assert cheapest_fit(2, 1 << 30, "arm64").arch == "arm64"
    host = Host("h", "vm", cpus=2, mem_bytes=8 << 30, arch="x86_64")
    assert shape_differences(instance("m5.large"), host) == []  # 2 vCPUs, 8 GiB, x86_64
    assert shape_differences(instance("c7g.xlarge"), host) == ["4 vCPUs, the host had 2", "8 GiB, the host had 8.0 GiB"
                                                               ][:1] + ["arm64, the host was x86_64"]
    assert host_arch(Host("h", "vm", kernel="6.1.0-18-arm64")) == "arm64"  # stored before the arch column
    assert host_arch(Host("h", "vm", kernel="6.18.44-fc-v1147")) is None


def test_k8s_snippet_is_kubernetes_objects_that_validate_strictly(tmp_path):
    """--emit k8s: Job patches that the real validator accepts with --strict, one per
    task type, names valid and unique, the task type kept, and how to apply them."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from opensre.analysis import emit
    from opensre.analysis.result import TuneResult
    from opensre.analysis.rightsize import recommend

    types = ("align", "bwa mem | samtools view", "Bwa-Mem  samtools view", "x" * 80, "ΣΣ")
    ts = [facts(task_id=f"t{i}", task_type=t, task_name=t, cpu_ns=20 * S, max_threads=4, peak_rss_bytes=3 << 30)
          for i, t in enumerate(types)]
    text = emit(TuneResult(["r1"], ts, [], [], recommend(ts)), "k8s")
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert len(docs) == len(types) and all(d["apiVersion"] == "batch/v1" and d["kind"] == "Job" for d in docs)
    names = [d["metadata"]["name"] for d in docs]
    assert len(set(names)) == len(names) and all(0 < len(n) <= 63 for n in names)
    assert sorted(d["metadata"]["annotations"]["opensre.io/task-type"] for d in docs) == sorted(types)
    assert "kubectl apply -k" in text and "kubectl patch" in text
    f = tmp_path / "k8s.yaml"
    f.write_text(text)
    kv = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    p = subprocess.run([kv, "--strict", str(f)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("passed") == len(types), p.stdout
