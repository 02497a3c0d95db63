"""Probe families and their kernel variants: which programs of which object run here.

Each family is one object (bpf/<obj>.bpf.c). Where kernels differ, an object
holds several variants of a hook (bpf/include/compat.h lists every difference);
the variant is chosen from the running kernel's BTF, never from its version,
and the others are switched off before load (bpf_program__set_autoload). A
variant that still fails to load or attach (e.g. fexit where the kernel forbids
BPF trampolines) gives way to the next; the last word is a FamilyUnavailable
that names the family, the reason and the fix.

OPENSRE_VARIANTS=family:key,... forces a variant (tests use it to exercise the
older kernels' variants on a newer kernel).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Callable

from ..errors import FeatureUnsupported, OpenSREError
from . import libbpf
from .btf import KIND_FUNC, KIND_TYPEDEF, BtfFile, func_proto_params
from .features import Check, has_task_storage, kernel_btf_path
from .loader import BpfObject

__all__ = ["CORE", "FAMILIES", "OBJECTS", "SHARED_MAPS", "Variant", "Loaded", "FamilyUnavailable", "KernelBtf",
           "variants", "load_family", "check_all"]

CORE = "lifecycle"  # proc.bpf.o: always on, owns the shared maps
FAMILIES = ("sched", "net", "oom", "samples")  # each can be switched off
OBJECTS = {CORE: "proc", "sched": "sched", "net": "net", "oom": "oom", "samples": "iter"}
SHARED_MAPS = ["tracked", "acc", "tstore", "stats", "events"]
TSTATE_HASH_ENTRIES = 65536  # threads with per-thread state at once, in the hash fallback


class FamilyUnavailable(FeatureUnsupported):
    """A probe family cannot run on this kernel (every variant was tried)."""

    def __init__(self, family: str, reason: str, hint: str = "", log: str = ""):
        self.family, self.reason, self.log = family, reason, log
        super().__init__(f"{family} probes unavailable: {reason}", hint)


@dataclass(frozen=True)
class Variant:
    key: str                    # short name, for OPENSRE_VARIANTS
    hooks: str                  # what it attaches to, as doctor and the run record show it
    programs: tuple[str, ...]   # programs of the object to load; the rest are switched off
    missing: str = ""           # what this variant cannot give ("" = the family's full data)


@dataclass
class Loaded:
    family: str
    obj: BpfObject
    variant: Variant
    passed_over: list[str]  # "variant: why it was not used", in order tried
    thread_state_in_hash: str = ""  # the core, where per-thread state is in a hash: why

    def describe(self) -> str:
        s = self.variant.hooks
        if self.thread_state_in_hash:
            s += f", thread state in a hash map ({self.thread_state_in_hash})"
        if self.variant.missing:
            s += f" (without {self.variant.missing})"
        return s


class KernelBtf:
    """The running kernel's BTF, asked about hooks (not versions)."""

    def __init__(self, path: str | None = None):
        self.path = kernel_btf_path(path)
        self._btf = BtfFile(self.path)

    def _find(self, name: str, kind: int) -> int:
        return libbpf.lib().btf__find_by_name_kind(self._btf.ptr, name.encode(), kind)

    def has_tracepoint(self, name: str) -> bool:
        # every built-in tracepoint has a `btf_trace_<name>` typedef (what tp_btf attaches by)
        return self._find(f"btf_trace_{name}", KIND_TYPEDEF) > 0

    def tracepoint_args(self, name: str) -> int:
        """Arguments a tp_btf program receives (the prototype's, less its context)."""
        tid = self._find(f"btf_trace_{name}", KIND_TYPEDEF)
        return -1 if tid <= 0 else func_proto_params(self._btf.ptr, tid) - 1

    def has_function(self, name: str) -> bool:
        return self._find(name, KIND_FUNC) > 0

    def has_member(self, struct: str, member: str) -> bool:
        try:
            return any(f.name == member for f in self._btf.struct(struct)[1])
        except KeyError:
            return False

    def close(self):
        self._btf.close()


