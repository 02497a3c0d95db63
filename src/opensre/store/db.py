"""The embedded store: SQLite in WAL mode (crash safe, readable while the collector
writes). `Store` is the facade the rest of opensre opens: the reader
(sqlite_reader.py, the StoreReader interface of reader.py) and the writer
(writer.py) over one connection (connection.py). SQL lives in this package only."""

from __future__ import annotations

from pathlib import Path

from .connection import APPLICATION_ID, QUICK_CHECK_MAX_BYTES, connect, damaged, default_store_path
from .owner import give_to_invoking_user
from .rows import HOST_SAMPLE_FIELDS, TASK_FACT_COLUMNS
from .sqlite_reader import SqliteReader
from .writer import StoreWriter

__all__ = ["Store", "APPLICATION_ID", "HOST_SAMPLE_FIELDS", "QUICK_CHECK_MAX_BYTES", "TASK_FACT_COLUMNS", "damaged",
           "default_store_path", "give_to_invoking_user"]


class Store(SqliteReader, StoreWriter):
    """A store file, opened read-only (`readonly`: never changed, an older schema
    read as it is) or for writing (created, checked and migrated first)."""

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False):
        path = Path(path) if path else default_store_path()
        db, version = connect(path, readonly)
        super().__init__(db, path, version, readonly)

    def close(self) -> None:
        self.db.close()
