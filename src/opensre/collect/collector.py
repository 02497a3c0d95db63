"""The collector: one BPF object of process lifecycle (and the probe families
beside it), its ring buffer drained into process records, stored per drain.

Each job has its module; this one loads, drains and ends:
  decode.py     record layouts, the per-event dispatch (the hot path)
  proctable.py  the processes, and what exec/exit/OOM/connection records do to them
  sampling.py   the task-iterator pass each tick: per-process deltas
  persist.py    records on their way to the store (or a spill file)
  livesnap.py   the live snapshot for `opensre top`

The hot path is per drain, not per event: the ring-buffer callback only appends
bytes; decoding, enrichment and one store transaction happen once per interval.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from ..abi import events as abi
from ..bpf import BpfObject, families
from ..bpf.features import require_basics
from ..errors import OpenSREError, StoreError
from ..model import Exec, Process, Run
from ..store import Store
from . import livesnap, procfs
from .cgroups import CgroupResolver
from .clock import boot_to_epoch_offset
from .decode import dispatch
from .persist import Pending
from .proctable import ProcessTable
from .sampling import Sampler

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
        self.pending = Pending(store, run)
        self.sampler = Sampler(self.pending)
        self.table = ProcessTable(self.pending, self.sampler, boot_to_epoch_offset(), self.redact,
                                  self.redact_path, cgroups or CgroupResolver(), self.opts.proc_root)
        self.obj: BpfObject | None = None
        self.ring = None
        self._raw: list[bytes] = []
        self.extra: dict[str, BpfObject] = {}
        self.families = ()  # the ones running (start() fills it)
        self._next_sample = 0.0
        self.decode_errors = 0

    @property
    def families(self) -> tuple[str, ...]:
        return self._families

    @families.setter
    def families(self, fams) -> None:
        self._families = tuple(fams)
        self.table.sched_on, self.table.samples_on = "sched" in self._families, "samples" in self._families

    @property
    def offset(self) -> int:
        """Boot time -> epoch, added to every kernel timestamp."""
        return self.table.offset

    @offset.setter
    def offset(self, ns: int) -> None:
        self.table.offset = ns

    @property
    def written(self) -> int:
        """Process records the store took."""
        return self.pending.written

    @property
    def spilled(self) -> int:
        """Process records written to a spill file instead of the store."""
        return self.pending.spilled

    @property
    def store_error(self) -> StoreError | None:
        """The store's refusal of the last write (records are held and retried), or None."""
        return self.pending.store_error

    @store_error.setter
    def store_error(self, e: StoreError | None) -> None:
        self.pending.store_error = e

    @property
    def _done(self) -> list[Process]:
        """Finished records not stored yet."""
        return self.pending.done

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
                    self.table.net_bytes = x.variant.key != "conns"  # connections only: no byte counts
            self.families = tuple(running)
            self.table.tracked = o.map("tracked")
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
        if state == abi.TRACKED:
            self.table.seed(pid, info or procfs.read_proc(pid, self.opts.proc_root), observed_since_ns)

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

    # -- the drain ------------------------------------------------------------------
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

    def process(self, flush: bool = True) -> int:
        """Decode and apply the records queued since the last call (decode.dispatch:
        one handler call per record)."""
        raw, self._raw = self._raw, []
        t = self.table
        self.decode_errors += dispatch(raw, t.on_exec, t.on_exit, t.on_oom, t.on_conn)
        if flush:
            self.flush()
        return len(raw)

    def sample(self, t_ns: int | None = None) -> int:
        """One tick: every live tracked process's counters from the task iterator
        (kernel state, not /proc), as deltas since its previous sample."""
        it = self.extra.get("samples")
        if it is None:
            self.sampler.host_sample(t_ns or time.time_ns())
            return 0
        self.process(flush=False)  # records for processes born since the last drain
        raw = it.read_iter("sample_tasks")
        # stamped at the read, not before the drain above: a busy drain would make
        # the intervals between passes differ from what the counters cover
        t_ns = t_ns or time.time_ns()
        self.sampler.host_sample(t_ns)
        return self.sampler.apply(raw, t_ns, self.table.live, self.table.fork_record)

    def flush(self) -> None:
        self.pending.flush()

    # -- the live view ------------------------------------------------------------------
    def write_live(self) -> None:
        """The live processes and their latest counters, for `opensre top`."""
        from ..store import live

        t = self.table
        doc = livesnap.snapshot(self.run, self.opts.sample_interval_s, self.written + len(self.pending.done),
                                livesnap.rows(t.live, self.sampler.cum, t.first_argv))
        try:
            live.write_snapshot(self.store.path, self.run.run_id, doc)
        except (OSError, OpenSREError):
            self.opts.live = False  # a full disk must not stop the collection: the records matter more

    def remove_live(self) -> None:
        if self.opts.live:
            from ..store import live

            live.remove_snapshot(self.store.path, self.run.run_id)

    # -- what was stored ----------------------------------------------------------------
    def keep_records(self, limit: int) -> None:
        """Keep every record stored from now on (up to `limit` processes) in memory,
        so the end-of-run correlation need not read the run back from the store."""
        self.pending.keep(limit)

    def kept_records(self) -> tuple[list[Process], list[Exec]] | None:
        """The records stored since keep_records(), as the store returns them
        (processes by start, then pid; execs by time), or None when more than the
        limit were stored or something could not be stored."""
        return self.pending.kept()

    def spill(self) -> str | None:
        """When the store cannot take them (full disk), write the records still held
        in memory as JSON Lines somewhere else, so nothing is lost; `opensre import`
        loads the file into a store later (docs/architecture.md, "Spill files").
        Returns the path; None when nothing was held or no directory could take
        them (they stay in memory: `unsaved()` counts them)."""
        return self.pending.spill()

    def unsaved(self) -> int:
        """Process records held in memory that neither the store nor a spill file took."""
        return self.pending.unsaved()

    # -- kernel-side accounting -----------------------------------------------------------
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

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> list[Process]:
        """Final drain; processes still alive are stored as incomplete. Returns them."""
        self.ring.poll(0)
        self.process()
        if self.table.live:
            self.sample()  # a last point for what is still running
        net = self.extra.get("net")
        if net is not None:
            self.table.open_connections(net.map("conns"))
        self.table.unannounced()
        leftovers = self.table.close_out()
        self.run.drops, self.run.drop_detail = self.drops()
        self.flush()
        return leftovers

    def close(self) -> None:
        self.remove_live()
        for x in self.extra.values():
            x.close()
        self.extra.clear()
        self.table.tracked = None
        if self.obj:
            self.obj.close()
            self.obj = None
