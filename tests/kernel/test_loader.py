"""The loader against the real kernel: a verifier rejection is a typed, readable
error; a good object loads, attaches, exposes maps and tears down cleanly."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
from pathlib import Path

import pytest

from opensre.bpf import BpfObject
from opensre.errors import BpfLoadError

ROOT = Path(__file__).resolve().parents[2]

BAD = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } m SEC(".maps");
SEC("tp_btf/sched_process_fork")
int bad_prog(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&m, &k);
	return *v; /* no NULL check: the verifier must refuse this */
}
"""


def load_bad(source: str, tmp_path, monkeypatch) -> BpfLoadError:
    """Compile `source` as bad.bpf.o and return the error its load raises."""
    (tmp_path / "bad.bpf.c").write_text(source)
    subprocess.run(["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{ROOT}/build",
                    "-c", str(tmp_path / "bad.bpf.c"), "-o", str(tmp_path / "bad.bpf.o")], check=True)
    monkeypatch.setenv("OPENSRE_BPF_DIR", str(tmp_path))
    obj = BpfObject("bad")
    with pytest.raises(BpfLoadError) as ei:
        obj.load()
    obj.close()
    return ei.value


@pytest.mark.guest
def test_verifier_rejection_is_typed_and_readable(tmp_path, monkeypatch):
    e = load_bad(BAD, tmp_path, monkeypatch)
    assert e.program == "bad_prog" and e.errno == errno.EACCES
    assert "invalid mem access" in str(e) or "invalid mem access" in e.log
    assert "bad_prog" in e.one_line() and e.hint
    assert "\n" not in e.one_line()


@pytest.mark.guest
def test_load_attach_maps_and_teardown():
    from opensre.abi.events import TrackVal
    from opensre.bpf.families import CORE, KernelBtf, load_family

    k = KernelBtf()
    loaded = load_family(CORE, k, rodata=dict(host_wide=0, wakeup_bytes=4096))
    k.close()
    with loaded.obj as o:
        size = ctypes.sizeof(TrackVal)
        tracked = o.map("tracked")
        tracked.update(ctypes.c_uint32(4242), bytes(size))
        assert tracked.keys(4) == [(4242).to_bytes(4, "little")]
        assert tracked.delete(ctypes.c_uint32(4242))
        assert tracked.lookup(ctypes.c_uint32(4242), size) is None
        assert {"on_fork", "on_exec", "on_exit", "on_free"} <= set(o.programs())
        fds = len(os.listdir("/proc/self/fd"))
    assert len(os.listdir("/proc/self/fd")) < fds  # links, maps and programs closed


LONG_BAD = BAD.replace("int bad_prog(void *ctx)\n{", """int bad_prog(void *ctx)
{
	volatile __u64 acc = 0;
#pragma unroll
	for (int i = 0; i < 400; i++)
		acc += i * 7; /* a long path: the verifier log runs to tens of KiB */""").replace(
    "return *v;", "return *v + acc;")


def test_a_long_verifier_log_arrives_whole(tmp_path, monkeypatch):
    """libbpf hands the log over in one message: it must not be cut (a fixed 8 KiB
    buffer once dropped the verifier's last line, the one that says why)."""
    assert "acc += i * 7" in LONG_BAD
    e = load_bad(LONG_BAD, tmp_path, monkeypatch)
    assert len(e.log) > 16384, len(e.log)
    assert "invalid mem access" in str(e), str(e)  # the tail, from the end of the log
