"""Kernel events -> decoded -> enriched process records -> store.

The hot path is per drain, not per event: the ring-buffer callback only appends
bytes; decoding, enrichment and one store transaction happen once per interval.
"""

from __future__ import annotations

import ctypes
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Callable

from ..abi import events as abi
from ..bpf import BpfObject
from ..errors import StoreError
from ..model import Exec, Process, Run
from ..store import Store
from . import procfs
from .cgroups import CgroupResolver
from .clock import boot_to_epoch_offset

PAGE = resource.getpagesize()

# host-wide mode ignores these system daemons (by comm); their children are
# re-evaluated at exec, so a login shell under sshd is still observed
DEFAULT_DENYLIST = [
    "systemd", "systemd-journal", "systemd-udevd", "systemd-logind", "systemd-network", "systemd-resolve",
    "systemd-timesyn", "dbus-daemon", "sshd", "cron", "rsyslogd", "agetty", "polkitd", "udisksd",
    "containerd", "dockerd", "kubelet", "chronyd", "ntpd", "irqbalance", "snapd", "unattended-upgr",
]


@dataclass
class CollectorOptions:
    host_wide: bool = False
    ringbuf_bytes: int = 8 << 20
    drain_interval_ms: int = 100
    denylist: list[str] = field(default_factory=lambda: list(DEFAULT_DENYLIST))
    btf_path: str | None = None
    proc_root: str = "/proc"


def split_cpu(sum_exec_ns: int, utime: int, stime: int) -> tuple[int, int]:
    """Precise runtime split by the tick-sampled user/system ratio, as the kernel's
    cputime_adjust() does for getrusage()."""
    if stime == 0:
        return sum_exec_ns, 0
    if utime == 0:
        return 0, sum_exec_ns
    s = sum_exec_ns * stime // (utime + stime)
    return sum_exec_ns - s, s


def decode_status(status: int) -> tuple[int | None, int | None, bool]:
    """wait(2) status -> (exit_code, signal, core_dumped)."""
    sig = status & 0x7F
    if sig == 0:
        return (status >> 8) & 0xFF, None, False
    return None, sig, bool(status & 0x80)


