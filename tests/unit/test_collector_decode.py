"""The collector's hot path unpacks exec/exit/sample records with struct formats
derived from the ctypes mirrors (abi.flat_layout): they must read exactly what
the mirrors read, and a record of another ABI version must still be refused."""

import ctypes
import random
import resource

from opensre.abi import events as abi
from opensre.collect.collector import Collector, CollectorOptions
from opensre.model import Run
from opensre.store import Store


def _leaves(obj, prefix=""):
    out = {}
    for name, typ in obj._fields_:
        v = getattr(obj, name)
        if isinstance(typ, type) and issubclass(typ, ctypes.Structure):
            out.update(_leaves(v, prefix + name + "."))
        elif issubclass(typ, ctypes.Array):
            off = type(obj).__dict__[name].offset
            out[prefix + name] = bytes(memoryview(obj).cast("B")[off:off + ctypes.sizeof(typ)])
        else:
            out[prefix + name] = v
    return out


def test_flat_layout_reads_what_ctypes_reads():
    rnd = random.Random(7)
    for cls, st, names in ((abi.ExitEvent, abi.EXIT_STRUCT, abi.EXIT_FIELDS),
                           (abi.ExecHead, abi.EXEC_STRUCT, abi.EXEC_FIELDS),
                           (abi.TaskSample, abi.SAMPLE_STRUCT, abi.SAMPLE_FIELDS)):
        for _ in range(20):
            raw = bytes(rnd.getrandbits(8) for _ in range(ctypes.sizeof(cls)))
            want = _leaves(cls.from_buffer_copy(raw))
            got = dict(zip(names, st.unpack_from(raw)))
            assert {k: want[k] for k in names} == got, cls.__name__


def _exit_record(pid, version=abi.ABI_VERSION, comm=b"true", status=0):
    ev = abi.ExitEvent()
    ev.hdr.type, ev.hdr.version, ev.hdr.size, ev.hdr.ts_ns = abi.EV_EXIT, version, ctypes.sizeof(ev), 5_000
    ev.id.pid, ev.id.ppid, ev.id.start_ns, ev.id.comm = pid, 1, 1_000, comm
    ev.end_ns, ev.status, ev.sum_exec_ns, ev.utime_ns, ev.stime_ns = 4_000, status, 900, 3, 1
    ev.maxrss_pages, ev.hiwater_pages, ev.rchar, ev.threads, ev.nvcsw = 10, 7, 123, 1, 2
    return bytes(ev)


