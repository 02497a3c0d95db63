"""The small real Snakemake pipeline (bwa, samtools, bcftools) the end-to-end
tests run under `opensre run`: its Snakefile, a data maker and the command line."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from conftest import opensre_cmd

SAMPLES = ["S1", "S2", "S3"]
RULES = {  # rule -> tools expected in its task
    "bwa_index": {"bwa index"},
    "faidx": {"samtools faidx"},
    "align": {"bwa mem", "samtools view"},
    "sort": {"samtools sort"},
    "index": {"samtools index"},
    "call": {"bcftools mpileup", "bcftools call"},
    "stats": {"bcftools stats"},
}

SNAKEFILE = """
SAMPLES = {samples!r}
rule all:
    input: expand("stats/{{s}}.txt", s=SAMPLES)
rule bwa_index:
    input: "ref.fa"
    output: "ref.fa.bwt"
    benchmark: "bench/bwa_index.tsv"
    shell: "bwa index ref.fa 2> /dev/null"
rule faidx:
    input: "ref.fa"
    output: "ref.fa.fai"
    benchmark: "bench/faidx.tsv"
    shell: "samtools faidx ref.fa"
rule align:
    input: "ref.fa.bwt", fq="reads/{{s}}.fq"
    output: temp("aln/{{s}}.unsorted.bam")
    threads: 2
    benchmark: "bench/align.{{s}}.tsv"
    shell: "bwa mem -t {{threads}} ref.fa {{input.fq}} 2> /dev/null | samtools view -b -o {{output}} -"
rule sort:
    input: "aln/{{s}}.unsorted.bam"
    output: "aln/{{s}}.bam"
    benchmark: "bench/sort.{{s}}.tsv"
    shell: "samtools sort -@ 1 -o {{output}} {{input}}"
rule index:
    input: "aln/{{s}}.bam"
    output: "aln/{{s}}.bam.bai"
    benchmark: "bench/index.{{s}}.tsv"
    shell: "samtools index {{input}}"
rule call:
    input: "ref.fa.fai", bam="aln/{{s}}.bam", bai="aln/{{s}}.bam.bai"
    output: "calls/{{s}}.vcf.gz"
    benchmark: "bench/call.{{s}}.tsv"
    shell: "bcftools mpileup -Ou -f ref.fa {{input.bam}} 2> /dev/null | bcftools call -mv -Oz -o {{output}} 2> /dev/null"
rule stats:
    input: "calls/{{s}}.vcf.gz"
    output: "stats/{{s}}.txt"
    benchmark: "bench/stats.{{s}}.tsv"
    shell: "bcftools stats {{input}} > {{output}}"
"""


# Kernel truth for each job, independent of OpenSRE: Snakemake runs every `shell:` job as
# `<shell.executable> -c "set -euo pipefail; ..."` (the prefix only when the executable is
# named `bash`). This `bash` runs the job under GNU time, which writes the job's
# getrusage(RUSAGE_CHILDREN) (what the kernel accounted for its whole reaped subtree: CPU,
# the largest maxrss) and wall time to DIR/<pid of this script, the job's root process>.
# It does not exec time, so the root still looks like a Snakemake job's shell.
TRUTH_SHELL = """#!/bin/bash
/usr/bin/time -f '%e %U %S %M' -o {truth_dir}/$$ /bin/bash "$@"
"""
TRUTH_PRELUDE = 'shell.executable("{shell}")\n'


def truth_shell(d: Path) -> tuple[Path, Path]:
    """(the shell to give Snakemake, the folder its truth files land in)."""
    truth = d / "truth"
    (truth / "bin").mkdir(parents=True, exist_ok=True)
    sh = truth / "bin" / "bash"
    sh.write_text(TRUTH_SHELL.format(truth_dir=truth))
    sh.chmod(0o755)
    return sh, truth


def read_truth(f: Path) -> dict:
    """GNU time's `%e %U %S %M` line: wall s, CPU s (user + system, 10 ms steps), maxrss bytes."""
    wall, user, system, kb = f.read_text().split()[-4:]  # a failing job adds a line before
    return {"wall_s": float(wall), "cpu_s": float(user) + float(system), "maxrss_bytes": int(kb) * 1024}


def make_data(d: Path, ref_len: int = 2_000_000, reads: int = 40_000, rlen: int = 100,
              samples=SAMPLES) -> None:
    rng = random.Random(11)
    ref = "".join(rng.choice("ACGT") for _ in range(ref_len))
    with open(d / "ref.fa", "w") as f:
        f.write(">chr1\n")
        for i in range(0, len(ref), 80):
            f.write(ref[i:i + 80] + "\n")
    (d / "reads").mkdir()
    for s in samples:
        # each sample carries its own SNPs, so there is something to call
        snps = {rng.randrange(ref_len): rng.choice("ACGT") for _ in range(200)}
        mutated = list(ref)
        for pos, b in snps.items():
            mutated[pos] = b
        mutated = "".join(mutated)
        with open(d / "reads" / f"{s}.fq", "w") as f:
            for i in range(reads):
                p = rng.randrange(ref_len - rlen)
                f.write(f"@{s}_{i}\n{mutated[p:p + rlen]}\n+\n{'I' * rlen}\n")


def snakemake_cmd(d: Path) -> list[str]:
    smk = Path(sys.executable).parent / "snakemake"
    return [str(smk), "--cores", "2", "--quiet", "all", "-d", str(d), "-s", str(d / "Snakefile")]


def run_pipeline(d: Path, store: Path, *opts: str, samples=SAMPLES, timeout: float = 600,
                 **data) -> subprocess.CompletedProcess:
    """Make the data in d (unless there), write the Snakefile and run the pipeline
    under `opensre run --store STORE [opts]`."""
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "ref.fa").exists():
        make_data(d, samples=samples, **data)
    (d / "Snakefile").write_text(SNAKEFILE.format(samples=list(samples)))
    return subprocess.run(opensre_cmd() + ["run", "--store", str(store), *opts, "--", *snakemake_cmd(d)],
                          capture_output=True, text=True, timeout=timeout)
