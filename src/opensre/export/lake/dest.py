"""Where a lake is written: a local directory or `s3://bucket/prefix`. Both take whole
files by their path below the root (`TABLE/dt=.../host=.../NAME.parquet`) and make
each appear only complete:

* local: written to `.NAME.parquet.<random>.tmp` in the same directory (a name no
  reader's `*.parquet` glob takes), fsynced, renamed over the old file, then the
  directory fsynced. The root and every directory below it are opened without
  following symbolic links (O_NOFOLLOW, relative to the parent's descriptor), so a
  link planted anywhere under the root makes the export fail, never write elsewhere;
* S3: each object is put once, whole, from a buffer (an object appears only when its
  upload completes); no directory markers are made. Errors are retried with
  exponential backoff (`attempts`), then raised as one line.

Errors: UsageError for a DEST that cannot be one (exit 2), OutputError for a write
that failed (exit 1)."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from typing import IO, Callable, Iterator

from ...errors import OpenSREError, OutputError, UsageError
from ...store.lakelayout import s3_filesystem, s3_location

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def require_pyarrow():
    """pyarrow, or one line saying how to install it (the `lake` extra)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise OpenSREError("the Parquet export needs pyarrow", "pip install 'opensre[lake]'") from None
    return pyarrow


def open_dest(dest: str, *, attempts: int = 4, backoff_s: float = 0.5):
    """The destination DEST names: LocalDest or S3Dest; UsageError when it is neither."""
    s3 = s3_location(dest, "--to")
    if s3:
        return S3Dest(*s3, attempts=attempts, backoff_s=backoff_s)
    if not dest:
        raise UsageError("--to: give a directory or s3://bucket/prefix")
    return LocalDest(dest)


class LocalDest:
    """A lake in a local directory (made if missing; its parent must exist)."""

    def __init__(self, root: str):
        self.root = root
        self.url = os.path.abspath(root)
        self.written: list[str] = []  # what was made or replaced, for chown under sudo
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            parent = os.path.dirname(os.path.abspath(root))
            if not os.path.isdir(parent):
                raise UsageError(f"--to {root}: no such directory {parent}", "create it, or choose another path")
            return
        except OSError as e:
            raise UsageError(f"--to {root}: {e.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(f"--to {root}: it is a symbolic link", "give the directory it points to")
        if not stat.S_ISDIR(st.st_mode):
            raise UsageError(f"--to {root}: not a directory")

    @contextlib.contextmanager
    def _dir(self, parts: list[str]) -> Iterator[int]:
        """A descriptor of ROOT/parts..., each made (0755 less umask) if missing, none followed if a link."""
        fds: list[int] = []
        try:
            fds.append(self._open_dir(None, self.root, self.root))
            for i, p in enumerate(parts):
                fds.append(self._open_dir(fds[-1], p, os.path.join(self.root, *parts[:i + 1])))
            yield fds[-1]
        finally:
            for fd in fds:
                os.close(fd)

    def _open_dir(self, at: int | None, name: str, shown: str) -> int:
        for _ in range(2):
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=at)
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o755, dir_fd=at)
                    self.written.append(shown)
                except FileExistsError:
                    pass  # made meanwhile by someone else: opened (and checked) on the next turn
                except OSError as e:
                    raise OutputError(f"cannot make directory {shown}: {e.strerror}") from None
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):  # a link, or a file where a directory goes
                    raise OutputError(f"refusing to write into {shown}: not a directory (a symbolic link?)",
                                      "remove it, or export to another directory") from None
                raise OutputError(f"cannot open directory {shown}: {e.strerror}") from None
        raise OutputError(f"cannot open directory {shown}")

    def exists(self, path: str) -> bool:
        try:
            os.lstat(os.path.join(self.root, path))
            return True
        except OSError:
            return False

    def put(self, path: str, write: Callable[[IO[bytes]], None]) -> None:
        """write(f) fills the file `path` (below the root); it replaces the old one only
        once complete and on disk."""
        *parts, name = path.split("/")
        shown = os.path.join(self.root, path)
        with self._dir(parts) as d:
            try:
                st = os.stat(name, dir_fd=d, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise OutputError(f"refusing to replace {shown}: not a regular file", "remove it")
            except FileNotFoundError:
                pass
            tmp = f".{name}.{secrets.token_hex(6)}.tmp"  # never *.parquet: readers' globs skip it
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=d)
            except OSError as e:
                raise OutputError(f"cannot write {shown}: {e.strerror}",
                                  "check the directory's permissions and free space") from None
            try:
                with os.fdopen(fd, "wb") as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, name, src_dir_fd=d, dst_dir_fd=d)
                os.fsync(d)
            except BaseException as e:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=d)
                if isinstance(e, OSError):
                    raise OutputError(f"cannot write {shown}: {e.strerror or e}",
                                      "check free space; the files already there are as they were") from None
                raise
        self.written.append(shown)


