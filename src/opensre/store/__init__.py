from .db import TASK_FACT_COLUMNS, Store, default_store_path, give_to_invoking_user
from .reader import StoreReader
from .schema import SCHEMA_VERSION

__all__ = ["Store", "StoreReader", "TASK_FACT_COLUMNS", "default_store_path", "give_to_invoking_user",
           "SCHEMA_VERSION"]
