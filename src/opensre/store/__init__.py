from .db import Store, default_store_path
from .schema import SCHEMA_VERSION

__all__ = ["Store", "default_store_path", "SCHEMA_VERSION"]
