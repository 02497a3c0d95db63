"""A full disk under the store: a clear error, the command's own status, and every
record kept (in the store or in a spill file)."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import opensre_cmd

N = 400


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_loses_nothing(tiny_fs, tmp_path, monkeypatch):
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setenv("OPENSRE_SPILL_DIR", str(spill))
    store = tiny_fs / "store.sqlite"
    arg = "x" * 1500
    p = subprocess.run(opensre_cmd() + ["run", "--store", str(store), "--", "bash", "-c",
                                        f"for i in $(seq {N}); do /bin/true $i {arg}; done; exit 5"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 5
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "full" in err[0] and "saved to" in err[0], p.stderr
    (spilled,) = list(spill.iterdir())
    recs = [json.loads(l) for l in spilled.read_text().splitlines()]
    # process records only: a slow host (the 6.1 guest) also spills samples of processes that lived past a tick
    procs = [r for r in recs if r.get("record", "process") == "process"]
    stored = int(err[0].split("processes stored")[0].rsplit(";", 1)[1])
    assert stored + len(procs) == N + 2  # bash, seq and N true
