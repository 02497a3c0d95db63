"""The processes of one collection, and what each kernel record does to them.

Live records are keyed by (pid, start boottime ns): a pid reused during the run
is another process. The exec and exit handlers run once per event of a fork/exec
storm: they take the record's fields by position (decode.py checks the order)
and resolve each distinct argv, cwd, exe, comm and cgroup once, not per process.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Callable

from ..abi import events as abi
from ..model import Exec, Process
from . import procfs
from .cgroups import CgroupResolver
from .containers import parse_cgroup_path as parse_uncached
from .decode import (ARGV_OFF, CWD_OFF, FILENAME_END, FILENAME_OFF, PAGE, conn_event, decode_status,
                     oom_event, open_conn_record, split_cpu)
from .limits import LimitReader
from .persist import Pending
from .sampling import Key, Sampler

# few distinct cgroups, thousands of processes: parse each path once
parse_cgroup_path = functools.lru_cache(maxsize=4096)(parse_uncached)

_PROCESS_DEFAULTS = Process(pid=0, start_time_ns=0).__dict__
_new_object = object.__new__
# the counters of a record observed since collection start that its baseline is
# taken from (Sampler.base, positions 1..7 of the cumulative tuple)
_WINDOWED = ("read_bytes", "write_bytes", "net_tx_bytes", "net_rx_bytes", "runq_wait_ns", "blocked_io_ns",
             "sleep_ns")


def new_process(pid: int, start_time_ns: int, ppid: int) -> Process:
    """Process(pid=, start_time_ns=, ppid=) at a third of the dataclass __init__'s cost
    (60 defaults): thousands per second in a fork/exec storm."""
    p = _new_object(Process)
    d = _PROCESS_DEFAULTS.copy()
    d["pid"], d["start_time_ns"], d["ppid"], d["argv"] = pid, start_time_ns, ppid, []
    p.__dict__ = d
    return p


class ProcessTable:
    """Live processes, seeded ones awaiting their exact start, and the exec/exit/OOM/
    connection handlers that turn records into Process, Exec and Event records
    (appended to `pending`). `redact` and `redact_path` run before anything is kept."""

    def __init__(self, pending: Pending, sampler: Sampler, offset: int, redact: Callable, redact_path: Callable,
                 cgroups: CgroupResolver, proc_root: str = "/proc"):
        self.pending, self.sampler = pending, sampler
        self.offset = offset  # boot time -> epoch
        self.redact, self.redact_path = redact, redact_path
        self.cgroups, self.limits, self.proc_root = cgroups, LimitReader(), proc_root
        self.live: dict[Key, Process] = {}
        self.adopt: dict[int, Process] = {}  # seeded pids awaiting their exact start
        # live processes that exec'd again (a job's `bash -c` exec'ing its only command):
        # their first argv, for the live view's task boundaries (Correlator's execs)
        self.first_argv: dict[Key, list[str]] = {}
        self.tracked = None  # the kernel's tracked map, once loaded
        self.net_bytes = False  # the net family's variant counts per-process bytes
        self.sched_on = self.samples_on = False
        self._ctx_cache: dict[tuple[int, int], tuple] = {}  # (cgroup ids) -> resolved context
        self._exec_cache: dict[tuple, tuple] = {}  # (argv, cwd bytes, cut) -> (argv, redacted, cwd)
        self._comm_cache: dict[bytes, str] = {}
        self._exe_cache: dict[bytes, str] = {}

    # -- records -----------------------------------------------------------------
    def seed(self, pid: int, info: procfs.ProcInfo | None, observed_since_ns: int | None) -> None:
        """The record of a process we did not see start, until its first record
        gives its exact start."""
        p = Process(pid=pid, start_time_ns=(info.start_boot_ns if info else 0) + self.offset,
                    ppid=info.ppid if info else os.getpid(), observed_since_ns=observed_since_ns)
        if info and observed_since_ns is not None:
            # its exec happened before we looked: take what /proc shows of it
            p.comm, p.exe, p.uid = info.comm, self.redact_path(info.exe), info.uid
            p.argv, p.argv_redacted = self.redact(info.argv, info.argv_truncated)
            p.argv_truncated = info.argv_truncated
        self.adopt[pid] = p

    def new_record(self, pid: int, start_ns: int, ppid: int, parent_start_ns: int) -> Process:
        """The live record of a process first heard of now (its exec, exit or first sample)."""
        p = self.adopt.pop(pid, None)
        if p is None:
            p = new_process(pid, start_ns + self.offset, ppid)
            if parent_start_ns:
                p.parent_start_time_ns = parent_start_ns + self.offset
                pp = self.live.get((ppid, parent_start_ns))
                if pp is not None:  # a fork runs its parent's image until it execs
                    p.exe, p.argv, p.argv_truncated, p.argv_redacted = pp.exe, pp.argv, pp.argv_truncated, pp.argv_redacted
                    p.cwd, p.comm = pp.cwd, pp.comm
        else:
            p.start_time_ns = start_ns + self.offset  # exact now
        self.live[(pid, start_ns)] = p
        return p

    def fork_record(self, pid: int, start_ns: int) -> Process | None:
        """A tracked fork that has not exec'd (a multiprocessing worker) has sent no
        record yet: the tracked map knows its parent, so its samples count from the
        first tick, not only its exit totals."""
        raw = self.tracked.lookup(ctypes.c_uint32(pid), ctypes.sizeof(abi.TrackVal))
        if raw is None:
            return None
        tv = abi.TrackVal.from_buffer_copy(raw)
        if tv.state != abi.TRACKED or tv.start_ns not in (0, start_ns):
            return None
        return self.new_record(pid, start_ns, tv.ppid, tv.parent_start_ns)

    def _comm(self, raw: bytes) -> str:
        """comm[16] as sent -> str, once per distinct value (a storm repeats a few)."""
        c = self._comm_cache.get(raw)
        if c is None:
            if len(self._comm_cache) > 4096:
                self._comm_cache.clear()
            c = self._comm_cache[raw] = abi.cstr(raw).decode("utf-8", "replace")
        return c

    def _apply_ctx(self, p: Process, cgroup_id: int, memcg_v1_id: int, pidns: int, mntns: int, netns: int) -> None:
        ids = (cgroup_id, memcg_v1_id)
        hit = self._ctx_cache.get(ids)
        if hit is None:
            cid, path = self.cgroups.effective(*ids)
            c = parse_cgroup_path(path)
            lim = self.limits.of_pid(p.pid, {"v2": self.cgroups.path(cgroup_id, "v2"),
                                             "memory": self.cgroups.path(memcg_v1_id, "v1")})
            hit = (cid, path, c.container_id, c.container_runtime, c.pod_uid, c.slurm_job_id, c.slurm_step,
                   lim.cpu_limit_cores, lim.cpuset_cpus, lim.memory_limit_bytes)
            if path is not None:  # an unresolved id may resolve on a later rescan
                self._ctx_cache[ids] = hit
        (p.cgroup_id, p.cgroup_path, p.container_id, p.container_runtime, p.pod_uid, p.slurm_job_id,
         p.slurm_step, p.cpu_limit_cores, p.cpuset_cpus, p.memory_limit_bytes) = hit
        p.pidns, p.mntns, p.netns = pidns, mntns, netns

    # -- handlers (decode.dispatch calls these, once per record) --------------------
    def on_exec(self, t: tuple, raw: bytes) -> None:
        """`t`: the record's head unpacked (abi.EXEC_FIELDS order, checked at import)."""
        (_typ, _ver, _size, ts_ns, pid, ppid, start_ns, pstart_ns, uid, gid, comm, cg, memcg, pidns, mntns, netns,
         _pad0, flags, argv_len, _argv_total, cwd_len, _pad1) = t
        if flags & abi.EXEC_DENIED:
            self.live.pop((pid, start_ns), None)
            self.adopt.pop(pid, None)
            return
        p = self.live.get((pid, start_ns)) or self.new_record(pid, start_ns, ppid, pstart_ns)
        p.comm, p.uid, p.gid = self._comm(comm), uid, gid
        self._apply_ctx(p, cg, memcg, pidns, mntns, netns)
        # slice the record itself: no copy of the whole struct
        argv_raw = raw[ARGV_OFF:ARGV_OFF + argv_len]
        cwd_raw = raw[CWD_OFF:CWD_OFF + cwd_len]
        fn_raw = raw[FILENAME_OFF:FILENAME_END]
        # pipelines run the same command lines in the same directories thousands of
        # times: split and redact each distinct one once (and each distinct exe path)
        cut = bool(flags & abi.ARGV_TRUNCATED)  # a secret cut at the bound is masked too
        hit = self._exec_cache.get((argv_raw, cwd_raw, cut))
        if hit is None:
            if len(self._exec_cache) > 4096:
                self._exec_cache.clear()
            argv, red = self.redact(abi.split_argv(argv_raw), cut)
            hit = self._exec_cache[(argv_raw, cwd_raw, cut)] = (argv, red, self.redact_path(abi.join_cwd(cwd_raw)))
        argv, red, p.cwd = hit
        exe = self._exe_cache.get(fn_raw)
        if exe is None:
            if len(self._exe_cache) > 4096:
                self._exe_cache.clear()
            exe = self._exe_cache[fn_raw] = self.redact_path(abi.cstr(fn_raw).decode("utf-8", "replace"))
        p.exe = exe
        if p.exec_count == 1:
            self.first_argv[(pid, start_ns)] = p.argv
        p.argv, p.argv_redacted = argv, red
        p.argv_truncated = cut
        p.exec_count += 1
        self.pending.execs.append(Exec(pid, p.start_time_ns, ts_ns + self.offset, exe, argv, cut, p.cwd))

    def on_exit(self, t: tuple) -> None:
        """`t`: the record unpacked (abi.EXIT_FIELDS order, checked at import)."""
        (_typ, _ver, _size, ts_ns, pid, ppid, start_ns, pstart_ns, uid, gid, comm, cg, memcg, pidns, mntns, netns,
         _pad0, end_ns, status, flags, sum_exec_ns, utime_ns, stime_ns, nvcsw, nivcsw, min_flt, maj_flt,
         maxrss_pages, hiwater_pages, rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes,
         threads, _pad1, net_tx_bytes, net_rx_bytes, runq_wait_ns, blocked_io_ns, sleep_ns, rss_exit_pages) = t
        key = (pid, start_ns)
        s = self.sampler
        p = self.live.pop(key, None) or self.new_record(pid, start_ns, ppid, pstart_ns)
        self.live.pop(key, None)
        if self.first_argv:
            self.first_argv.pop(key, None)
        p.comm, p.uid, p.gid = self._comm(comm), uid, gid
        if mntns and p.mntns is None:
            self._apply_ctx(p, cg, memcg, pidns, mntns, netns)  # a fork that never exec'd: its context as of its death
        p.end_time_ns = (end_ns or ts_ns) + self.offset
        if status & 0x7F == 0:  # decode_status(), inline: the common case
            p.exit_code, p.exit_signal, p.core_dumped = (status >> 8) & 0xFF, None, False
        else:
            p.exit_code, p.exit_signal, p.core_dumped = decode_status(status)
        base = s.base.pop(key, None) if s.base else None
        # observed since collection start: the window's share (docs/data-catalog.md)
        own_cpu = sum_exec_ns - base[0] if base else sum_exec_ns
        p.cpu_user_ns, p.cpu_system_ns = split_cpu(own_cpu, utime_ns, stime_ns)
        p.maxrss_bytes = maxrss_pages * PAGE
        if flags & abi.EXIT_HWM_SAMPLED:
            # the kernel kept no exact peak of the final image (bpf/include/compat.h):
            # the largest sampled RSS, or maxrss (an upper bound) if it lived within a tick
            p.peak_rss_bytes = s.rss_max.get(key) or p.maxrss_bytes
        else:
            p.peak_rss_bytes = hiwater_pages * PAGE
        if s.rss_max:
            s.rss_max.pop(key, None)
        p.rchar, p.wchar, p.syscr, p.syscw = rchar, wchar, syscr, syscw
        p.read_bytes, p.write_bytes, p.cancelled_write_bytes, p.threads = (read_bytes, write_bytes,
                                                                          cancelled_write_bytes, threads)
        p.voluntary_ctxt_switches, p.involuntary_ctxt_switches = nvcsw, nivcsw
        p.minor_faults, p.major_faults = min_flt, maj_flt
        p.io_inclusive = bool(flags & abi.EXIT_NO_ACC)
        p.oom_killed = bool(flags & abi.EXIT_OOM_KILLED)
        p.oncpu_ns = own_cpu
        if self.net_bytes:
            p.net_tx_bytes, p.net_rx_bytes = net_tx_bytes, net_rx_bytes
        p.runq_wait_ns = runq_wait_ns  # kept by the kernel (sched_info), no probe needed
        if self.sched_on:
            p.blocked_io_ns, p.sleep_ns = blocked_io_ns, sleep_ns
        if base is not None:
            self._window(p, base)
        if self.samples_on and key in s.cum:
            # the last interval runs to the exit, so the series sums to these totals
            # a process that lived within one tick has no row: its record is its one
            # sample (Store.samples() yields it from the totals)
            cum = (sum_exec_ns, read_bytes, write_bytes, net_tx_bytes, net_rx_bytes,
                   runq_wait_ns, blocked_io_ns, sleep_ns)
            rss_exit = (s.cum[key][8] if flags & abi.EXIT_NO_MM else rss_exit_pages * PAGE)
            s.emit(p, key, p.end_time_ns, cum, rss_exit, final=True)
            s.cum.pop(key, None)
        p.complete = True
        self.pending.done.append(p)

    def on_oom(self, ev) -> None:
        p = self.live.get((ev.id.pid, ev.id.start_ns))
        if p is not None:
            p.oom_killed = True
        path = self.cgroups.path(ev.memcg_id, "v1") or self.cgroups.path(ev.memcg_id, "v2")
        self.pending.events.append(oom_event(ev, self.offset, path))

    def on_conn(self, ev, still_open: bool = False) -> None:
        self.pending.events.append(conn_event(ev, self.offset, still_open))

    # -- the end of the collection -------------------------------------------------
    def unannounced(self) -> None:
        """Tracked processes still running that never exec'd have sent no record
        yet: take them from the tracked map (exact start, parent) and /proc."""
        m = self.tracked
        known = set(self.live) | {(pid, 0) for pid in self.adopt}
        for k in m.keys(4):
            raw = m.lookup(k, ctypes.sizeof(abi.TrackVal))
            if not raw:
                continue
            tv = abi.TrackVal.from_buffer_copy(raw)
            pid = int.from_bytes(k, "little")
            if tv.state != abi.TRACKED or (pid, tv.start_ns) in known or (pid, 0) in known or not tv.start_ns:
                continue
            p = Process(pid=pid, start_time_ns=tv.start_ns + self.offset, ppid=tv.ppid,
                        parent_start_time_ns=tv.parent_start_ns + self.offset if tv.parent_start_ns else None)
            pp = self.live.get((tv.ppid, tv.parent_start_ns))
            info = procfs.read_proc(pid, self.proc_root)
            if pp is not None:
                p.exe, p.argv, p.cwd, p.comm = pp.exe, pp.argv, pp.cwd, pp.comm
            elif info is not None:
                p.exe, p.comm = self.redact_path(info.exe), info.comm
                p.argv, p.argv_redacted = self.redact(info.argv, info.argv_truncated)
                p.argv_truncated = info.argv_truncated
            self.live[(pid, tv.start_ns)] = p

    def open_connections(self, conns) -> None:
        """Connections of ours still open at the end (the net family's `conns` map):
        recorded without a close."""
        size = ctypes.sizeof(abi.ConnVal)
        for k in conns.keys(8):
            raw = conns.lookup(k, size)
            if not raw:
                continue
            c = abi.ConnVal.from_buffer_copy(raw)
            if c.pid and (c.pid, c.start_ns) in self.live:
                self.on_conn(open_conn_record(c), still_open=True)

    def _window(self, p: Process, base: tuple) -> None:
        """A process observed since collection start: its counters from then on
        (the ones the task iterator gives a baseline for)."""
        for i, f in enumerate(_WINDOWED, 1):
            v = getattr(p, f)
            if v is not None:
                setattr(p, f, max(0, v - base[i]))

    def _still_running(self, p: Process, key: Key) -> None:
        """The record of a process alive at the end: its counters as of the last
        sample (the user/system split by /proc's tick ratio), not nothing."""
        s = self.sampler
        cum = s.cum.get(key)
        if cum is None:
            return
        ticks = procfs.cpu_ticks(p.pid, self.proc_root)
        p.cpu_user_ns, p.cpu_system_ns = split_cpu(cum[0], *(ticks or (1, 0)))
        p.oncpu_ns = cum[0]
        p.read_bytes, p.write_bytes = cum[1], cum[2]
        if self.net_bytes:
            p.net_tx_bytes, p.net_rx_bytes = cum[3], cum[4]
        p.runq_wait_ns = cum[5]
        if self.sched_on:
            p.blocked_io_ns, p.sleep_ns = cum[6], cum[7]
        p.peak_rss_bytes = s.rss_max.get(key) or cum[8]
        base = s.base.pop(key, None)
        if base is not None:
            p.cpu_user_ns, p.cpu_system_ns = split_cpu(cum[0] - base[0], *(ticks or (1, 0)))
            p.oncpu_ns = cum[0] - base[0]
            self._window(p, base)

    def close_out(self) -> list[Process]:
        """Every process still known, as an incomplete record (counters as of the
        last sample) handed to `pending`; the table is empty after. Returns them."""
        for key, p in self.live.items():
            self._still_running(p, key)
        leftovers = list(self.live.values()) + list(self.adopt.values())
        for p in leftovers:
            p.complete = False
        self.pending.done.extend(leftovers)
        self.live.clear()
        self.adopt.clear()
        return leftovers
