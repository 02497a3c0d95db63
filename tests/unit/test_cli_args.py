"""Bad CLI arguments give one clear line and exit 2; library errors exit 1."""

import subprocess
import sys

import pytest


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "opensre", *args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("args,needle", [
    (["run"], "no command"),
    (["run", "--ringbuf-size", "lots", "--", "true"], "not a size"),
    (["run", "--ringbuf-size", "12", "--", "true"], "below one page"),
    (["run", "--linger", "-3", "--", "true"], "must not be negative"),
    (["frobnicate"], "invalid choice"),
    (["export", "--format", "xml"], "invalid choice"),
])
def test_bad_arguments(args, needle):
    p = cli(*args)
    assert p.returncode in (1, 2), p
    err = p.stderr.strip().splitlines()
    assert needle in p.stderr and len(err) <= 2, p.stderr


def test_missing_store_is_one_line(tmp_path):
    p = cli("runs", "--store", str(tmp_path / "nope.sqlite"))
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "no store" in p.stderr