def _str(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


class Collector:
    """Owns the BPF object of process lifecycle and turns its events into records.

    `redact` maps argv -> (argv, changed); it runs before anything is stored."""

    def __init__(self, store: Store, run: Run, opts: CollectorOptions | None = None,
                 redact: Callable[[list[str]], tuple[list[str], bool]] | None = None,
                 cgroups: CgroupResolver | None = None):
        self.store, self.run = store, run
        self.opts = opts or CollectorOptions()
        self.redact = redact or (lambda a: (a, False))
        self.cgroups = cgroups or CgroupResolver()
        self.offset = boot_to_epoch_offset()
        self.obj: BpfObject | None = None
        self.ring = None
        self._raw: list[bytes] = []
        self.live: dict[tuple[int, int], Process] = {}   # (pid, start boottime ns)
        self._by_pid: dict[int, tuple[int, int]] = {}
        self._adopt: dict[int, Process] = {}             # seeded pids awaiting their exact start
        self._done: list[Process] = []
        self._execs: list[Exec] = []
        self.decode_errors = 0
        self.written = 0
        self.store_error: StoreError | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        o = BpfObject("proc", btf_path=self.opts.btf_path)
        try:
            size = max(4096, 1 << (max(self.opts.ringbuf_bytes, 4096) - 1).bit_length())
            o.set_max_entries("events", size)
            o.set_rodata(host_wide=int(self.opts.host_wide), wakeup_bytes=max(size // 4, 1))
            o.load()
            if self.opts.host_wide:
                deny = o.map("deny_comm")
                for comm in self.opts.denylist:
                    deny.update(comm.encode()[:15].ljust(16, b"\0"), b"\1")
                # never observe ourselves
                o.map("tracked").update(ctypes.c_uint32(os.getpid()), abi.TrackVal(0, abi.DENIED))
            o.attach()
            self.ring = o.ring_buffer("events", self._on_record)
        except BaseException:
            o.close()
            raise
        self.obj = o

    def track(self, pid: int, *, observed_since_ns: int | None = None, info: procfs.ProcInfo | None = None,
              state: int = abi.TRACKED) -> None:
        """Seed the kernel's tracked set with a process we did not see start."""
        self.obj.map("tracked").update(ctypes.c_uint32(pid), abi.TrackVal(0, state))
        if state != abi.TRACKED:
            return
        info = info or procfs.read_proc(pid, self.opts.proc_root)
        p = Process(pid=pid, start_time_ns=(info.start_boot_ns if info else 0) + self.offset,
                    ppid=info.ppid if info else os.getpid(), observed_since_ns=observed_since_ns)
        if info and observed_since_ns is not None:
            # its exec happened before we looked: take what /proc shows of it
            p.comm, p.exe, p.uid = info.comm, info.exe, info.uid
            p.argv, p.argv_redacted = self.redact(info.argv)
        self._adopt[pid] = p

    def seed_existing(self) -> int:
        """Host-wide mode: processes already running are recorded from /proc and
        flagged `observed_since_ns`, never mixed silently with fully observed ones."""
        now = time.time_ns()
        deny = set(self.opts.denylist)
        n = 0
        me = os.getpid()
        for info in procfs.scan(self.opts.proc_root):
            if info.pid == me:
                continue
            state = abi.DENIED if info.comm in deny else abi.TRACKED
            try:
                self.track(info.pid, observed_since_ns=now, info=info, state=state)
            except OSError:
                break  # tracked map full: counted by the kernel from here on
            n += state == abi.TRACKED
        return n

    def _on_record(self, raw: bytes) -> None:
        # called from C for every record: append only, the work happens per drain
        self._raw.append(raw)

    def poll(self, timeout_ms: int | None = None) -> int:
        """Wait up to timeout for events, then process everything queued."""
        self.ring.poll(self.opts.drain_interval_ms if timeout_ms is None else timeout_ms)
        return self.process()

    def process(self) -> int:
        raw, self._raw = self._raw, []
        for rec in raw:
            try:
                typ, ev = abi.decode(rec)
            except abi.AbiMismatch:
                self.decode_errors += 1
                continue
            if typ == abi.EV_EXIT:
                self._on_exit(ev)
            elif typ == abi.EV_EXEC:
                self._on_exec(ev)
            else:
                self._on_fork(ev)
        self.flush()
        return len(raw)

    def flush(self) -> None:
        if not self._done and not self._execs:
            return
        try:
            self.store.put_batch(self.run.run_id, self._done, self._execs)
        except StoreError as e:
            self.store_error = e  # keep the records in memory and retry next drain
            return
        self.store_error = None
        self.written += len(self._done)
        self._done, self._execs = [], []

    def spill(self) -> str | None:
        """When the store cannot take them (full disk), write the records still held
        in memory as JSON Lines somewhere else, so nothing is lost. Returns the path."""
        if not self._done and not self._execs:
            return None
        import json
        import tempfile

        from ..export import process_record

        name = f"opensre-spill-{self.run.run_id}.jsonl"
        for d in (os.environ.get("OPENSRE_SPILL_DIR"), "/dev/shm", tempfile.gettempdir()):
            if not d or not os.path.isdir(d):
                continue
            path = os.path.join(d, name)
            try:
                with open(path, "a") as f:
                    for p in self._done:
                        f.write(json.dumps(process_record(self.run.run_id, p)) + "\n")
                    for e in self._execs:
                        f.write(json.dumps({"run_id": self.run.run_id, "record": "exec", **e.__dict__}) + "\n")
            except OSError:
                continue
            self._done, self._execs = [], []
            return path
        return None

    def tracked_pids(self) -> list[int]:
        m = self.obj.map("tracked")
        out = []
        for k in m.keys(4):
            v = m.lookup(k, ctypes.sizeof(abi.TrackVal))
            if v and abi.TrackVal.from_buffer_copy(v).state == abi.TRACKED:
                out.append(int.from_bytes(k, "little"))
        return out

    def kernel_stats(self) -> dict[str, int]:
        st = self.obj.map("stats")
        names = {"events": abi.STAT_EVENTS, "dropped_fork": abi.STAT_DROP_FORK, "dropped_exec": abi.STAT_DROP_EXEC,
                 "dropped_exit": abi.STAT_DROP_EXIT, "tracked_map_full": abi.STAT_TRACK_FULL,
                 "acc_map_full": abi.STAT_ACC_FULL}
        return {k: st.percpu_sum_u64(i) for k, i in names.items()}

    def drops(self) -> tuple[int, dict]:
        s = self.kernel_stats()
        detail = {k: v for k, v in s.items() if k != "events" and v}
        if self.decode_errors:
            detail["decode_errors"] = self.decode_errors
        return sum(detail.values()), detail

    def finish(self) -> list[Process]:
        """Final drain; processes still alive are stored as incomplete. Returns them."""
        self.ring.poll(0)
        self.process()
        leftovers = list(self.live.values()) + list(self._adopt.values())
        for p in leftovers:
            p.complete = False
        self._done.extend(leftovers)
        self.live.clear()
        self._adopt.clear()
        self.run.drops, self.run.drop_detail = self.drops()
        self.flush()
        return leftovers

    def close(self) -> None:
        if self.obj:
            self.obj.close()
            self.obj = None

    # -- event handlers ----------------------------------------------------------
    def _key_of(self, ident) -> tuple[int, int]:
        return ident.pid, ident.start_ns

    def _record_for(self, ident) -> Process:
        key = self._key_of(ident)
        p = self.live.get(key)
        if p is not None:
            return p
        p = self._adopt.pop(ident.pid, None)
        if p is None:
            p = Process(pid=ident.pid, start_time_ns=ident.start_ns + self.offset, ppid=ident.ppid)
            parent = self._by_pid.get(ident.ppid)
            if parent is not None and parent in self.live:
                pp = self.live[parent]
                p.parent_start_time_ns = pp.start_time_ns
                p.exe, p.argv, p.argv_truncated, p.argv_redacted = pp.exe, pp.argv, pp.argv_truncated, pp.argv_redacted
        else:
            p.start_time_ns = ident.start_ns + self.offset  # exact now
        self.live[key] = p
        self._by_pid[ident.pid] = key
        return p

    def _apply_ident(self, p: Process, ident) -> None:
        p.comm = _str(ident.comm)
        p.uid, p.gid = ident.uid, ident.gid

    def _apply_ctx(self, p: Process, ctx) -> None:
        p.cgroup_id, p.cgroup_path = self.cgroups.effective(ctx.cgroup_id, ctx.memcg_v1_id)
        p.pidns, p.mntns, p.netns = ctx.pidns, ctx.mntns, ctx.netns

    def _on_fork(self, ev) -> None:
        p = self._record_for(ev.id)
        self._apply_ident(p, ev.id)
        self._apply_ctx(p, ev.ctx)

    def _on_exec(self, ev) -> None:
        if ev.flags & abi.EXEC_DENIED:
            key = self._key_of(ev.id)
            self.live.pop(key, None)
            self._adopt.pop(ev.id.pid, None)
            if self._by_pid.get(ev.id.pid) == key:
                del self._by_pid[ev.id.pid]
            return
        p = self._record_for(ev.id)
        self._apply_ident(p, ev.id)
        self._apply_ctx(p, ev.ctx)
        off = abi.ExecEvent.argv.offset
        raw = bytes(memoryview(ev).cast("B")[off:off + ev.argv_len])
        argv, red = self.redact(abi.split_argv(raw))
        p.exe = _str(ev.filename)
        p.argv, p.argv_redacted = argv, red
        p.argv_truncated = bool(ev.flags & abi.ARGV_TRUNCATED)
        p.exec_count += 1
        self._execs.append(Exec(p.pid, p.start_time_ns, ev.hdr.ts_ns + self.offset, p.exe, argv, p.argv_truncated))

    def _on_exit(self, ev) -> None:
        p = self._record_for(ev.id)
        key = self._key_of(ev.id)
        self.live.pop(key, None)
        if self._by_pid.get(ev.id.pid) == key:
            del self._by_pid[ev.id.pid]
        self._apply_ident(p, ev.id)
        p.end_time_ns = (ev.end_ns or ev.hdr.ts_ns) + self.offset
        p.exit_code, p.exit_signal, p.core_dumped = decode_status(ev.status)
        p.cpu_user_ns, p.cpu_system_ns = split_cpu(ev.sum_exec_ns, ev.utime_ns, ev.stime_ns)
        p.peak_rss_bytes = ev.hiwater_pages * PAGE
        p.maxrss_bytes = ev.maxrss_pages * PAGE
        for f in ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes", "threads"):
            setattr(p, f, getattr(ev, f))
        p.voluntary_ctxt_switches, p.involuntary_ctxt_switches = ev.nvcsw, ev.nivcsw
        p.minor_faults, p.major_faults = ev.min_flt, ev.maj_flt
        p.io_inclusive = bool(ev.flags & abi.EXIT_NO_ACC)
        p.complete = True
        self._done.append(p)
