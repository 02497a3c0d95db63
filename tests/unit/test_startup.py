"""Start-up work done once or side by side: probe families load in threads (each
reading its own libbpf log), rule files are parsed once per process while unchanged."""

import threading
import time

from opensre.bpf import families, libbpf
from opensre.collect.collector import Collector, CollectorOptions
from opensre.correlate.tools import ToolIdentifier
from opensre.model import Run


def test_libbpf_log_is_per_thread():
    got = {}

    def load(name):
        libbpf.take_log()
        for i in range(50):
            libbpf._log_lines().append(f"{name}{i} ")
            time.sleep(0)
        got[name] = libbpf.take_log()

    ts = [threading.Thread(target=load, args=(n,)) for n in "ab"]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == {n: "".join(f"{n}{i} " for i in range(50)) for n in "ab"}


def test_families_load_side_by_side_and_failures_come_back(monkeypatch, tmp_path):
    seen = []

    def fake(fam, k, **kw):
        seen.append((fam, threading.current_thread().name))
        time.sleep(0.05)
        if fam == "oom":
            raise families.FamilyUnavailable(fam, "no hook")
        if fam == "net":
            raise KeyError("boom")
        return fam

    monkeypatch.setattr(families, "load_family", fake)
    col = Collector(store=None, run=Run(run_id="r", name=None, mode="run", host_id="h"),
                    opts=CollectorOptions(families=("sched", "net", "oom", "samples")))
    t0 = time.monotonic()
    out = col._load_families(None, None, {})
    assert time.monotonic() - t0 < 0.15  # 4 x 50 ms, side by side
    assert out["sched"] == "sched" and out["samples"] == "samples"
    assert isinstance(out["oom"], families.FamilyUnavailable) and isinstance(out["net"], KeyError)
    assert len({name for _, name in seen}) == 4


def test_rules_parsed_once_while_unchanged(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("tools:\n  - name: mytool\n    category: aligner\n")
    a = ToolIdentifier.from_files([f])
    assert ToolIdentifier.from_files([f]) is a
    assert a.category("mytool") == "aligner"
    f.write_text("tools:\n  - name: mytool\n    category: variant_caller\n")  # another size
    b = ToolIdentifier.from_files([f])
    assert b is not a and b.category("mytool") == "variant_caller"
    assert ToolIdentifier.from_files([]) is not b
