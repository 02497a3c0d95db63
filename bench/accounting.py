"""Overhead by accounting: what OpenSRE costs per observed process, in CPU time.

Wall-clock ratios swing +-15% on shared 2-core machines; CPU time charged to our
own code does not. For a fork/exec storm (wl forkexec N 2: N x fork+exec /bin/true):

  kernel      run_time_ns of the collector's own BPF programs (found through its
              fds, kernel.bpf_stats_enabled on for the measurement, restored after),
              per observed process
  user space  the collector's own CPU (all its threads), per observed process:
              - `run` (default mode: 100 ms drain, live view, end-of-run correlation):
                wait4() rusage of `opensre run` minus the CPU of the processes it
                reaped (which the store records exactly), less the CPU of an
                `opensre run -- /bin/true` (start, stop, correlation of nothing)
              - `collect` (host-wide): schedstat of its threads over the storm and
                its drain, less its idle rate over the same time
  start+stop  wall time of `opensre run -q -- /bin/true`, less /bin/true's own
  wall        the storm's wall time with the collector / without, side by side

The product's modules are byte-compiled first (`compileall`, as `pip install` does):
with PYTHONDONTWRITEBYTECODE set and no __pycache__, every start would compile
~50 modules from source (~45 ms of start+stop that no installed copy pays).
`--no-compile` skips that, to measure a tree as it is.

usage: sudo .venv/bin/python bench/accounting.py [--procs 5000] [--reps 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from collector_cost import prog_snapshot, read_sysctl, write_sysctl  # noqa: E402

SETTLE_S = 3.0  # after the storm: the collector's drain and store writes happen here


def bpf_ns(snap0: dict, snap1: dict) -> int:
    return sum(p["run_time_ns"] - snap0.get(i, {}).get("run_time_ns", 0) for i, p in snap1.items())


def storm(wl: Path, n: int) -> float:
    return C.run_wl([str(wl), "forkexec", str(n), "2"])["elapsed_s"]


def run_mode(opensre: list[str], wl: Path, n: int, tmp: Path, store: Path) -> dict:
    """One `opensre run` of the storm: its own CPU (rusage minus what it reaped) and
    the kernel time of its programs (read while the storm's shell sleeps after it)."""
    cmd = opensre + ["run", "-q", "--store", str(store), "--", "sh", "-c",
                     f"{wl} forkexec {n} 2 > {tmp}/storm.out; sleep 1.5"]
    out = tmp / "storm.out"
    out.unlink(missing_ok=True)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the storm is over when its one line appears; the shell then sleeps 1.5 s, while
    # the programs (counted from their load: the whole run) are still attached
    while p.poll() is None and not (out.exists() and out.stat().st_size):
        time.sleep(0.02)
    time.sleep(0.3)
    snap1 = prog_snapshot(p.pid)
    _, status, ru = os.wait4(p.pid, 0)
    own = ru.ru_utime + ru.ru_stime
    reaped = _run_cpu(opensre, store)
    wall = C.parse_kv(out.read_text())["elapsed_s"]
    return {"cpu_s": own - reaped["cpu_s"], "procs": reaped["procs"], "kernel_ns": bpf_ns({}, snap1), "wall_s": wall,
            "rc": os.waitstatus_to_exitcode(status)}


def _run_cpu(opensre: list[str], store: Path) -> dict:
    out = subprocess.run(opensre + ["export", "--store", str(store), "--run", "latest"], capture_output=True,
                         text=True, check=True).stdout
    recs = [json.loads(line) for line in out.splitlines()]
    return {"cpu_s": sum((r["cpu_user_ns"] or 0) + (r["cpu_system_ns"] or 0) for r in recs) / 1e9, "procs": len(recs)}


def collect_mode(opensre: list[str], wl: Path, n: int, tmp: Path) -> dict:
    col = C.CollectorProc(opensre, tmp / "collect.sqlite", ["--no-detect"]).start()
    try:
        time.sleep(2)
        t0, c0 = time.monotonic(), C.proc_sched_ns(col.pid)
        time.sleep(2)
        idle_rate = (C.proc_sched_ns(col.pid) - c0) / (time.monotonic() - t0)  # ns per s
        t1, c1, k1 = time.monotonic(), C.proc_sched_ns(col.pid), prog_snapshot(col.pid)
        wall = storm(wl, n)
        time.sleep(SETTLE_S)
        t2, c2, k2 = time.monotonic(), C.proc_sched_ns(col.pid), prog_snapshot(col.pid)
    finally:
        col.stop()
    return {"cpu_s": ((c2 - c1) - idle_rate * (t2 - t1)) / 1e9, "kernel_ns": bpf_ns(k1, k2), "wall_s": wall,
            "idle_pct_core": idle_rate / 1e7}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--no-compile", action="store_true", help="do not byte-compile the product's modules first")
    args = ap.parse_args()
    C.require_root()
    opensre = C.default_opensre()
    if not args.no_compile:
        import compileall

        import opensre as pkg

        compileall.compile_dir(str(Path(pkg.__file__).parent), quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="opensre-acct-"))
    wl = C.build_wl(tmp)
    old = read_sysctl()
    n = args.procs
    res: dict = {"meta": {**C.machine_info(), "procs": n, "reps": args.reps, "compiled": not args.no_compile},
                 "reps": []}
    try:
        if not write_sysctl("1"):
            print("cannot enable kernel.bpf_stats_enabled", file=sys.stderr)
            return 1
        # start+stop: an empty run, and /bin/true alone
        empty = []
        for i in range(5):
            t0 = time.monotonic()
            subprocess.run(opensre + ["run", "-q", "--store", str(tmp / "empty.sqlite"), "--", "/bin/true"], check=True)
            empty.append(time.monotonic() - t0)
        t0 = time.monotonic()
        subprocess.run(["/bin/true"], check=True)
        true_s = time.monotonic() - t0
        p = subprocess.Popen(opensre + ["run", "-q", "--store", str(tmp / "empty.sqlite"), "--", "/bin/true"])
        _, _, ru0 = os.wait4(p.pid, 0)
        empty_cpu = ru0.ru_utime + ru0.ru_stime
        res["start_stop_s"] = statistics.median(empty) - true_s
        res["empty_run_cpu_s"] = empty_cpu
        for r in range(args.reps):
            base = storm(wl, n)
            rm = run_mode(opensre, wl, n, tmp, tmp / f"run{r}.sqlite")
            base2 = storm(wl, n)
            cm = collect_mode(opensre, wl, n, tmp)
            res["reps"].append({"baseline_wall_s": (base + base2) / 2, "run": rm, "collect": cm})
    finally:
        if old is not None:
            write_sysctl(old)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    reps = res["reps"]
    base = med([x["baseline_wall_s"] for x in reps])
    rows = []
    for mode in ("run", "collect"):
        procs = med([x[mode].get("procs", n) for x in reps])
        cpu = med([x[mode]["cpu_s"] - (res["empty_run_cpu_s"] if mode == "run" else 0) for x in reps])
        kern = med([x[mode]["kernel_ns"] for x in reps])
        wall = med([x[mode]["wall_s"] for x in reps])
        rows.append((mode, procs, kern / procs / 1e3, cpu / procs * 1e6, wall / base if wall else None))
    res["table"] = rows
    print(f"fork/exec storm of {n} processes, median of {args.reps}; kernel {res['meta'].get('kernel', '')}")
    print(f"{'mode':<8} {'kernel µs/proc':>14} {'user µs/proc':>13} {'wall ratio':>10}")
    for mode, procs, k, u, w in rows:
        print(f"{mode:<8} {k:>14.2f} {u:>13.1f} {('x%.2f' % w) if w else '-':>10}")
    print(f"start+stop of `opensre run -- /bin/true`: {res['start_stop_s']:.3f} s wall, {res['empty_run_cpu_s']:.3f} s CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