_SOCK_TP = ("sock_send_length", "sock_recv_length")
_INET_FEXIT = {"inet_sendmsg": "on_inet_send", "inet6_sendmsg": "on_inet6_send",
               "inet_recvmsg": "on_inet_recv", "inet6_recvmsg": "on_inet6_recv"}


def variants(family: str, k: KernelBtf) -> list[Variant]:
    """Candidate variants for this kernel, best first ([] = no hook exists here)."""
    if family == CORE:
        hooks = "tp_btf/sched_process_{fork,exec,exit,free} + sched_switch (final CPU at TASK_DEAD)"
        # the last switch-out: 5.18 added prev_state to the tracepoint (compat.h)
        dead = "on_dead_switch" if k.tracepoint_args("sched_switch") >= 4 else "on_dead_switch_state"
        progs = ("on_fork", "on_exec", "on_exit", "on_free", dead)
        if k.tracepoint_args("sched_process_exit") >= 2:
            return [Variant("tp", hooks, progs)]  # fires with the mm still attached (compat.h)
        out = []
        if k.has_function("taskstats_exit"):
            out.append(Variant("fentry", hooks + " + fentry/taskstats_exit", progs + ("on_taskstats_exit",)))
        return out + [Variant("tp", hooks, progs, "the exact peak RSS of a program whose pre-exec image was "
                                                  "larger (the sampled peak instead)")]
    if family == "sched":
        # 5.18 added prev_state to the tracepoint (compat.h)
        if k.tracepoint_args("sched_switch") >= 4:
            return [Variant("tp", "tp_btf/sched_switch", ("on_switch",)),
                    Variant("state", "tp_btf/sched_switch (task state field)", ("on_switch_state",))]
        return [Variant("state", "tp_btf/sched_switch (task state field)", ("on_switch_state",))]
    if family == "net":
        out = []
        if all(k.has_tracepoint(t) for t in _SOCK_TP):
            out.append(Variant("tp", "tp_btf/sock_{send,recv}_length + inet_sock_set_state",
                               ("on_send", "on_recv", "on_state")))
        fns = [f for f in _INET_FEXIT if k.has_function(f)]
        if {"inet_sendmsg", "inet_recvmsg"} <= set(fns):
            v6 = "inet6_sendmsg" in fns and "inet6_recvmsg" in fns
            out.append(Variant("fexit", "fexit/inet{,6}_{send,recv}msg + inet_sock_set_state",
                               tuple(_INET_FEXIT[f] for f in fns) + ("on_state",),
                               "" if v6 else "IPv6 bytes (inet6_*msg not in the kernel's BTF)"))
        out.append(Variant("conns", "inet_sock_set_state", ("on_state",),
                           "per-process bytes (no sock_*_length tracepoints, no BPF trampolines)"))
        return out
    if family == "oom":
        return [Variant("tp", "tp_btf/mark_victim", ("on_oom_victim",))] if k.has_tracepoint("mark_victim") else []
    if family == "samples":
        return [Variant("iter", "iter/task", ("sample_tasks",))]
    raise KeyError(family)


def _forced(family: str) -> str | None:
    for item in os.environ.get("OPENSRE_VARIANTS", "").split(","):
        fam, _, key = item.strip().partition(":")
        if fam == family and key:
            return key
    return None


