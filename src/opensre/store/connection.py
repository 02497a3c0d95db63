"""Opening a store file: where it is, that it is ours (an SQLite database with our
application_id or, from before that, our meta row), that it is sound, and at the
current schema. A reader opens it read-only (immutable on a read-only mount) and
never changes it; a writer creates, marks, checks and migrates it."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

from ..errors import StoreError
from .owner import give_store_to_invoking_user, sudo_home
from .schema import MIGRATIONS, SCHEMA_VERSION

# PRAGMA application_id of every store ("OSRE"): a file without it that holds other
# tables is someone else's database, never written to
APPLICATION_ID = 0x4F535245
_SQLITE_MAGIC = b"SQLite format 3\0"
# a store up to this size is checked (PRAGMA quick_check) before a collector writes
# to it; a bigger one is checked by SQLite page by page as it is used
QUICK_CHECK_MAX_BYTES = 256 << 20


def default_store_path() -> Path:
    """$OPENSRE_STORE, else a per-user, per-host file. Under sudo it belongs to the
    invoking user, so `opensre runs` works without root afterwards."""
    env = os.environ.get("OPENSRE_STORE")
    if env:
        return Path(env)
    home = sudo_home() or Path.home()
    xdg = None if os.environ.get("SUDO_USER") else os.environ.get("XDG_DATA_HOME")  # root's XDG is not the user's
    base = Path(xdg) if xdg else home / ".local" / "share"
    return base / "opensre" / f"{os.uname().nodename}.sqlite"


def connect(path: Path, readonly: bool) -> tuple[sqlite3.Connection, int]:
    """The store's connection (rows as sqlite3.Row) and its schema version. Every
    failure is a StoreError that says whose fault it is: the file's (damaged, not
    ours) or its place's (permissions, a read-only mount, locks)."""
    app_id = _check_file(path, readonly)
    try:
        if readonly:
            # a URI: the path escaped (`?`, `#`, `%` are URI syntax); a store on a
            # read-only mount is immutable (WAL's -shm cannot be created there)
            ro = "mode=ro&immutable=1" if _read_only_fs(path) else "mode=ro"
            db = sqlite3.connect(f"file:{quote(str(path.absolute()))}?{ro}", uri=True, timeout=10)
            _check_ours(db, path, app_id, readonly=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=10)
            new = _check_ours(db, path, app_id, readonly=False)
            if not new and path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                bad = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if bad != "ok":
                    raise sqlite3.DatabaseError(" ".join(bad.split()))
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            migrate(db, path)
            give_store_to_invoking_user(path)
        db.row_factory = sqlite3.Row
        version = schema_version(db)  # a damaged page fails here, still inside these handlers
    except sqlite3.OperationalError as e:  # not the file's fault: permissions, a read-only mount, locks
        ro = " (a read-only file system)" if not readonly and _read_only_fs(path.parent) else ""
        raise StoreError(f"cannot open store {path}{' for writing' if not readonly else ''}: {e}{ro}",
                         "choose another --store, or read it with `opensre runs/show/tune --store`") from None
    except sqlite3.DatabaseError as e:
        raise damaged(path, e) from None
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror or e}",
                         "check the path and its directory's permissions") from None
    return db, version


def schema_version(db: sqlite3.Connection) -> int:
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection, path: Path) -> None:
    v = schema_version(db)
    if v > SCHEMA_VERSION:
        raise StoreError(f"store {path} has schema v{v}, newer than this opensre", "upgrade opensre")
    if v == SCHEMA_VERSION:
        return
    # one transaction for all steps: all or nothing, and each page written to the
    # WAL once (a new store must fit on a nearly full disk too)
    steps = "".join(MIGRATIONS[step] for step in range(v + 1, SCHEMA_VERSION + 1))
    try:
        db.executescript(f"BEGIN;\n{steps}\nINSERT OR REPLACE INTO meta VALUES ('schema_version', "
                         f"'{SCHEMA_VERSION}');\nPRAGMA application_id={APPLICATION_ID};\nCOMMIT;")
    except sqlite3.Error:
        if db.in_transaction:
            db.rollback()
        raise


def damaged(path: Path, e: Exception) -> StoreError:
    """The one-line error for a store SQLite cannot read (truncated, bytes flipped)."""
    return StoreError(f"store {path} is damaged ({e})",
                      f"recover what can be read: sqlite3 '{path}' .recover | sqlite3 recovered.sqlite")


def _not_ours(path: Path, why: str) -> StoreError:
    return StoreError(f"{path} is not an OpenSRE store ({why})", "pass --store with an OpenSRE store, or a new file")


def _check_file(path: Path, readonly: bool) -> int | None:
    """Before SQLite opens it: the store's application_id (None: no file yet, or an
    empty one a writer may initialise). Refuses what is not an SQLite database."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if readonly:
            raise StoreError(f"no store at {path}", "run `opensre run -- CMD` first, or pass --store") from None
        return None
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror or e}", "check the path") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_ours(path, "not a regular file")
    if st.st_size == 0:
        if readonly:
            raise _not_ours(path, "an empty file")
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror or e}", "check the file's permissions") from None
    if not head.startswith(_SQLITE_MAGIC):
        raise _not_ours(path, "not an SQLite database")
    if len(head) < 100:
        raise damaged(path, "truncated")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise _not_ours(path, f"an SQLite database of another application, id {app_id:#x}")
    return app_id


def _check_ours(db: sqlite3.Connection, path: Path, app_id: int | None, readonly: bool) -> bool:
    """Refuses an SQLite database that is not a store (someone else's tables, no
    schema version of ours). True: a new, empty database for a writer to set up.
    Stores made before the application_id was set are recognised by their meta row."""
    if app_id == APPLICATION_ID:
        return False
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        if readonly:
            raise _not_ours(path, "an empty database")
        return True
    version = None
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row else None
    if version is None or not {"runs", "processes"} <= tables:
        raise _not_ours(path, "someone else's SQLite database")
    if not readonly:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")  # an older store of ours: mark it
    return False


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
