from .db import Store, default_store_path, give_to_invoking_user
from .schema import SCHEMA_VERSION

__all__ = ["Store", "default_store_path", "give_to_invoking_user", "SCHEMA_VERSION"]