class S3Dest:
    """A lake under s3://bucket/prefix, through pyarrow's S3 filesystem: endpoint,
    region and credentials from the standard AWS environment (AWS_ENDPOINT_URL[_S3],
    AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, ... or the SDK's chain)."""

    def __init__(self, bucket: str, prefix: str, *, attempts: int = 4, backoff_s: float = 0.5):
        require_pyarrow()
        from pyarrow import fs

        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        self.attempts, self.backoff_s = max(1, attempts), backoff_s
        self.written: list[str] = []
        # one try per call: the retries (and their backoff) are ours, counted and bounded
        self.fs = s3_filesystem(fs)
        self._retry(lambda: self._check_bucket(fs), f"reach s3://{bucket}")

    def _check_bucket(self, fs) -> None:
        try:
            info = self.fs.get_file_info(self.bucket)
        except OSError as e:
            if _denied(e):  # a writer allowed to put objects but not to look at the bucket: the puts will tell
                return
            raise
        if info.type == fs.FileType.NotFound:
            raise UsageError(f"--to {self.url}: no bucket {self.bucket} at the S3 endpoint",
                             "create it, or check --to and AWS_ENDPOINT_URL")

    def _key(self, path: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, path) if p)

    def _retry(self, call: Callable, what: str):
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except OSError as e:  # pyarrow's S3 errors are OSErrors; ours (OutputError) are not retried
                if attempt == self.attempts or _permanent(e):
                    msg = " ".join(str(e).split())  # the SDK's message spans lines
                    raise OutputError(f"cannot {what}: {msg[:300]}"
                                      + (f" (after {attempt} tries)" if attempt > 1 else ""),
                                      "check the endpoint and credentials (AWS_*); nothing exported is lost: "
                                      "run the export again") from None
                time.sleep(delay)
                delay *= 2

    def exists(self, path: str) -> bool:
        from pyarrow import fs

        def look() -> bool:
            try:
                return self.fs.get_file_info(self._key(path)).type != fs.FileType.NotFound
            except OSError as e:
                if _denied(e):  # without s3:ListBucket a missing key reads as denied: nothing to replace
                    return False
                raise

        return self._retry(look, f"read {self.url}/{path}")

    def put(self, path: str, write: Callable[[IO[bytes]], None]) -> None:
        import io

        buf = io.BytesIO()
        write(buf)
        data = buf.getvalue()

        def upload():
            with self.fs.open_output_stream(self._key(path)) as out:
                out.write(data)

        self._retry(upload, f"write {self.url}/{path}")
        self.written.append(f"{self.url}/{path}")


def _denied(e: OSError) -> bool:
    return any(w in str(e) for w in ("ACCESS_DENIED", "AccessDenied", "HTTP response code: 403"))


def _permanent(e: OSError) -> bool:
    """An S3 error that another try cannot fix."""
    s = str(e)
    return _denied(e) or any(w in s for w in ("NoSuchBucket", "NO_SUCH_BUCKET", "InvalidAccessKeyId",
                                              "SignatureDoesNotMatch", "INVALID_ACCESS_KEY_ID"))
