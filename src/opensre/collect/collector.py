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
from ..bpf import BpfObject, families
from ..bpf.features import require_basics
from ..errors import OpenSREError, StoreError
from ..model import Event, Exec, Process, Run, Sample
from ..store import Store
from . import procfs
from .cgroups import CgroupResolver
from .limits import LimitReader
from .clock import boot_to_epoch_offset
from .containers import parse_cgroup_path as _parse_cgroup_path
from .hostsamples import HostSampler

PAGE = resource.getpagesize()

# host-wide mode ignores these system daemons (by comm); their children are
# re-evaluated at exec, so a login shell under sshd is still observed
DEFAULT_DENYLIST = [
    "systemd", "systemd-journal", "systemd-udevd", "systemd-logind", "systemd-network", "systemd-resolve",
    "systemd-timesyn", "dbus-daemon", "sshd", "cron", "rsyslogd", "agetty", "polkitd", "udisksd",
    "containerd", "dockerd", "kubelet", "chronyd", "ntpd", "irqbalance", "snapd", "unattended-upgr",
]


# probe families beyond the lifecycle core, each its own object (bpf/<name>.bpf.c);
# every one can be switched off (docs/probes.md lists what each costs)
FAMILIES = families.FAMILIES


@dataclass
class CollectorOptions:
    host_wide: bool = False
    ringbuf_bytes: int = 8 << 20
    drain_interval_ms: int = 100
    families: tuple[str, ...] = FAMILIES
    # families that must load: without one of these, start() fails instead of
    # continuing with what this kernel supports
    required: tuple[str, ...] = ()
    sample_interval_s: float = 1.0
    # the collector yields the CPU to the workload: on a saturated host its work
    # waits (the ring buffer holds the events) instead of slowing the workload
    nice: int = 10
    denylist: list[str] = field(default_factory=lambda: list(DEFAULT_DENYLIST))
    btf_path: str | None = None
    proc_root: str = "/proc"
    live: bool = False  # write a live snapshot each tick for `opensre top` (store/live.py)


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


_ARGV_OFF = abi.ExecEvent.argv.offset
_CWD_OFF = abi.ExecEvent.cwd.offset
_FILENAME_OFF, _FILENAME_END = abi.FILENAME_OFF, abi.FILENAME_OFF + abi.FILENAME_MAX
_EXIT_UNPACK, _EXEC_UNPACK = abi.EXIT_STRUCT.unpack_from, abi.EXEC_STRUCT.unpack_from
_SAMPLE_ITER = abi.SAMPLE_STRUCT.iter_unpack
_EXIT_SIZE, _EXEC_HEAD_SIZE = abi.EXIT_SIZE, abi.EXEC_HEAD_SIZE
# the handlers unpack these tuples by position: the order they were written for
_EXEC_ORDER = ("hdr.type", "hdr.version", "hdr.size", "hdr.ts_ns", "id.pid", "id.ppid", "id.start_ns",
               "id.parent_start_ns", "id.uid", "id.gid", "id.comm", "ctx.cgroup_id", "ctx.memcg_v1_id", "ctx.pidns",
               "ctx.mntns", "ctx.netns", "ctx._pad", "flags", "argv_len", "argv_total", "cwd_len", "_pad")
_EXIT_ORDER = _EXEC_ORDER[:17] + (
    "end_ns", "status", "flags", "sum_exec_ns", "utime_ns", "stime_ns", "nvcsw", "nivcsw", "min_flt", "maj_flt",
    "maxrss_pages", "hiwater_pages", "rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes",
    "cancelled_write_bytes", "threads", "_pad", "net_tx_bytes", "net_rx_bytes", "runq_wait_ns", "blocked_io_ns",
    "sleep_ns", "rss_exit_pages")
_SAMPLE_ORDER = ("pid", "tid", "start_ns", "sum_exec_ns", "run_delay_ns", "blocked_ns", "sleep_ns", "rchar", "wchar",
                 "read_bytes", "write_bytes", "dead_exec_ns", "rss_pages", "acc_rchar", "acc_wchar", "acc_read_bytes",
                 "acc_write_bytes", "acc_run_delay_ns", "acc_blocked_ns", "acc_sleep_ns", "net_tx_bytes",
                 "net_rx_bytes")
if (abi.EXEC_FIELDS, abi.EXIT_FIELDS, abi.SAMPLE_FIELDS) != (_EXEC_ORDER, _EXIT_ORDER, _SAMPLE_ORDER):
    raise ImportError("abi/events.py changed: update the unpacking in collect/collector.py with it")

