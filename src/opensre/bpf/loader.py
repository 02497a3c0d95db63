"""open -> configure -> load -> attach, ring buffer polling, map access, teardown.

The four steps stay visible (libbpf-bootstrap style); every failure is a typed
error from opensre.errors carrying what the kernel said.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path
from typing import Callable

from ..errors import BpfAttachError, BpfLoadError, FeatureUnsupported
from . import btf as btfmod
from . import libbpf
from .features import require_basics

OBJECT_DIR = Path(__file__).parent / "objects"


def object_path(name: str) -> Path:
    """Where the compiled object lives (OPENSRE_BPF_DIR overrides, for tests)."""
    base = Path(os.environ.get("OPENSRE_BPF_DIR", OBJECT_DIR))
    p = base / f"{name}.bpf.o"
    if not p.exists():
        raise FeatureUnsupported(f"BPF object {p} is missing", "build it from source: make bpf")
    return p


class Map:
    """A loaded map, by fd. Keys and values are bytes-like (ctypes objects work)."""

    def __init__(self, name: str, fd: int, max_entries: int):
        self.name, self.fd, self.max_entries = name, fd, max_entries

    def update(self, key, value, flags: int = 0) -> None:
        l = libbpf.lib()
        k, v = _buf(key), _buf(value)
        if l.bpf_map_update_elem(self.fd, k, v, flags) != 0:
            e = libbpf.errno()
            raise OSError(e, f"update of map {self.name} failed: {os.strerror(e)}")

    def lookup(self, key, value_size: int) -> bytes | None:
        l = libbpf.lib()
        out = ctypes.create_string_buffer(value_size)
        if l.bpf_map_lookup_elem(self.fd, _buf(key), out) != 0:
            return None
        return out.raw

    def delete(self, key) -> bool:
        return libbpf.lib().bpf_map_delete_elem(self.fd, _buf(key)) == 0

    def keys(self, key_size: int) -> list[bytes]:
        l = libbpf.lib()
        out, cur = [], None
        nxt = ctypes.create_string_buffer(key_size)
        while l.bpf_map_get_next_key(self.fd, cur, nxt) == 0:
            out.append(nxt.raw)
            cur = ctypes.create_string_buffer(nxt.raw, key_size)
        return out

    def percpu_sum_u64(self, index: int) -> int:
        """Sum of a u64 slot of a per-CPU array over all possible CPUs."""
        ncpu = libbpf.lib().libbpf_num_possible_cpus()
        raw = self.lookup(ctypes.c_uint32(index), 8 * ncpu)
        if raw is None:
            return 0
        return sum(int.from_bytes(raw[i * 8:(i + 1) * 8], "little") for i in range(ncpu))


def _buf(x):
    if x is None:
        return None
    if isinstance(x, (bytes, bytearray)):
        return ctypes.create_string_buffer(bytes(x), len(x))
    return ctypes.byref(x)


class RingBuffer:
    """libbpf ring_buffer with a Python callback receiving each record as bytes.

    The kernel side submits without wakeups, so `poll` mostly times out and then
    `consume` drains whatever accumulated: one Python wakeup per interval, not per event.
    """

    def __init__(self, fd: int, on_record: Callable[[bytes], None]):
        def cb(_ctx, data, size):
            on_record(ctypes.string_at(data, size))
            return 0

        self._cb = libbpf.RB_SAMPLE_FN(cb)  # keep a reference: C holds the pointer
        self.ptr = libbpf.lib().ring_buffer__new(fd, self._cb, None, None)
        if not self.ptr:
            raise FeatureUnsupported(f"ring buffer setup failed: {os.strerror(libbpf.errno())}")

    def poll(self, timeout_ms: int) -> int:
        l = libbpf.lib()
        n = l.ring_buffer__poll(self.ptr, timeout_ms)
        if n < 0 and -n != 4:  # EINTR is a signal arriving, not an error
            raise OSError(-n, "ring buffer poll failed")
        m = l.ring_buffer__consume(self.ptr)
        return max(n, 0) + max(m, 0)

    def free(self):
        if self.ptr:
            libbpf.lib().ring_buffer__free(self.ptr)
            self.ptr = None


class BpfObject:
    """One BPF ELF object: open() -> configure -> load() -> attach() -> close()."""

    def __init__(self, name: str, *, btf_path: str | None = None, check: bool = True):
        # a BTF file for kernels built without it (e.g. from btfhub): OPENSRE_BTF
        btf_path = btf_path or os.environ.get("OPENSRE_BTF")
        if check:
            require_basics(btf_path)
        self.name = name
        self.path = object_path(name)
        self._links: list[int] = []
        self._link_by_prog: dict[str, int] = {}
        self._rings: list[RingBuffer] = []
        self.loaded = False
        l = libbpf.lib()
        opts = libbpf.ObjectOpenOpts()
        opts.sz = ctypes.sizeof(opts)
        if btf_path:
            opts.btf_custom_path = btf_path.encode()
        libbpf.take_log()
        self.obj = l.bpf_object__open_file(str(self.path).encode(), ctypes.byref(opts))
        if not self.obj:
            e = libbpf.errno()
            raise BpfLoadError(name, e, libbpf.take_log(), "the object file is damaged: rebuild it with make bpf")

    # -- configure (before load) ---------------------------------------------
    def programs(self) -> dict[str, int]:
        l, out, p = libbpf.lib(), {}, None
        while True:
            p = l.bpf_object__next_program(self.obj, p)
            if not p:
                return out
            out[l.bpf_program__name(p).decode()] = p

    def _maps(self) -> dict[str, int]:
        l, out, m = libbpf.lib(), {}, None
        while True:
            m = l.bpf_object__next_map(self.obj, m)
            if not m:
                return out
            out[l.bpf_map__name(m).decode()] = m

    def set_rodata(self, **values: int) -> None:
        """Set `const volatile` globals before load, located through the object's BTF."""
        l = libbpf.lib()
        rodata = next((m for n, m in self._maps().items() if n.endswith(".rodata")), None)
        if rodata is None:
            raise KeyError("object has no .rodata")
        size = ctypes.c_size_t()
        base = l.bpf_map__initial_value(rodata, ctypes.byref(size))
        vars_ = btfmod.datasec_vars(l.bpf_object__btf(self.obj), ".rodata")
        for k, v in values.items():
            f = vars_[k]
            ctypes.memmove(base + f.offset, int(v).to_bytes(f.size, "little", signed=False), f.size)

    def set_max_entries(self, map_name: str, n: int) -> None:
        m = self._maps()[map_name]
        if libbpf.lib().bpf_map__set_max_entries(m, n) != 0:
            raise ValueError(f"cannot size map {map_name} to {n}")

    def set_map_type(self, map_name: str, map_type: int, max_entries: int, flags: int = 0) -> None:
        """Retype a map before load (e.g. task storage -> hash on kernels without it).
        `flags` replace the declared ones (0: a preallocated hash)."""
        m = self._maps()[map_name]
        l = libbpf.lib()
        if (l.bpf_map__set_type(m, map_type) != 0 or l.bpf_map__set_max_entries(m, max_entries) != 0
                or l.bpf_map__set_map_flags(m, flags) != 0):
            raise ValueError(f"cannot retype map {map_name}")

    def share_maps(self, owner: "BpfObject", names: list[str]) -> None:
        """Use `owner`'s instances of these maps (one tracked set, one ring for all)."""
        l = libbpf.lib()
        mine = self._maps()
        for n in names:
            if n in mine and l.bpf_map__reuse_fd(mine[n], owner.map(n).fd) != 0:
                raise BpfLoadError(self.name, libbpf.errno(), libbpf.take_log(), f"cannot share map {n}")

    def disable(self, program: str) -> None:
        libbpf.lib().bpf_program__set_autoload(self.programs()[program], False)

    # -- load -----------------------------------------------------------------
    def load(self) -> None:
        libbpf.take_log()
        rc = libbpf.lib().bpf_object__load(self.obj)
        if rc != 0:
            log = libbpf.take_log()
            m = re.findall(r"prog '([^']+)'", log)
            raise BpfLoadError(m[-1] if m else self.name, -rc, log)
        self.loaded = True

    # -- attach ---------------------------------------------------------------
    def attach(self) -> None:
        l = libbpf.lib()
        for name, p in self.programs().items():
            if l.bpf_program__fd(p) < 0:
                continue  # autoload disabled
            libbpf.take_log()
            link = l.bpf_program__attach(p)
            if not link:
                e = libbpf.errno()
                sec = l.bpf_program__section_name(p).decode()
                raise BpfAttachError(
                    f"cannot attach {name} ({sec}): {os.strerror(e)}",
                    "this kernel lacks the hook: run `opensre doctor`")
            self._links.append(link)
            self._link_by_prog[name] = link

    def read_iter(self, program: str) -> bytes:
        """Run an attached iterator program once and return what it wrote."""
        l = libbpf.lib()
        fd = l.bpf_iter_create(l.bpf_link__fd(self._link_by_prog[program]))
        if fd < 0:
            raise OSError(libbpf.errno(), f"cannot create iterator for {program}")
        chunks = []
        try:
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                chunks.append(b)
        finally:
            os.close(fd)
        return b"".join(chunks)

    def map(self, name: str) -> Map:
        l = libbpf.lib()
        m = self._maps()[name]
        return Map(name, l.bpf_map__fd(m), l.bpf_map__max_entries(m))

    def ring_buffer(self, map_name: str, on_record: Callable[[bytes], None]) -> RingBuffer:
        rb = RingBuffer(self.map(map_name).fd, on_record)
        self._rings.append(rb)
        return rb

    # -- teardown -------------------------------------------------------------
    def close(self) -> None:
        """Detach and unload. Nothing is pinned, so a killed process detaches too."""
        l = libbpf.lib()
        for rb in self._rings:
            rb.free()
        self._rings.clear()
        for link in self._links:
            l.bpf_link__destroy(link)
        self._links.clear()
        self._link_by_prog.clear()
        if self.obj:
            l.bpf_object__close(self.obj)
            self.obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
