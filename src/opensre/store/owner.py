"""Who owns the files opensre writes. Under sudo the collector runs as root, but the
store, its WAL and the reports are the invoking user's: `opensre runs`, `top` and
reports then work without root afterwards."""

from __future__ import annotations

import os
from pathlib import Path


def sudo_home() -> Path | None:
    """The home of the user who ran sudo (None when not under sudo as root, or
    when that user is unknown)."""
    sudo_user = os.environ.get("SUDO_USER")
    if not sudo_user or os.geteuid() != 0:
        return None
    import pwd

    try:
        return Path(pwd.getpwnam(sudo_user).pw_dir)
    except KeyError:
        return None


def give_to_invoking_user(*paths: str | Path) -> None:
    """Under sudo, files written for the user belong to the user (so `opensre runs`,
    `top` and reports work without root afterwards)."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid:
        return
    for p in paths:
        try:
            if os.path.exists(p):  # never through a symlink swapped in meanwhile
                os.chown(p, int(uid), int(gid or uid), follow_symlinks=False)
        except OSError:
            pass


def give_store_to_invoking_user(path: Path) -> None:
    """The store file, its directory and SQLite's WAL files beside it."""
    give_to_invoking_user(path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm"))
