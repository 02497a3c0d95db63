"""Shared helpers for the benchmark scripts: build the C workloads, start and stop
`opensre collect`, read a process's CPU and memory from /proc.

Standard library only. Run as root (the collector loads BPF programs)."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
ATTACHED_MARK = "collecting host-wide"


def default_opensre() -> list[str]:
    exe = REPO / ".venv" / "bin" / "opensre"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "opensre"]


def build_wl(tmp: Path) -> Path:
    """Compile bench/wl.c into tmp; returns the binary's path."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        sys.exit("bench: gcc not found (apt-get install gcc)")
    out = tmp / "wl"
    subprocess.run([cc, "-O2", "-Wall", "-o", str(out), str(BENCH / "wl.c")], check=True)
    return out


def run_wl(argv: list[str]) -> dict:
    """Run one workload; returns the key=value fields of its result line (floats where numeric)."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"workload {argv} failed rc={p.returncode}: {p.stderr.strip()[-500:]}")
    return parse_kv(p.stdout)


def parse_kv(stdout: str) -> dict:
    """The last "elapsed_s=... k=v ..." line of a wl run, numbers converted."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("elapsed_s=")]
    if not lines:
        raise RuntimeError(f"no result line in workload output: {stdout[-300:]!r}")
    out: dict = {}
    for kv in lines[-1].split():
        k, v = kv.split("=", 1)
        try:
            out[k] = float(v) if "." in v else int(v)
        except ValueError:
            out[k] = v
    return out


# -- /proc readers ----------------------------------------------------------------
def proc_stat(pid: int) -> dict:
    """utime/stime/cutime/cstime in seconds and the thread count, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()  # fields from 3 (state) on
    f = lambda n: int(rest[n - 3])  # noqa: E731  (man 5 proc numbering)
    return {"utime": f(14) / CLK_TCK, "stime": f(15) / CLK_TCK, "cutime": f(16) / CLK_TCK,
            "cstime": f(17) / CLK_TCK, "threads": f(20)}


def proc_sched_ns(pid: int) -> int:
    """sum of the live threads' on-CPU ns (/proc/PID/task/*/schedstat), ns resolution."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def proc_status_kb(pid: int, *keys: str) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def proc_children(pid: int) -> list[int]:
    kids = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


# -- the collector ----------------------------------------------------------------
class CollectorProc:
    """`opensre collect --store STORE` in the background; stderr goes to a file."""

    def __init__(self, opensre: list[str], store: Path, extra: list[str] | None = None):
        self.cmd = opensre + ["collect", "--store", str(store)] + (extra or [])
        self.store = store
        self.log = store.with_suffix(".stderr")
        self.p: subprocess.Popen | None = None
        self.attach_s: float | None = None
        self.programs: list[str] = []
        self.stderr = ""

    @property
    def pid(self) -> int:
        return self.p.pid

    def start(self, timeout: float = 120.0) -> "CollectorProc":
        t0 = time.monotonic()
        self._fh = open(self.log, "w")
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self._fh, stdin=subprocess.DEVNULL)
        while True:
            txt = self.log.read_text(errors="replace")
            if ATTACHED_MARK in txt:
                self.attach_s = time.monotonic() - t0
                try:
                    self.programs = attached_programs(self.pid)
                except OSError:
                    self.programs = []
                return self
            if self.p.poll() is not None:
                self._fh.close()
                hint = ""
                if "redact" in txt:
                    hint = "\n(opensre.redact is missing or broken: it is being added; retry in a few minutes)"
                raise RuntimeError(f"opensre collect exited rc={self.p.returncode} before attaching:\n"
                                   f"{txt.strip()[-2000:]}{hint}")
            if time.monotonic() - t0 > timeout:
                self.p.kill()
                raise RuntimeError(f"opensre collect did not attach within {timeout}s:\n{txt[-2000:]}")
            time.sleep(0.02)

    def stop(self, timeout: float = 300.0) -> dict:
        """SIGINT, wait for the summary; returns {rc, stop_s, processes, drops, drop_detail, stderr}."""
        t0 = time.monotonic()
        out: dict = {}
        try:
            st = proc_stat(self.pid)
            out["cpu_at_sigint_s"] = round(st["utime"] + st["stime"], 3)
        except OSError:
            pass
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        # reap it ourselves to get its rusage: total CPU including the final drain
        ru = None
        while self.p.returncode is None:
            pid, status, ru_ = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                ru = ru_
                self.p.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - t0 > timeout:
                self.p.kill()
            time.sleep(0.01)
        rc = self.p.returncode
        self._fh.close()
        self.stderr = self.log.read_text(errors="replace")
        out.update({"rc": rc, "stop_s": time.monotonic() - t0, "stderr": self.stderr})
        if ru is not None:
            out["cpu_total_s"] = round(ru.ru_utime + ru.ru_stime, 3)
            out["maxrss_mb"] = round(ru.ru_maxrss / 1024, 1)
        out.update(parse_summary(self.stderr))
        return out

    def kill(self):
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def parse_summary(text: str) -> dict:
    out: dict = {}
    m = re.search(r"^[ \t]*processes[ \t]+(\d+)", text, re.M)
    if m:
        out["processes"] = int(m.group(1))
    m = re.search(r"^[ \t]*drops[ \t]+(\d+)[ \t]*(.*)$", text, re.M)
    if m:
        out["drops"] = int(m.group(1))
        out["drop_detail"] = m.group(2).strip()
    m = re.search(r"\(run (\w+)\)", text)
    if m:
        out["run_id"] = m.group(1)
    return out