def thread_state_in_hash(k: KernelBtf) -> str:
    """Why per-thread state lives in a preallocated hash map instead of task storage
    ("" where task storage is used). compat.h: task storage arrived in 5.11, and
    until 6.4 it allocated its elements with kmalloc, which sched_switch (where the
    state is created, under the runqueue lock) must not call: an allocation that
    wakes kswapd or a memcg worker takes a runqueue lock again and can deadlock the
    CPU. 6.4 allocates them from BPF's own per-CPU caches (`bpf_ma` in the map).
    OPENSRE_VARIANTS=tstate:hash forces the hash, tstate:storage task storage."""
    forced = _forced("tstate")
    if not has_task_storage():
        return "no task storage"
    if forced == "hash":
        return "forced by OPENSRE_VARIANTS"
    if forced != "storage" and not k.has_member("bpf_local_storage_map", "bpf_ma"):
        return "task storage allocates with kmalloc before 6.4"
    return ""


def load_family(family: str, k: KernelBtf, *, btf_path: str | None = None, core: BpfObject | None = None,
                rodata: dict | None = None, configure: Callable[[BpfObject], None] | None = None,
                prepare: Callable[[BpfObject], None] | None = None) -> Loaded:
    """Open, configure, load and attach the first variant of `family` that works here.
    `core`: the lifecycle object whose maps every other family shares; `rodata`:
    values for the objects' `const volatile` globals (the kernel's page size and the
    thread-state mode are added here); `configure` runs before load (map sizes),
    `prepare` between load and attach."""
    cands = variants(family, k)
    forced = _forced(family)
    if forced:
        cands = [v for v in cands if v.key == forced]
        if not cands:
            raise FamilyUnavailable(family, f"variant {forced!r} (OPENSRE_VARIANTS) does not exist on this kernel")
    if not cands:
        raise FamilyUnavailable(family, "this kernel has none of its hooks", "run `opensre doctor`")
    passed: list[str] = []
    logs: list[str] = []
    last: OpenSREError | None = None
    in_hash = thread_state_in_hash(k)
    values = dict(rodata or {}, page_size=resource.getpagesize(), tstate_in_hash=int(bool(in_hash)))
    for v in cands:
        o = BpfObject(OBJECTS[family], btf_path=btf_path, check=core is None)
        try:
            for name in o.programs():
                if name not in v.programs:
                    o.disable(name)
            if core is not None:
                o.share_maps(core, SHARED_MAPS)
            elif in_hash:
                o.set_map_type("tstore", libbpf.BPF_MAP_TYPE_HASH, TSTATE_HASH_ENTRIES)
            o.set_rodata(**values)
            if configure:
                configure(o)
            o.load()
            if prepare:
                prepare(o)
            o.attach()
            return Loaded(family, o, v, passed, in_hash if core is None else "")
        except OpenSREError as e:
            o.close()
            passed.append(f"{v.hooks}: {e}")
            logs.append(getattr(e, "log", "") or "")
            last = e
    raise FamilyUnavailable(family, "; ".join(passed), getattr(last, "hint", ""), "\n".join(logs))


def check_all(btf_path: str | None = None) -> list[Check]:
    """Load and attach every family as `opensre run` would: one Check each, with
    the variant this kernel gets, what it lacks (`warn`) and, on failure, why."""
    out: list[Check] = []
    k = KernelBtf(btf_path)
    core: Loaded | None = None
    try:
        for fam in (CORE,) + FAMILIES:
            try:
                x = load_family(fam, k, btf_path=btf_path, core=core.obj if core else None)
            except FamilyUnavailable as e:
                out.append(Check(fam, False, e.reason, e.hint, log=e.log))
                if core is None:
                    break  # nothing loads without the lifecycle core
                continue
            detail = f"{OBJECTS[fam]}.bpf.o, {x.variant.hooks}"
            if x.thread_state_in_hash:
                detail += f", thread state in a hash map ({x.thread_state_in_hash})"
            if x.passed_over:
                detail += " (not used here: " + "; ".join(x.passed_over) + ")"
            warn = f"without {x.variant.missing}" if x.variant.missing else ""
            out.append(Check(fam, True, detail, warn=warn))
            if core is None:
                core = x
            else:
                x.obj.close()
    finally:
        if core is not None:
            core.obj.close()
        k.close()
    return out
