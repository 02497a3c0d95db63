#!/usr/bin/env python3
"""Provenance manifest of the prebuilt BPF objects, for `make wheel`.

Checks that every object in the objects directory was built from the source now in
bpf/ (its .src-sha256 stamp equals sha256 of `cat bpf/<x>.bpf.c bpf/include/*.h`,
the Makefile's rule), that every source has its object and no object lacks a source,
and writes BUILD-INFO.json: source commit (and whether the tree was dirty), compiler,
and per object the source and object sha256. Exits 1, saying why, when anything is
stale or missing, and (unless --allow-dirty) when bpf/ differs from the commit.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import re
import subprocess
import sys
from pathlib import Path


def source_sha256(src: Path, include: Path) -> str:
    """sha256 of `cat bpf/<x>.bpf.c bpf/include/*.h` (glob order = sorted names)."""
    h = hashlib.sha256(src.read_bytes())
    for hdr in sorted(include.glob("*.h")):
        h.update(hdr.read_bytes())
    return h.hexdigest()


def _run(*cmd: str, cwd: Path | None = None) -> str | None:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError:
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def git_info(root: Path, bpf_dir: Path) -> dict:
    commit = _run("git", "rev-parse", "HEAD", cwd=root)
    if commit is None:
        return {"commit": None, "tree_dirty": None, "bpf_sources_dirty": None}
    tracked = _run("git", "status", "--porcelain", "--untracked-files=no", cwd=root)
    # untracked files count here: an untracked bpf/include/*.h is compiled in
    bpf = _run("git", "status", "--porcelain", "--untracked-files=all", "--", str(bpf_dir), cwd=root)
    return {"commit": commit, "tree_dirty": bool(tracked), "bpf_sources_dirty": bool(bpf),
            "bpf_status": [s.strip() for s in bpf.splitlines()] if bpf else []}


def producer(obj: bytes) -> str | None:
    """The compiler named in the object's own debug info (DW_AT_producer)."""
    m = re.search(rb"[\x20-\x7e]*clang version [\x20-\x7e]+", obj)
    return m.group().decode() if m else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bpf-dir", type=Path, default=Path("bpf"))
    ap.add_argument("--objects", type=Path, default=Path("src/opensre/bpf/objects"))
    ap.add_argument("--vmlinux", type=Path, default=Path("build/vmlinux.h"), help="the BTF header they were built against")
    ap.add_argument("--arch", default=None, help="the __TARGET_ARCH_ the objects were built for")
    ap.add_argument("--version", default=None, help="the package version")
    ap.add_argument("--allow-dirty", action="store_true", help="bpf/ may differ from the commit (recorded)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    a = ap.parse_args(argv)

    errors: list[str] = []
    sources = sorted(a.bpf_dir.glob("*.bpf.c"))
    if not sources:
        errors.append(f"no BPF sources in {a.bpf_dir}/")
    objects: dict[str, dict] = {}
    for src in sources:
        obj = a.objects / (src.name[:-2] + ".o")  # x.bpf.c -> x.bpf.o
        stamp = Path(f"{obj}.src-sha256")
        if not obj.exists() or not stamp.exists():
            errors.append(f"{obj} (or its .src-sha256 stamp) is missing: run make bpf")
            continue
        want, have = source_sha256(src, a.bpf_dir / "include"), stamp.read_text().strip()
        if want != have:
            errors.append(f"{obj} is stale: its stamp {have[:12]} is not the hash {want[:12]} of "
                          f"{src} + {a.bpf_dir}/include/*.h: run make bpf")
            continue
        data = obj.read_bytes()
        objects[obj.name] = {"source": str(src), "source_sha256": want,
                             "object_sha256": hashlib.sha256(data).hexdigest(),
                             "size": len(data), "producer": producer(data)}
    for obj in sorted(a.objects.glob("*.bpf.o")):
        if not (a.bpf_dir / (obj.name[:-2] + ".c")).exists():
            errors.append(f"{obj} has no source {a.bpf_dir}/{obj.name[:-2]}.c: remove it (make clean bpf)")

    root = a.bpf_dir.resolve().parent
    git = git_info(root, a.bpf_dir.resolve())
    if git["bpf_sources_dirty"] and not a.allow_dirty:
        errors.append("bpf/ differs from commit " + str(git["commit"])[:12] + " ("
                      + "; ".join(s.strip() for s in git["bpf_status"]) + "): commit it, or build with ALLOW_DIRTY=1 (recorded)")
    if errors:
        for e in errors:
            print(f"make wheel: {e}", file=sys.stderr)
        return 1

    clang = _run("clang", "--version")
    vmlinux = hashlib.sha256(a.vmlinux.read_bytes()).hexdigest() if a.vmlinux.exists() else None
    info = {
        "package": "opensre",
        "version": a.version,
        **git,
        "built_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "build_host": {"machine": platform.machine(), "kernel": platform.release()},
        "target_arch": a.arch,
        "clang": clang.splitlines()[0] if clang else None,
        # what else a byte-identical rebuild needs (the objects' debug info names the directory)
        "libbpf_dev": _run("dpkg-query", "-W", "-f", "${Version}", "libbpf-dev"),
        "vmlinux_h_sha256": vmlinux,
        "build_dir": str(root),
        "source_hash": "sha256 of `cat bpf/<x>.bpf.c bpf/include/*.h` (headers in name order)",
        "headers": sorted(p.name for p in (a.bpf_dir / "include").glob("*.h")),
        "objects": objects,
    }
    a.output.write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
