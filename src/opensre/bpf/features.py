"""Kernel feature probes: ask the kernel, never compare version numbers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import FeatureUnsupported, PermissionProblem
from . import libbpf

DEFAULT_BTF = "/sys/kernel/btf/vmlinux"
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
LOCKDOWN = "/sys/kernel/security/lockdown"


def kernel_btf_path(override: str | None = None) -> str:
    return override or os.environ.get("OPENSRE_BTF") or DEFAULT_BTF


def effective_caps(status: str = "/proc/self/status") -> int:
    for line in Path(status).read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def has_bpf_privileges(caps: int | None = None) -> bool:
    caps = effective_caps() if caps is None else caps
    if caps & (1 << CAP_SYS_ADMIN):
        return True
    return bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))


def require_basics(btf_override: str | None = None) -> None:
    """The checks every load needs, as one clear error each."""
    if not has_bpf_privileges():
        raise PermissionProblem("opensre needs root to load BPF programs (no CAP_BPF/CAP_PERFMON)")
    path = kernel_btf_path(btf_override)
    if not Path(path).is_file():
        raise FeatureUnsupported(
            f"kernel BTF not found at {path}",
            "this kernel was built without CONFIG_DEBUG_INFO_BTF=y; use a distribution kernel with BTF "
            "or point OPENSRE_BTF at a BTF file for this kernel (e.g. from btfhub)")
    l = libbpf.lib()
    if l.libbpf_probe_bpf_map_type(libbpf.BPF_MAP_TYPE_RINGBUF, None) != 1:
        raise FeatureUnsupported(f"this kernel ({os.uname().release}) has no BPF ring buffers",
                                 "OpenSRE needs Linux 5.8 or newer (docs/probes.md, Kernels)")




@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: str = ""  # works, but without something (e.g. a family's older-kernel variant)
    log: str = ""   # the verifier's log, for --verbose


def probe_all(btf_override: str | None = None) -> list[Check]:
    """Everything `opensre doctor` reports, without loading our own programs."""
    out = []
    priv = has_bpf_privileges()
    out.append(Check("privileges", priv, "root/CAP_BPF+CAP_PERFMON" if priv else "not privileged",
                     "" if priv else "run with sudo"))
    path = kernel_btf_path(btf_override)
    btf_ok = Path(path).is_file()
    out.append(Check("kernel BTF", btf_ok, path if btf_ok else f"{path} missing",
                     "" if btf_ok else "needs CONFIG_DEBUG_INFO_BTF=y (or OPENSRE_BTF=<file>)"))
    try:
        v = libbpf.version()
        out.append(Check("libbpf", True, f"libbpf {v}"))
    except FeatureUnsupported as e:
        out.append(Check("libbpf", False, str(e), e.hint))
        return out
    # no program needs tracefs: every hook is a BTF tracepoint, fexit or iterator
    mode = lockdown_mode()
    if mode == "confidentiality":
        out.append(Check("lockdown", False, "kernel lockdown is in confidentiality mode",
                         "it forbids reading kernel memory from BPF: boot with lockdown=integrity or none"))
    elif mode:
        out.append(Check("lockdown", True, mode))
    if priv:
        l = libbpf.lib()
        rb = l.libbpf_probe_bpf_map_type(libbpf.BPF_MAP_TYPE_RINGBUF, None) == 1
        out.append(Check("ring buffer maps", rb, "supported" if rb else "unsupported",
                         "" if rb else "OpenSRE needs Linux 5.8+ (BPF_MAP_TYPE_RINGBUF)"))
        ts = has_task_storage()
        out.append(Check("task storage maps", True, "supported" if ts else
                         "unsupported (before 5.11): per-thread state is kept in a hash map instead"))
        # tp_btf support is proven by loading our own programs (doctor does), not by
        # libbpf's generic probe, which cannot name an attach target for tracing programs
    return out


def has_task_storage() -> bool:
    return libbpf.lib().libbpf_probe_bpf_map_type(libbpf.BPF_MAP_TYPE_TASK_STORAGE, None) == 1


def lockdown_mode(path: str = LOCKDOWN) -> str:
    """The active kernel lockdown mode ("none", "integrity", "confidentiality"), "" if unknown."""
    try:
        text = Path(path).read_text()
    except OSError:
        return ""
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return ""