def export_processes(opensre: list[str], store: Path, run: str = "latest") -> list[dict]:
    p = subprocess.run(opensre + ["export", "--store", str(store), "--run", run],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"opensre export failed rc={p.returncode}: {p.stderr.strip()}")
    return [json.loads(ln) for ln in p.stdout.splitlines() if ln.strip()]


def bpf_progs() -> list[dict]:
    """`bpftool -j prog show`, or [] when bpftool is missing."""
    tool = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if not tool:
        return []
    p = subprocess.run([tool, "-j", "prog", "show"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return json.loads(p.stdout or "[]")
    except json.JSONDecodeError:
        return []


def prog_ids_of(pid: int) -> set[int]:
    """ids of the BPF programs pid holds: prog and link fds show "prog_id:" in
    /proc/PID/fdinfo (the bpftool here prints no "pids" field)."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(f"{d}/{fd}") as f:
                for ln in f:
                    if ln.startswith("prog_id:"):
                        ids.add(int(ln.split()[1]))
        except (OSError, ValueError, IndexError):
            pass
    return ids


def attached_programs(pid: int) -> list[str]:
    """names of the BPF programs the collector pid holds (sorted)."""
    mine = prog_ids_of(pid)
    return sorted(p.get("name", "?") for p in bpf_progs() if p.get("id") in mine)


def product_fingerprint() -> dict:
    """What was measured: hashes of the BPF objects and of the Python sources, and
    the newest modification time among them (the product may change between runs)."""
    import hashlib

    objs = {}
    newest = 0.0
    for f in sorted((REPO / "src" / "opensre" / "bpf" / "objects").glob("*.bpf.o")):
        objs[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()[:12]
        newest = max(newest, f.stat().st_mtime)
    h = hashlib.sha256()
    for f in sorted((REPO / "src" / "opensre").rglob("*.py")):
        h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes())
        newest = max(newest, f.stat().st_mtime)
    return {"bpf_objects": objs, "python_sha256": h.hexdigest()[:12],
            "newest_source_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))}


def machine_info() -> dict:
    cpu = ""
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "kernel": platform.release(), "ncpu": os.cpu_count(),
            "cpu": cpu, "python": platform.python_version(), "loadavg_start": os.getloadavg(),
            "product": product_fingerprint()}


def require_root():
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the collector loads BPF programs)")
