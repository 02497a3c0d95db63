#!/usr/bin/env python3
"""The collector's own cost: CPU and memory of `opensre collect` (host-wide) while a
paced workload starts /bin/true RATE times a second (default 100/s for 30 s).

Phases, all with one collector process:
  1. start `opensre collect --store TMP`, wait for "collecting host-wide" (attached),
     then --settle seconds so start-up work (imports, /proc seeding) is excluded;
  2. idle window (--idle-seconds, default 10; 0 skips it): nothing driven, measures
     the collector's floor (its drain timer, periodic run updates);
  3. load window (--seconds, default 30): `wl pace RATE SECONDS` (bench/wl.c) does
     fork+execve("/bin/true")+waitpid on absolute 1/RATE deadlines;
  4. VmHWM (peak RSS) and VmRSS of the collector are read, then it is stopped with
     SIGINT and its summary parsed (processes, drops);
  5. `opensre export --run latest` is counted: comm == "true" overall, and those whose
     ppid is the pace driver (exactly the expected set).

CPU is utime+stime from /proc/PID/stat (10 ms ticks) over each window, as % of one
core; the ns-resolution sum of /proc/PID/task/*/schedstat is reported alongside.
Kernel-side cost: kernel.bpf_stats_enabled=1 during both windows (restored to its
previous value afterwards), run_cnt/run_time_ns deltas per BPF program of the
collector's pid from `bpftool -j prog show`.

Usage (as root, from the repository root):
  .venv/bin/python bench/collector_cost.py                 # 30 s at 100 exec/s
  .venv/bin/python bench/collector_cost.py --quick         # 5 s, 2 s idle
  .venv/bin/python bench/collector_cost.py --rate 500 --seconds 20 --json /tmp/cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

TARGET_CPU_PCT = 0.5
TARGET_RSS_MB = 100.0
SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def read_sysctl() -> str | None:
    try:
        return Path(SYSCTL).read_text().strip()
    except OSError:
        return None


def write_sysctl(v: str) -> bool:
    try:
        Path(SYSCTL).write_text(v + "\n")
        return True
    except OSError:
        return False


def prog_snapshot(pid: int) -> dict[int, dict]:
    """run counters of the BPF programs that belong to pid, by prog id."""
    out = {}
    mine = C.prog_ids_of(pid)
    for p in C.bpf_progs():
        if p.get("id") in mine or any(x.get("pid") == pid for x in p.get("pids", [])):
            out[p["id"]] = {"name": p.get("name", "?"), "run_cnt": p.get("run_cnt", 0),
                            "run_time_ns": p.get("run_time_ns", 0), "misses": p.get("recursion_misses", 0)}
    return out


def prog_delta(a: dict, b: dict, secs: float) -> dict:
    rows = {}
    for pid_, pb in b.items():
        pa = a.get(pid_, {"run_cnt": 0, "run_time_ns": 0, "misses": 0})
        cnt, ns = pb["run_cnt"] - pa["run_cnt"], pb["run_time_ns"] - pa["run_time_ns"]
        rows[pb["name"]] = {"run_cnt": cnt, "run_time_ns": ns, "avg_ns": (ns / cnt) if cnt else None,
                            # the kernel skipped the program (it was already running on this CPU)
                            "recursion_misses": pb["misses"] - pa["misses"]}
    total_ns = sum(r["run_time_ns"] for r in rows.values())
    return {"programs": rows, "total_ns": total_ns, "pct_core": 100 * total_ns / 1e9 / secs if secs else 0.0}


class Window:
    """CPU of the collector (and the kernel BPF time of its programs) over an interval."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.t0 = time.monotonic()
        self.s0, self.n0, self.p0 = C.proc_stat(self.pid), C.proc_sched_ns(self.pid), prog_snapshot(self.pid)
        return self

    def __exit__(self, *exc):
        self.secs = time.monotonic() - self.t0
        s1, n1, p1 = C.proc_stat(self.pid), C.proc_sched_ns(self.pid), prog_snapshot(self.pid)
        self.cpu_s = (s1["utime"] + s1["stime"]) - (self.s0["utime"] + self.s0["stime"])
        self.user_s, self.sys_s = s1["utime"] - self.s0["utime"], s1["stime"] - self.s0["stime"]
        self.child_s = (s1["cutime"] + s1["cstime"]) - (self.s0["cutime"] + self.s0["cstime"])
        self.sched_s = (n1 - self.n0) / 1e9
        self.threads = s1["threads"]
        self.bpf = prog_delta(self.p0, p1, self.secs)
        return False

    def as_dict(self) -> dict:
        return {"seconds": round(self.secs, 3), "cpu_s": round(self.cpu_s, 3), "user_s": round(self.user_s, 3),
                "sys_s": round(self.sys_s, 3), "cpu_pct_core": round(100 * self.cpu_s / self.secs, 3),
                "sched_s": round(self.sched_s, 4), "sched_pct_core": round(100 * self.sched_s / self.secs, 3),
                "reaped_children_cpu_s": round(self.child_s, 3), "threads": self.threads, "bpf": self.bpf}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=None, help="load window (default 30; 5 with --quick)")
    ap.add_argument("--rate", type=float, default=100.0, help="/bin/true execs per second (default 100)")
    ap.add_argument("--idle-seconds", type=float, default=None, help="idle window before the load (default 10; 2 with --quick)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds after attach before measuring (default 2)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 5 s load, 2 s idle")
    ap.add_argument("--no-bpf-stats", action="store_true", help="leave kernel.bpf_stats_enabled alone")
    ap.add_argument("--opensre", help="collector command (default: .venv/bin/opensre)")
    ap.add_argument("--collector-args", default="", metavar="ARGS",
                    help="extra arguments for `opensre collect`, one string; write it with '=' "
                         "(--collector-args=--no-sched) so a single flag is not taken for one of ours")
    ap.add_argument("--json", metavar="FILE", help="write the results here")
    ap.add_argument("--keep-store", metavar="PATH", help="copy the collector's store here before cleaning up")
    args = ap.parse_args()
    C.require_root()
    secs = args.seconds if args.seconds is not None else (5.0 if args.quick else 30.0)
    idle = args.idle_seconds if args.idle_seconds is not None else (2.0 if args.quick else 10.0)
    opensre = args.opensre.split() if args.opensre else C.default_opensre()
    meta = C.machine_info()
    meta.update({"argv": sys.argv, "collector_args": args.collector_args, "seconds": secs, "rate": args.rate, "idle_seconds": idle, "settle_s": args.settle})

    tmp = Path(tempfile.mkdtemp(prefix="opensre-cost-"))
    store = tmp / "cost.sqlite"
    old_stats = read_sysctl()
    stats_on = False
    col = None
    res: dict = {"meta": meta}
    try:
        wl = C.build_wl(tmp)
        col = C.CollectorProc(opensre, store, args.collector_args.split()).start()
        pid = col.pid
        print(f"collector pid {pid} attached after {col.attach_s:.2f}s; settling {args.settle}s", flush=True)
        print(f"  BPF programs: {', '.join(col.programs)}", flush=True)
        meta["programs"] = col.programs
        time.sleep(args.settle)
        st0 = C.proc_stat(pid)
        res["startup"] = {"attach_s": round(col.attach_s, 3),
                          "cpu_s_until_measuring": round(st0["utime"] + st0["stime"], 3),
                          **{k: v for k, v in C.proc_status_kb(pid, "VmHWM", "VmRSS").items()}}
        if not args.no_bpf_stats:
            stats_on = write_sysctl("1")
            if not stats_on:
                print("note: could not enable kernel.bpf_stats_enabled; no kernel-side numbers", file=sys.stderr)
        if idle > 0:
            print(f"idle window {idle:.0f}s ...", flush=True)
            with Window(pid) as w_idle:
                time.sleep(idle)
            res["idle"] = w_idle.as_dict()
        print(f"load window: {args.rate:g} exec/s for {secs:g}s ...", flush=True)
        with Window(pid) as w_load:
            pace = subprocess.Popen([str(wl), "pace", str(args.rate), str(secs)], stdout=subprocess.PIPE, text=True)
            out, _ = pace.communicate()
        res["load"] = w_load.as_dict()
        res["pace"] = {"pid": pace.pid, "rc": pace.returncode,
                       **C.parse_kv(out)}
        mem = C.proc_status_kb(pid, "VmHWM", "VmRSS", "VmSize")
        res["memory_kb"] = mem
        res["children_at_end"] = C.proc_children(pid)
        if stats_on:
            write_sysctl(old_stats or "0")
            stats_on = False
        time.sleep(0.5)  # let the last exits reach a drain before the stop
        stop = col.stop()
        res["stop"] = {k: v for k, v in stop.items() if k != "stderr"}
        col = None
        try:
            procs = C.export_processes(opensre, store)
        except RuntimeError as e:  # keep the CPU/memory numbers even if the export is broken
            print(f"warning: {e}", file=sys.stderr)
            res["store"] = {"error": str(e)[-300:]}
            procs = None
        if args.keep_store:
            shutil.copy(store, args.keep_store)
        if procs is not None:
            trues = [p for p in procs if p.get("comm") == "true"]
            mine = [p for p in trues if p.get("ppid") == pace.pid]
            res["store"] = {"processes": len(procs), "comm_true": len(trues), "comm_true_from_driver": len(mine),
                            "comm_true_from_driver_complete": sum(bool(p.get("complete")) for p in mine),
                            "incomplete": sum(not p.get("complete") for p in procs)}
            # which of the driver's execs lack their exit record (index in start order, from the end)
            order = sorted(mine, key=lambda p: p["start_time_ns"])
            res["store"]["driver_incomplete_from_end"] = [len(order) - i for i, p in enumerate(order)
                                                          if not p.get("complete")]
    finally:
        if stats_on:
            write_sysctl(old_stats or "0")
        if col is not None:
            col.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    res["meta"]["bpf_stats_enabled_after"] = read_sysctl()
    res["meta"]["loadavg_end"] = os.getloadavg()
    report(res, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}")
    return 0 if res["verdict"]["ok"] else 1


