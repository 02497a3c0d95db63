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
