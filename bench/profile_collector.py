#!/usr/bin/env python3
"""Where the collector's own CPU goes: `opensre collect` (host-wide) under cProfile
while `wl pace RATE SECONDS` starts /bin/true at a steady rate.

The collector runs as this script's child mode, which calls opensre.cli.main.main(
["collect", ..., "--duration", D]) (D = settle + SECONDS + 2) under
cProfile.Profile(time.process_time): CPU time, not wall time, so the time the collector
sleeps in the ring-buffer poll does not swamp the listing. What is profiled is exactly
the CLI path; the workload
is started by this script (not by the collector, whose own descendants are never
observed). Start-up (imports, BPF load, /proc seeding) is inside the profile too:
it shows up under cli/main.py and bpf/loader.py and can be told apart from the
per-drain functions (Collector.poll / process / sample / flush, Store.put_batch).

Usage (as root, from the repository root):
  .venv/bin/python bench/profile_collector.py                   # 100 exec/s for 20 s
  .venv/bin/python bench/profile_collector.py --rate 300 --top 40 --prof /tmp/c.prof
"""

from __future__ import annotations

import argparse
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def child(prof: str, argv: list[str]) -> int:
    """Run `opensre ARGV` in this process under a CPU-time profiler; dump to prof."""
    import cProfile

    from opensre.cli.main import main as opensre_main

    pr = cProfile.Profile(time.process_time)
    rc = 1
    pr.enable()
    try:
        rc = opensre_main(argv)
    finally:
        pr.disable()
        pr.dump_stats(prof)
    return rc


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100.0, help="/bin/true execs per second (default 100)")
    ap.add_argument("--seconds", type=float, default=20.0, help="load duration (default 20)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds after attach before the load (default 2)")
    ap.add_argument("--top", type=int, default=30, help="rows per listing (default 30)")
    ap.add_argument("--prof", help="keep the raw profile here (pstats format)")
    ap.add_argument("--python", default=str(C.REPO / ".venv" / "bin" / "python"), help="the venv's python")
    args = ap.parse_args()
    C.require_root()
    tmp = Path(tempfile.mkdtemp(prefix="opensre-prof-"))
    prof = Path(args.prof) if args.prof else tmp / "collector.prof"
    try:
        wl = C.build_wl(tmp)
        dur = args.settle + args.seconds + 2
        cmd = [args.python, str(Path(__file__).resolve()), "--child", str(prof),
               "collect", "--store", str(tmp / "p.sqlite"), "--duration", str(dur)]
        col = C.CollectorProc([], tmp / "p.sqlite")
        col.cmd = cmd
        col.start()
        time.sleep(args.settle)
        s0 = C.proc_stat(col.pid)
        out = subprocess.run([str(wl), "pace", str(args.rate), str(args.seconds)], stdout=subprocess.PIPE,
                             text=True).stdout
        s1 = C.proc_stat(col.pid)
        res = col.stop(timeout=dur + 60)  # SIGINT ends the --duration loop early; the profile is still written
        cpu = (s1["utime"] + s1["stime"]) - (s0["utime"] + s0["stime"])
        print(f"workload: {out.strip()}")
        print(f"collector CPU during the load: {cpu:.2f}s = {100 * cpu / args.seconds:.2f}% of a core "
              f"(profiling inflates this; compare with bench/collector_cost.py); rc {res['rc']}, "
              f"processes {res.get('processes')}, drops {res.get('drops')}")
        if not prof.exists():
            print(f"no profile written; collector stderr:\n{res['stderr'][-2000:]}", file=sys.stderr)
            return 1
        for key in ("tottime", "cumulative"):
            buf = io.StringIO()
            st = pstats.Stats(str(prof), stream=buf)
            st.strip_dirs().sort_stats(key).print_stats(args.top)
            text = buf.getvalue()
            print(f"\n==== top {args.top} by {key} CPU time (whole collector lifetime, start-up included) ====")
            print(text[text.find("   ncalls"):] if "   ncalls" in text else text)
        if args.prof:
            print(f"profile kept: {prof}  (python -m pstats {prof})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
