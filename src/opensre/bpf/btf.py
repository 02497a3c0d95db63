"""Read struct layouts and .rodata variable offsets from BTF through libbpf.

Used to configure rodata before load, and by tests to check the Python mirror of
abi.h against the compiled object (habit 1: drift fails a test).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from . import libbpf

KIND_PTR = 2
KIND_STRUCT = 4
KIND_UNION = 5
KIND_TYPEDEF = 8
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32), ("size_or_type", ctypes.c_uint32)]


class _Member(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32), ("offset", ctypes.c_uint32)]


class _VarSecinfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("offset", ctypes.c_uint32), ("size", ctypes.c_uint32)]


@dataclass(frozen=True)
class Field:
    name: str
    offset: int  # bytes
    size: int


def _entries(btf, type_id: int, entry_cls):
    p = libbpf.lib().btf__type_by_id(btf, type_id)
    t = _BtfType.from_address(p)
    vlen = t.info & 0xFFFF
    base = p + ctypes.sizeof(_BtfType)
    return t, [entry_cls.from_address(base + i * ctypes.sizeof(entry_cls)) for i in range(vlen)]


def _name(btf, off: int) -> str:
    return libbpf.lib().btf__name_by_offset(btf, off).decode()


def struct_layout(btf, name: str) -> tuple[int, list[Field]]:
    """(size, fields) of `struct name` in a libbpf `struct btf *`."""
    l = libbpf.lib()
    tid = l.btf__find_by_name_kind(btf, name.encode(), KIND_STRUCT)
    if tid < 0:
        raise KeyError(f"struct {name} not in BTF")
    t, members = _entries(btf, tid, _Member)
    kflag = t.info >> 31
    fields = []
    for m in members:
        bit_off = m.offset & 0xFFFFFF if kflag else m.offset
        fields.append(Field(_name(btf, m.name_off), bit_off // 8, l.btf__resolve_size(btf, m.type)))
    return t.size_or_type, fields


def func_proto_params(btf, type_id: int) -> int:
    """Parameters of the function prototype that `type_id` names, through typedefs
    and pointers (a tracepoint's `btf_trace_<name>` typedef); -1 if it names none."""
    l = libbpf.lib()
    for _ in range(8):
        p = l.btf__type_by_id(btf, type_id)
        if not p:
            return -1
        t = _BtfType.from_address(p)
        kind = (t.info >> 24) & 0x1F
        if kind == KIND_FUNC_PROTO:
            return t.info & 0xFFFF
        if kind not in (KIND_TYPEDEF, KIND_PTR, KIND_FUNC):
            return -1
        type_id = t.size_or_type
    return -1


def datasec_vars(btf, section: str) -> dict[str, Field]:
    """Variables of a data section ('.rodata'), with their byte offsets."""
    l = libbpf.lib()
    tid = l.btf__find_by_name_kind(btf, section.encode(), KIND_DATASEC)
    if tid < 0:
        return {}
    _, infos = _entries(btf, tid, _VarSecinfo)
    out = {}
    for vi in infos:
        var = _BtfType.from_address(l.btf__type_by_id(btf, vi.type))
        name = _name(btf, var.name_off)
        out[name] = Field(name, vi.offset, vi.size)
    return out


class BtfFile:
    """BTF parsed from an ELF object or raw BTF file, without loading anything."""

    def __init__(self, path: str):
        self.ptr = libbpf.lib().btf__parse(path.encode(), None)
        if not self.ptr:
            raise FileNotFoundError(f"cannot parse BTF from {path} (errno {libbpf.errno()})")

    def struct(self, name: str):
        return struct_layout(self.ptr, name)

    def close(self):
        if self.ptr:
            libbpf.lib().btf__free(self.ptr)
            self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
