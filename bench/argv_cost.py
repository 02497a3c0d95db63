"""Kernel cost of the argv bound: `on_exec` ns per exec by argv size (root).

Host-wide `opensre collect` runs; for each argv size, N execs of /bin/true with
that much argv run from one shell, and the run_time_ns/run_cnt delta of the
collector's own `on_exec` program (kernel.bpf_stats_enabled, restored after)
gives the mean cost per exec. Sizes beyond the bound (abi.ARGV_MAX) cost what the
bound costs: only min(argv, bound) bytes are copied and sent.

usage: sudo .venv/bin/python bench/argv_cost.py [--execs N] [--sizes 64,2048,6144,8192,40960]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from collector_cost import prog_snapshot, read_sysctl, write_sysctl  # noqa: E402


def exec_loop(n: int, size: int) -> None:
    arg = "x" * max(size - len("/bin/true") - 2, 1)
    # one shell runs every exec: the argv is built once, the loop is in C (xargs-like)
    script = 'a="$1"; i=0; while [ $i -lt "$2" ]; do /bin/true "$a"; i=$((i+1)); done'
    subprocess.run(["sh", "-c", script, "sh", arg, str(n)], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--execs", type=int, default=2000)
    ap.add_argument("--sizes", default="64,2048,6144,8192,40960")
    args = ap.parse_args()
    C.require_root()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="opensre-argv-"))
    old = read_sysctl()
    col = C.CollectorProc(C.default_opensre(), tmp / "argv.sqlite", ["--no-detect"]).start()
    rows = []
    try:
        if not write_sysctl("1"):
            print("cannot enable kernel.bpf_stats_enabled", file=sys.stderr)
            return 1
        time.sleep(1)
        for size in sizes:
            a = prog_snapshot(col.pid)
            exec_loop(args.execs, size)
            b = prog_snapshot(col.pid)
            ex = [(b[i]["run_time_ns"] - a.get(i, {}).get("run_time_ns", 0), b[i]["run_cnt"] - a.get(i, {}).get("run_cnt", 0))
                  for i in b if b[i]["name"] == "on_exec"]
            ns, cnt = sum(e[0] for e in ex), sum(e[1] for e in ex)
            rows.append((size, cnt, ns / cnt if cnt else float("nan")))
    finally:
        if old is not None:
            write_sysctl(old)
        col.stop()
    print(f"on_exec, kernel ns per exec ({args.execs} execs per size; host-wide collect; {C.machine_info().get('kernel', '')})")
    print(f"{'argv bytes':>10}  {'execs seen':>10}  {'ns/exec':>8}")
    for size, cnt, avg in rows:
        print(f"{size:>10}  {cnt:>10}  {avg:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
