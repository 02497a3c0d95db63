"""Names the engines themselves give their jobs, from their own bookkeeping on
disk, so tasks carry the names people use without `--workflow`:

  snakemake  `.snakemake/metadata/*` in the workflow directory: one small JSON
             record per output file, written when its job completes, holding the
             job's `rule` and `shellcmd`. A job is matched by its shell command
             (the `bash -c "set -euo pipefail; ..."` argv we already have).
  nextflow   the header line of a task's `.command.run`
             (`# NEXTFLOW TASK: ALIGN (sample1)`).

Only these engine files are read, only the rule or process name is kept (no other
field, no file of the workload); reads are bounded, regular files only, links not
followed. A missing or unreadable file leaves the name as the tools make it."""

from __future__ import annotations

import json
import os
import re
import stat

_MAX_FILES = 20_000     # metadata records read per workflow directory
_MAX_BYTES = 256 << 10  # per record (they are ~0.5 KiB; a big `params` can grow them)
_SMK_PREFIX = re.compile(r"^\s*set -euo pipefail;\s*")
_NF_HEADER = re.compile(r"^# NEXTFLOW TASK: (.+)$")


def _read(path: str, limit: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def shell_key(script: str) -> str:
    """A job's shell command as both sides spell it: without Snakemake's prefix,
    whitespace collapsed."""
    return " ".join(_SMK_PREFIX.sub("", script).split())


class EngineNames:
    """Per workflow directory, read once per correlation."""

    def __init__(self) -> None:
        self._smk: dict[str, dict[str, str]] = {}

    def snakemake_rule(self, workdir: str | None, argv: list[str]) -> str | None:
        """The rule of a Snakemake job root (`bash -c SCRIPT`), if it completed."""
        if not workdir or "-c" not in argv[1:3]:
            return None
        rules = self._smk.get(workdir)
        if rules is None:
            rules = self._smk[workdir] = _snakemake_rules(workdir)
        return rules.get(shell_key(argv[-1]))

    @staticmethod
    def nextflow_task(workdir: str | None) -> str | None:
        if not workdir:
            return None
        head = _read(os.path.join(workdir, ".command.run"), 1 << 20)
        for line in (head or b"").decode("utf-8", "replace").splitlines()[:5]:
            m = _NF_HEADER.match(line.strip())
            if m:
                return m.group(1).strip()[:200]
        return None


def _snakemake_rules(workdir: str) -> dict[str, str]:
    d = os.path.join(workdir, ".snakemake", "metadata")
    out: dict[str, str] = {}
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for name in names[:_MAX_FILES]:
        raw = _read(os.path.join(d, name), _MAX_BYTES)
        if not raw:
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("rule"), str) and isinstance(rec.get("shellcmd"), str):
            out.setdefault(shell_key(rec["shellcmd"]), rec["rule"][:200])
    return out
