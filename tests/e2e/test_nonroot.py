"""The dev venv's read-only commands work for a user who is not root.

`make venv` creates .venv from a world-readable interpreter (/usr/bin/python3 where
there is one), so `.venv/bin/opensre runs|show|tune|export` run as any user; a venv made
from e.g. a pyenv build under root's mode-700 home fails for them at exec time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import ROOT

OPENSRE = ROOT / ".venv" / "bin" / "opensre"
# setpriv keeps root's capabilities until its own execve, so a program it starts directly
# is looked up with CAP_DAC_READ_SEARCH (a venv linking into /root would pass); through
# sh, the command is found and exec'd as nobody proper, without capabilities
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/bin/sh", "-c", 'exec "$@"', "sh"]
# a login's environment for nobody: its own (nonexistent) home, nothing of root's
NOBODY_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}


def test_venv_interpreter_is_reachable_by_everyone():
    real = Path(os.path.realpath(ROOT / ".venv" / "bin" / "python3"))
    p = subprocess.run(AS_NOBODY + [str(ROOT / ".venv" / "bin" / "python3"), "-c", "import opensre, yaml, rich"],
                       env=NOBODY_ENV, cwd="/", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f".venv's interpreter {real}: {p.stderr} (recreate it: rm -r .venv && make venv)"


def test_read_only_commands_as_nobody(observe):
    o = observe([os.path.realpath(sys.executable), "-c", "sum(range(3_000_000))"], "--name", "nonroot",
                check_status=0)
    d = Path(tempfile.mkdtemp(prefix="opensre-nobody-"))
    try:
        copy = d / "store.sqlite"
        shutil.copy(o.store, copy)
        os.chmod(d, 0o755)
        for f in (d, copy):
            os.chown(f, 65534, 65534)
        out = {}
        for args in (["runs"], ["show", "nonroot"], ["tune", "nonroot"], ["tune", "nonroot", "--format", "json"],
                     ["export", "--run", "nonroot", "--what", "processes"]):
            p = subprocess.run(AS_NOBODY + [str(OPENSRE), *args, "--store", str(copy)],
                               env=NOBODY_ENV, cwd="/", capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (args, p.stderr)
            out[" ".join(args)] = p.stdout
        assert "nonroot" in out["runs"] and "nonroot" in out["show nonroot"]
        assert len(json.loads(out["tune nonroot --format json"])["run_ids"]) == 1
        procs = [json.loads(line) for line in out["export --run nonroot --what processes"].splitlines()]
        assert any(r["cpu_user_ns"] for r in procs)
    finally:
        shutil.rmtree(d)


def test_doctor_as_nobody_says_what_to_do():
    """A user who is not root (no capabilities, no access to tracefs or BPF): one
    FAIL line naming the privileges and the fix, exit 1, no traceback."""
    p = subprocess.run(AS_NOBODY + [str(OPENSRE), "doctor"], env=NOBODY_ENV, cwd="/", capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    assert "[FAIL] privileges" in p.stdout and "sudo" in p.stdout, p.stdout
