"""Tools that size themselves from their command line: thread counts (`-t 8`,
`--threads 8`, `-@ 3`) and memory (`-Xmx2g`, `--max-mem 4G`, `samtools sort -m`).
They say what a task asked for when no cgroup says so, and they are why a
recommendation must not silently cut below what a flag makes the tool use."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.I)
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

# long options naming a thread count, for any tool
_THREAD_LONG = {"--threads", "--thread", "--cpus", "--cores", "--nthreads", "--num-threads", "--num_threads",
                "--runthreadn", "--ncpus", "--n-threads", "--workers", "--jobs-per-task"}
# short options that are a thread count only for these tools
_THREAD_SHORT = {
    "-t": {"bwa", "bwa-mem2", "minimap2", "kraken2", "salmon", "diamond", "blastn", "hmmsearch", "mmseqs", "featurecounts",
           "pigz", "bismark", "fastp", "trimmomatic", "spades.py", "megahit", "prokka", "bbduk.sh", "python", "python3"},
    "-p": {"bowtie2", "bowtie2-align-s", "hisat2", "hisat2-align-s", "tophat", "pigz", "bowtie", "bismark"},
    "-@": {"samtools", "sambamba"},
    "--threads": None, "-w": {"fastp"}, "-nt": {"gatk", "iqtree", "iqtree2"}, "-T": {"iqtree2", "raxml-ng"},
}
_MEM_LONG = {"--max-mem", "--max-memory", "--mem", "--memory", "--max_memory", "--buffer-size", "--ram"}


def parse_size(text: str) -> int | None:
    m = _SIZE.match(text.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _UNIT[m.group(2).lower()])


def _tool(argv: list[str]) -> str:
    return argv[0].rsplit("/", 1)[-1].lower() if argv else ""


def size_flags(argv: list[str]) -> list[dict]:
    """[{flag, text, tool, cpus | memory_bytes}] for the sizing flags in one command line."""
    tool = _tool(argv)
    out: list[dict] = []
    i = 0
    extra_threads = None  # samtools -@ N adds N threads to the main one
    sort_mem = None
    while i < len(argv):
        a = argv[i]
        key, val, used_next = a, None, False
        if a.startswith("--") and "=" in a:
            key, val = a.split("=", 1)
        elif i + 1 < len(argv):
            val, used_next = argv[i + 1], True
        low = key.lower()
        if a.startswith("-Xmx") and len(a) > 4:
            b = parse_size(a[4:])
            if b:
                out.append({"flag": "-Xmx", "text": a, "tool": tool, "memory_bytes": b})
        elif (low in _THREAD_LONG or (key in _THREAD_SHORT and (_THREAD_SHORT[key] is None or tool in _THREAD_SHORT[key]))) \
                and val is not None and val.isdigit() and int(val) > 0:
            n = int(val)
            if key == "-@":
                extra_threads = n
                n += 1
            out.append({"flag": key, "text": f"{key} {val}" if used_next else a, "tool": tool, "cpus": n})
            i += used_next
        elif low in _MEM_LONG and val is not None and parse_size(val):
            out.append({"flag": key, "text": f"{key} {val}" if used_next else a, "tool": tool,
                        "memory_bytes": parse_size(val)})
            i += used_next
        elif tool in ("samtools", "sambamba") and key == "-m" and val is not None and parse_size(val):
            sort_mem = (f"-m {val}", parse_size(val))
            i += used_next
        elif tool == "sort" and key == "-S" and val is not None and parse_size(val):
            out.append({"flag": "-S", "text": f"-S {val}", "tool": tool, "memory_bytes": parse_size(val)})
            i += used_next
        i += 1
    if sort_mem is not None:  # samtools sort -m is per thread
        threads = (extra_threads or 0) + 1
        out.append({"flag": "-m", "text": sort_mem[0] + (f" x {threads} threads" if threads > 1 else ""),
                    "tool": tool, "memory_bytes": sort_mem[1] * threads})
    return out
