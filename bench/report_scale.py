"""Scale of the HTML report: a stored, correlated run of N processes (default
100,000; the Snakemake-shaped run of correlate_scale.py) with a per-process time
series and a few OOM kills, then `opensre report` on it, timed end to end as the
CLI runs it (a fresh process: imports, store reads, tune, rendering, writing).
Targets: under 30 s and a file under 20 MB.

usage: python bench/report_scale.py [--processes N] [--store PATH] [--keep FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from correlate_scale import synth  # noqa: E402
from opensre.correlate import correlate_run  # noqa: E402
from opensre.model import Event, Host, Run, Sample  # noqa: E402
from opensre.store import Store  # noqa: E402

S = 1_000_000_000


def samples_for(procs, rng) -> list[Sample]:
    """One sample per second of each tool process's life (the shells and the
    engine idle: no rows, as the collector writes them)."""
    out = []
    for p in procs:
        if p.comm in ("bash", "snakemake") or not p.end_time_ns:
            continue
        t = (p.start_time_ns // S + 1) * S  # the collector's ticks are shared by all processes
        while t < p.end_time_ns:
            out.append(Sample(p.pid, p.start_time_ns, t, rng.randrange(S), rng.randrange(1 << 30), rng.randrange(1 << 24),
                              rng.randrange(1 << 22), 0, 0, rng.randrange(S // 10), rng.randrange(S // 20), 0))
            t += S
    return out


def build(path: str, n: int) -> int:
    s = Store(path)
    s.put_host(Host("h", "bench", cpus=64, mem_bytes=256 << 30, kernel="6.1"))
    procs, execs = synth(n, "scale")
    rng = random.Random(7)
    for p in procs[1:]:  # spread the tools' lives so that each has a few samples
        if p.comm != "bash" and p.end_time_ns:
            p.end_time_ns = p.start_time_ns + rng.randrange(S // 2, 4 * S)
    for p in procs[2000::5000]:  # a few failures and OOM kills to keep through the caps
        p.exit_code, p.exit_signal, p.oom_killed = None, 9, True
    end = max(p.end_time_ns or 0 for p in procs)
    run = Run(run_id="scale", name="scale", mode="run", host_id="h", command=["snakemake", "--cores", "64"],
              start_time_ns=procs[0].start_time_ns, end_time_ns=end, status="finished", exit_code=1,
              process_count=len(procs))
    s.put_run(run)
    smp = samples_for(procs, rng)
    ev = [Event("oom_kill", p.pid, p.start_time_ns, p.end_time_ns, {"comm": p.comm, "rss_bytes": p.peak_rss_bytes,
                                                                     "memcg_limit_bytes": 4 << 30})
          for p in procs if p.oom_killed]
    s.put_batch(run.run_id, procs, execs, smp, ev)
    s.db.execute("ANALYZE")
    correlate_run(s, run.run_id)
    s.close()
    return len(smp)


def scale_store(path: str | None, n: int, tmp: str, name: str) -> str:
    """`path`, or tmp/name; built with a run of n processes unless it exists."""
    path = path or os.path.join(tmp, name)
    if not os.path.exists(path):
        t = time.perf_counter()
        ns = build(path, n)
        print(f"built a run of {n:,} processes and {ns:,} samples in {time.perf_counter() - t:.1f} s")
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=100_000)
    ap.add_argument("--store", help="reuse (or create) this store")
    ap.add_argument("--keep", help="write the report here instead of a temp file")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    path = scale_store(a.store, a.processes, tmp, "report-scale.sqlite")
    out = a.keep or os.path.join(tmp, "report.html")
    cmd = [sys.executable, "-m", "opensre", "report", "scale", "--store", path, "-o", out]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    dt = time.perf_counter() - t
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return 1
    size = os.path.getsize(out)
    print(r.stderr.strip().splitlines()[-1])
    ok = dt < 30 and size < 20e6
    print(f"opensre report on {a.processes:,} processes: {dt:.1f} s (target < 30 s), {size / 1e6:.1f} MB "
          f"(target < 20 MB): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
