"""Shared fixtures. Kernel and e2e tests load real BPF programs and run real
processes: they need root. Outside CI, without root, they skip; in CI (CI=true)
they run and fail loudly instead of skipping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "tests" / "workloads"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0 or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="needs root (kernel/e2e tier); runs in CI")
    for item in items:
        if "tests/kernel" in str(item.fspath) or "tests/e2e" in str(item.fspath):
            item.add_marker(skip)


def assert_file_line_error(call, path, line: int, words: str) -> None:
    """A bad rule file fails with one line, `PATH:LINE: ...`, saying what is wrong."""
    from opensre.errors import RuleError

    with pytest.raises(RuleError) as e:
        call()
    msg = str(e.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert words in msg and "\n" not in e.value.one_line()


def disk_dir(*candidates) -> Path:
    """The first candidate directory on a block-backed filesystem (fsync on tmpfs
    never blocks; the 6.1 guest has tmpfs on /tmp and /var/tmp, ext4 on $TMPDIR)."""
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            mounts.append((mnt.replace("\\040", " "), fstype))
    for c in list(candidates) + [os.environ.get("TMPDIR", "/tmp"), "/var/tmp"]:
        real = os.path.realpath(c)
        fstype = max((m for m in mounts if real == m[0] or real.startswith(m[0].rstrip("/") + "/")),
                     key=lambda m: len(m[0]))[1]
        if fstype not in ("tmpfs", "ramfs", "9p", "overlay"):
            return Path(real)
    raise RuntimeError(f"no block-backed directory among {candidates}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    """A real AWS API (moto's server) on a loopback port, answering once this returns."""
    import time
    import urllib.request

    p = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return p
        except OSError:
            if time.time() > deadline or p.poll() is not None:
                p.kill()
                raise RuntimeError("moto server did not start")
            time.sleep(0.2)


def opensre_cmd() -> list[str]:
    return [sys.executable, "-m", "opensre"]


class Observed:
    """A finished `opensre run`: its exit status, output and exported records."""

    def __init__(self, store: Path, proc: subprocess.CompletedProcess):
        self.store, self.proc = store, proc
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr

    def export(self, what: str = "processes", run: str = "latest") -> list[dict]:
        out = subprocess.run(opensre_cmd() + ["export", "--store", str(self.store), "--run", run, "--what", what],
                             capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines()]

    def by_comm(self, comm: str) -> list[dict]:
        return [r for r in self.export() if r["comm"] == comm]


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store.sqlite"


@pytest.fixture
def observe(store):
    """observe(cmd, *opts) -> Observed: runs `opensre run [opts] -- cmd` for real."""

    def run(cmd: list[str], *opts: str, timeout: float = 120, env=None, check_status: int | None = None) -> Observed:
        p = subprocess.run(opensre_cmd() + ["run", "--store", str(store), *opts, "--", *cmd],
                           capture_output=True, text=True, timeout=timeout, env=env)
        o = Observed(store, p)
        if check_status is not None:
            assert p.returncode == check_status, p.stderr
        return o

    return run


def lake_expected_counts(store) -> dict[str, int]:
    """The rows a Parquet lake exported from `store` (an opened Store) must hold per
    table: every row of the store's tables, a host's row once per run of its own, and
    the samples the JSON Lines export gives (the stored ones and one at exit for each
    process that has none)."""
    from opensre.export import records

    own = store.runs(detected=False)
    n = {t: store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
         for t in ("runs", "processes", "tasks", "tools", "execs", "events", "host_samples")}
    n["hosts"] = len(own)
    n["samples"] = sum(1 for r in own for _ in records(store, r.run_id, "samples"))
    return n
