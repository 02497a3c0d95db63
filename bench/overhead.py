#!/usr/bin/env python3
"""Workload slowdown with `opensre collect` (host-wide) running vs not running.

For every round, each workload runs once as the baseline and once "with collector",
in a shuffled order (workload order shuffled too). Only the workload's own wall
clock is timed (CLOCK_MONOTONIC inside the C driver bench/wl.c). The slowdown
estimate per workload is the median over rounds of the paired ratio with/baseline.

Collector scope (--scope):
  run   (default) a fresh `opensre collect` (new store file) is started for each
        "with" measurement: the workload starts once the collector printed
        "collecting host-wide" (BPF attached) plus --settle seconds; it is stopped
        (SIGINT, waiting for its final drain and store write) right after the
        workload ends, outside the timed window. The baseline sleeps the same settle.
  round one collector per round, running for all the "with" measurements of that
        round; the round's two configurations run as two blocks in shuffled order.

Usage (as root, from the repository root):
  .venv/bin/python bench/overhead.py                 # 7 rounds, about 4-5 minutes
  .venv/bin/python bench/overhead.py --quick         # smoke test, about 30 s
  .venv/bin/python bench/overhead.py --rounds 11 --json /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


@dataclass
class Workload:
    name: str
    desc: str
    argv: list  # after the wl binary; "{file}" is replaced by a scratch file path
    quick_argv: list
    target: float | None  # max median ratio; None = report only


def workloads(ncpu: int) -> list[Workload]:
    pin = str(ncpu - 1)
    return [
        Workload("forkexec-seq", "fork+exec+wait /bin/true, 1 worker", ["forkexec", "2500", "1"],
                 ["forkexec", "250", "1"], 1.05),
        Workload("forkexec-par", "fork+exec+wait /bin/true, 4 workers in parallel", ["forkexec", "5000", "4"],
                 ["forkexec", "500", "4"], 1.05),
        Workload("syscall-io", "4-byte write+pread on a file, write+read on /dev/null: 4 syscalls/iteration",
                 ["sysio", "1000000", "{file}"], ["sysio", "100000", "{file}"], 1.02),
        Workload("cpu", "integer loop, no syscalls", ["cpu", "1400000000"], ["cpu", "140000000"], 1.01),
        Workload("pingpong", f"1-byte pipe ping-pong, 2 processes pinned to CPU {pin}",
                 ["pingpong", "300000", pin], ["pingpong", "30000", pin], None),
    ]


def fmt_ratio(r: float) -> str:
    return f"{r:.3f} ({(r - 1) * 100:+.1f}%)"


class Bench:
    def __init__(self, args, tmp: Path):
        self.args, self.tmp = args, tmp
        self.wl = C.build_wl(tmp)
        self.opensre = args.opensre.split() if args.opensre else C.default_opensre()
        self.scratch = tmp / "sysio.dat"
        self.records: list[dict] = []
        self.n_col = 0
        self.program_sets: set[tuple] = set()

    def argv(self, w: Workload) -> list[str]:
        a = w.quick_argv if self.args.quick else w.argv
        return [str(self.wl)] + [x.replace("{file}", str(self.scratch)) for x in a]

    def start_collector(self) -> C.CollectorProc:
        self.n_col += 1
        col = C.CollectorProc(self.opensre, self.tmp / f"col{self.n_col}.sqlite",
                               self.args.collector_args.split()).start()
        time.sleep(self.args.settle)
        return col

    def stop_collector(self, col: C.CollectorProc) -> dict:
        res = col.stop()
        res.pop("stderr")
        res["attach_s"] = col.attach_s
        res["programs"] = col.programs
        self.program_sets.add(tuple(col.programs))
        if res["rc"] != 0:
            print(f"  warning: collector exited rc={res['rc']}:\n{col.stderr[-1500:]}", file=sys.stderr)
        if not self.args.keep_stores:
            for p in self.tmp.glob(f"col{self.n_col}.sqlite*"):
                p.unlink()
        return res

    def measure(self, rnd: int, w: Workload, config: str, col: C.CollectorProc | None) -> dict:
        rec = {"round": rnd, "workload": w.name, "config": config, "loadavg": os.getloadavg()[0]}
        if col is not None:
            s0, n0 = C.proc_stat(col.pid), C.proc_sched_ns(col.pid)
            rec["collector_cpu_at_start_s"] = round(s0["utime"] + s0["stime"], 3)
        res = C.run_wl(self.argv(w))
        if col is not None:
            s1, n1 = C.proc_stat(col.pid), C.proc_sched_ns(col.pid)
            rec["collector_cpu_s"] = round((s1["utime"] + s1["stime"]) - (s0["utime"] + s0["stime"]), 3)
            rec["collector_sched_s"] = round((n1 - n0) / 1e9, 4)
        rec["elapsed_s"] = res["elapsed_s"]
        rec["result"] = res
        self.records.append(rec)
        extra = f"  collector cpu {rec['collector_sched_s']:.3f}s" if col is not None else ""
        print(f"  r{rnd} {w.name:<13} {config:<9} {res['elapsed_s']:8.3f}s{extra}", flush=True)
        return rec

    def round_per_run(self, rnd: int, wls: list[Workload]):
        for w in random.sample(wls, len(wls)):
            for config in random.sample(["baseline", "collector"], 2):
                if config == "baseline":
                    time.sleep(self.args.settle)
                    self.measure(rnd, w, config, None)
                else:
                    col = self.start_collector()
                    try:
                        rec = self.measure(rnd, w, config, col)
                    finally:
                        rec_col = self.stop_collector(col)
                    rec.update({"collector": rec_col})
                    if "cpu_total_s" in rec_col:
                        # everything it did for this workload: during it, then the final drain + store write
                        rec["collector_cpu_run_s"] = round(rec_col["cpu_total_s"] - rec["collector_cpu_at_start_s"], 3)

    def round_per_round(self, rnd: int, wls: list[Workload]):
        for config in random.sample(["baseline", "collector"], 2):
            col = self.start_collector() if config == "collector" else None
            try:
                for w in random.sample(wls, len(wls)):
                    time.sleep(self.args.settle)
                    self.measure(rnd, w, config, col)
            finally:
                if col is not None:
                    info = self.stop_collector(col)
                    for r in self.records:
                        if r["round"] == rnd and r["config"] == "collector":
                            r["collector"] = info


def summarize(records: list[dict], wls: list[Workload]) -> list[dict]:
    rows = []
    for w in wls:
        by_round: dict[int, dict] = {}
        for r in records:
            if r["workload"] == w.name:
                by_round.setdefault(r["round"], {})[r["config"]] = r
        pairs = [(v["baseline"]["elapsed_s"], v["collector"]["elapsed_s"])
                 for v in by_round.values() if "baseline" in v and "collector" in v]
        if not pairs:
            continue
        base = [b for b, _ in pairs]
        withc = [c for _, c in pairs]
        ratios = [c / b for b, c in pairs]
        col_cpu = [r["collector_sched_s"] for r in records if r["workload"] == w.name and "collector_sched_s" in r]
        col_run = [r["collector_cpu_run_s"] for r in records if r["workload"] == w.name and "collector_cpu_run_s" in r]
        drops = [r.get("collector", {}).get("drops") for r in records
                 if r["workload"] == w.name and r["config"] == "collector"]
        med = statistics.median(ratios)
        row = {
            "workload": w.name, "desc": w.desc, "rounds": len(pairs),
            "median_baseline_s": statistics.median(base), "median_with_s": statistics.median(withc),
            "median_ratio": med, "mean_ratio": statistics.fmean(ratios),
            "min_ratio": min(withc) / min(base), "ratios": ratios,
            "baseline_cv": statistics.pstdev(base) / statistics.fmean(base) if len(base) > 1 else 0.0,
            "collector_cpu_s_median": statistics.median(col_cpu) if col_cpu else None,
            "collector_cpu_run_s_median": statistics.median(col_run) if col_run else None,
            "drops_max": max((d for d in drops if d is not None), default=None),
            "target": w.target,
            "verdict": ("report" if w.target is None else ("PASS" if med <= w.target else "FAIL")),
        }
        rows.append(row)
    return rows


def print_table(rows: list[dict]):
    hdr = (f"{'workload':<13} {'n':>2} {'base med s':>10} {'with med s':>10} {'median ratio':>16} "
           f"{'mean ratio':>10} {'min/min':>7} {'base CV':>7} {'col CPU s':>11} {'drops':>5} {'target':>6}  verdict")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        tgt = f"{r['target']:.2f}" if r["target"] else "-"
        cc = f"{r['collector_cpu_s_median']:.2f}" if r["collector_cpu_s_median"] is not None else "-"
        if r["collector_cpu_run_s_median"] is not None:
            cc += f"/{r['collector_cpu_run_s_median']:.2f}"
        dr = "-" if r["drops_max"] is None else str(r["drops_max"])
        print(f"{r['workload']:<13} {r['rounds']:>2} {r['median_baseline_s']:>10.3f} {r['median_with_s']:>10.3f} "
              f"{fmt_ratio(r['median_ratio']):>16} {r['mean_ratio']:>10.3f} {r['min_ratio']:>7.3f} "
              f"{r['baseline_cv'] * 100:>6.1f}% {cc:>11} {dr:>5} {tgt:>6}  {r['verdict']}")
    print("ratio = with/baseline per round; 'median ratio' is the verdict's estimator; min/min = fastest with / "
          "fastest baseline.\nbase CV = the baseline's coefficient of variation (noise). col CPU s = the collector's "
          "own CPU during the timed workload / from workload start to its exit\n(includes the final drain after the "
          "workload; scope=run only), medians.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 7; 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 2 rounds, workloads 10x smaller")
    ap.add_argument("--json", metavar="FILE", help="write raw measurements and the summary here")
    ap.add_argument("--workloads", help="comma-separated subset of: forkexec-seq,forkexec-par,syscall-io,cpu,pingpong")
    ap.add_argument("--scope", choices=["run", "round"], default="run",
                    help="a fresh collector per 'with' measurement (run, default) or one per round")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds to wait after the collector attached (and before each baseline) (default 0.5)")
    ap.add_argument("--opensre", help="collector command (default: .venv/bin/opensre)")
    ap.add_argument("--collector-args", default="", metavar="ARGS",
                    help="extra arguments for `opensre collect`, one string; write it with '=' "
                         "(--collector-args=--no-sched) so a single flag is not taken for one of ours")
    ap.add_argument("--seed", type=int, help="shuffle seed")
    ap.add_argument("--keep-stores", action="store_true", help="keep the collectors' store files (prints the dir)")
    args = ap.parse_args()
    C.require_root()
    rounds = args.rounds or (2 if args.quick else 7)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    wls = workloads(os.cpu_count() or 1)
    if args.workloads:
        want = args.workloads.split(",")
        bad = set(want) - {w.name for w in wls}
        if bad:
            ap.error(f"unknown workloads: {sorted(bad)}")
        wls = [w for w in wls if w.name in want]
    meta = C.machine_info()
    meta.update({"argv": sys.argv, "rounds": rounds, "quick": args.quick, "scope": args.scope,
                 "collector_args": args.collector_args,
                 "settle_s": args.settle, "seed": seed})
    other = [p for p in C.bpf_progs() if p.get("type") in ("tracing", "raw_tracepoint", "tracepoint", "kprobe")]
    if other:
        print(f"note: {len(other)} tracing BPF programs are already loaded by someone else "
              f"({sorted({p.get('name') for p in other})}); they affect both configurations", file=sys.stderr)
    meta["preexisting_tracing_progs"] = [p.get("name") for p in other]

    tmp = Path(tempfile.mkdtemp(prefix="opensre-bench-"))
    t0 = time.monotonic()
    try:
        b = Bench(args, tmp)
        print(f"opensre overhead: {rounds} rounds, scope={args.scope}, kernel {meta['kernel']}, "
              f"{meta['ncpu']} CPUs, seed {seed}"
              + (f", collector args: {args.collector_args}" if args.collector_args else ""), flush=True)
        for w in wls:
            print(f"  {w.name:<13} {' '.join(w.quick_argv if args.quick else w.argv)}   # {w.desc}")
        for rnd in range(1, rounds + 1):
            (b.round_per_run if args.scope == "run" else b.round_per_round)(rnd, wls)
    finally:
        if args.keep_stores:
            print(f"stores kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_end"] = os.getloadavg()
    meta["programs"] = [list(x) for x in sorted(b.program_sets)]
    fp_end = C.product_fingerprint()
    if fp_end != meta["product"] or len(b.program_sets) > 1:
        print("WARNING: the product changed during the benchmark (sources/objects or attached programs); "
              "the results mix versions", file=sys.stderr)
        meta["product_end"] = fp_end
    meta["total_s"] = round(time.monotonic() - t0, 1)
    rows = summarize(b.records, wls)
    print()
    print_table(rows)
    for ps in meta["programs"]:
        print(f"collector BPF programs: {', '.join(ps)}")
    print(f"product: {meta['product']}")
    print(f"total {meta['total_s']:.0f}s; loadavg start {meta['loadavg_start'][0]:.2f} end {meta['loadavg_end'][0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "summary": rows, "records": b.records}, f, indent=1)
        print(f"wrote {args.json}")
    failed = [r["workload"] for r in rows if r["verdict"] == "FAIL"]
    return 1 if failed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
