"""The thin CLI: parse -> call the library -> render -> map errors to exit codes.

Exit codes: the command's own status for `run`; 0 ok; 1 an OpenSRE error (one line
on stderr); 2 bad arguments."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import time

from ..errors import OpenSREError, StoreError, UsageError

EXIT_ERROR, EXIT_USAGE = 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(EXIT_USAGE, f"opensre: {message} (see `{self.prog} --help`)\n")


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().rstrip("ib").rstrip("b") if text[-1:].lower() in "bi" else text.strip().lower()
    mult = units.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in units else t
    try:
        v = int(float(num) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 8M)") from None
    if v < 4096:
        raise argparse.ArgumentTypeError(f"size {text!r} is below one page (4K)")
    return v


RINGBUF_MAX = 1 << 30  # the kernel's ring buffer limit is larger, but this is locked memory
DRAIN_MS_MAX = 2000


def _ringbuf_size(text: str) -> int:
    v = _size(text)
    if v > RINGBUF_MAX:
        raise argparse.ArgumentTypeError(f"size {text!r} is above the 1G limit for the kernel event buffer")
    return v


def _drain_ms(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}") from None
    if not 1 <= v <= DRAIN_MS_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1 and {DRAIN_MS_MAX} ms")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return v


def _duration(text: str) -> float:
    v = _positive_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r} (leave it out to collect until Ctrl-C)")
    return v


def _age(text: str) -> float:
    """30d, 12h, 90m, 45s, 2w -> seconds."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30d, 12h, 90m)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def _interval(text: str) -> float:
    v = _positive_float(text)
    if not 0.05 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"interval {text!r} must be between 0.05 and 3600 seconds")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="opensre", description="eBPF execution observability for pipelines and batch jobs")
    p.add_argument("--version", action="version", version=f"opensre {__import__('opensre').__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp, collect=False):
        sp.add_argument("--store", help="store file (default: $OPENSRE_STORE or ~/.local/share/opensre/HOST.sqlite)")
        if collect:
            sp.add_argument("--ringbuf-size", type=_ringbuf_size, default=8 << 20, metavar="SIZE",
                            help="kernel event buffer (default 8M, at most 1G; rounded up to a power of two)")
            sp.add_argument("--drain-ms", type=_drain_ms, default=None, metavar="MS",
                            help=f"how often events are drained, 1 to {DRAIN_MS_MAX} ms "
                                 "(default 100 for run, 500 for collect)")
            sp.add_argument("--redact-rules", action="append", default=[], metavar="FILE",
                            help="extra argv redaction rules (YAML); repeatable")
            sp.add_argument("--interval", type=_interval, default=1.0, metavar="S",
                            help="time-series resolution in seconds (default 1)")
            for fam, what in (("sched", "off-CPU split: I/O wait vs sleep"), ("net", "network bytes and TCP connections"),
                              ("oom", "OOM kills"), ("samples", "per-process time series")):
                sp.add_argument(f"--no-{fam}", action="store_true", help=f"switch off the {fam} probes ({what})")
            sp.add_argument("--require", action="append", default=[], metavar="FAMILY",
                            choices=["sched", "net", "oom", "samples"],
                            help="fail, instead of continuing without it, when this kernel cannot run "
                                 "this probe family (repeatable)")

    r = sub.add_parser("run", help="run a command and observe it and everything it starts",
                       usage="opensre run [options] -- CMD [ARGS...]")
    common(r, collect=True)
    r.add_argument("--name", help="a name for this run")
    r.add_argument("--as-root", action="store_true", help="under sudo, run CMD as root instead of the invoking user")
    r.add_argument("--linger", type=_positive_float, default=2.0, metavar="S",
                   help="after CMD exits, wait up to S seconds for processes it left behind (default 2)")
    r.add_argument("-q", "--quiet", action="store_true", help="no summary")
    r.add_argument("--no-live", action="store_true", help="do not publish a live view for `opensre top`")
    r.add_argument("--html", metavar="FILE", help="also write the run's HTML report (as `opensre report`)")
    r.add_argument("--rules", action="append", default=[], metavar="FILE",
                   help="tool rules (YAML: rename tools, exclude helpers); repeatable")
    r.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")

    c = sub.add_parser("collect", help="observe the whole host until SIGINT/SIGTERM")
    common(c, collect=True)
    c.add_argument("--name", help="a name for this collection")
    c.add_argument("--duration", type=_duration, metavar="S",
                   help="stop after S seconds (more than 0; default: until SIGINT/SIGTERM)")
    c.add_argument("--deny", action="append", default=[], metavar="COMM",
                   help="also ignore processes with this command name; repeatable")
    c.add_argument("--rules", action="append", default=[], metavar="FILE",
                   help="tool rules (YAML) for the detected runs' tasks and tools; repeatable")
    c.add_argument("--run-rules", action="append", default=[], metavar="FILE",
                   help="run rules (YAML, a `runs:` list) naming runs explicitly; repeatable")
    c.add_argument("--no-detect", action="store_true", help="do not detect runs in the collection when it ends")
    c.add_argument("--live", action="store_true", help="publish a live view for `opensre top` (costs CPU per tick)")

    co = sub.add_parser("correlate", help="recompute a run's tasks and tools (e.g. with new rules)")
    common(co)
    co.add_argument("run", nargs="?", default="latest", help="run id, id prefix, name or 'latest'")
    co.add_argument("--rules", action="append", default=[], metavar="FILE", help="tool rules (YAML); repeatable")
    co.add_argument("--run-rules", action="append", default=[], metavar="FILE",
                    help="run rules (YAML) for a host-wide collection; repeatable")

    rs = sub.add_parser("runs", help="list stored runs; `runs rm RUN...` removes runs",
                        usage="opensre runs [-n N] [--store S]\n"
                              "       opensre runs rm RUN [RUN ...] [--store S] [--vacuum]")
    common(rs)
    rs.add_argument("-n", type=_count, default=20, help="how many (default 20)")
    rs.add_argument("action", nargs="?", choices=["rm"], help="rm: remove the runs named and all their records")
    rs.add_argument("refs", nargs="*", metavar="RUN", help="with rm: run id, id prefix, name or 'latest'")
    rs.add_argument("--vacuum", action="store_true", help="with rm: shrink the store file afterwards")

    pr = sub.add_parser("prune", help="remove runs older than a duration, with all their records")
    common(pr)
    pr.add_argument("--older-than", type=_age, required=True, metavar="DURATION",
                    help="runs started longer ago than this: 30d, 12h, 90m, 2w")
    pr.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    pr.add_argument("--vacuum", action="store_true", help="shrink the store file afterwards")

    s = sub.add_parser("show", help="a run's summary and process tree")
    common(s)
    s.add_argument("run", nargs="?", default="latest", help="run id, id prefix, name or 'latest'")
    s.add_argument("--width", type=int, default=80, help="command column width")
    s.add_argument("--timeline", action="store_true", help="per-process timeline of CPU, memory and waits")
    s.add_argument("--tree", action="store_true", help="the process tree instead of tasks and tools")
    s.add_argument("--rows", type=_count, default=200, metavar="N",
                   help="at most N task rows (failed and most CPU first; default 200)")

    e = sub.add_parser("export", help="export a run's records")
    common(e)
    e.add_argument("--run", default="latest", help="run id, prefix, name or 'latest'")
    e.add_argument("--format", choices=["jsonl"], default="jsonl")
    e.add_argument("--what", choices=["processes", "tasks", "tools", "execs", "samples", "events", "host"],
                   default="processes",
                   help="processes (default), tasks, tools (invocations), execs, samples (time series), "
                        "events (OOM kills, TCP connections), host (host time series)")
    e.add_argument("-o", "--output", help="file (default stdout)")

    t = sub.add_parser("tune", help="what held each task back and what it should be given")
    common(t)
    t.add_argument("runs", nargs="*", default=[], metavar="RUN",
                   help="run id, id prefix, name or 'latest' (default latest); several: analysed together")
    t.add_argument("--pipeline", metavar="NAME",
                   help="size from every run of this name (a pipeline's runs); the latest is compared with the ones before")
    t.add_argument("--baseline-runs", type=int, default=10, metavar="N",
                   help="with --pipeline: compare the latest run with the N runs before it (default 10)")
    t.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                   help="compare two runs (or comma-separated lists of runs) per task type")
    t.add_argument("--workflow", metavar="FILE", help="the Snakefile: rule names, threads and resources it asks for")
    t.add_argument("--format", choices=["text", "json"], default="text")
    t.add_argument("--emit", choices=["nextflow", "snakemake", "slurm", "k8s"],
                   help="print the recommendations as config to paste into the workflow")
    price = t.add_mutually_exclusive_group()
    price.add_argument("--price-per-hour", type=_positive_float, metavar="USD", help="what the host costs per hour")
    price.add_argument("--instance-type", metavar="TYPE", help="an AWS instance type (bundled on-demand prices)")
    t.add_argument("--idle-after", type=_positive_float, default=60.0, metavar="S",
                   help="no CPU or I/O progress for this long counts as idle/stalled (default 60)")
    t.add_argument("-o", "--output", help="file (default stdout)")

    rp = sub.add_parser("report", help="a self-contained HTML report of a run (timeline, charts, tune, processes)")
    common(rp)
    rp.add_argument("run", nargs="?", default="latest", help="run id, id prefix, name or 'latest'")
    rp.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    rp.add_argument("--compare", metavar="RUN_B", help="a second run: side-by-side per task type")
    rp.add_argument("--workflow", metavar="FILE",
                    help="the Snakefile (as tune --workflow): rule names, threads and resources it asks for")
    rprice = rp.add_mutually_exclusive_group()
    rprice.add_argument("--price-per-hour", type=_positive_float, metavar="USD", help="what the host costs per hour")
    rprice.add_argument("--instance-type", metavar="TYPE", help="an AWS instance type (bundled on-demand prices)")

    tp = sub.add_parser("top", help="live view of the running tasks and tools (another terminal, no root)")
    common(tp)
    tp.add_argument("--interval", type=_interval, default=1.0, metavar="S", help="refresh every S seconds")
    tp.add_argument("--once", action="store_true", help="print one frame (two snapshots apart) and exit")
    tp.add_argument("-n", "--rows", type=_count, default=30, help="rows per run (default 30)")
    tp.add_argument("--format", choices=["text", "json"], default="text",
                    help="json: one document per refresh, {\"runs\": [{run_id, name, cpu_cores, rss_bytes, "
                         "processes, tasks: [...]}]} (with --once: one)")

    im = sub.add_parser("import", help="load a spill file (records a full disk kept out of the store) into a store")
    common(im)
    im.add_argument("spill", metavar="SPILL.jsonl", help="the file named in the collector's message")

    d = sub.add_parser("doctor", help="check that this kernel supports everything")
    d.add_argument("--verbose", action="store_true", help="show full verifier logs")
    return p


