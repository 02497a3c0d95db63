"""What changed between two sets of runs, per task type: the tools' executables
(a version in the path), their command-line flags (`samtools sort -m 1M` where
there was `-m 768M`), and how much the tasks read (their inputs' size). Only
what was observed: exe paths and argv as stored (bounded, redacted), syscall
bytes read; never a file's contents, never a tool run to ask its version."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from statistics import median

from ..store import Store
from .result import TaskFacts

INPUT_CHANGE = 0.25          # median bytes read per task: a change of at least 25%...
INPUT_MIN_BYTES = 1 << 20    # ...and of at least 1 MiB
_VERSION = re.compile(r"(?<![\w.])v?(\d+\.\d+(?:\.\d+)*[a-z0-9]*)")
_PATHLIKE = re.compile(r"/|\.[A-Za-z][\w]{0,5}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_ABSENT = "\0absent"  # an invocation of the tool without a flag another one had


def flags(argv: list[str]) -> list[tuple[str, str | None]]:
    """(flag, value) of each option in a tool's argv (after the tool itself). A
    value that names a file (a path, an extension) is left out: outputs and
    inputs move between runs, the flag itself stays."""
    out = []
    i = 1
    while i < len(argv):
        tok = argv[i]
        i += 1
        if not tok.startswith("-") or tok in ("-", "--") or _NUMBER.match(tok):
            continue
        if "=" in tok and tok.startswith("--"):
            name, val = tok.split("=", 1)
        elif i < len(argv) and (not argv[i].startswith("-") or _NUMBER.match(argv[i])):
            name, val = tok, argv[i]
            i += 1
        else:
            name, val = tok, None
        if val is not None and (_PATHLIKE.search(val) or len(val) > 32):
            val = None
        out.append((name, val))
    return out


def _text(name: str, val: str | None) -> str:
    return name if val is None else (f"{name}={val}" if name.startswith("--") and len(name) > 2 else f"{name} {val}")


def version_of(exe: str) -> str | None:
    """A version named in an executable's path (/opt/samtools-1.19/bin/samtools,
    .../envs/bcftools=1.17/...): the last one, else None."""
    found = _VERSION.findall(os.path.dirname(exe or ""))
    return found[-1] if found else None


def _side(store: Store, run_ids: list[str], facts: list[TaskFacts]):
    ttype = {(t.run_id, t.task_id): t.task_type for t in facts}
    exes: dict[tuple[str, str], set] = defaultdict(set)        # (type, tool) -> exe paths
    calls: dict[tuple[str, str], list[dict]] = defaultdict(list)  # -> per invocation: flag -> value
    read: dict[str, list[int]] = defaultdict(list)            # type -> bytes read per task
    for rid in run_ids:
        for tid, tool, sub, exe, argv in store.task_tool_commands(rid):
            k = ttype.get((rid, tid))
            if k is None:
                continue
            name = f"{tool} {sub}" if sub else tool
            if exe:
                exes[(k, name)].add(exe)
            a = json.loads(argv) if argv else []
            if sub and len(a) > 1 and a[1] == sub:
                a = a[1:]
            calls[(k, name)].append(dict(flags(a)))
        per_task: dict[str, int] = defaultdict(int)
        for tid, rchar in store.task_bytes_read(rid):
            per_task[tid] += rchar or 0
        for t in facts:
            if t.run_id == rid:
                read[t.task_type].append(per_task.get(t.task_id, 0))
    opts: dict[tuple[str, str], dict[str, set]] = {}
    for key, cs in calls.items():  # flag -> the values it had, _ABSENT where an invocation went without it
        names = {n for c in cs for n in c}
        opts[key] = {n: {c.get(n, _ABSENT) for c in cs} for n in names}
    return exes, opts, read


def what_changed(store: Store, before_runs: list[str], after_runs: list[str], before: list[TaskFacts],
                 after: list[TaskFacts]) -> list[dict]:
    """Per task type present on both sides: [{task_type, kind: exe|flags|input, tool,
    before, after, message}], in task-type order."""
    ea, oa, ra = _side(store, before_runs, before)
    eb, ob, rb = _side(store, after_runs, after)
    types = sorted({t.task_type for t in before} & {t.task_type for t in after})
    out = []
    for ttype in types:
        for key in sorted(k for k in set(ea) & set(eb) if k[0] == ttype):
            a, b = sorted(ea[key]), sorted(eb[key])
            if a != b:
                va, vb = {version_of(x) for x in a}, {version_of(x) for x in b}
                ver = f" (version {', '.join(sorted(v for v in va if v)) or '?'} -> " \
                      f"{', '.join(sorted(v for v in vb if v)) or '?'} by its path)" if (va | vb) - {None} else ""
                out.append({"task_type": ttype, "kind": "exe", "tool": key[1], "before": a, "after": b,
                            "message": f"{key[1]}: another executable, {', '.join(a)} -> {', '.join(b)}{ver}"})
        for key in sorted(k for k in set(oa) & set(ob) if k[0] == ttype):
            fa, fb = oa[key], ob[key]
            for n in sorted(set(fa) | set(fb)):
                va, vb = fa.get(n, {_ABSENT}), fb.get(n, {_ABSENT})
                if va == vb or (len(va) > 1 and len(vb) > 1):  # differs per task on both sides: a per-sample value
                    continue
                shown = lambda vs: sorted(_text(n, v) for v in vs if v != _ABSENT)  # noqa: E731
                if va == {_ABSENT}:
                    what, msg = "added", f"{key[1]}: new {' / '.join(shown(vb))}"
                elif vb == {_ABSENT}:
                    what, msg = "removed", f"{key[1]}: no more {' / '.join(shown(va))}"
                else:
                    what, msg = "changed", f"{key[1]}: {' / '.join(shown(va)) or 'without ' + n} -> " \
                                           f"{' / '.join(shown(vb)) or 'without ' + n}"
                out.append({"task_type": ttype, "kind": "flags", "tool": key[1], "flag": n, "change": what,
                            "before": shown(va), "after": shown(vb), "message": msg})
        a, b = ra.get(ttype), rb.get(ttype)
        if a and b:
            ma, mb = median(a), median(b)
            if abs(mb - ma) >= INPUT_MIN_BYTES and abs(mb - ma) >= INPUT_CHANGE * max(ma, 1):
                out.append({"task_type": ttype, "kind": "input", "tool": None, "before": ma, "after": mb,
                            "message": f"reads {_mib(mb)} per task (median), was {_mib(ma)}: "
                                       f"{mb / ma:.2f}x as much" if ma else f"reads {_mib(mb)} per task, was 0"})
    return out


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"
