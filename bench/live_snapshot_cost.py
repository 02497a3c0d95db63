"""Cost of the live view for `opensre top`: the collector CPU of one snapshot
(Collector.write_live) with N live processes, no root needed. The collector
writes one per sample tick when live is on (`opensre run` by default).

usage: python bench/live_snapshot_cost.py [--processes N] [--ticks T]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from opensre.collect.collector import Collector, CollectorOptions  # noqa: E402
from opensre.model import Process, Run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=50)
    a = ap.parse_args()
    store = types.SimpleNamespace(path=str(Path(tempfile.mkdtemp()) / "s.sqlite"))  # only its path is read
    run = Run("bench", "bench", "run", "h", command=["snakemake"], start_time_ns=time.time_ns())
    c = Collector(store, run, CollectorOptions(live=True))  # not started: no BPF
    live = c.table.live
    live.update({(i, i): Process(pid=i, start_time_ns=i, ppid=1, exe="/usr/bin/bwa", comm="bwa",
                                 argv=["bwa", "mem", "-t", "8", "/data/ref/genome.fa", f"/data/reads/S{i}_R1.fq.gz"])
                 for i in range(a.processes)})
    c.sampler.cum.update({k: (10**9, 1, 2, 3, 4, 5, 6, 7, 100 << 20) for k in live})
    t = time.process_time()
    for _ in range(a.ticks):
        c.write_live()
    ms = (time.process_time() - t) / a.ticks * 1000
    print(f"write_live with {a.processes} live processes: {ms:.2f} ms CPU per tick "
          f"({ms / 10:.2f}% of a core at the default 1 s interval)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
