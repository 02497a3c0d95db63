"""Every file OpenSRE writes for a user (reports, exports, tune output, live
snapshots, spill files) and every user file it reads (rules, workflows) goes
through here. OpenSRE often runs as root in directories others can write to, so:

* a new or regular target is written to a unique temp file beside it (mkstemp:
  O_CREAT|O_EXCL, mode 0600, never a planted `FILE.tmp` symlink), then renamed
  over it: a reader sees the old file or the new one, and a failed write leaves the
  old one as it was;
* a character device or FIFO target (/dev/null, /dev/stdout, a pipe) is written
  directly, never replaced by a regular file;
* anything else (a symlink to a file, a directory, a block device, a socket) is
  refused with one line;
* a user file to read must be a regular file (a FIFO would block forever) of a
  bounded size.

Errors are OutputError / UsageError: one line, for the CLI to print."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import OutputError, UsageError

READ_LIMIT = 64 << 20  # a rule file or Snakefile larger than this is not one


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _fail(path, e: OSError, what: str):
    raise OutputError(f"cannot write {what} {path}: {e.strerror or e}",
                      "check the path, its directory's permissions and free space") from None


def _target(path: Path, what: str) -> os.stat_result | None:
    """lstat of the target: None when it does not exist; refuses what must not be written."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        _fail(path, e, what)
    if stat.S_ISLNK(st.st_mode):
        # /dev/stdout -> /proc/self/fd/1: a link to a stream is written through;
        # a link to a file would make root overwrite whatever it points at
        try:
            real = os.stat(path)
        except OSError as e:
            _fail(path, e, what)
        if stat.S_ISCHR(real.st_mode) or stat.S_ISFIFO(real.st_mode):
            return real
        raise OutputError(f"refusing to write {what} {path}: it is a symbolic link",
                          "give the path it points to, or another file name")
    if stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return st
    raise OutputError(f"refusing to write {what} {path}: it is {_kind(st.st_mode)}", "give a file name")


def check_output(path: str | Path, what: str = "file") -> None:
    """Fails now (OutputError) if `path` is a target open_output would refuse, or its
    directory is missing: for outputs written after a long step (`run --html`)."""
    path = Path(path)
    _target(path, what)
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {what} {path}: no such directory", "create it, or choose another path")


@contextlib.contextmanager
def open_output(path: str | Path, what: str = "file", mode: str = "w", perm: int = 0o644) -> Iterator[IO]:
    """A file object for `path`, committed when the block ends without an error
    (temp file renamed over a regular target; a stream written directly). On an
    error the target is untouched (a regular file) and the temp file is gone."""
    path = Path(path)
    st = _target(path, what)
    binary = "b" in mode
    if st is not None and not stat.S_ISREG(st.st_mode):  # a device or FIFO: write to it
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as e:
            _fail(path, e, what)
        f = os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"}))
        try:
            yield f
            f.flush()
        except OSError as e:
            _close_quietly(f)
            _fail(path, e, what)
        except BaseException:
            _close_quietly(f)
            raise
        try:
            f.close()
        except OSError as e:
            _fail(path, e, what)
        return
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        _fail(path, e, what)
    keep = st.st_mode & 0o7777 if st is not None else perm & ~_umask()
    f = os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"}))
    try:
        try:
            yield f
            f.flush()
            os.fchmod(fd, keep)
            f.close()
            os.replace(tmp, path)
        except OSError as e:
            _fail(path, e, what)
    except BaseException:
        _close_quietly(f)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_output(path: str | Path, data: str | bytes, what: str = "file", perm: int = 0o644) -> int:
    """Writes `data` to `path` as open_output does; returns the bytes written."""
    with open_output(path, what, "wb" if isinstance(data, bytes) else "w", perm) as f:
        f.write(data)
    return len(data if isinstance(data, bytes) else data.encode("utf-8"))


def open_append_private(path: str | Path, what: str = "file") -> IO[str]:
    """A file in a shared directory (/tmp, /dev/shm) to append to, created 0600:
    never through a symlink, and only a regular file that we own (someone else's
    file planted under the name is refused)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     0o600)
    except OSError as e:
        _fail(path, e, what)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise OutputError(f"refusing to write {what} {path}: someone else's file or not a regular file",
                          "remove it, or set OPENSRE_SPILL_DIR to a directory of your own")
    return os.fdopen(fd, "a", encoding="utf-8")


def read_user_text(path: str | Path, what: str = "file", limit: int = READ_LIMIT) -> str:
    """The text of a user's file: a regular file, at most `limit` bytes, UTF-8.
    Raises UsageError with one line otherwise (FIFOs are refused, never opened
    blocking)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"cannot read {what} {path}: {'a FIFO' if stat.S_ISFIFO(st.st_mode) else _kind(st.st_mode)}, "
                             "not a regular file")
        if st.st_size > limit:
            raise UsageError(f"cannot read {what} {path}: {st.st_size} bytes, larger than {limit >> 20} MiB")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read {what} {path}: not UTF-8 text (byte {e.start})") from None


def _close_quietly(f) -> None:
    with contextlib.suppress(OSError):
        f.close()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
