"""`opensre run`: start one command, observe its whole tree, save the run.

The child is forked first and held on a pipe until the kernel's tracked set holds
its pid, so not one of its descendants can slip past. Under sudo the command runs
as the invoking user."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time
import uuid
from dataclasses import dataclass

from ..errors import CommandNotStarted, StoreError
from ..model import Process, Run
from ..store import Store
from .collector import Collector, CollectorOptions
from .hostinfo import local_host

PR_SET_CHILD_SUBREAPER = 36
# records held in memory for the end-of-run correlation (~2 KB each); a bigger run
# is correlated from the store, as `opensre correlate` does
KEEP_RECORDS = 50_000


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class RunResult:
    run: Run
    incomplete: list[Process]
    exit_status: int  # shell convention: code, or 128+signal
    store_error: str | None = None  # the store could not take everything...
    spill_path: str | None = None   # ...so the rest is here (JSON Lines)
    # the run's stored records, kept in memory for its correlation (None: read the store)
    records: tuple[list[Process], list] | None = None


def _target_user() -> tuple[int, int, str] | None:
    """(uid, gid, name) of the user who ran sudo; None to keep our identity."""
    if os.geteuid() != 0:
        return None
    uid = os.environ.get("SUDO_UID")
    if not uid or uid == "0":
        return None
    import pwd

    try:
        pw = pwd.getpwuid(int(uid))
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid, pw.pw_name


def _child(argv: list[str], gate: int, user, err: int, closed_fds=()) -> None:  # pragma: no cover - runs in the fork
    """Wait for the gate, become the user, exec. If the exec fails, say why on `err`
    (close-on-exec: a successful exec closes it unwritten) and exit 127/126."""
    def fail(status: int, msg: str):
        try:
            os.write(err, f"{status} {msg}".encode())
        finally:
            os._exit(status)

    try:
        os.read(gate, 1)
        for fd in closed_fds:  # closed when opensre was started (`>&-`): closed for the command too
            os.close(fd)
        for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)
        if user:
            uid, gid, name = user
            os.initgroups(name, gid)
            os.setgid(gid)
            os.setuid(uid)
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        fail(127, f"{argv[0]}: command not found")
    except PermissionError as e:
        fail(126, f"{argv[0]}: {e.strerror}")
    except BaseException as e:
        fail(126, f"cannot start {argv[0]}: {e}")


def _exec_error(fd: int) -> tuple[int, str] | None:
    """What the child wrote on the exec-error pipe: nothing once its command was
    exec'd (the pipe closed on exec), else (exit status, reason)."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    if not data:
        return None
    code, _, msg = data.decode(errors="replace").partition(" ")
    return int(code), msg


def run_command(argv: list[str], store: Store, *, name: str | None = None,
                opts: CollectorOptions | None = None, redact=None, as_invoking_user: bool = True,
                linger_s: float = 2.0, closed_fds: tuple[int, ...] = ()) -> RunResult:
    """Observe `argv` and everything it starts. Returns when the command and its
    descendants are done (or `linger_s` after the command, for daemons it left)."""
    if not argv:
        from ..errors import UsageError

        raise UsageError("no command given", "usage: opensre run [options] -- CMD [ARGS...]")
    run = _new_run(store, argv, name, redact)
    col = Collector(store, run, opts or CollectorOptions(), redact=redact)
    col.keep_records(KEEP_RECORDS)
    col.start()
    not_started = None
    try:
        pid, gate_w, err_r = _fork_held(store, run, argv, _target_user() if as_invoking_user else None, closed_fds)
        run.root_pid = pid
        col.track(pid, nthreads=1)  # a fresh fork of this single-threaded process
        os.write(gate_w, b"g")
        os.close(gate_w)
        not_started = _exec_error(err_r)
        os.close(err_r)
        if not_started:  # nothing ran but our own fork: reap it, keep nothing
            os.waitpid(pid, 0)
            col.finish()
            raise _NotStarted
        col.lower_priority()
        return _finish(col, store, _supervise(col, pid, linger_s))
    except _NotStarted:
        pass
    finally:
        col.close()
    store.delete_run(run.run_id, own=True)  # a run of a command that never started would show opensre's fork
    raise CommandNotStarted(not_started[1], exit_status=not_started[0])


