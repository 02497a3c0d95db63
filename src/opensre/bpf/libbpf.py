"""ctypes declarations for the system libbpf.so.1 (>= 1.0): one table, nothing else.

libbpf 1.x returns NULL/negative errno and sets errno; we read it with use_errno=True.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from ..errors import FeatureUnsupported

c_void_p, c_char_p, c_int, c_uint32, c_size_t, c_bool = (
    ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_bool)


class ObjectOpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts as of libbpf 1.1 (sz makes newer fields optional)."""

    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_char_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
    ]


PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
RB_SAMPLE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)

# name: (restype, argtypes)
_DECLS = {
    "libbpf_set_print": (c_void_p, [PRINT_FN]),
    "bpf_object__open_file": (c_void_p, [c_char_p, ctypes.POINTER(ObjectOpenOpts)]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__btf": (c_void_p, [c_void_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_program__section_name": (c_char_p, [c_void_p]),
    "bpf_program__set_autoload": (c_int, [c_void_p, c_bool]),
    "bpf_program__attach": (c_void_p, [c_void_p]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "bpf_link__fd": (c_int, [c_void_p]),
    "bpf_iter_create": (c_int, [c_int]),
    "bpf_map__reuse_fd": (c_int, [c_void_p, c_int]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, c_uint32]),
    "bpf_map__set_type": (c_int, [c_void_p, c_int]),
    "bpf_map__set_map_flags": (c_int, [c_void_p, c_uint32]),
    "bpf_map__max_entries": (c_uint32, [c_void_p]),
    "bpf_map__initial_value": (c_void_p, [c_void_p, ctypes.POINTER(c_size_t)]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "ring_buffer__new": (c_void_p, [c_int, RB_SAMPLE_FN, c_void_p, c_void_p]),
    "ring_buffer__poll": (c_int, [c_void_p, c_int]),
    "ring_buffer__consume": (c_int, [c_void_p]),
    "ring_buffer__free": (None, [c_void_p]),
    "libbpf_probe_bpf_map_type": (c_int, [c_int, c_void_p]),
    "libbpf_num_possible_cpus": (c_int, []),
    "btf__parse": (c_void_p, [c_char_p, c_void_p]),
    "btf__free": (None, [c_void_p]),
    "btf__find_by_name_kind": (ctypes.c_int32, [c_void_p, c_char_p, c_uint32]),
    "btf__type_by_id": (c_void_p, [c_void_p, c_uint32]),
    "btf__name_by_offset": (c_char_p, [c_void_p, c_uint32]),
    "btf__resolve_size": (ctypes.c_int64, [c_void_p, c_uint32]),
    "libbpf_major_version": (c_uint32, []),
    "libbpf_minor_version": (c_uint32, []),
}

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_RINGBUF = 27
BPF_MAP_TYPE_TASK_STORAGE = 29

_lib = None
_lock = threading.Lock()
# per thread: families load concurrently (Collector.start), each load reads its own log
_tls = threading.local()


def _log_lines() -> list[str]:
    lines = getattr(_tls, "lines", None)
    if lines is None:
        lines = _tls.lines = []
    return lines

_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]


# va_list is at most 32 bytes (x86-64: 24, arm64: 32); copying it is what
# va_copy does there, so one copy measures the message and the other prints it
_VA_LIST_COPY = 32


@PRINT_FN
def _print_cb(level, fmt, va):  # pragma: no cover - called from C
    # libbpf hands the whole verifier log over in one message: size the buffer
    # to it (a fixed buffer cut off the verifier's final, explaining line)
    probe = ctypes.create_string_buffer(ctypes.string_at(va, _VA_LIST_COPY), _VA_LIST_COPY)
    n = _libc.vsnprintf(None, 0, fmt, probe)
    buf = ctypes.create_string_buffer(max(n, 0) + 1)
    _libc.vsnprintf(buf, len(buf), fmt, va)
    _log_lines().append(buf.value.decode("utf-8", "replace"))
    return 0


def lib():
    """The loaded libbpf, with the print callback routed into `take_log()`."""
    global _lib
    with _lock:
        if _lib is None:
            name = ctypes.util.find_library("bpf") or "libbpf.so.1"
            try:
                l = ctypes.CDLL("libbpf.so.1", use_errno=True)
            except OSError:
                try:
                    l = ctypes.CDLL(name, use_errno=True)
                except OSError as e:
                    raise FeatureUnsupported(
                        f"libbpf.so.1 not found ({e})", "install it: apt-get install libbpf1") from None
            for fn, (res, args) in _DECLS.items():
                f = getattr(l, fn)
                f.restype, f.argtypes = res, args
            l.libbpf_set_print(_print_cb)
            _lib = l
    return _lib


def take_log() -> str:
    """libbpf's messages to this thread since its last call (verifier logs arrive here)."""
    lines = _log_lines()
    out = "".join(lines)
    lines.clear()
    return out


def errno() -> int:
    return ctypes.get_errno()


def version() -> str:
    l = lib()
    return f"{l.libbpf_major_version()}.{l.libbpf_minor_version()}"
