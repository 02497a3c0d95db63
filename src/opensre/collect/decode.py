"""Record layouts and their unpacking: the collector's hot path.

Exec and exit records (all but a handful) are unpacked to one tuple each with the
struct formats abi.flat_layout derives from the ctypes mirrors, not to ctypes
objects; their handlers (proctable.py) take the fields by position, in the order
checked here at import. The rare records (OOM kills, connections) go through
abi.decode and become model Events here.
"""

from __future__ import annotations

import resource
from typing import Callable

from ..abi import events as abi
from ..model import Event

PAGE = resource.getpagesize()

ARGV_OFF = abi.ExecEvent.argv.offset
CWD_OFF = abi.ExecEvent.cwd.offset
FILENAME_OFF, FILENAME_END = abi.FILENAME_OFF, abi.FILENAME_OFF + abi.FILENAME_MAX
SAMPLE_SIZE, SAMPLE_ITER = abi.SAMPLE_STRUCT.size, abi.SAMPLE_STRUCT.iter_unpack

# the handlers unpack these tuples by position: the order they were written for
_EXEC_ORDER = ("hdr.type", "hdr.version", "hdr.size", "hdr.ts_ns", "id.pid", "id.ppid", "id.start_ns",
               "id.parent_start_ns", "id.uid", "id.gid", "id.comm", "ctx.cgroup_id", "ctx.memcg_v1_id", "ctx.pidns",
               "ctx.mntns", "ctx.netns", "ctx._pad", "flags", "argv_len", "argv_total", "cwd_len", "_pad")
_EXIT_ORDER = _EXEC_ORDER[:17] + (
    "end_ns", "status", "flags", "sum_exec_ns", "utime_ns", "stime_ns", "nvcsw", "nivcsw", "min_flt", "maj_flt",
    "maxrss_pages", "hiwater_pages", "rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes",
    "cancelled_write_bytes", "threads", "_pad", "net_tx_bytes", "net_rx_bytes", "runq_wait_ns", "blocked_io_ns",
    "sleep_ns", "rss_exit_pages")
_SAMPLE_ORDER = ("pid", "tid", "start_ns", "sum_exec_ns", "run_delay_ns", "blocked_ns", "sleep_ns", "rchar", "wchar",
                 "read_bytes", "write_bytes", "dead_exec_ns", "rss_pages", "acc_rchar", "acc_wchar", "acc_read_bytes",
                 "acc_write_bytes", "acc_run_delay_ns", "acc_blocked_ns", "acc_sleep_ns", "net_tx_bytes",
                 "net_rx_bytes")
if (abi.EXEC_FIELDS, abi.EXIT_FIELDS, abi.SAMPLE_FIELDS) != (_EXEC_ORDER, _EXIT_ORDER, _SAMPLE_ORDER):
    raise ImportError("abi/events.py changed: update the unpacking in collect/proctable.py and "
                      "collect/sampling.py with it (then the field orders in collect/decode.py)")


def split_cpu(sum_exec_ns: int, utime: int, stime: int) -> tuple[int, int]:
    """Precise runtime split by the tick-sampled user/system ratio, as the kernel's
    cputime_adjust() does for getrusage()."""
    if stime == 0:
        return sum_exec_ns, 0
    if utime == 0:
        return 0, sum_exec_ns
    s = sum_exec_ns * stime // (utime + stime)
    return sum_exec_ns - s, s


def decode_status(status: int) -> tuple[int | None, int | None, bool]:
    """wait(2) status -> (exit_code, signal, core_dumped)."""
    sig = status & 0x7F
    if sig == 0:
        return (status >> 8) & 0xFF, None, False
    return None, sig, bool(status & 0x80)


def dispatch(records: list[bytes], on_exec: Callable[[tuple, bytes], None], on_exit: Callable[[tuple], None],
             on_oom: Callable, on_conn: Callable) -> int:
    """Hand each record to its handler, in order; returns how many could not be
    decoded (another ABI version, a short record). One call per record, no more:
    this loop runs for every event of a fork/exec storm."""
    version, ev_exit, ev_exec = abi.ABI_VERSION, abi.EV_EXIT, abi.EV_EXEC
    exit_size, exec_head_size = abi.EXIT_SIZE, abi.EXEC_HEAD_SIZE
    exit_unpack, exec_unpack = abi.EXIT_STRUCT.unpack_from, abi.EXEC_STRUCT.unpack_from
    errors = 0
    for rec in records:
        # struct osre_hdr, little-endian: type u16, version u16
        if rec[2] == version and not rec[3] and not rec[1]:
            typ, n = rec[0], len(rec)
            if typ == ev_exit and n >= exit_size:
                on_exit(exit_unpack(rec))
                continue
            if typ == ev_exec and n >= exec_head_size:
                on_exec(exec_unpack(rec), rec)
                continue
        try:
            typ, ev = abi.decode(rec)
        except abi.AbiMismatch:
            errors += 1
            continue
        if typ == abi.EV_OOM:
            on_oom(ev)
        elif typ == abi.EV_CONN:
            on_conn(ev)
        else:  # pragma: no cover - a version or size the fast path refused passed decode()
            errors += 1
    return errors


def oom_event(ev, offset: int, memcg_path: str | None) -> Event:
    """An OOM-kill record (abi.OomEvent) as the event stored."""
    limit = ev.memcg_limit_pages * PAGE if ev.memcg_limit_pages else None
    return Event("oom_kill", ev.id.pid, ev.id.start_ns + offset, ev.hdr.ts_ns + offset, {
        "comm": ev.id.comm.decode("utf-8", "replace"), "rss_bytes": ev.rss_pages * PAGE, "memcg_limit_bytes": limit,
        "memcg_usage_bytes": ev.memcg_usage_pages * PAGE if limit else None,
        "memcg_id": ev.memcg_id, "memcg_path": memcg_path})


def conn_event(ev, offset: int, still_open: bool = False) -> Event:
    """A connection record (abi.ConnEvent) as the event stored; `still_open`: one
    read from the conns map at the end, without a close or byte counts."""
    import ipaddress

    fam = 4 if ev.family == 2 else 6
    n = 4 if fam == 4 else 16
    addr = lambda b: str(ipaddress.ip_address(bytes(b[:n])))  # noqa: E731
    close = None if still_open else ev.close_ns + offset
    opened = ev.open_ns + offset
    return Event("tcp_connection", ev.pid, ev.start_ns + offset, opened, {
        "family": f"ipv{fam}", "local_addr": addr(ev.saddr), "local_port": ev.sport,
        "remote_addr": addr(ev.daddr), "remote_port": ev.dport,
        "direction": "outbound" if ev.flags & abi.CONN_ACTIVE else "inbound",
        "open_time_ns": opened, "close_time_ns": close,
        "duration_ns": (close - opened) if close else None,
        "bytes_sent": None if still_open else ev.bytes_sent,
        "bytes_received": None if still_open else ev.bytes_received})


def open_conn_record(c) -> abi.ConnEvent:
    """A conns-map value (abi.ConnVal) of a connection still open, as its record."""
    ev = abi.ConnEvent(pid=c.pid, flags=c.flags | abi.CONN_OPEN, start_ns=c.start_ns, open_ns=c.open_ns,
                       family=c.family, sport=c.sport, dport=c.dport)
    ev.saddr[:], ev.daddr[:] = c.saddr[:], c.daddr[:]
    return ev
