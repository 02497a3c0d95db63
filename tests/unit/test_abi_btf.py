"""The Python mirror of abi.h must match the compiled object's BTF, field by field,
and the object must come from the committed source."""

import ctypes
import hashlib
import re
from pathlib import Path

import pytest

from opensre.abi import events as abi
from opensre.bpf.btf import BtfFile
from opensre.bpf.loader import object_path

ROOT = Path(__file__).resolve().parents[2]


MIRRORS = abi.MIRRORS
OWNER = abi.MIRROR_OBJECT  # structs private to one family's object


@pytest.mark.parametrize("cname,mirror", sorted(MIRRORS.items()))
def test_struct_layout_matches_btf(cname, mirror):
    with BtfFile(str(object_path(OWNER.get(cname, "proc")))) as btf:
        size, fields = btf.struct(cname)
    assert ctypes.sizeof(mirror) == size, cname
    ours = [(name, getattr(mirror, name).offset, getattr(mirror, name).size) for name, _ in mirror._fields_]
    theirs = [(f.name, f.offset, f.size) for f in fields]
    assert ours == theirs


def test_every_abi_struct_is_mirrored():
    text = (ROOT / "bpf/include/abi.h").read_text()
    declared = set(re.findall(r"^struct (\w+) \{", text, re.M))
    assert declared == set(MIRRORS)


def test_constants_match_header():
    text = (ROOT / "bpf/include/abi.h").read_text()
    for name, value in [("OSRE_ABI_VERSION", abi.ABI_VERSION), ("OSRE_ARGV_MAX", abi.ARGV_MAX),
                        ("OSRE_FILENAME_MAX", abi.FILENAME_MAX), ("OSRE_COMM_LEN", abi.COMM_LEN)]:
        assert f"#define {name} {value}" in text
    for name, value in [("OSRE_EV_EXEC", abi.EV_EXEC), ("OSRE_EV_EXIT", abi.EV_EXIT),
                        ("OSRE_STAT_DROP_EXIT", abi.STAT_DROP_EXIT), ("OSRE_STAT_MAX", abi.STAT_MAX),
                        ("OSRE_TRACKED", abi.TRACKED), ("OSRE_DENIED", abi.DENIED)]:
        assert f"{name} = {value}," in text, name


@pytest.mark.parametrize("name", sorted(p.name[:-len(".bpf.c")] for p in (ROOT / "bpf").glob("*.bpf.c")))
def test_object_comes_from_committed_source(name):
    obj = object_path(name)
    stamp = Path(f"{obj}.src-sha256").read_text().strip()
    src = (ROOT / f"bpf/{name}.bpf.c").read_bytes()
    for h in sorted((ROOT / "bpf/include").glob("*.h")):
        src += h.read_bytes()
    assert stamp == hashlib.sha256(src).hexdigest(), "stale BPF object: run `make bpf`"


def test_decode_rejects_other_abi_version():
    ev = abi.ExitEvent()
    ev.hdr.type, ev.hdr.version = abi.EV_EXIT, abi.ABI_VERSION + 1
    with pytest.raises(abi.AbiMismatch, match="rebuild"):
        abi.decode(bytes(ev))


def test_split_argv():
    assert abi.split_argv(b"ls\0-l\0/tmp\0") == ["ls", "-l", "/tmp"]
    assert abi.split_argv(b"") == []
    assert abi.split_argv(b"a\0trunc") == ["a", "trunc"]


def test_exec_head_is_a_prefix_of_exec_event():
    assert ctypes.sizeof(abi.ExecHead) == abi.ExecEvent.argv.offset
    for name, _ in abi.ExecHead._fields_:
        assert getattr(abi.ExecHead, name).offset == getattr(abi.ExecEvent, name).offset