_TOP_OPTIONS = {"-h", "--help", "--version"}


def main(argv: list[str] | None = None) -> int:
    closed = _reserve_std_fds()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    for a in argv:  # before the command: argparse would only say a command is required
        if not a.startswith("-"):
            break
        if a.split("=", 1)[0] not in _TOP_OPTIONS:
            parser.error(f"unrecognized argument: {a}")
    args = parser.parse_args(argv)
    args.closed_fds = closed
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        _say(e.one_line())
        return EXIT_USAGE
    except OpenSREError as e:
        _say(e.one_line())
        return EXIT_ERROR
    except sqlite3.DatabaseError as e:  # a store that turns out damaged past its first pages
        from ..store.db import damaged

        _say(damaged(getattr(args, "store", None) or _default_store(), e).one_line())
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _say(line: str) -> None:
    """One line on stderr, its recorded parts (names, paths, argv) made safe for a terminal."""
    from ..term import term

    print(f"opensre: {term(line)}", file=sys.stderr)


def _default_store():
    from ..store import default_store_path

    return default_store_path()


def _reserve_std_fds() -> tuple[int, ...]:
    """stdin/stdout/stderr that were closed (`>&-`) get /dev/null, so that no file
    we open lands on them (a pipe on fd 1 would become the command's stdout); the
    command `run` starts gets them closed again, as it was asked. Returns them."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        got = os.open(os.devnull, os.O_RDWR)
        if got != fd:  # lower fds are open: the lowest free one is this one
            os.dup2(got, fd)
            os.close(got)
    if 1 in closed or sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    if 2 in closed or sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)
    return tuple(closed)


def _preflight():
    """Fail on privileges/BTF before touching the store or starting anything."""
    from ..bpf.features import require_basics

    require_basics()


def _store(args, readonly=False):
    from ..store import Store

    return Store(args.store, readonly=readonly)


def _redactor(args):
    from ..redact import Redactor, redact_rule_files

    from functools import lru_cache

    r = Redactor.from_files(redact_rule_files(getattr(args, "redact_rules", []) or []))

    # pipelines repeat the same command lines thousands of times: redact each once
    @lru_cache(maxsize=4096)
    def cached(argv: tuple, truncated: bool) -> tuple:
        out, changed = r.redact_argv(list(argv), truncated)
        return tuple(out), changed

    def redact(argv: list[str], truncated: bool = False) -> tuple[list[str], bool]:
        out, changed = cached(tuple(argv), bool(truncated))
        return list(out), changed

    # cwd and exe paths too (a path can hold a token): the pattern rules, once per path
    redact.path = lru_cache(maxsize=4096)(r.redact_path)
    return redact


def _opts(args, host_wide: bool):
    from ..collect import CollectorOptions

    from ..collect.collector import FAMILIES

    fams = tuple(f for f in FAMILIES if not getattr(args, f"no_{f}"))
    for f in args.require:
        if f not in fams:
            raise UsageError(f"--require {f} contradicts --no-{f}")
    o = CollectorOptions(host_wide=host_wide, ringbuf_bytes=args.ringbuf_size, families=fams,
                         required=tuple(args.require),
                         sample_interval_s=args.interval,
                         live=getattr(args, "live", False) if host_wide else not getattr(args, "no_live", False))
    if args.drain_ms is not None:
        o.drain_interval_ms = args.drain_ms
    elif host_wide:
        o.drain_interval_ms = 500  # bursts force a wakeup in the kernel; this only bounds latency
    return o


def cmd_run(args) -> int:
    from ..collect import run_command
    from ..report import run_summary

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise UsageError("no command given", "usage: opensre run [options] -- CMD [ARGS...]")
    from ..correlate import tool_identifier

    _preflight()
    redact = _redactor(args)
    # every rule source (tools.yaml, rules.yaml beside the store, --rules) fails before the command runs
    ident = tool_identifier(args.store or _default_store(), args.rules)
    if args.html:  # a target that would be refused fails before the command runs
        from ..safefile import check_output

        check_output(os.path.abspath(args.html), "report")
    store = _store(args)
    from ..errors import CommandNotStarted

    try:
        res = run_command(cmd, store, name=args.name, opts=_opts(args, False), redact=redact,
                          as_invoking_user=not args.as_root, linger_s=args.linger, closed_fds=args.closed_fds)
    except CommandNotStarted as e:  # as a shell says it: one line, 127 (not found) or 126
        _say(str(e))
        return e.exit_status
    if not res.store_error:
        from ..correlate import correlate_run

        # fed from the records the collector kept, not read back from the store
        procs, execs = res.records or (None, None)
        try:  # the command ran: its status stands whatever happens here
            correlate_run(store, res.run.run_id, procs=procs, execs=execs, run=res.run, identifier=ident)
        except OpenSREError as e:
            _say(f"run {res.run.run_id} stored, but its tasks could not be computed: {e.one_line()}")
            return res.exit_status
    if res.store_error:
        where = f"; {res.run.process_count} processes stored, the rest saved to {res.spill_path}" if res.spill_path \
            else "; records could not be saved anywhere"
        _say(f"{res.store_error}{where}")
        return res.exit_status
    if not args.quiet:
        procs = res.records[0] if res.records else list(store.processes(res.run.run_id))
        print(run_summary(res.run, procs, str(store.path)), file=sys.stderr)
    if args.html:
        _try(_write_report, store, res.run.run_id, args.html)
        from ..store import give_to_invoking_user

        give_to_invoking_user(args.html)
    return res.exit_status


def cmd_collect(args) -> int:
    from ..collect import Collector
    from ..collect.hostinfo import local_host
    from ..collect.runner import new_run_id
    from ..model import Run
    from ..report import run_summary

    _preflight()
    ident = rules = None
    if not args.no_detect:  # a bad rule file (given or auto-loaded) fails before anything starts
        from ..correlate import run_rules, tool_identifier

        where = args.store or _default_store()
        ident, rules = tool_identifier(where, args.rules), run_rules(where, args.run_rules)
    opts = _opts(args, True)
    opts.denylist += args.deny
    store = _store(args)
    store.mark_interrupted()
    host = local_host()
    store.put_host(host)
    run = Run(run_id=new_run_id(), name=args.name or f"collect@{host.hostname}", mode="collect",
              host_id=host.host_id, start_time_ns=time.time_ns(), collector_pid=os.getpid(),
              root_pid=os.getppid())  # where the collector was started from: never a detected run's root
    col = Collector(store, run, opts, redact=_redactor(args))
    stop = []
    old = {s: signal.signal(s, lambda *_: stop.append(1)) for s in (signal.SIGINT, signal.SIGTERM)}
    col.start()
    col.lower_priority()
    try:
        store.put_run(run)
        col.seed_existing()
        print(f"opensre: collecting host-wide into {store.path} (run {run.run_id}); Ctrl-C to stop", file=sys.stderr)
        deadline = time.monotonic() + args.duration if args.duration else None
        last = time.monotonic()
        spills: set[str] = set()
        failed = None  # the first store error: the collection is incomplete in the store from then on
        while not stop and (deadline is None or time.monotonic() < deadline):
            col.poll()
            if col.store_error:
                # a full disk: what the store cannot take goes to a spill file (memory stays bounded)
                if failed is None:
                    failed = col.store_error
                    _say(failed.one_line())
                spills.add(col.spill() or "")
            if time.monotonic() - last > 5:
                run.process_count = col.written
                run.drops, run.drop_detail = col.drops()
                _try(store.put_run, run)
                last = time.monotonic()
        col.finish()
        run.end_time_ns = time.time_ns()  # after the last pass: the window holds every sample
        if col.store_error:
            failed = failed or col.store_error
            spills.add(col.spill() or "")
        run.status, run.process_count = "finished", col.written
        if col.spilled or col.unsaved():
            run.drop_detail = {**run.drop_detail, "spilled": col.spilled, "lost": col.unsaved()}
            run.drops += col.unsaved()
        try:
            store.put_run(run)
        except StoreError as e:
            failed = failed or e
    finally:
        col.close()
        for s, h in old.items():
            signal.signal(s, h)
    if failed is not None:
        files = sorted(f for f in spills if f)
        kept = f"; {col.spilled} process records saved to {', '.join(files)} (load them with " \
               f"`opensre import {files[0]} --store STORE`)" if files else ""
        lost = f"; {col.unsaved()} process records could not be saved anywhere" if col.unsaved() else ""
        _say(f"{failed}: {col.written} processes stored{kept}{lost}")
        return EXIT_ERROR
    procs = list(store.processes(run.run_id))
    print(run_summary(run, procs, str(store.path)), file=sys.stderr)
    if not args.no_detect:
        try:
            from ..correlate import correlate_collection

            detected = correlate_collection(store, run.run_id, identifier=ident, rules=rules)
        except OpenSREError as e:
            _say(f"detecting runs: {e.one_line()}")
        else:
            print(_detected_lines(detected, len(procs)), file=sys.stderr)
    return 0


def _detected_lines(detected, total: int | None = None, limit: int | None = None) -> str:
    """One line per run detected in a collection."""
    from ..term import term

    n = sum(r.process_count for r in detected)
    head = f"── {len(detected)} run{'' if len(detected) == 1 else 's'} detected"
    if total is not None:
        head += f", {total - n} of {total} processes unattributed"
    lines = [head + " ──"]
    shown = detected if limit is None else detected[:limit]
    for r in shown:
        lines.append(f"  run {r.run_id}  {r.process_count:>6} processes  {r.status:<10}  {term(r.name)}")
    if len(shown) < len(detected):
        lines.append(f"  … and {len(detected) - len(shown)} more")
    return "\n".join(lines)


def _try(fn, *a):
    try:
        fn(*a)
    except OpenSREError as e:
        _say(e.one_line())


def _removed(run, n: dict) -> str:
    what = ", ".join(f"{v} {k}" for k, v in n.items() if v and k not in ("runs", "hosts"))
    extra = f" (and {n['runs'] - 1} run(s) detected in it)" if n.get("runs", 0) > 1 else ""
    return f"removed run {run.run_id} {run.name or ' '.join(run.command)}{extra}: {what or 'no records'}"


def cmd_runs_rm(args) -> int:
    from ..correlate.runs import UNATTRIBUTED

    if not args.refs:
        raise UsageError("runs rm: no run given", "usage: opensre runs rm RUN [RUN ...]")
    store = _store(args)
    runs = [store.resolve_run(r) for r in args.refs]  # every name resolves before anything goes
    for r in runs:
        if r.status == "running":
            from ..errors import RunStillRunning

            raise RunStillRunning(f"run {r.run_id} is still running", "remove it once it has ended; nothing removed")
    for r in runs:
        print(_removed(r, store.delete_run(r.run_id, UNATTRIBUTED)))
    if args.vacuum:
        store.vacuum()
    return 0


def cmd_prune(args) -> int:
    from ..correlate.runs import UNATTRIBUTED

    store = _store(args, readonly=args.dry_run)
    cutoff = time.time_ns() - int(args.older_than * 1e9)
    old = store.runs_older_than(cutoff)
    kept = [r for r in old if r.status == "running"]
    for r in kept:
        print(f"kept run {r.run_id}: still running", file=sys.stderr)
    gone = [r for r in old if r.status != "running"]
    for r in gone:
        if args.dry_run:
            print(f"would remove run {r.run_id} {r.name or ' '.join(r.command)}")
        else:
            print(_removed(r, store.delete_run(r.run_id, UNATTRIBUTED)))
    if args.vacuum and not args.dry_run:
        store.vacuum()
    print(f"{'would remove' if args.dry_run else 'removed'} {len(gone)} run(s) started before "
          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(cutoff / 1e9))}", file=sys.stderr)
    return 0


def cmd_runs(args) -> int:
    from ..report import fmt_s
    from ..term import term

    if args.action == "rm":
        return cmd_runs_rm(args)
    if args.refs:
        raise UsageError(f"unknown runs action {args.refs[0]!r}", "`opensre runs` lists, `opensre runs rm RUN` removes")
    store = _store(args, readonly=True)
    runs = store.runs(args.n, detected=False)
    if not runs:
        print("no runs yet")
        return 0
    print(f"{'RUN':<12} {'STARTED':<19} {'WALL':>9} {'PROCS':>6} {'EXIT':>5} {'DROPS':>5} {'STATUS':<11} NAME / COMMAND")
    rows = []
    for r in runs:
        rows.append((r, ""))
        if r.mode == "collect":  # the runs detected in it, indented under it
            rows += [(d, "  ↳ ") for d in store.detected_runs(r.run_id)]
    for r, indent in rows:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.start_time_ns / 1e9))
        wall = fmt_s(r.end_time_ns - r.start_time_ns) if r.end_time_ns else "-"
        ex = f"s{r.exit_signal}" if r.exit_signal else ("-" if r.exit_code is None else str(r.exit_code))
        label = indent + term(r.name or " ".join(r.command))
        print(f"{term(r.run_id):<12} {start:<19} {wall:>9} {r.process_count:>6} {ex:>5} {r.drops:>5} {r.status:<11} {label[:64]}")
    return 0


def cmd_show(args) -> int:
    from ..report import process_tree, run_summary, task_view

    store = _store(args, readonly=True)
    run = store.resolve_run(args.run)
    procs = list(store.processes(run.run_id))
    print(run_summary(run, procs))
    print()
    if run.mode == "collect":
        detected = store.detected_runs(run.run_id)
        if detected:
            print(_detected_lines(detected, len(procs)))
            print()
    if args.tree:
        print(process_tree(procs, width=args.width))
        return 0
    if args.timeline:
        from ..report.timeline import timeline

        print(timeline(run, procs, list(store.samples(run.run_id)), list(store.events(run.run_id)),
                       width=args.width))
    else:
        tasks = store.tasks(run.run_id)
        if tasks:
            print(task_view(tasks, store.tools(run.run_id), limit=args.rows))
        else:
            print(process_tree(procs, width=args.width))
    return 0


def cmd_correlate(args) -> int:
    from ..correlate import correlate_run
    from ..store import Store

    Store(args.store, readonly=True).close()  # an existing store of ours: never creates or initialises one
    store = Store(args.store)
    run = store.resolve_run(args.run)
    if run.parent_run_id:  # a detected run: redo the detection in its collection
        print(f"run {run.run_id} was detected in collection {run.parent_run_id}: re-detecting its runs")
        run = store.resolve_run(run.parent_run_id)
    if run.mode == "collect":
        from ..correlate import correlate_collection

        detected = correlate_collection(store, run.run_id, args.rules, args.run_rules)
        print(f"collection {run.run_id}:")
        print(_detected_lines(detected, run.process_count or None))
        return 0
    c = correlate_run(store, run.run_id, args.rules)
    print(f"run {run.run_id}: {len(c.tasks)} tasks, {len(c.tools)} tool invocations, "
          f"{len(c.task_of)} processes attributed")
    return 0


def cmd_export(args) -> int:
    import json

    from ..export import write_processes

    import contextlib

    from ..safefile import open_output

    store = _store(args, readonly=True)
    run = store.resolve_run(args.run)
    # a file: written beside it and renamed (never a half file, never through a link)
    with open_output(args.output, "export") if args.output else contextlib.nullcontext(sys.stdout) as out:
        if args.what == "processes":
            write_processes(out, run.run_id, store.processes(run.run_id))
        else:
            rows = {"execs": lambda: (e.__dict__ for e in store.execs(run.run_id)),
                    "tasks": lambda: (t.__dict__ for t in store.tasks(run.run_id)),
                    "tools": lambda: (u.__dict__ for u in store.tools(run.run_id)),
                    "samples": lambda: (x.__dict__ for x in store.samples(run.run_id)),
                    "events": lambda: ({"kind": v.kind, "pid": v.pid, "start_time_ns": v.start_time_ns,
                                        "t_ns": v.t_ns, **v.data} for v in store.events(run.run_id)),
                    "host": lambda: store.host_samples(run.run_id)}[args.what]()
            for row in rows:
                out.write(json.dumps({"run_id": run.run_id, **row}, separators=(",", ":")) + "\n")
    if args.output:
        from ..store import give_to_invoking_user

        give_to_invoking_user(args.output)
    return 0


def cmd_tune(args) -> int:
    import json

    from ..analysis import Thresholds, emit, tune

    store = _store(args, readonly=True)
    split = lambda ref: [x for x in ref.split(",") if x]  # noqa: E731
    sizing = baseline = None
    if args.compare:
        if args.runs:
            raise UsageError("give either RUN or --compare BEFORE AFTER, not both")
        runs, after = split(args.compare[0]), split(args.compare[1])
    else:
        runs, after = list(args.runs) or ["latest"], None
    if args.pipeline:
        named = [r for r in store.runs_named(args.pipeline) if r.status != "running"]  # one still going: not yet
        if not named:
            raise UsageError(f"no runs named {args.pipeline!r}", "list runs with `opensre runs`")
        sizing = [r.run_id for r in named]
        if not args.runs and not args.compare:
            runs = [named[-1].run_id]
            # the latest run against the pipeline's recent history: did it regress?
            baseline = [r.run_id for r in named[:-1]][-args.baseline_runs:]
    for ref in after or runs:  # the runs reported on: a running one has no tasks yet
        r = store.resolve_run(ref)
        if r.status == "running":
            from ..errors import RunStillRunning

            raise RunStillRunning(f"run {r.run_id} is still running: its tasks are known when it ends",
                                  "tune it then; watch it now with `opensre top`")
    res = tune(store, runs, workflow=args.workflow, thresholds=Thresholds(idle_after_s=args.idle_after),
               price_per_hour=args.price_per_hour, instance_type=args.instance_type, compare_with=after,
               sizing_runs=sizing, baseline=baseline)
    if not res.tasks:
        why = {"collect": "a host-wide collection: tune one of the runs detected in it (`opensre runs`)",
               "running": "it is still running: its tasks are known when it ends"}
        r = store.resolve_run(runs[0] if not after else after[0])
        hint = why["running"] if r.status == "running" else why["collect"] if r.mode == "collect" else \
            "it has no tasks: recompute them with `opensre correlate RUN`"
        _say(f"nothing to tune in run {r.run_id}: {hint}")
    if args.emit:
        text = emit(res, args.emit)
    elif args.format == "json":
        text = json.dumps(res.to_json(), indent=1, default=str) + "\n"
    else:
        from ..report.tune_text import render

        tty = not args.output and sys.stdout.isatty()
        text = render(res, color=tty and not os.environ.get("NO_COLOR"),
                      width=os.get_terminal_size().columns if tty else 120)
    if args.output:
        from ..safefile import write_output
        from ..store import give_to_invoking_user

        write_output(args.output, text, "tune output")
        give_to_invoking_user(args.output)
    else:
        sys.stdout.write(text)
    return 0


def cmd_report(args) -> int:
    store = _store(args, readonly=True)
    opts = {k: v for k, v in (("price_per_hour", args.price_per_hour), ("instance_type", args.instance_type),
                              ("workflow", args.workflow)) if v}
    if args.workflow:  # a file that cannot be read fails here, not as a note inside the report
        from ..analysis.workflow import read_snakefile

        read_snakefile(args.workflow)
    _write_report(store, args.run, args.output, args.compare, opts)
    return 0


def _write_report(store, run_ref: str, path: str, compare: str | None = None, tune_options: dict | None = None):
    from ..report.html import write_report

    run = store.resolve_run(run_ref)
    tty = sys.stderr.isatty()
    shown = [0.0]

    def progress(stage: str, done: int, total: int) -> None:  # a counter line: big runs take seconds
        now = time.monotonic()
        if now - shown[0] < (0.2 if tty else 2.0):
            return
        shown[0] = now
        text = f"opensre report: {stage} {done:,}" + (f"/{total:,}" if total else "")
        print(f"\r{text:<70}" if tty else text, end="" if tty else "\n", file=sys.stderr, flush=True)

    big = tty or (run.process_count or 0) > 10_000
    r = write_report(store, run.run_id, path, compare, progress=progress if big else None, tune_options=tune_options)
    if big and tty:
        print("\r" + " " * 70 + "\r", end="", file=sys.stderr)
    capped = f"; {len(r.notes)} lists capped (see its Notes)" if r.notes else ""
    print(f"opensre: report of run {run.run_id} written to {r.path} ({r.bytes / 2**20:.1f} MiB, "
          f"{r.processes:,} processes, {r.seconds:.1f} s{capped})", file=sys.stderr)
    return r


def cmd_top(args) -> int:
    from ..report.live import LiveView
    from ..store import default_store_path

    path = args.store or default_store_path()
    view = LiveView(path, rows=args.rows)
    if args.once or args.format == "json":
        view.update()
        while True:
            time.sleep(args.interval)
            view.update()
            if args.format == "json":
                sys.stdout.write(json.dumps(view.data()) + "\n")
                sys.stdout.flush()
            else:
                sys.stdout.write(view.text(width=160))
            if args.once:
                return 0
    from rich.console import Console
    from rich.live import Live

    con = Console()
    with Live(view.renderable(), console=con, screen=con.is_terminal, auto_refresh=False) as live:
        while True:
            view.update()
            live.update(view.renderable(), refresh=True)
            time.sleep(args.interval)


def cmd_doctor(args) -> int:
    from ..bpf import families, features

    checks = features.probe_all()
    if all(c.ok for c in checks):
        checks += families.check_all()
    for c in checks:
        mark = "FAIL" if not c.ok else "warn" if c.warn else "ok  "
        print(f"[{mark}] {c.name}: {c.detail}" + (f"\n       {c.warn}" if c.warn else "")
              + (f"\n       fix: {c.fix}" if c.fix and not c.ok else ""))
        if args.verbose and c.log:
            print(c.log)
    return 0 if all(c.ok for c in checks) else EXIT_ERROR


def cmd_import(args) -> int:
    from ..store.spill import import_spill

    store = _store(args)
    n = import_spill(store, args.spill)
    print(f"opensre: imported {', '.join(f'{v} {k}s' for k, v in n.items() if v) or 'nothing'} from {args.spill} "
          f"into {store.path}", file=sys.stderr)
    return 0


COMMANDS = {"import": cmd_import, "run": cmd_run, "collect": cmd_collect, "runs": cmd_runs, "show": cmd_show,
            "export": cmd_export, "doctor": cmd_doctor, "tune": cmd_tune, "top": cmd_top, "correlate": cmd_correlate,
            "report": cmd_report, "prune": cmd_prune}

if __name__ == "__main__":
    sys.exit(main())