_PROCESS_DEFAULTS = Process(pid=0, start_time_ns=0).__dict__
_new_object = object.__new__


def _new_process(pid: int, start_time_ns: int, ppid: int) -> Process:
    """Process(pid=, start_time_ns=, ppid=) at a third of the dataclass __init__'s cost
    (60 defaults): thousands per second in a fork/exec storm."""
    p = _new_object(Process)
    d = _PROCESS_DEFAULTS.copy()
    d["pid"], d["start_time_ns"], d["ppid"], d["argv"] = pid, start_time_ns, ppid, []
    p.__dict__ = d
    return p

# few distinct cgroups, thousands of processes: parse each path once
parse_cgroup_path = __import__("functools").lru_cache(maxsize=4096)(_parse_cgroup_path)


class Collector:
    """Owns the BPF object of process lifecycle and turns its events into records.

    `redact` maps argv -> (argv, changed); it runs before anything is stored."""

    def __init__(self, store: Store, run: Run, opts: CollectorOptions | None = None,
                 redact: Callable[[list[str]], tuple[list[str], bool]] | None = None,
                 cgroups: CgroupResolver | None = None):
        self.store, self.run = store, run
        self.opts = opts or CollectorOptions()
        run.sample_interval_s = self.opts.sample_interval_s if "samples" in self.opts.families else None
        self.redact = redact or (lambda a, truncated=False: (a, False))
        # paths (cwd, exe) through the pattern rules: the redactor's `path`, if it has one
        self.redact_path = getattr(redact, "path", None) or (lambda p: p)
        self.cgroups = cgroups or CgroupResolver()
        self.limits = LimitReader()
        self.offset = boot_to_epoch_offset()
        self.obj: BpfObject | None = None
        self.ring = None
        self._raw: list[bytes] = []
        self.live: dict[tuple[int, int], Process] = {}   # (pid, start boottime ns)
        self._adopt: dict[int, Process] = {}             # seeded pids awaiting their exact start
        self._done: list[Process] = []
        self._execs: list[Exec] = []
        self._samples: list[Sample] = []
        self._events: list[Event] = []
        self._host_samples: list = []
        self._cum: dict[tuple[int, int], tuple] = {}  # last cumulative counters per process
        self._base: dict[tuple[int, int], tuple] = {}  # counters when first seen, of processes already running
        self._rss_max: dict[tuple[int, int], int] = {}  # largest sampled RSS per live process
        self._ctx_cache: dict[tuple[int, int], tuple] = {}  # (cgroup ids) -> resolved context
        self._exec_cache: dict[tuple[bytes, bytes], tuple] = {}  # (argv, cwd bytes) -> (argv, redacted, cwd)
        self.extra: dict[str, BpfObject] = {}
        self.families = ()  # the ones running (start() fills it)
        self._comm_cache: dict[bytes, str] = {}
        self._exe_cache: dict[bytes, str] = {}
        # live processes that exec'd again (a job's `bash -c` exec'ing its only command):
        # their first argv, for the live view's task boundaries (Correlator's execs)
        self._first_argv: dict[tuple[int, int], list[str]] = {}
        self.net_bytes = False  # the net family's variant counts per-process bytes
        self.host_sampler = HostSampler()
        self._next_sample = 0.0
        self.decode_errors = 0
        self.written = 0
        # what was stored, kept for the end-of-run correlation (keep_records())
        self._kept: tuple[dict, list] | None = None
        self._keep_limit = 0
        self.store_error: StoreError | None = None
        self.spilled = 0  # process records written to a spill file instead of the store

    @property
    def families(self) -> tuple[str, ...]:
        return self._families

    @families.setter
    def families(self, fams) -> None:
        self._families = tuple(fams)
        self._sched_on, self._samples_on = "sched" in self._families, "samples" in self._families

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Load and attach the lifecycle core, then every family asked for that this
        kernel supports (bpf/families.py). What ran, in which variant, and what
        could not is recorded on the run (`run.probes`)."""
        require_basics(self.opts.btf_path)
        kbtf = families.KernelBtf(self.opts.btf_path)
        size = max(4096, 1 << (max(self.opts.ringbuf_bytes, 4096) - 1).bit_length())
        rodata = dict(host_wide=int(self.opts.host_wide), wakeup_bytes=max(size // 4, 1))

        def configure_core(o: BpfObject) -> None:
            o.set_max_entries("events", size)

        def before_attach(o: BpfObject) -> None:
            if self.opts.host_wide:
                deny = o.map("deny_comm")
                for comm in self.opts.denylist:
                    deny.update(comm.encode()[:15].ljust(16, b"\0"), b"\1")
                # never observe ourselves
                o.map("tracked").update(ctypes.c_uint32(os.getpid()), abi.TrackVal(0, abi.DENIED))

        probes = {f: "off" for f in FAMILIES}
        try:
            core = families.load_family(families.CORE, kbtf, btf_path=self.opts.btf_path, rodata=rodata,
                                        configure=configure_core, prepare=before_attach)
            self.obj = o = core.obj
            probes[families.CORE] = core.describe()
            running = []
            loaded = self._load_families(kbtf, o, rodata)
            for fam in self.opts.families:  # every loaded one is owned (closed) before a failure is raised
                x = loaded[fam]
                if not isinstance(x, BaseException):
                    self.extra[fam] = x.obj
            for fam in self.opts.families:
                x = loaded[fam]
                if isinstance(x, families.FamilyUnavailable):
                    if fam in self.opts.required:
                        raise x
                    probes[fam] = f"unavailable: {x.reason}"
                    continue
                if isinstance(x, BaseException):
                    raise x
                probes[fam] = x.describe()
                running.append(fam)
                if fam == "net":
                    self.net_bytes = x.variant.key != "conns"  # connections only: no byte counts
            self.families = tuple(running)
            self.ring = o.ring_buffer("events", self._on_record)
        except BaseException:
            self.close()
            raise
        finally:
            kbtf.close()
        self.run.probes = probes
        self.run.sample_interval_s = self.opts.sample_interval_s if "samples" in self.families else None
        self._next_sample = time.monotonic() + self.opts.sample_interval_s

    def _load_families(self, kbtf, core: BpfObject, rodata: dict) -> dict:
        """family -> Loaded, or the exception its load raised. They load at the same
        time, one thread each: most of a load is the kernel's verifier and libbpf's
        BTF work, in C calls that release the GIL (start-up time)."""
        def one(fam: str):
            try:
                return families.load_family(fam, kbtf, btf_path=self.opts.btf_path, core=core, rodata=rodata)
            except BaseException as e:  # handed to start(), which raises it in order
                return e

        fams = list(self.opts.families)
        if len(fams) < 2:
            return {f: one(f) for f in fams}
        import threading

        out: dict = {}
        threads = [threading.Thread(target=lambda f=f: out.__setitem__(f, one(f)), name=f"load-{f}", daemon=True)
                   for f in fams[1:]]
        for t in threads:
            t.start()
        out[fams[0]] = one(fams[0])
        for t in threads:
            t.join()
        return out

    def track(self, pid: int, *, observed_since_ns: int | None = None, info: procfs.ProcInfo | None = None,
              state: int = abi.TRACKED, nthreads: int = 0) -> None:
        """Seed the kernel's tracked set with a process we did not see start.
        `nthreads`: how many threads it has had, when that is known for sure (a
        child held before its exec has one); 0 = unknown, recorded at its reaping."""
        self.obj.map("tracked").update(ctypes.c_uint32(pid), abi.TrackVal(0, state, nthreads=nthreads))
        if state != abi.TRACKED:
            return
        info = info or procfs.read_proc(pid, self.opts.proc_root)
        p = Process(pid=pid, start_time_ns=(info.start_boot_ns if info else 0) + self.offset,
                    ppid=info.ppid if info else os.getpid(), observed_since_ns=observed_since_ns)
        if info and observed_since_ns is not None:
            # its exec happened before we looked: take what /proc shows of it
            p.comm, p.exe, p.uid = info.comm, self.redact_path(info.exe), info.uid
            p.argv, p.argv_redacted = self.redact(info.argv, info.argv_truncated)
            p.argv_truncated = info.argv_truncated
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
        if "samples" in self.families:
            self.sample()  # the baselines: what they did before now is not part of the collection
        return n

    def lower_priority(self) -> None:
        """Apply `opts.nice` to this process. Called after the observed command is
        started (a child would inherit it)."""
        if self.opts.nice:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), self.opts.nice))
            except OSError:
                pass

    def _on_record(self, raw: bytes) -> None:
        # called from C for every record: append only, the work happens per drain
        self._raw.append(raw)

    def poll(self, timeout_ms: int | None = None) -> int:
        """Wait up to timeout for events, then process everything queued; take a
        sample when one is due."""
        self.ring.poll(self.opts.drain_interval_ms if timeout_ms is None else timeout_ms)
        if time.monotonic() >= self._next_sample:
            self._next_sample += self.opts.sample_interval_s
            self.ring.poll(0)  # exits before the tick must be applied first
            self.sample()
            if self.opts.live:
                self.write_live()
        return self.process()

    def sample(self, t_ns: int | None = None) -> int:
        """One tick: every live tracked process's counters from the task iterator
        (kernel state, not /proc), as deltas since its previous sample."""
        it = self.extra.get("samples")
        if it is None:
            self._host_samples.append(self.host_sampler.sample(t_ns or time.time_ns()))
            return 0
        self.process(flush=False)  # records for processes born since the last drain
        raw = it.read_iter("sample_tasks")
        # stamped at the read, not before the drain above: a busy drain would make
        # the intervals between passes differ from what the counters cover
        t_ns = t_ns or time.time_ns()
        self._host_samples.append(self.host_sampler.sample(t_ns))
        size = abi.SAMPLE_STRUCT.size
        groups: dict[tuple[int, int], list] = {}
        if len(raw) % size:
            raw = raw[:len(raw) - len(raw) % size]
        for s in _SAMPLE_ITER(raw):
            (pid, tid, start_ns, sum_exec_ns, run_delay_ns, blocked_ns, sleep_ns, _rchar, _wchar, read_bytes,
             write_bytes, *_rest) = s
            g = groups.get((pid, start_ns))
            if g is None:
                g = groups[(pid, start_ns)] = [None, 0, 0, 0, 0, 0, 0]
            if tid == pid:
                g[0] = s
            g[1] += sum_exec_ns
            g[2] += read_bytes
            g[3] += write_bytes
            g[4] += run_delay_ns
            g[5] += blocked_ns
            g[6] += sleep_ns
        n = 0
        for key, (lead, cpu, rb, wb, rq, bl, sl) in groups.items():
            if lead is None:
                continue  # leader exiting (its figures are moving into acc): next tick
            p = self.live.get(key) or self._fork_from_sample(*key)
            if p is None:
                continue
            (dead_exec_ns, rss_pages, _ar, _aw, acc_read_bytes, acc_write_bytes, acc_run_delay_ns, acc_blocked_ns,
             acc_sleep_ns, net_tx_bytes, net_rx_bytes) = lead[11:]
            cum = (cpu + dead_exec_ns, rb + acc_read_bytes, wb + acc_write_bytes, net_tx_bytes, net_rx_bytes,
                   rq + acc_run_delay_ns, bl + acc_blocked_ns, sl + acc_sleep_ns)
            self._emit_sample(p, key, t_ns, cum, rss_pages * PAGE)
            n += 1
        return n

    def write_live(self) -> None:
        """The live processes and their latest counters, for `opensre top`."""
        from ..store import live

        rows = []
        for key, p in self.live.items():
            c = self._cum.get(key)
            first = self._first_argv.get(key)
            rows.append([p.pid, p.start_time_ns, p.ppid, p.parent_start_time_ns, p.exe, p.comm,
                         [a[:200] for a in p.argv[:live.ARGV_ITEMS]],
                         *((c[0], c[8], c[1], c[2], c[3], c[4]) if c else (0, 0, 0, 0, 0, 0)), p.exec_count,
                         [a[:live.FIRST_ARGV_CHARS] for a in first[:live.ARGV_ITEMS]] if first else None])
        doc = {"run_id": self.run.run_id, "name": self.run.name, "mode": self.run.mode,
               "command": self.run.command, "start_time_ns": self.run.start_time_ns, "t_ns": time.time_ns(),
               "interval_s": self.opts.sample_interval_s, "collector_pid": os.getpid(),
               "finished_processes": self.written + len(self._done), "drops": self.run.drops, "processes": rows}
        try:
            live.write_snapshot(self.store.path, self.run.run_id, doc)
        except (OSError, OpenSREError):
            self.opts.live = False  # a full disk must not stop the collection: the records matter more

    def remove_live(self) -> None:
        if self.opts.live:
            from ..store import live

            live.remove_snapshot(self.store.path, self.run.run_id)

    def _emit_sample(self, p: Process, key, t_ns: int, cum: tuple, rss: int, final: bool = False) -> None:
        prev = self._cum.get(key)
        if prev is None:
            if p.observed_since_ns is not None:
                # already running when we started: its counters so far are not ours to
                # chart; the first sample is the baseline its window starts from
                self._base[key] = cum
                self._cum[key] = cum + (rss,)
                self._rss_max[key] = rss
                return
            prev = (0,) * 8 + (-1,)
        elif not final and prev[:8] == cum and prev[8] == rss:
            return  # nothing moved: an idle process costs no row (its deltas are all zero)
        d = [a - b for a, b in zip(cum, prev)]
        self._cum[key] = cum + (rss,)
        if rss > self._rss_max.get(key, 0):
            self._rss_max[key] = rss
        self._samples.append(Sample(p.pid, p.start_time_ns, t_ns, d[0], rss, d[1], d[2], d[3], d[4], d[5], d[6], d[7]))

    def process(self, flush: bool = True) -> int:
        """Decode and apply the records queued since the last call. Exec and exit
        records (all but a handful) are unpacked to one tuple each (abi.flat_layout),
        not to ctypes objects; the rare ones go through abi.decode."""
        raw, self._raw = self._raw, []
        on_exit, on_exec, exit_unpack, exec_unpack = self._on_exit, self._on_exec, _EXIT_UNPACK, _EXEC_UNPACK
        for rec in raw:
            # struct osre_hdr, little-endian: type u16, version u16
            if rec[2] == abi.ABI_VERSION and not rec[3] and not rec[1]:
                typ, n = rec[0], len(rec)
                if typ == abi.EV_EXIT and n >= _EXIT_SIZE:
                    on_exit(exit_unpack(rec))
                    continue
                if typ == abi.EV_EXEC and n >= _EXEC_HEAD_SIZE:
                    on_exec(exec_unpack(rec), rec)
                    continue
            try:
                typ, ev = abi.decode(rec)
            except abi.AbiMismatch:
                self.decode_errors += 1
                continue
            if typ == abi.EV_OOM:
                self._on_oom(ev)
            elif typ == abi.EV_CONN:
                self._on_conn(ev)
            else:  # pragma: no cover - a version or size the fast path refused passed decode()
                self.decode_errors += 1
        if flush:
            self.flush()
        return len(raw)

    def flush(self) -> None:
        if not (self._done or self._execs or self._samples or self._events or self._host_samples):
            return
        try:
            self.store.put_batch(self.run.run_id, self._done, self._execs, self._samples, self._events,
                                 self._host_samples)
        except StoreError as e:
            self.store_error = e  # keep the records in memory and retry next drain
            return
        self.store_error = None
        self.written += len(self._done)
        if self._kept is not None:
            procs, execs = self._kept
            for p in self._done:
                procs[(p.pid, p.start_time_ns)] = p  # as the store's INSERT OR REPLACE keeps it
            execs.extend(self._execs)
            if len(procs) > self._keep_limit:
                self._kept = None  # too many to hold: correlation reads the store instead
        self._done, self._execs, self._samples, self._events, self._host_samples = [], [], [], [], []

    def keep_records(self, limit: int) -> None:
        """Keep every record stored from now on (up to `limit` processes) in memory,
        so the end-of-run correlation need not read the run back from the store."""
        self._kept, self._keep_limit = ({}, []), limit

    def kept_records(self) -> tuple[list[Process], list[Exec]] | None:
        """The records stored since keep_records(), as the store returns them
        (processes by start, then pid; execs by time), or None when more than the
        limit were stored or something could not be stored."""
        if self._kept is None or self.store_error is not None:
            return None
        procs, execs = self._kept
        return (sorted(procs.values(), key=lambda p: (p.start_time_ns, p.pid)),
                sorted(execs, key=lambda e: e.t_ns))

    def spill(self) -> str | None:
        """When the store cannot take them (full disk), write the records still held
        in memory as JSON Lines somewhere else, so nothing is lost; `opensre import`
        loads the file into a store later (docs/architecture.md, "Spill files").
        Returns the path; None when nothing was held or no directory could take
        them (they stay in memory: `unsaved()` counts them)."""
        if not (self._done or self._execs or self._samples or self._events or self._host_samples):
            return None
        import dataclasses
        import json
        import tempfile

        from ..errors import OutputError
        from ..export import process_record
        from ..safefile import open_append_private

        rid = self.run.run_id
        name = f"opensre-spill-{rid}.jsonl"
        for d in (os.environ.get("OPENSRE_SPILL_DIR"), "/dev/shm", tempfile.gettempdir()):
            if not d or not os.path.isdir(d):
                continue
            path = os.path.join(d, name)
            try:
                with open_append_private(path, "spill file") as f:
                    for p in self._done:
                        f.write(json.dumps(process_record(rid, p)) + "\n")
                    for kind, recs in (("exec", self._execs), ("sample", self._samples), ("event", self._events)):
                        for r in recs:
                            f.write(json.dumps({"run_id": rid, "record": kind, **dataclasses.asdict(r)}) + "\n")
                    for h in self._host_samples:
                        f.write(json.dumps({"run_id": rid, "record": "host_sample", **h.__dict__}) + "\n")
            except (OSError, OutputError):
                continue
            self.spilled += len(self._done)
            self._done, self._execs, self._samples, self._events, self._host_samples = [], [], [], [], []
            return path
        return None

    def unsaved(self) -> int:
        """Process records held in memory that neither the store nor a spill file took."""
        return len(self._done)

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
        names = {"events": abi.STAT_EVENTS, "dropped_exec": abi.STAT_DROP_EXEC,
                 "dropped_exit": abi.STAT_DROP_EXIT, "tracked_map_full": abi.STAT_TRACK_FULL,
                 "acc_map_full": abi.STAT_ACC_FULL, "dropped_oom": abi.STAT_DROP_OOM,
                 "dropped_conn": abi.STAT_DROP_CONN}
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
        if self.live:
            self.sample()  # a last point for what is still running
        self._open_connections()
        self._unannounced()
        for key, p in self.live.items():
            self._still_running(p, key)
        leftovers = list(self.live.values()) + list(self._adopt.values())
        for p in leftovers:
            p.complete = False
        self._done.extend(leftovers)
        self.live.clear()
        self._adopt.clear()
        self.run.drops, self.run.drop_detail = self.drops()
        self.flush()
        return leftovers

    def _window(self, p: Process, base: tuple) -> None:
        """A process observed since collection start: its counters from then on
        (the ones the task iterator gives a baseline for)."""
        for i, f in enumerate(("read_bytes", "write_bytes", "net_tx_bytes", "net_rx_bytes", "runq_wait_ns",
                               "blocked_io_ns", "sleep_ns"), 1):
            v = getattr(p, f)
            if v is not None:
                setattr(p, f, max(0, v - base[i]))

    def _still_running(self, p: Process, key) -> None:
        """The record of a process alive at the end: its counters as of the last
        sample (the user/system split by /proc's tick ratio), not nothing."""
        cum = self._cum.get(key)
        if cum is None:
            return
        ticks = procfs.cpu_ticks(p.pid, self.opts.proc_root)
        p.cpu_user_ns, p.cpu_system_ns = split_cpu(cum[0], *(ticks or (1, 0)))
        p.oncpu_ns = cum[0]
        p.read_bytes, p.write_bytes = cum[1], cum[2]
        if self.net_bytes:
            p.net_tx_bytes, p.net_rx_bytes = cum[3], cum[4]
        p.runq_wait_ns = cum[5]
        if "sched" in self.families:
            p.blocked_io_ns, p.sleep_ns = cum[6], cum[7]
        p.peak_rss_bytes = self._rss_max.get(key) or cum[8]
        base = self._base.pop(key, None)
        if base is not None:
            p.cpu_user_ns, p.cpu_system_ns = split_cpu(cum[0] - base[0], *(ticks or (1, 0)))
            p.oncpu_ns = cum[0] - base[0]
            self._window(p, base)

    def close(self) -> None:
        self.remove_live()
        for x in self.extra.values():
            x.close()
        self.extra.clear()
        if self.obj:
            self.obj.close()
            self.obj = None

    # -- event handlers ----------------------------------------------------------
    def _record_for(self, pid: int, start_ns: int, ppid: int, parent_start_ns: int) -> Process:
        p = self.live.get((pid, start_ns))
        if p is not None:
            return p
        return self._new_record(pid, start_ns, ppid, parent_start_ns)

    def _new_record(self, pid: int, start_ns: int, ppid: int, parent_start_ns: int) -> Process:
        """The live record of a process first heard of now (its exec, exit or first sample)."""
        p = self._adopt.pop(pid, None)
        if p is None:
            p = _new_process(pid, start_ns + self.offset, ppid)
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

    def _fork_from_sample(self, pid: int, start_ns: int) -> Process | None:
        """A tracked fork that has not exec'd (a multiprocessing worker) has sent no
        record yet: the tracked map knows its parent, so its samples count from the
        first tick, not only its exit totals."""
        raw = self.obj.map("tracked").lookup(ctypes.c_uint32(pid), ctypes.sizeof(abi.TrackVal))
        if raw is None:
            return None
        tv = abi.TrackVal.from_buffer_copy(raw)
        if tv.state != abi.TRACKED or tv.start_ns not in (0, start_ns):
            return None
        return self._new_record(pid, start_ns, tv.ppid, tv.parent_start_ns)

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

    def _on_exec(self, t: tuple, raw: bytes) -> None:
        """`t`: the record's head unpacked (abi.EXEC_FIELDS order, checked at import)."""
        (_typ, _ver, _size, ts_ns, pid, ppid, start_ns, pstart_ns, uid, gid, comm, cg, memcg, pidns, mntns, netns,
         _pad0, flags, argv_len, _argv_total, cwd_len, _pad1) = t
        if flags & abi.EXEC_DENIED:
            self.live.pop((pid, start_ns), None)
            self._adopt.pop(pid, None)
            return
        p = self.live.get((pid, start_ns)) or self._new_record(pid, start_ns, ppid, pstart_ns)
        p.comm, p.uid, p.gid = self._comm(comm), uid, gid
        self._apply_ctx(p, cg, memcg, pidns, mntns, netns)
        # slice the record itself: no copy of the whole struct
        argv_raw = raw[_ARGV_OFF:_ARGV_OFF + argv_len]
        cwd_raw = raw[_CWD_OFF:_CWD_OFF + cwd_len]
        fn_raw = raw[_FILENAME_OFF:_FILENAME_END]
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
            self._first_argv[(pid, start_ns)] = p.argv
        p.argv, p.argv_redacted = argv, red
        p.argv_truncated = cut
        p.exec_count += 1
        self._execs.append(Exec(pid, p.start_time_ns, ts_ns + self.offset, exe, argv, cut, p.cwd))

    def _on_exit(self, t: tuple) -> None:
        """`t`: the record unpacked (abi.EXIT_FIELDS order, checked at import)."""
        (_typ, _ver, _size, ts_ns, pid, ppid, start_ns, pstart_ns, uid, gid, comm, cg, memcg, pidns, mntns, netns,
         _pad0, end_ns, status, flags, sum_exec_ns, utime_ns, stime_ns, nvcsw, nivcsw, min_flt, maj_flt,
         maxrss_pages, hiwater_pages, rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes,
         threads, _pad1, net_tx_bytes, net_rx_bytes, runq_wait_ns, blocked_io_ns, sleep_ns, rss_exit_pages) = t
        key = (pid, start_ns)
        p = self.live.pop(key, None) or self._new_record(pid, start_ns, ppid, pstart_ns)
        self.live.pop(key, None)
        if self._first_argv:
            self._first_argv.pop(key, None)
        p.comm, p.uid, p.gid = self._comm(comm), uid, gid
        if mntns and p.mntns is None:
            self._apply_ctx(p, cg, memcg, pidns, mntns, netns)  # a fork that never exec'd: its context as of its death
        p.end_time_ns = (end_ns or ts_ns) + self.offset
        if status & 0x7F == 0:  # decode_status(), inline: the common case
            p.exit_code, p.exit_signal, p.core_dumped = (status >> 8) & 0xFF, None, False
        else:
            p.exit_code, p.exit_signal, p.core_dumped = decode_status(status)
        base = self._base.pop(key, None) if self._base else None
        # observed since collection start: the window's share (docs/data-catalog.md)
        own_cpu = sum_exec_ns - base[0] if base else sum_exec_ns
        p.cpu_user_ns, p.cpu_system_ns = split_cpu(own_cpu, utime_ns, stime_ns)
        p.maxrss_bytes = maxrss_pages * PAGE
        if flags & abi.EXIT_HWM_SAMPLED:
            # the kernel kept no exact peak of the final image (bpf/include/compat.h):
            # the largest sampled RSS, or maxrss (an upper bound) if it lived within a tick
            p.peak_rss_bytes = self._rss_max.get(key) or p.maxrss_bytes
        else:
            p.peak_rss_bytes = hiwater_pages * PAGE
        if self._rss_max:
            self._rss_max.pop(key, None)
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
        if self._sched_on:
            p.blocked_io_ns, p.sleep_ns = blocked_io_ns, sleep_ns
        if base is not None:
            self._window(p, base)
        if self._samples_on and key in self._cum:
            # the last interval runs to the exit, so the series sums to these totals
            # a process that lived within one tick has no row: its record is its one
            # sample (Store.samples() yields it from the totals)
            cum = (sum_exec_ns, read_bytes, write_bytes, net_tx_bytes, net_rx_bytes,
                   runq_wait_ns, blocked_io_ns, sleep_ns)
            rss_exit = (self._cum[key][8] if flags & abi.EXIT_NO_MM else rss_exit_pages * PAGE)
            self._emit_sample(p, key, p.end_time_ns, cum, rss_exit, final=True)
            self._cum.pop(key, None)
        p.complete = True
        self._done.append(p)

    def _on_oom(self, ev) -> None:
        p = self.live.get((ev.id.pid, ev.id.start_ns))
        if p is not None:
            p.oom_killed = True
        limit = ev.memcg_limit_pages * PAGE if ev.memcg_limit_pages else None
        self._events.append(Event("oom_kill", ev.id.pid, ev.id.start_ns + self.offset, ev.hdr.ts_ns + self.offset, {
            "comm": ev.id.comm.decode("utf-8", "replace"), "rss_bytes": ev.rss_pages * PAGE, "memcg_limit_bytes": limit,
            "memcg_usage_bytes": ev.memcg_usage_pages * PAGE if limit else None,
            "memcg_id": ev.memcg_id, "memcg_path": self.cgroups.path(ev.memcg_id, "v1")
            or self.cgroups.path(ev.memcg_id, "v2")}))

    def _on_conn(self, ev, still_open: bool = False) -> None:
        import ipaddress

        fam = 4 if ev.family == 2 else 6
        n = 4 if fam == 4 else 16
        addr = lambda b: str(ipaddress.ip_address(bytes(b[:n])))  # noqa: E731
        close = None if still_open else ev.close_ns + self.offset
        opened = ev.open_ns + self.offset
        self._events.append(Event("tcp_connection", ev.pid, ev.start_ns + self.offset, opened, {
            "family": f"ipv{fam}", "local_addr": addr(ev.saddr), "local_port": ev.sport,
            "remote_addr": addr(ev.daddr), "remote_port": ev.dport,
            "direction": "outbound" if ev.flags & abi.CONN_ACTIVE else "inbound",
            "open_time_ns": opened, "close_time_ns": close,
            "duration_ns": (close - opened) if close else None,
            "bytes_sent": None if still_open else ev.bytes_sent,
            "bytes_received": None if still_open else ev.bytes_received}))

    def _unannounced(self) -> None:
        """Tracked processes still running that never exec'd have sent no record
        yet: take them from the tracked map (exact start, parent) and /proc."""
        m = self.obj.map("tracked")
        known = set(self.live) | {(pid, 0) for pid in self._adopt}
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
            info = procfs.read_proc(pid, self.opts.proc_root)
            if pp is not None:
                p.exe, p.argv, p.cwd, p.comm = pp.exe, pp.argv, pp.cwd, pp.comm
            elif info is not None:
                p.exe, p.comm = self.redact_path(info.exe), info.comm
                p.argv, p.argv_redacted = self.redact(info.argv, info.argv_truncated)
                p.argv_truncated = info.argv_truncated
            self.live[(pid, tv.start_ns)] = p

    def _open_connections(self) -> None:
        """Connections of ours still open at the end: recorded without a close."""
        net = self.extra.get("net")
        if net is None:
            return
        m = net.map("conns")
        size = ctypes.sizeof(abi.ConnVal)
        for k in m.keys(8):
            raw = m.lookup(k, size)
            if not raw:
                continue
            c = abi.ConnVal.from_buffer_copy(raw)
            if c.pid and (c.pid, c.start_ns) in self.live:
                ev = abi.ConnEvent(pid=c.pid, flags=c.flags | abi.CONN_OPEN, start_ns=c.start_ns, open_ns=c.open_ns,
                                   family=c.family, sport=c.sport, dport=c.dport)
                ev.saddr[:], ev.daddr[:] = c.saddr[:], c.daddr[:]
                self._on_conn(ev, still_open=True)
