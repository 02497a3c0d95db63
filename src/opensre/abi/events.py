"""Python mirror of bpf/include/abi.h, and decoding of ring-buffer records.

tests/unit/test_abi_btf.py compares every struct here with the compiled object's
BTF: change abi.h and this file together.
"""

from __future__ import annotations

import ctypes
import struct

ABI_VERSION = 2
COMM_LEN = 16
FILENAME_MAX = 256
ARGV_MAX = 8192  # OSRE_ARGV_MAX: argv bytes kept per exec, in the kernel and from /proc
CWD_MAX = 512

EV_EXEC, EV_EXIT, EV_OOM, EV_CONN = 2, 3, 4, 5
TRACKED, DENIED = 1, 2
ARGV_TRUNCATED, FILENAME_TRUNCATED, EXEC_DENIED, CWD_TRUNCATED = 1, 2, 4, 8
EXIT_NO_ACC, EXIT_OOM_KILLED, EXIT_HWM_SAMPLED, EXIT_NO_MM = 1, 2, 4, 8
CONN_ACTIVE, CONN_OPEN = 1, 2

(STAT_EVENTS, _STAT_RESERVED, STAT_DROP_EXEC, STAT_DROP_EXIT, STAT_TRACK_FULL, STAT_ACC_FULL,
 STAT_DROP_OOM, STAT_DROP_CONN) = range(8)
STAT_MAX = 8

u16, u32, s32, u64 = ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64


class Hdr(ctypes.Structure):
    _fields_ = [("type", u16), ("version", u16), ("size", u32), ("ts_ns", u64)]


class Ident(ctypes.Structure):
    _fields_ = [("pid", u32), ("ppid", u32), ("start_ns", u64), ("parent_start_ns", u64), ("uid", u32),
                ("gid", u32), ("comm", ctypes.c_char * COMM_LEN)]


class Ctx(ctypes.Structure):
    _fields_ = [("cgroup_id", u64), ("memcg_v1_id", u64), ("pidns", u32), ("mntns", u32),
                ("netns", u32), ("_pad", u32)]


class ExecEvent(ctypes.Structure):
    _fields_ = [("hdr", Hdr), ("id", Ident), ("ctx", Ctx), ("flags", u32), ("argv_len", u32),
                ("argv_total", u64), ("cwd_len", u32), ("_pad", u32),
                ("filename", ctypes.c_char * FILENAME_MAX), ("cwd", ctypes.c_char * CWD_MAX),
                ("argv", ctypes.c_char * ARGV_MAX)]


class ExecHead(ctypes.Structure):
    """ExecEvent up to argv: records are trimmed to their argv, so they are decoded
    with this and argv is sliced from the bytes."""

    _fields_ = ExecEvent._fields_[:-1]


class ExitEvent(ctypes.Structure):
    _fields_ = [("hdr", Hdr), ("id", Ident), ("ctx", Ctx), ("end_ns", u64), ("status", s32), ("flags", u32),
                ("sum_exec_ns", u64), ("utime_ns", u64), ("stime_ns", u64),
                ("nvcsw", u64), ("nivcsw", u64), ("min_flt", u64), ("maj_flt", u64),
                ("maxrss_pages", u64), ("hiwater_pages", u64),
                ("rchar", u64), ("wchar", u64), ("syscr", u64), ("syscw", u64),
                ("read_bytes", u64), ("write_bytes", u64), ("cancelled_write_bytes", u64),
                ("threads", u32), ("_pad", u32),
                ("net_tx_bytes", u64), ("net_rx_bytes", u64), ("runq_wait_ns", u64),
                ("blocked_io_ns", u64), ("sleep_ns", u64), ("rss_exit_pages", u64)]


class OomEvent(ctypes.Structure):
    _fields_ = [("hdr", Hdr), ("id", Ident), ("rss_pages", u64), ("memcg_limit_pages", u64),
                ("memcg_usage_pages", u64), ("memcg_id", u64)]


class ConnEvent(ctypes.Structure):
    _fields_ = [("hdr", Hdr), ("pid", u32), ("flags", u32), ("start_ns", u64), ("open_ns", u64),
                ("close_ns", u64), ("bytes_sent", u64), ("bytes_received", u64),
                ("family", u16), ("sport", u16), ("dport", u16), ("_pad", u16),
                ("saddr", ctypes.c_uint8 * 16), ("daddr", ctypes.c_uint8 * 16)]


class ConnVal(ctypes.Structure):
    """value of net.bpf.c's `conns` map (open connections; struct conn_val in abi.h)"""

    _fields_ = [("pid", u32), ("flags", u32), ("start_ns", u64), ("open_ns", u64),
                ("family", u16), ("sport", u16), ("dport", u16), ("_pad", u16),
                ("saddr", ctypes.c_uint8 * 16), ("daddr", ctypes.c_uint8 * 16)]


class TaskSample(ctypes.Structure):
    """written by iter.bpf.c, one per thread of a tracked process"""

    _fields_ = [("pid", u32), ("tid", u32), ("start_ns", u64), ("sum_exec_ns", u64), ("run_delay_ns", u64),
                ("blocked_ns", u64), ("sleep_ns", u64),
                ("rchar", u64), ("wchar", u64), ("read_bytes", u64), ("write_bytes", u64),
                ("dead_exec_ns", u64), ("rss_pages", u64),
                ("acc_rchar", u64), ("acc_wchar", u64), ("acc_read_bytes", u64), ("acc_write_bytes", u64),
                ("acc_run_delay_ns", u64), ("acc_blocked_ns", u64), ("acc_sleep_ns", u64),
                ("net_tx_bytes", u64), ("net_rx_bytes", u64)]


