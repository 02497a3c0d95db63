"""The shared pieces behind the hostile-input suite (tests/e2e/test_hostile.py), without root."""

from __future__ import annotations

import os
import time

import pytest

from opensre.errors import OutputError, UsageError
from opensre.redact import Redactor
from opensre.safefile import read_user_text, write_output
from opensre.term import markup, term


def test_term_escapes_every_control_character():
    s = "a\x1b[2J\x07\r\n\t\x9b\u202eb"
    assert term(s) == "a\\x1b[2J\\x07\\r\\n\\t\\x9b\\u202eb"
    assert term(None) == "" and term("plain") == "plain"
    assert markup("[bold red]x") == "\\[bold red]x"


def test_user_regex_is_linear_time(tmp_path):
    f = tmp_path / "redact.yaml"
    f.write_text("rules:\n  - name: evil\n    kind: pattern\n    regex: '(a+)+$'\n")
    r = Redactor.from_files([f])
    t = time.monotonic()
    r.redact_argv(["x", "a" * 40 + "!"])
    assert time.monotonic() - t < 2


def test_cut_tail_is_masked_only_when_truncated():
    r = Redactor.from_files([])
    assert r.redact_argv(["/bin/true", "pad ghp_abcdefghijklm"], truncated=True) == (["/bin/true", "pad ***"], True)
    assert r.redact_argv(["/bin/true", "pad ghp_abcdefghijklm"]) == (["/bin/true", "pad ghp_abcdefghijklm"], False)
    assert r.redact_argv(["/bin/true", "--token=abc"], truncated=True)[0][-1] == "--token=***"


def test_writer_keeps_old_file_on_failure_and_never_follows_links(tmp_path):
    out = tmp_path / "out"
    write_output(out, "one")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / "out.tmp")
    write_output(out, "two")
    assert out.read_text() == "two" and victim.read_text() == "keep"
    os.symlink(victim, tmp_path / "link")
    with pytest.raises(OutputError, match="symbolic link"):
        write_output(tmp_path / "link", "x")
    assert victim.read_text() == "keep"


def test_reader_refuses_fifo_and_binary(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="FIFO"):
        read_user_text(fifo)
    b = tmp_path / "b"
    b.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8"):
        read_user_text(b)
