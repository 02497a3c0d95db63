"""Privacy on every output: secrets planted in the environment, in a file the workload
reads and in argv never reach the store (with its WAL, -shm and any other file beside
it), an export, a view, tune, the HTML report (alone and compared), a live `top` snapshot
or `top` itself (text and JSON) in clear.
argv secrets appear masked; env and file secrets appear nowhere.

Every surface is one line of SURFACES: an exporter added later is one more line."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import opensre_cmd

MASK = b"***"

# (name, argv after `opensre`; {store}, {out} and {otlp} are filled in). A surface writing a file
# writes it to {out} (a directory: every file in it); one sending to {otlp} sends to a loopback
# OTLP receiver (every request body it got counts); its stdout counts too.
SURFACES = [
    *[(f"export {w}", ["export", "--store", "{store}", "--what", w])
      for w in ("processes", "tasks", "tools", "execs", "samples", "events", "host")],
    ("export parquet", ["export", "--store", "{store}", "--format", "parquet", "--to", "{out}"]),
    ("runs", ["runs", "--store", "{store}"]),
    ("show", ["show", "--store", "{store}"]),
    ("show --timeline", ["show", "--store", "{store}", "--timeline"]),
    ("show --tree", ["show", "--store", "{store}", "--tree"]),
    ("tune", ["tune", "--store", "{store}"]),
    ("tune json", ["tune", "--store", "{store}", "--format", "json"]),
    *[(f"tune --emit {e}", ["tune", "--store", "{store}", "--emit", e])
      for e in ("snakemake", "nextflow", "slurm", "k8s")],
    ("report html", ["report", "--store", "{store}", "-o", "{out}"]),
    ("report --compare", ["report", "--store", "{store}", "--compare", "latest", "-o", "{out}"]),
    ("export otlp", ["export", "--store", "{store}", "--format", "otlp", "--endpoint", "{otlp}"]),
]
# the live views, read while the workload runs
LIVE_SURFACES = [("top", ["top", "--once", "--interval", "0.3", "--store", "{store}"]),
                 ("top json", ["top", "--once", "--interval", "0.3", "--format", "json", "--store", "{store}"])]


def _plant(tmp_path: Path) -> dict:
    """The secrets, and a workload that reads the file one, has the env one in its
    environment, passes the argv ones on its command lines and lives ~4 s (so that a
    live snapshot can be read while it runs)."""
    s = {k: f"S{secrets.token_hex(16)}" for k in ("env", "file", "argv_pw", "argv_tok")}
    f = tmp_path / "creds.txt"
    f.write_text(f"password={s['file']}\n")
    script = (f"cat {f} > /dev/null; printenv > /dev/null; "
              f"sh -c 'true --password={s['argv_pw']}'; "
              f"{sys.executable} -c 'import time; time.sleep(4)' --password={s['argv_pw']}; env > /dev/null")
    return {"secrets": s, "cmd": ["bash", "-c", script, "--", f"--token={s['argv_tok']}"],
            "env": dict(os.environ, OPENSRE_PLANTED=s["env"])}


def _store_files(store: Path) -> list[Path]:
    """The store and everything beside it that belongs to it: -wal, -shm, spills, .live/."""
    return [p for p in store.parent.rglob("*") if p.is_file() and p.name.startswith(store.name)
            or p.is_file() and store.name + ".live" in p.parts]


def _observe_with_live(store: Path, plant: dict) -> tuple[subprocess.CompletedProcess, list[bytes]]:
    """opensre run of the workload; while it runs, the raw bytes of its live snapshot
    (the one that names the sleeping python: the workload is mid-run) and of the store files."""
    p = subprocess.Popen(opensre_cmd() + ["run", "--store", str(store), "--interval", "0.2", "--", *plant["cmd"]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=plant["env"])
    live, during = [], []
    deadline = time.time() + 30
    try:
        while time.time() < deadline and p.poll() is None:
            snaps = list((store.parent / (store.name + ".live")).glob("*.json"))
            blobs = [s.read_bytes() for s in snaps if s.exists()]
            if any(b"time.sleep(4)" in b for b in blobs):
                live = blobs
                during = [f.read_bytes() for f in _store_files(store) if f.exists()]
                for name, argv in LIVE_SURFACES:
                    t = subprocess.run(opensre_cmd() + [a.format(store=store) for a in argv], capture_output=True,
                                       timeout=30)
                    assert t.returncode == 0, (name, t.stderr)
                    during.append(t.stdout + t.stderr)
                break
            time.sleep(0.1)
    finally:
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert live, "no live snapshot was seen while the workload ran"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), live + during


def _surface_outputs(store: Path, tmp_path: Path) -> dict[str, bytes]:
    from otlp_sink import OtlpSink

    got = {}
    for name, argv in SURFACES:
        out = tmp_path / f"out-{name.replace(' ', '_').replace('-', '')}"
        with OtlpSink() as sink:
            cmd = [a.format(store=store, out=out, otlp=sink.url) for a in argv]
            r = subprocess.run(opensre_cmd() + cmd, capture_output=True, timeout=120)
        assert r.returncode == 0, (name, r.stderr.decode()[-2000:])
        got[name] = r.stdout + r.stderr + _written(out) + sink.payload()
    return got


def _written(out: Path) -> bytes:
    """A file's bytes; for a directory (a Parquet lake) every file's bytes and, since
    Parquet pages are compressed, every value read back from them as well."""
    if not out.exists():
        return b""
    if not out.is_dir():
        return out.read_bytes()
    import pyarrow.parquet as pq

    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files and all(f.suffix == ".parquet" for f in files)
    return b"\n".join([f.read_bytes() for f in files]
                      + [json.dumps(pq.read_table(f).to_pylist(), default=str).encode() for f in files])


def test_secrets_on_no_surface(store, tmp_path):
    plant = _plant(tmp_path)
    s = plant["secrets"]
    run, live = _observe_with_live(store, plant)
    outputs = {"run stderr": run.stdout + run.stderr, "live snapshot while running": b"\n".join(live)}
    outputs.update(_surface_outputs(store, tmp_path))
    outputs["store files"] = b"\n".join(f.read_bytes() for f in _store_files(store))
    assert any(f.name.endswith("-wal") for f in _store_files(store)) or len(live) > 1  # the WAL was looked at
    for name, blob in outputs.items():
        for kind, secret in s.items():
            assert secret.encode() not in blob, f"{kind} secret in clear on {name}"
    # argv secrets are there, masked, where argv is shown at all (proves the surface saw them)
    for name in ("export processes", "export execs", "export parquet", "export otlp", "live snapshot while running",
                 "store files"):
        assert b"--password=" + MASK in outputs[name] and b"--token=" + MASK in outputs[name], name
    assert b"OPENSRE_PLANTED" not in outputs["store files"]  # not even the variable's name


PATH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # a GitHub token's shape


def test_token_in_cwd_and_exe_path_on_no_surface(store, tmp_path):
    """A path can hold a token (/home/u/tok_ghp_.../): cwd and exe go through the pattern rules."""
    d = tmp_path / f"tok_{PATH_TOKEN}"
    d.mkdir()
    exe = d / "true"
    exe.write_bytes(Path("/bin/true").read_bytes())
    exe.chmod(0o755)
    r = subprocess.run(opensre_cmd() + ["run", "--store", str(store), "--", "bash", "-c", f"cd {d} && {exe}"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    outputs = _surface_outputs(store, tmp_path)
    outputs["store files"] = b"\n".join(f.read_bytes() for f in _store_files(store))
    for name, blob in outputs.items():
        assert PATH_TOKEN.encode() not in blob, f"path token in clear on {name}"
