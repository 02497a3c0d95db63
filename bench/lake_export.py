"""Throughput of the Parquet lake export: a stored, correlated run of N processes
(default 100,000: the Snakemake-shaped run of report_scale.py, ~200,000 samples, a few
OOM kills) exported by `opensre export --format parquet` (a fresh CLI process:
imports, store reads, Arrow conversion, zstd, fsync and rename of each file), timed end
to end, best of --reps. Prints processes/s and the lake's size. A benchmark, not a
test: no target.

--to s3://bucket/prefix exports there instead (endpoint and credentials from the
AWS_* environment) to include the upload.

usage: python bench/lake_export.py [--processes N] [--store PATH] [--to DEST] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from report_scale import scale_store  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=100_000)
    ap.add_argument("--store", help="reuse (or create) this store")
    ap.add_argument("--to", help="the lake (default: a temp directory)")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    path = scale_store(a.store, a.processes, tmp, "lake-scale.sqlite")
    dest = a.to or os.path.join(tmp, "lake")
    cmd = [sys.executable, "-m", "opensre", "export", "--store", path, "--run", "scale", "--format", "parquet",
           "--to", dest]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    times = []
    for _ in range(a.reps):  # each a re-export: the same files replaced
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
    print(r.stdout.strip())
    best = min(times)
    size = sum(f.stat().st_size for f in Path(dest).rglob("*.parquet")) if "://" not in dest else 0
    print(f"export --format parquet of {a.processes:,} processes: {best:.2f} s (best of {a.reps}; "
          f"{', '.join(f'{x:.2f}' for x in times)}) = {a.processes / best:,.0f} processes/s"
          + (f", lake {size / 1e6:.1f} MB" if size else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
