"""The DDL query engines read the lake with (Athena, Trino), from the lake's columns
(store/lakelayout.py, re-exported here for the exporter)."""

from __future__ import annotations

from ...store.lakelayout import COLUMNS, JSONL_KIND, PARTITIONS, SCHEMA_VERSION, TABLES

__all__ = ["COLUMNS", "JSONL_KIND", "PARTITIONS", "SCHEMA_VERSION", "TABLES", "ddl"]


# -- DDL ----------------------------------------------------------------------------
def _trino_type(t: str) -> str:
    if t.startswith("array<"):
        return f"array({_trino_type(t[6:-1])})"
    if t.startswith("map<"):
        k, v = t[4:-1].split(",")
        return f"map({_trino_type(k)}, {_trino_type(v)})"
    return {"string": "varchar", "int": "integer"}.get(t, t)


def ddl(engine: str, table: str, location: str, schema: str = "opensre") -> str:
    """CREATE TABLE for `table` of a lake at `location` (s3://bucket/prefix):
    engine "athena" (partition projection: no partitions to add, ever) or "trino"
    (Hive connector; partitions found by `system.sync_partition_metadata`)."""
    root = location.rstrip("/") + f"/{table}"
    cols = COLUMNS[table]
    if engine == "athena":
        body = ",\n".join(f"  `{n}` {t}" for n, t in cols)
        return (f"CREATE EXTERNAL TABLE {schema}.{table} (\n{body}\n)\n"
                "PARTITIONED BY (`dt` string, `host` string)\n"
                f"STORED AS PARQUET\nLOCATION '{root}/'\n"
                "TBLPROPERTIES (\n"
                "  'projection.enabled' = 'true',\n"
                "  'projection.dt.type' = 'date',\n"
                "  'projection.dt.format' = 'yyyy-MM-dd',\n"
                "  'projection.dt.range' = '2024-01-01,NOW',\n"
                "  'projection.dt.interval' = '1',\n"
                "  'projection.dt.interval.unit' = 'DAYS',\n"
                "  'projection.host.type' = 'injected',\n"
                f"  'storage.location.template' = '{root}/dt=${{dt}}/host=${{host}}/'\n"
                ");")
    if engine == "trino":
        body = ",\n".join(f"  {n} {_trino_type(t)}" for n, t in [*cols, ("dt", "string"), ("host", "string")])
        return (f"CREATE TABLE hive.{schema}.{table} (\n{body}\n)\nWITH (\n"
                f"  external_location = '{root}',\n"
                "  format = 'PARQUET',\n"
                "  partitioned_by = ARRAY['dt', 'host']\n"
                ");")
    raise ValueError(f"no DDL for engine {engine!r} (athena, trino)")
