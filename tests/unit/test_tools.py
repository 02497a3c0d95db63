"""Tool identification: wrappers, interpreters, subcommands, user rules, malformed files."""

from __future__ import annotations

import re
import shlex
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_file_line_error
from opensre.correlate.tools import BUILTIN_CATALOG, ToolId, ToolIdentifier
from opensre.errors import RuleError


@pytest.fixture(scope="module")
def ti() -> ToolIdentifier:
    return ToolIdentifier.from_files()


def write(tmp_path, text: str, name: str = "tools.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


# (exe, command line, tool, subcommand, wrapper chain). exe None: argv[0] as given.
CASES = [
    # --- aligners and htslib, as nf-core and Snakemake rules run them
    ("/usr/bin/bwa", "bwa mem -t 8 -R '@RG\\tID:s1\\tSM:s1' ref.fa r1.fq.gz r2.fq.gz", "bwa", "mem", ()),
    (None, "bwa index ref.fa", "bwa", "index", ()),
    (None, "bwa-mem2.avx512bw mem -t 16 ref.fa r1.fq", "bwa-mem2", "mem", ()),
    (None, "samtools sort -@ 8 -o out.bam -T tmp/x -", "samtools", "sort", ()),
    (None, "samtools index -@ 4 out.bam", "samtools", "index", ()),
    (None, "samtools view -@ 2 -b -q 30 -o f.bam in.bam chr1", "samtools", "view", ()),
    (None, "samtools --version", "samtools", None, ()),
    (None, "bcftools mpileup -Ou -f ref.fa x.bam", "bcftools", "mpileup", ()),
    (None, "bcftools call -mv -Oz -o calls.vcf.gz", "bcftools", "call", ()),
    (None, "bowtie2-align-s --wrapper basic-0 -p 4 -x idx -U r.fq", "bowtie2", None, ()),
    (None, "hisat2-build-s -p 4 genome.fa idx", "hisat2-build", None, ()),
    (None, "STAR --runThreadN 8 --genomeDir idx --readFilesIn r1.fq", "STAR", None, ()),
    (None, "bgzip -@ 4 calls.vcf", "bgzip", None, ()),
    (None, "tabix -p vcf calls.vcf.gz", "tabix", None, ()),
    (None, "bedtools intersect -a a.bed -b b.bed -wa", "bedtools", "intersect", ()),
    (None, "salmon quant -i idx -l A -1 r1.fq -2 r2.fq -p 8 -o quant", "salmon", "quant", ()),
    (None, "featureCounts -T 4 -a genes.gtf -o counts.txt x.bam", "featureCounts", None, ()),
    (None, "cellranger count --id=s1 --transcriptome=/ref --fastqs=/fq", "cellranger", "count", ()),
    (None, "mmseqs easy-search q.fa db.fa res.m8 tmp", "mmseqs", "easy-search", ()),
    (None, "diamond blastp -d nr -q prot.fa -o hits.tsv", "diamond", "blastp", ()),
    (None, "seqkit stats -j 4 -T r1.fq.gz", "seqkit", "stats", ()),
    (None, "qualimap bamqc -bam x.bam -outdir qc", "qualimap", "bamqc", ()),
    (None, "spades.py -1 r1.fq -2 r2.fq -o asm", "spades", None, ()),
    # --- GATK and Picard: the python launcher, its java child, option values
    (None, "gatk --java-options '-Xmx4g -XX:-UsePerfData' HaplotypeCaller -R ref.fa -I x.bam -O x.vcf",
     "gatk", "HaplotypeCaller", ()),
    # the launcher run through its #! line: exe names the script, argv[0] the interpreter
    ("/opt/conda/bin/gatk", "python /opt/conda/bin/gatk --java-options -Xmx4g MarkDuplicates -I x.bam",
     "gatk", "MarkDuplicates", ()),
    ("/usr/lib/jvm/java-17/bin/java",
     "java -Dsamjdk.use_async_io_read_samtools=false -Xmx4g -jar /opt/conda/share/gatk4-4.5.0.0-0/"
     "gatk-package-4.5.0.0-local.jar HaplotypeCaller -R ref.fa", "gatk", "HaplotypeCaller", ()),
    (None, "java -Xmx8g -XX:+UseParallelGC -jar /usr/picard/picard.jar SortSam I=x.bam O=y.bam", "picard", "SortSam", ()),
    (None, "java -cp /opt/picard.jar picard.cmdline.PicardCommandLine MarkDuplicates -I x.bam", "picard", "MarkDuplicates", ()),
    (None, "picard -Xmx4g CollectInsertSizeMetrics -I x.bam", "picard", "CollectInsertSizeMetrics", ()),
    (None, "java -jar trimmomatic-0.39.jar PE -threads 4 r1.fq r2.fq", "trimmomatic", "PE", ()),
    (None, "java -Xmx250m -cp /opt/fastqc uk.ac.babraham.FastQC.FastQCApplication x.fq", "fastqc", None, ()),
    (None, "java -cp app.jar org.example.pipeline.Main --in x", "Main", None, ()),
    # -Xcomp and -Xss4m are java words, not clusters ending in -p or -m
    (None, "java -server -Xcomp -Xss4m -jar snpEff.jar ann GRCh38 x.vcf", "snpEff", "ann", ()),
    # --- wrappers
    ("/usr/bin/env", "env LC_ALL=C sort -k1,1 -S 2G x.tsv", "sort", None, ("env",)),
    ("/usr/bin/time", "/usr/bin/time -v -o time.log bwa mem -t 2 ref.fa r.fq", "bwa", "mem", ("time",)),
    (None, "time -f '%e %M' -p samtools flagstat x.bam", "samtools", "flagstat", ("time",)),
    (None, "conda run -n qc --no-capture-output samtools flagstat x.bam", "samtools", "flagstat", ("conda",)),
    (None, "micromamba run -p /envs/qc --live-stream multiqc .", "multiqc", None, ("micromamba",)),
    (None, "conda install -y -c bioconda samtools", "conda", "install", ()),
    (None, "singularity exec -B /data:/data --nv fastqc_0.12.1.sif fastqc -t 2 x.fq", "fastqc", None, ("singularity",)),
    (None, "apptainer run img.sif", "apptainer", "run", ()),
    (None, "timeout 10 taskset -c 0 minimap2 -t 2 -ax sr ref.fa r.fq", "minimap2", None, ("timeout", "taskset")),
    (None, "timeout -s KILL 1h nohup nice -n 5 pigz -p 4 big.txt", "pigz", None, ("timeout", "nohup", "nice")),
    (None, "nice -n 5 pigz -p 4 x.txt", "pigz", None, ("nice",)),
    (None, "stdbuf -oL -e L numactl --cpunodebind=0 -m 0 fastp -w 8 -i r1.fq", "fastp", None, ("stdbuf", "numactl")),
    (None, "sudo -u bob ionice -c 3 rsync -a src/ dst/", "rsync", None, ("sudo", "ionice")),
    (None, "srun -n 1 -c 8 --mem=32G -p gpu python train.py --epochs 3", "train", None, ("srun",)),
    (None, "nohup", "nohup", None, ()),
    # --- interpreters
    (None, "python -m snakemake --snakefile Snakefile --cores 8", "snakemake", None, ()),
    ("/opt/conda/bin/python3.11", "python3 /opt/conda/bin/snakemake --cores 4", "snakemake", None, ()),
    (None, "python3 train.py --lr 1", "train", None, ()),
    (None, "python3 -u -W ignore train.py", "train", None, ()),
    (None, "python -c 'import torch; print(torch.cuda.is_available())'", "python", None, ()),
    (None, "python -m torch.distributed.run --nproc_per_node=8 train.py", "torchrun", None, ()),
    (None, "python -m pip install -r requirements.txt", "pip", "install", ()),
    (None, "python -m ipykernel_launcher -f /run/kernel-1.json", "ipykernel", None, ()),
    (None, "python /w/.snakemake/scripts/tmpa1b2c3d4.plot_qc.py", "plot_qc", None, ()),
    (None, "Rscript analysis.R --input counts.tsv", "analysis", None, ()),
    (None, "Rscript --vanilla -e 'library(DESeq2)'", "Rscript", None, ()),
    (None, "perl /opt/conda/bin/fastqc --threads 2 x.fq", "fastqc", None, ()),
    (None, "julia --project=. -t 4 run_model.jl", "run_model", None, ()),
    # --- shells
    (None, "bash -c 'samtools sort -@ 4 x.bam > y.bam'", "bash", None, ()),
    (None, "/bin/bash -euo pipefail -c 'set -x; bwa mem ref r.fq'", "bash", None, ()),
    (None, "/bin/bash -ue .command.sh", "bash", None, ()),  # Nextflow task script
    (None, "bash", "bash", None, ()),
    (None, "-bash", "bash", None, ()),  # a login shell
    (None, "sh scripts/make_plots.sh out/", "make_plots", None, ()),
    # --- engines and ML
    (None, "nextflow -log run.log run nf-core/rnaseq -profile docker", "nextflow", "run", ()),
    (None, "java -cp /nf/.nextflow/framework/nextflow.jar nextflow.cli.Launcher run main.nf", "nextflow", "run", ()),
    (None, "java -Xmx2g -jar cromwell-86.jar run main.wdl", "cromwell", "run", ()),
    (None, "xargs -n 1 -P 4 gzip", "xargs", None, ()),
    (None, "torchrun --nproc_per_node=8 train.py --bf16", "torchrun", None, ()),
    (None, "accelerate launch --num_processes 2 train.py", "accelerate", "launch", ()),
    (None, "nvidia-smi --query-gpu=utilization.gpu --format=csv -l 1", "nvidia-smi", None, ()),
    (None, "git -C /repo rev-parse HEAD", "git", "rev-parse", ()),
    # --- unknown tools
    ("/opt/tools/bin/mycaller", "mycaller --in x", "mycaller", None, ()),
    ("/opt/tools/bin/mycaller-1.2", "mycaller-1.2 x", "mycaller-1.2", None, ()),
]


@pytest.mark.parametrize("exe, cmd, tool, sub, chain", CASES, ids=[c[1][:50] for c in CASES])
def test_identify(ti, exe, cmd, tool, sub, chain):
    argv = shlex.split(cmd)
    got = ti.identify(exe or argv[0], argv, comm=argv[0][:15])
    assert (got.tool, got.subcommand, got.wrapper_chain) == (tool, sub, chain)
    assert not got.excluded


def test_categories(ti):
    argv = ["env", "LC_ALL=C", "sort", "x"]
    assert ti.identify("/usr/bin/env", argv).category == "text"
    assert ti.identify("/usr/bin/bwa", ["bwa", "mem"]).category == "aligner"
    assert ti.identify("/x/mine", ["mine"]).category is None
    assert ti.category("python3.12") == "interpreter"  # aliases and versions normalise
    assert ti.is_shell("bash") and ti.is_shell("dash") and not ti.is_shell("python")


def test_exe_argv_comm_fallbacks(ti):
    # busybox: the exe says nothing, argv[0] is the applet
    assert ti.identify("/bin/busybox", ["sed", "-n", "1p"]).tool == "sed"
    # no exe: argv[0]; no argv either: comm; nothing at all: "unknown"
    assert ti.identify("", ["/usr/bin/samtools", "index", "x.bam"]) == ToolId("samtools", "index", "alignment-utils")
    assert ti.identify("", [], comm="kworker/0:1").tool == "kworker/0:1"
    assert ti.identify("", [], comm="python3").tool == "python"
    assert ti.identify("", []).tool == "unknown"


def test_builtin_catalogue_is_big_and_valid(ti):
    assert len(ti._tools) >= 80
    text = BUILTIN_CATALOG.read_text()
    assert "Schema" in text  # the schema is documented at its top


# ------------------------------------------------------------ user rules


def test_rename_and_exclude(tmp_path):
    rules = write(tmp_path, r"""
        tools:
          - {name: mytool, category: aligner, subcommands: true, options: [--profile]}
        rename:
          - match: {tool: train, argv_regex: 'train\.py .*--model bert'}
            tool: bert-trainer
          - match: {tool: train}
            tool: trainer
            category: ml
          - match: {tool: samtools, subcommand: faidx}
            tool: faidx
            subcommand: null
          - match: {exe_glob: '/opt/site/bin/*'}
            tool: site-tool
        exclude:
          - match: {tool: readlink}
          - match: {tool: bash, argv_regex: '^bash -c .*ulimit'}
    """)
    ti = ToolIdentifier.from_files([rules])
    assert ti.identify("/x/mytool", ["mytool", "--profile", "fast", "align", "r.fq"]) == ToolId(
        "mytool", "align", "aligner"
    )
    # first match wins
    assert ti.identify("/usr/bin/python3", ["python3", "train.py", "--model", "bert"]).tool == "bert-trainer"
    t = ti.identify("/usr/bin/python3", ["python3", "train.py", "--model", "gpt"])
    assert (t.tool, t.category) == ("trainer", "ml")
    assert ti.identify("/usr/bin/samtools", ["samtools", "faidx", "ref.fa"]) == ToolId("faidx", None, "alignment-utils")
    # exe_glob with a "/" matches the whole path
    assert ti.identify("/opt/site/bin/x", ["x"]).tool == "site-tool"
    assert ti.identify("/usr/bin/x", ["x"]).tool == "x"
    # excluded helpers keep their identity and are only marked
    hidden = ti.identify("/usr/bin/env", ["env", "readlink", "-f", "x"])
    assert (hidden.tool, hidden.wrapper_chain, hidden.excluded) == ("readlink", ("env",), True)
    assert ti.identify("/bin/bash", ["bash", "-c", "ulimit -n 4096; foo"]).excluded
    assert not ti.identify("/bin/bash", ["bash", "-c", "foo"]).excluded


def test_user_files_override_in_order(tmp_path):
    a = write(tmp_path, "tools:\n  - {name: samtools, category: bam}\n", "a.yaml")
    b = write(tmp_path, "exclude:\n  - match: {tool: 'sam*'}\n", "b.yaml")
    ti = ToolIdentifier.from_files([a, b])
    t = ti.identify("/usr/bin/samtools", ["samtools", "sort", "x.bam"])
    # the user entry replaced the built-in one entirely: no subcommands any more
    assert (t.tool, t.subcommand, t.category, t.excluded) == ("samtools", None, "bam", True)


def test_user_wrapper_and_empty_file(tmp_path):
    rules = write(tmp_path, """
        tools:
          - {name: with-lock, category: wrapper, wrapper: true, options: [-w], skip: 1}
    """)
    empty = write(tmp_path, "", "empty.yaml")
    ti = ToolIdentifier.from_files([rules, empty])
    t = ti.identify("/x/with-lock", ["with-lock", "-w", "10", "/tmp/lock", "bwa", "mem"])
    assert (t.tool, t.subcommand, t.wrapper_chain) == ("bwa", "mem", ("with-lock",))


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("tools:\n  - name: x\n      category: text\n", 3, "YAML syntax error"),
        ("tools: []\nrenames: []\n", 2, "unknown key 'renames'"),
        ("version: 2\n", 1, "unsupported version"),
        ("tools: {name: x}\n", 1, "'tools' must be a list"),
        ("tools:\n  - {name: x}\n  - category: text\n", 3, "tool without a 'name'"),
        ("tools:\n  - name: x\n    catgory: text\n", 3, "unknown key 'catgory'"),
        ("tools:\n  - name: x\n    subcommands: 'yes'\n", 3, "must be true or false"),
        ("tools:\n  - name: x\n    options: [--threads=4]\n", 3, "invalid option"),
        ("tools:\n  - name: x\n    verbs: [run]\n", 3, "needs 'wrapper: true'"),
        ("tools:\n  - {name: x}\n  - {name: y, aliases: [x]}\n", 3, "already defined on line 2"),
        ("rename:\n  - match: {tool: x}\n    category: ml\n", 2, "rename without a 'tool'"),
        ("rename:\n  - match:\n      tool: x\n      argv_regex: 'a(b'\n    tool: y\n", 4, "invalid regex"),
        ("rename:\n  - match: {tool: x, comm: y}\n    tool: z\n", 2, "unknown match key 'comm'"),
        ("rename:\n  - tool: z\n", 2, "'match' must be a mapping"),
        ("exclude:\n  - match: {}\n", 2, "'match' is empty"),
        ("exclude:\n  - match: {tool: x}\n    why: helper\n", 3, "unknown key 'why'"),
        ("- just a list\n", 1, "expected a mapping"),
    ],
)
def test_malformed_files(tmp_path, text, line, message):
    p = write(tmp_path, text)
    assert_file_line_error(lambda: ToolIdentifier.from_files([p]), p, line, message)


def test_missing_file(tmp_path):
    with pytest.raises(RuleError, match=re.escape(str(tmp_path / "nope.yaml")) + ": cannot read"):
        ToolIdentifier.from_files([tmp_path / "nope.yaml"])


# ------------------------------------------------------------ properties

_WORDS = st.sampled_from(
    ["--", "-", "-c", "-m", "-jar", "-n", "-euo", "run", "exec", "env", "time", "timeout", "python3",
     "java", "bash", "samtools", "conda", "singularity", "A=1", "x.py", "a.b.C", ".command.sh", "", "=", "+o"]
)


@settings(max_examples=400, deadline=None)
@given(
    exe=st.one_of(st.just(""), st.text(max_size=30), _WORDS),
    argv=st.lists(st.one_of(st.text(max_size=20), _WORDS), max_size=40),
    comm=st.text(max_size=16),
)
def test_identify_never_raises(ti, exe, argv, comm):
    t = ti.identify(exe, argv, comm)
    assert isinstance(t.tool, str) and t.tool
    assert len(t.wrapper_chain) <= 16
