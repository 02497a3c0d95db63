"""The exception tree. The library raises these; only the CLI prints and exits."""

from __future__ import annotations

__all__ = [
    "OpenSREError",
    "FeatureUnsupported",
    "PermissionProblem",
    "BpfLoadError",
    "BpfAttachError",
    "StoreError",
    "RuleError",
    "UsageError",
    "ReportError",
    "OutputError",
    "RunStillRunning",
    "CommandNotStarted",
    "ExportError",
    "ReadOnlyViolation",
]


class OpenSREError(Exception):
    """Base class. `hint` says what to do about it, in one line."""

    hint: str = ""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        if hint:
            self.hint = hint

    def one_line(self) -> str:
        msg = str(self)
        return f"{msg} — {self.hint}" if self.hint else msg


class FeatureUnsupported(OpenSREError):
    """The kernel lacks something we need (BTF, ring buffers, a tracepoint)."""


class PermissionProblem(OpenSREError):
    """Not root, or missing CAP_BPF/CAP_PERFMON."""

    hint = "run it with sudo (or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE)"


class BpfLoadError(OpenSREError):
    """The kernel refused a program. Carries the verifier's log."""

    def __init__(self, program: str, errno_: int, log: str, hint: str = ""):
        import os

        self.program = program
        self.errno = errno_
        self.log = log
        tail = verifier_tail(log)
        msg = f"BPF program {program!r} failed to load: {os.strerror(errno_)} (errno {errno_})"
        if tail:
            msg += f"; verifier: {tail}"
        super().__init__(msg, hint or _load_hint(errno_, log))


class BpfAttachError(OpenSREError):
    """A program loaded but could not be attached to its hook."""


class StoreError(OpenSREError):
    """The store cannot be opened or written."""


class RuleError(OpenSREError):
    """A user rule file is malformed; the message names file and line."""


class UsageError(OpenSREError):
    """Bad arguments to a library call or a CLI command."""


class ReportError(OpenSREError):
    """A report cannot be written (the output file)."""


class OutputError(OpenSREError):
    """An output file cannot be written safely (see opensre.safefile)."""


class RunStillRunning(OpenSREError):
    """A run whose collector is still at work: not yet analysable, not removable."""


class CommandNotStarted(OpenSREError):
    """`run`'s command could not be executed (not found, not executable): nothing ran."""

    def __init__(self, message: str, exit_status: int = 127):
        super().__init__(message)
        self.exit_status = exit_status


class ExportError(OpenSREError):
    """An exporter could not deliver (an endpoint down or refusing); the store is untouched."""


def verifier_tail(log: str, lines: int = 3) -> str:
    """The meaningful end of a verifier log: the last lines that are not the
    'processed N insns' statistics or libbpf's framing."""
    keep = []
    for line in log.splitlines():
        s = line.strip()
        if not s or s.startswith(("processed ", "-- ", "libbpf:", "verification time")):
            continue
        keep.append(s)
    return " | ".join(keep[-lines:])


def _load_hint(errno_: int, log: str) -> str:
    import errno as E

    if errno_ == E.EPERM:
        return "the kernel refused the program type: run as root, check kernel.unprivileged_bpf_disabled and lockdown"
    if errno_ == E.EACCES:
        return "the verifier rejected the program: this is a bug in OpenSRE, please report it with `opensre doctor --verbose`"
    if errno_ in (E.ENOENT, E.ESRCH):
        return "a tracepoint or kernel type is missing on this kernel: run `opensre doctor`"
    if errno_ == E.E2BIG or "too large" in log:
        return "the program is too large for this kernel's verifier limits"
    return "run `opensre doctor` for a full check of this kernel"


class ReadOnlyViolation(OpenSREError):
    """sweep asked AWS for something other than Describe/Get/List: refused before it is sent."""

    hint = "sweep only reads; this is a bug in opensre, please report it"