class TrackVal(ctypes.Structure):
    """value of the `tracked` map (struct track_val in abi.h)"""

    _fields_ = [("start_ns", u64), ("state", u32), ("ppid", u32), ("parent_start_ns", u64),
                ("nthreads", u32), ("flags", u32), ("exec_maxrss", u64)]


# C struct name in BTF -> mirror, for the layout test: every struct of abi.h
MIRRORS = {
    "osre_hdr": Hdr, "osre_ident": Ident, "osre_ctx": Ctx,
    "osre_exec_event": ExecEvent, "osre_exit_event": ExitEvent, "track_val": TrackVal,
    "osre_oom_event": OomEvent, "osre_conn_event": ConnEvent, "osre_task_sample": TaskSample,
    "conn_val": ConnVal,
}
# the family object whose BTF holds a struct only it uses (the others: proc's)
MIRROR_OBJECT = {"conn_val": "net"}
DECODERS = {EV_EXEC: ExecHead, EV_EXIT: ExitEvent, EV_OOM: OomEvent, EV_CONN: ConnEvent}


_CODES = {ctypes.c_uint8: "B", ctypes.c_uint16: "H", ctypes.c_uint32: "I", ctypes.c_int32: "i", ctypes.c_uint64: "Q"}


def flat_layout(cls, upto: str | None = None) -> tuple[str, tuple[str, ...]]:
    """A mirror's layout as a `struct` format (little-endian, explicit padding) and
    the dotted names of its leaf fields in order ("id.pid", ...; arrays are one
    bytes field), up to (not including) top-level field `upto`. Decoding a record
    with it makes one tuple instead of a ctypes object whose every field access
    costs an attribute lookup: the collector's hot path (collect/decode.py)."""
    fmt: list[str] = ["<"]
    names: list[str] = []
    pos = 0

    def walk(c, base: int, prefix: str) -> None:
        nonlocal pos
        for name, typ in c._fields_:
            if prefix == "" and name == upto:
                return
            off = base + getattr(c, name).offset
            if off > pos:
                fmt.append(f"{off - pos}x")
                pos = off
            if isinstance(typ, type) and issubclass(typ, ctypes.Structure):
                walk(typ, off, prefix + name + ".")
                end = off + ctypes.sizeof(typ)
                if end > pos:
                    fmt.append(f"{end - pos}x")
                    pos = end
                continue
            fmt.append(f"{ctypes.sizeof(typ)}s" if issubclass(typ, ctypes.Array) else _CODES[typ])
            names.append(prefix + name)
            pos = off + ctypes.sizeof(typ)

    walk(cls, 0, "")
    return "".join(fmt), tuple(names)


_EXIT_FMT, EXIT_FIELDS = flat_layout(ExitEvent)
_EXEC_FMT, EXEC_FIELDS = flat_layout(ExecHead, upto="filename")
_SAMPLE_FMT, SAMPLE_FIELDS = flat_layout(TaskSample)
EXIT_STRUCT, EXEC_STRUCT, SAMPLE_STRUCT = struct.Struct(_EXIT_FMT), struct.Struct(_EXEC_FMT), struct.Struct(_SAMPLE_FMT)
assert SAMPLE_STRUCT.size == ctypes.sizeof(TaskSample)  # iterated record by record
FILENAME_OFF = ExecEvent.filename.offset
EXIT_SIZE, EXEC_HEAD_SIZE = ctypes.sizeof(ExitEvent), ctypes.sizeof(ExecHead)


def cstr(b: bytes) -> bytes:
    """A C char array's bytes up to its first NUL (what ctypes gives for one)."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


class AbiMismatch(ValueError):
    pass


def decode(raw: bytes):
    """bytes from the ring -> (type, struct). One decoder per event type (tetragon style)."""
    typ, version = raw[0] | raw[1] << 8, raw[2] | raw[3] << 8  # struct osre_hdr, little-endian
    if version != ABI_VERSION:
        raise AbiMismatch(f"event ABI version {version}, expected {ABI_VERSION}: rebuild with make bpf")
    cls = DECODERS.get(typ)
    if cls is None or len(raw) < ctypes.sizeof(cls):
        raise AbiMismatch(f"unknown or short event type {typ} ({len(raw)} bytes)")
    return typ, cls.from_buffer_copy(raw)


def join_cwd(buf: bytes) -> str:
    """Leaf-first NUL-separated names (as read_cwd() walks up) -> an absolute path."""
    names = [n.decode("utf-8", "replace") for n in buf.split(b"\0") if n]
    return "/" + "/".join(reversed(names))


def split_argv(buf: bytes) -> list[str]:
    """NUL-separated argv bytes -> list; a truncated last arg is kept as is."""
    if buf.endswith(b"\0"):
        buf = buf[:-1]
    return [a.decode("utf-8", "replace") for a in buf.split(b"\0")] if buf else []
