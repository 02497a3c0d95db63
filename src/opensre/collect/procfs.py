"""/proc readers for what the kernel events cannot tell us: processes that were
already running when collection started. The root is injectable for fixture tests.
Reads argv (cmdline) and stat only: never environ, never memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..abi.events import ARGV_MAX

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    comm: str
    start_boot_ns: int  # precision of one clock tick (10 ms)
    argv: list[str]
    exe: str
    uid: int | None
    is_kernel_thread: bool
    argv_truncated: bool = False  # cmdline was longer than the bound (the kernel side's too)


def parse_stat(text: str) -> tuple[str, int, int, int]:
    """(comm, ppid, starttime ticks, flags) from /proc/PID/stat; comm may hold ') ('."""
    lp, rp = text.index("("), text.rindex(")")
    comm = text[lp + 1:rp]
    rest = text[rp + 2:].split()
    return comm, int(rest[1]), int(rest[19]), int(rest[6])


PF_KTHREAD = 0x00200000


def read_proc(pid: int, root: str | Path = "/proc") -> ProcInfo | None:
    base = Path(root) / str(pid)
    try:
        comm, ppid, start, flags = parse_stat((base / "stat").read_text())
        cmd = (base / "cmdline").read_bytes()
    except (OSError, ValueError):
        return None  # gone, or not a process
    try:
        exe = os.readlink(base / "exe")
    except OSError:
        exe = ""
    uid = None
    try:
        for line in (base / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                break
    except OSError:
        pass
    # the same bound as argv read in the kernel at exec (abi.ARGV_MAX), the same flag
    truncated = len(cmd) > ARGV_MAX
    cmd = cmd[:ARGV_MAX]
    argv = [a.decode("utf-8", "replace") for a in cmd.rstrip(b"\0").split(b"\0")] if cmd else []
    return ProcInfo(pid, ppid, comm, start * (10**9 // CLK_TCK), argv, exe, uid, bool(flags & PF_KTHREAD),
                    truncated)


def list_pids(root: str | Path = "/proc") -> list[int]:
    return sorted(int(n) for n in os.listdir(root) if n.isdigit())


def scan(root: str | Path = "/proc") -> list[ProcInfo]:
    out = []
    for pid in list_pids(root):
        info = read_proc(pid, root)
        if info is not None and not info.is_kernel_thread:
            out.append(info)
    return out


def cpu_ticks(pid: int, root: str | Path = "/proc") -> tuple[int, int] | None:
    """(utime, stime) clock ticks of a live process, for the user/system split."""
    try:
        fields = (Path(root) / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