def test_process_fast_path_and_refusals(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run = Run(run_id="r1", name=None, mode="run", host_id="h")
    col = Collector(store, run, CollectorOptions(families=()))
    col.offset = 0
    col._raw = [_exit_record(42), _exit_record(43, status=9), _exit_record(44, version=abi.ABI_VERSION + 1),
                _exit_record(45)[:64]]
    assert col.process(flush=False) == 4
    assert col.decode_errors == 2  # the other version and the short record
    a, b = col._done
    assert (a.pid, a.start_time_ns, a.end_time_ns, a.comm, a.exit_code, a.exit_signal) == (42, 1_000, 4_000, "true", 0, None)
    assert (a.cpu_user_ns, a.cpu_system_ns, a.peak_rss_bytes, a.rchar, a.threads, a.voluntary_ctxt_switches) == (
        675, 225, 7 * resource.getpagesize(), 123, 1, 2)
    assert (b.exit_code, b.exit_signal, b.core_dumped) == (None, 9, False)
    assert a.argv == [] and a.argv is not b.argv and a.complete


def _exec_record(pid, argv=b"sh\0-c\0true\0", cwd=b"tmp\0"):
    ev = abi.ExecEvent()
    ev.hdr.type, ev.hdr.version, ev.hdr.ts_ns = abi.EV_EXEC, abi.ABI_VERSION, 2_000
    ev.id.pid, ev.id.ppid, ev.id.start_ns, ev.id.comm = pid, 1, 1_000, b"sh"
    ev.ctx.mntns = 1
    ev.argv_len, ev.cwd_len, ev.filename = len(argv), len(cwd), b"/bin/sh"
    raw = bytearray(bytes(ev))
    a, c = abi.ExecEvent.argv.offset, abi.ExecEvent.cwd.offset
    raw[a:a + len(argv)], raw[c:c + len(cwd)] = argv, cwd
    return bytes(raw[:a + len(argv)])  # trimmed to its argv, as the kernel sends it


def test_kept_records_equal_what_the_store_returns(tmp_path):
    """`opensre run` correlates from the records it kept: they must be what the
    store would give back, and the correlation the same as from the store."""
    from opensre.correlate import correlate_run

    store = Store(tmp_path / "s.sqlite")
    run = Run(run_id="r1", name=None, mode="run", host_id="h", start_time_ns=1, end_time_ns=10_000,
              status="finished")
    store.put_run(run)
    col = Collector(store, run, CollectorOptions(families=()))
    col.offset = 0
    col.keep_records(1000)
    col._raw = [_exec_record(100 + i) for i in range(80)] + [_exit_record(100 + i) for i in range(80)]
    col._raw.append(_exit_record(99))  # a fork that never exec'd
    col.process()
    procs, execs = col.kept_records()
    assert procs == list(store.processes("r1")) and execs == list(store.execs("r1"))
    assert procs[0].pid == 99 and procs[0].argv == []
    assert procs[1].argv == ["sh", "-c", "true"] and procs[1].cwd == "/tmp" and procs[1].exe == "/bin/sh"
    mem = correlate_run(store, "r1", procs=procs, execs=execs, run=run)
    stored = {(p.pid, p.start_time_ns): p.task_id for p in store.processes("r1")}
    assert stored == mem.task_of == {(p.pid, p.start_time_ns): p.task_id for p in procs}
    again = correlate_run(store, "r1")  # from the store: the same tasks and tools
    assert (again.tasks, again.tools, again.task_of) == (mem.tasks, mem.tools, mem.task_of)
    col2 = Collector(store, run, CollectorOptions(families=()))
    col2.keep_records(10)
    col2._raw = [_exit_record(500 + i) for i in range(11)]
    col2.process()
    assert col2.kept_records() is None  # over the limit: correlation reads the store


def test_task_pointers_bulk_and_partial(tmp_path):
    """put_correlation sets the largest task with one UPDATE only when task_of covers
    exactly the run's stored processes; otherwise row by row, leaving the others."""
    from opensre.model import Process

    store = Store(tmp_path / "s.sqlite")
    store.put_run(Run(run_id="r1", name=None, mode="run", host_id="h"))
    ps = [Process(pid=i, start_time_ns=i, complete=True) for i in range(1, 201)]
    store.put_batch("r1", ps)
    task_of = {(p.pid, p.start_time_ns): ("t0002" if p.pid > 3 else "t0001") for p in ps}
    store.put_correlation("r1", [], [], task_of)
    assert {(p.pid, p.start_time_ns): p.task_id for p in store.processes("r1")} == task_of
    partial = {k: "t0009" for k in list(task_of)[:150]}
    store.put_correlation("r1", [], [], partial)
    got = {(p.pid, p.start_time_ns): p.task_id for p in store.processes("r1")}
    assert got == {**task_of, **partial}


def test_store_rows_from_attribute_dict_or_by_field(tmp_path):
    """put_batch takes a record's row from its attribute dict only when that holds
    exactly the fields in order; any other record is read field by field."""
    from opensre.model import Process

    store = Store(tmp_path / "s.sqlite")
    store.put_run(Run(run_id="r1", name=None, mode="run", host_id="h"))
    a = Process(pid=1, start_time_ns=10, exe="/bin/a", argv=["a", "x"], complete=True)
    b = Process(pid=2, start_time_ns=20, exe="/bin/b", argv=["b"], complete=True)
    b.extra_note = "not a field"  # an attribute beyond the fields
    c = Process(pid=3, start_time_ns=30, exe="/bin/c", complete=True)
    d = dict(reversed(list(c.__dict__.items())))  # the fields, in another order
    c.__dict__.clear()
    c.__dict__.update(d)
    store.put_batch("r1", [a, b, c])
    got = list(store.processes("r1"))
    del b.extra_note
    assert got == [a, b, c]
