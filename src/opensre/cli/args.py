"""Argument types shared by the commands, the options every command takes
(`common`), and the collector's options built from them."""

from __future__ import annotations

import argparse
import re

from ..errors import UsageError

EXIT_ERROR, EXIT_USAGE = 1, 2
RINGBUF_MAX = 1 << 30  # the kernel's ring buffer limit is larger, but this is locked memory
DRAIN_MS_MAX = 2000
FAMILY_HELP = (("sched", "off-CPU split: I/O wait vs sleep"), ("net", "network bytes and TCP connections"),
               ("oom", "OOM kills"), ("samples", "per-process time series"))


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(EXIT_USAGE, f"opensre: {message} (see `{self.prog} --help`)\n")


def size(text: str) -> int:
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


def ringbuf_size(text: str) -> int:
    v = size(text)
    if v > RINGBUF_MAX:
        raise argparse.ArgumentTypeError(f"size {text!r} is above the 1G limit for the kernel event buffer")
    return v


def drain_ms(text: str) -> int:
    v = _number(text, int, "a whole number of milliseconds")
    if not 1 <= v <= DRAIN_MS_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1 and {DRAIN_MS_MAX} ms")
    return v


def count(text: str) -> int:
    v = _number(text, int, "a whole number")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return v


def duration(text: str) -> float:
    v = positive_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r} (leave it out to collect until Ctrl-C)")
    return v


def age(text: str) -> float:
    """30d, 12h, 90m, 45s, 2w -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30d, 12h, 90m)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def interval(text: str) -> float:
    v = positive_float(text)
    if not 0.05 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"interval {text!r} must be between 0.05 and 3600 seconds")
    return v


def positive_float(text: str) -> float:
    v = _number(text, float, "a number")
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return v


def _number(text: str, kind, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def common(sp: argparse.ArgumentParser, collect: bool = False) -> None:
    """--store; with `collect`, the options of the commands that collect (run, collect)."""
    sp.add_argument("--store", help="store file (default: $OPENSRE_STORE or ~/.local/share/opensre/HOST.sqlite)")
    if not collect:
        return
    sp.add_argument("--ringbuf-size", type=ringbuf_size, default=8 << 20, metavar="SIZE",
                    help="kernel event buffer (default 8M, at most 1G; rounded up to a power of two)")
    sp.add_argument("--drain-ms", type=drain_ms, default=None, metavar="MS",
                    help=f"how often events are drained, 1 to {DRAIN_MS_MAX} ms "
                         "(default 100 for run, 500 for collect)")
    sp.add_argument("--redact-rules", action="append", default=[], metavar="FILE",
                    help="extra argv redaction rules (YAML); repeatable")
    sp.add_argument("--interval", type=interval, default=1.0, metavar="S",
                    help="time-series resolution in seconds (default 1)")
    for fam, what in FAMILY_HELP:
        sp.add_argument(f"--no-{fam}", action="store_true", help=f"switch off the {fam} probes ({what})")
    sp.add_argument("--require", action="append", default=[], metavar="FAMILY",
                    choices=[fam for fam, _ in FAMILY_HELP],
                    help="fail, instead of continuing without it, when this kernel cannot run "
                         "this probe family (repeatable)")


def price(sp: argparse.ArgumentParser) -> None:
    """--price-per-hour or --instance-type (tune, report)."""
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--price-per-hour", type=positive_float, metavar="USD", help="what the host costs per hour")
    g.add_argument("--instance-type", metavar="TYPE", help="an AWS instance type (bundled on-demand prices)")


def collector_options(args, host_wide: bool):
    """The CollectorOptions the arguments of `run` or `collect` ask for."""
    from ..bpf.families import FAMILIES
    from ..collect import CollectorOptions

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
