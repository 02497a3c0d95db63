"""Scale of correlation: a stored run of N processes (default 100,000) shaped like
a big Snakemake run (one engine, jobs of `bash -c` + a pipeline of tools, some
multiprocessing workers), correlated from the store. Target: under 10 s.

usage: python bench/correlate_scale.py [--processes N] [--store PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from opensre.correlate import correlate_run  # noqa: E402
from opensre.model import Exec, Host, Process, Run  # noqa: E402
from opensre.store import Store  # noqa: E402

TOOLS = [["bwa", "mem", "-t", "2", "ref.fa"], ["samtools", "sort", "-@", "2", "-o"], ["bcftools", "mpileup", "-f"],
         ["gatk", "--java-options", "-Xmx4g", "HaplotypeCaller", "-R"], ["fastp", "-i"], ["gzip", "-c"]]


def synth(n: int, run_id: str) -> tuple[list[Process], list[Exec]]:
    rng = random.Random(5)
    t = 1_700_000_000_000_000_000
    procs, execs = [], []
    eng = Process(pid=100, start_time_ns=t, ppid=1, exe="/usr/bin/python3", comm="snakemake",
                  argv=["python3", "/usr/bin/snakemake", "--cores", "64"], complete=True, exec_count=1,
                  cpu_user_ns=10**9, cpu_system_ns=10**8, end_time_ns=t + 10**12, peak_rss_bytes=200 << 20)
    procs.append(eng)
    pid = 200
    job = 0
    while len(procs) < n:
        job += 1
        st = t + job * 10**7
        cmd = "set -euo pipefail; " + " | ".join(" ".join(x + [f"s{job}.dat"]) for x in rng.sample(TOOLS, 3))
        sh = Process(pid=pid, start_time_ns=st, ppid=100, parent_start_time_ns=t, exe="/usr/bin/bash", comm="bash",
                     argv=["/usr/bin/bash", "-c", cmd], exec_count=1, complete=True, end_time_ns=st + 10**9,
                     cpu_user_ns=10**6, cpu_system_ns=10**6, peak_rss_bytes=3 << 20)
        procs.append(sh)
        execs.append(Exec(sh.pid, sh.start_time_ns, st, sh.exe, sh.argv))
        pid += 1
        for k, tl in enumerate(rng.sample(TOOLS, 3)):
            p = Process(pid=pid, start_time_ns=st + k + 1, ppid=sh.pid, parent_start_time_ns=st, exe=f"/usr/bin/{tl[0]}",
                        comm=tl[0], argv=tl + [f"s{job}.dat"], exec_count=1, complete=True, end_time_ns=st + 9 * 10**8,
                        cpu_user_ns=rng.randrange(10**9), cpu_system_ns=10**7, peak_rss_bytes=rng.randrange(1 << 30),
                        read_bytes=rng.randrange(1 << 30), write_bytes=rng.randrange(1 << 28))
            procs.append(p)
            execs.append(Exec(p.pid, p.start_time_ns, p.start_time_ns, p.exe, p.argv))
            pid += 1
            if k == 0 and job % 10 == 0:  # a few forked workers that never exec
                for w in range(4):
                    procs.append(Process(pid=pid, start_time_ns=st + 100 + w, ppid=p.pid, parent_start_time_ns=p.start_time_ns,
                                         exe=p.exe, comm=p.comm, argv=p.argv, complete=True, end_time_ns=st + 5 * 10**8,
                                         cpu_user_ns=10**8, cpu_system_ns=0, peak_rss_bytes=1 << 20))
                    pid += 1
        if pid > 4_000_000:
            pid = 200
    return procs[:n], execs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=100_000)
    ap.add_argument("--store")
    a = ap.parse_args()
    path = a.store or os.path.join(tempfile.mkdtemp(), "scale.sqlite")
    s = Store(path)
    s.put_host(Host("h", "bench"))
    run = Run(run_id="scale", name="scale", mode="run", host_id="h", start_time_ns=1, status="finished")
    s.put_run(run)
    procs, execs = synth(a.processes, run.run_id)
    s.put_batch(run.run_id, procs, execs)
    s.db.execute("ANALYZE")
    t0 = time.perf_counter()
    c = correlate_run(s, run.run_id)
    dt = time.perf_counter() - t0
    print(f"correlated {len(procs)} processes into {len(c.tasks)} tasks and {len(c.tools)} tool invocations "
          f"in {dt:.2f} s (target < 10 s): {'PASS' if dt < 10 else 'FAIL'}")
    return 0 if dt < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