def _new_run(store: Store, argv: list[str], name: str | None, redact) -> Run:
    """The run about to start, its host stored (and runs of a killed collector
    marked interrupted first)."""
    host = local_host()
    store.mark_interrupted()
    store.put_host(host)
    cmd, _ = redact(list(argv)) if redact else (list(argv), False)
    return Run(run_id=new_run_id(), name=name, mode="run", host_id=host.host_id, command=cmd,
               start_time_ns=time.time_ns(), collector_pid=os.getpid())


def _fork_held(store: Store, run: Run, argv: list[str], user, closed_fds) -> tuple[int, int, int]:
    """Store the run, fork the command's process and hold it before its exec.
    Returns (pid, gate write end: one byte lets it exec, exec-error read end)."""
    try:
        store.put_run(run)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        gate_r, gate_w = os.pipe()
        err_r, err_w = os.pipe()  # close-on-exec (os.pipe's default): EOF once the command is exec'd
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except (AttributeError, OSError, ValueError):
                pass  # a closed or broken stream is no reason not to run the command
        pid = os.fork()
    except BaseException:
        # the command never started: no run of it is stored (no phantom "interrupted" run)
        try:
            store.delete_run(run.run_id, own=True)
        except StoreError:
            pass
        raise
    if pid == 0:  # pragma: no cover
        os.close(gate_w)
        os.close(err_r)
        _child(argv, gate_r, user, err_w, closed_fds)
    os.close(gate_r)
    os.close(err_w)
    return pid, gate_w, err_r


def _finish(col: Collector, store: Store, status: int) -> RunResult:
    """The command's tree is done: the final drain, the run's outcome stored."""
    run = col.run
    run.end_time_ns = time.time_ns()
    incomplete = col.finish()
    code, sig = (os.waitstatus_to_exitcode(status), None)
    if code < 0:
        code, sig = None, -code
    run.exit_code, run.exit_signal = code, sig
    run.status = "finished"
    run.process_count = col.written
    result = RunResult(run, incomplete, 128 + sig if sig else code, records=col.kept_records())
    try:
        store.put_run(run)
    except StoreError as e:
        col.store_error = e
    if col.store_error is not None:
        # observe, never control: the command's status stands, the data is kept aside
        result.store_error = col.store_error.one_line()
        result.spill_path = col.spill()
    return result


class _NotStarted(Exception):
    pass


def _supervise(col: Collector, root: int, linger_s: float) -> int:
    """Drain events and reap children until the root has exited and its tree is gone
    (or nothing has happened for `linger_s`: a daemon it left keeps running)."""
    forwarded = {}

    def forward(signum, _frame):
        forwarded[signum] = True
        try:
            os.kill(root, signum)
        except ProcessLookupError:
            pass

    # A terminal's Ctrl-C already reaches the child (same process group): forwarding
    # would deliver it twice. From anywhere else (kill -INT) we pass it on.
    interactive = os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN if interactive else forward)
    root_status = None
    deadline = None
    # wake the moment the root exits, not at the next drain tick (start+stop time)
    try:
        root_fd = os.pidfd_open(root)
    except (AttributeError, OSError):
        root_fd = None
    try:
        while True:
            if root_status is None and root_fd is not None:
                select.select([root_fd], [], [], col.opts.drain_interval_ms / 1000)
                col.poll(0)
            elif col.poll() and deadline is not None:
                deadline = time.monotonic() + linger_s  # still draining: not stuck yet
            while True:  # reap the root and any orphan handed to us (we are a subreaper)
                try:
                    pid, st = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == root:
                    root_status = st
                    deadline = time.monotonic() + linger_s
            if root_status is not None:
                # exit records arrive when the kernel frees each process: wait for the set to drain
                if not col.tracked_pids() or time.monotonic() > deadline:
                    # records are in the ring before their tracked entry goes: no wait
                    col.poll(0 if not col.tracked_pids() else 50)
                    return root_status
    finally:
        if root_fd is not None:
            os.close(root_fd)
        for s, h in old.items():
            signal.signal(s, h)