def report(res: dict, args) -> None:
    load, mem, pace, store, stop = res["load"], res["memory_kb"], res["pace"], res["store"], res["stop"]
    launched = pace.get("launched") or 0
    rate = launched / load["seconds"] if load["seconds"] else 0
    hwm_mb = mem["VmHWM"] / 1024
    print()
    print(f"collector cost, host-wide, {rate:.1f} exec/s achieved ({launched} x /bin/true in {load['seconds']:.1f}s)")
    print(f"  start-up: attached after {res['startup']['attach_s']:.2f}s, "
          f"{res['startup']['cpu_s_until_measuring']:.2f}s CPU before the windows")
    if "idle" in res:
        i = res["idle"]
        print(f"  idle  CPU {i['cpu_pct_core']:.2f}% of a core (stat ticks; schedstat {i['sched_pct_core']:.2f}%)"
              f"  over {i['seconds']:.1f}s")
    print(f"  load  CPU {load['cpu_pct_core']:.2f}% of a core (stat ticks: user {load['user_s']:.2f}s + sys "
          f"{load['sys_s']:.2f}s; schedstat {load['sched_pct_core']:.2f}%), threads {load['threads']}, "
          f"reaped children CPU {load['reaped_children_cpu_s']:.2f}s, children at end {res['children_at_end']}")
    if launched:
        extra = load["sched_s"] - (res["idle"]["sched_s"] / res["idle"]["seconds"] * load["seconds"]
                                   if "idle" in res else 0)
        if extra > 0:
            print(f"        ~{extra / launched * 1e6:.0f} us of collector CPU per exec above the idle floor")
        else:
            print("        (the idle window was busier than the load window: other work on the host)")
    print(f"  memory  VmHWM {hwm_mb:.1f} MB (peak RSS), VmRSS {mem['VmRSS'] / 1024:.1f} MB at the end")
    for name, w in (("idle", res.get("idle")), ("load", load)):
        if not w or not w["bpf"]["programs"]:
            continue
        progs = ", ".join(f"{n} {p['run_cnt']}x{(p['avg_ns'] or 0):.0f}ns"
                          + (f" ({p['recursion_misses']} MISSED)" if p["recursion_misses"] else "")
                          for n, p in sorted(w["bpf"]["programs"].items()) if p["run_cnt"] or p["recursion_misses"])
        print(f"  kernel ({name}): {progs}; total {w['bpf']['total_ns'] / 1e6:.1f} ms = "
              f"{w['bpf']['pct_core']:.3f}% of a core")
    if "error" in store:
        print(f"  store: export failed: {store['error'].strip().splitlines()[-1]}")
    else:
        print(f"  store: {store['comm_true_from_driver']}/{launched} /bin/true from the driver "
              f"({store['comm_true_from_driver_complete']} complete), {store['comm_true']} comm=true overall, "
              f"{store['processes']} processes in the run"
              + (f"; incomplete driver execs (k-th from last): {store['driver_incomplete_from_end'][:10]}"
                 if store["driver_incomplete_from_end"] else ""))
    missing_exit = store.get("comm_true_from_driver", 0) - store.get("comm_true_from_driver_complete", 0)
    if missing_exit > 0:
        print(f"  note: {missing_exit} of the driver's processes have no exit record (complete=false) although "
              f"all of them had exited and been reaped before the stop")
    if store.get("processes") and launched and store["processes"] > 1.05 * launched:
        print(f"  note: the run recorded {store['processes']} processes for {launched} driven execs: other work on "
              f"the host was observed too, and its cost is inside the CPU figure")
    print(f"  drops: {stop.get('drops')} {stop.get('drop_detail') or ''} (collector rc {stop['rc']}, "
          f"stop took {stop['stop_s']:.2f}s)")
    cpu_ok = load["cpu_pct_core"] <= TARGET_CPU_PCT
    rss_ok = hwm_mb <= TARGET_RSS_MB
    seen_ok = launched > 0 and store.get("comm_true_from_driver", -1) >= 0.99 * launched
    drops_ok = not stop.get("drops")
    res["verdict"] = {"cpu": cpu_ok, "rss": rss_ok, "completeness": seen_ok, "drops": drops_ok,
                      "ok": cpu_ok and rss_ok and seen_ok and drops_ok}
    v = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print(f"  verdict: CPU {load['cpu_pct_core']:.2f}% <= {TARGET_CPU_PCT}%: {v(cpu_ok)}; "
          f"peak RSS {hwm_mb:.1f} MB <= {TARGET_RSS_MB:.0f} MB: {v(rss_ok)}; "
          f"all execs recorded: {v(seen_ok)}; no drops: {v(drops_ok)}")


if __name__ == "__main__":
    sys.exit(main())
