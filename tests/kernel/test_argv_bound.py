"""argv is kept up to 8 KiB per process (abi.ARGV_MAX), whole below it, flagged
truncated beyond it; the same bound, flag and redaction apply to processes that
were already running (read from /proc) as to those seen at exec."""

from __future__ import annotations

import json
import subprocess
import uuid

from conftest import opensre_cmd
from opensre.abi.events import ARGV_MAX


def _args(total: int, tag: str) -> list[str]:
    """Arguments of 100 bytes (with their NUL) adding up to `total` bytes."""
    return [f"{tag}{i:06d}".ljust(99, "x") for i in range(total // 100)]


def _nul_len(argv: list[str]) -> int:
    return sum(len(a.encode()) + 1 for a in argv)


def test_6k_argv_is_whole_and_40k_keeps_the_bound_flagged(observe):
    six = _args(6 << 10, "a")
    obs = observe(["/bin/true", *six], check_status=0)
    (rec,) = [r for r in obs.export() if r["comm"] == "true"]
    assert rec["argv"] == ["/bin/true", *six] and not rec["argv_truncated"]

    forty = _args(40 << 10, "b")
    obs = observe(["/bin/true", *forty], check_status=0)
    (rec,) = [r for r in obs.export() if r["comm"] == "true"]
    assert rec["argv_truncated"]
    kept = _nul_len(rec["argv"])
    assert ARGV_MAX - 100 <= kept <= ARGV_MAX + 1, kept  # the bound (the cut last argument has no NUL)
    assert rec["argv"][:5] == ["/bin/true", *forty[:4]]  # a prefix of the real argv


def test_running_before_collection_same_bound_flag_and_redaction(store):
    marker = uuid.uuid4().hex[:10]
    long_args = _args(40 << 10, "c")
    secret = "--password=hunter2" + marker
    early = subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", marker, secret, *long_args])
    short = subprocess.Popen(["python3", "-c", "import time; time.sleep(600)", marker + "s", secret])
    col = subprocess.Popen(opensre_cmd() + ["collect", "--store", str(store), "--duration", "1", "--no-detect"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = col.communicate(timeout=60)
        assert col.returncode == 0, err
    finally:
        early.kill()
        short.kill()
        early.wait()
        short.wait()
    out = subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--what", "processes"],
                         capture_output=True, text=True, check=True).stdout
    assert "hunter2" not in out  # redacted from /proc-read argv as from exec-time argv
    recs = [json.loads(line) for line in out.splitlines()]
    (long_rec,) = [r for r in recs if r["pid"] == early.pid]
    (short_rec,) = [r for r in recs if r["pid"] == short.pid]
    assert long_rec["observed_since_ns"] is not None
    assert long_rec["argv_truncated"] and ARGV_MAX - 100 <= _nul_len(long_rec["argv"]) <= ARGV_MAX + 1
    assert not short_rec["argv_truncated"] and short_rec["argv"][3] == marker + "s"
    assert long_rec["argv_redacted"] and short_rec["argv_redacted"]
