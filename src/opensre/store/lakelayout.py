"""The lake's tables: their columns (the JSON Lines export's names, typed) and the DDL
that query engines read them with. No pyarrow here: the column lists are data, the
Arrow schema is made from them in writer.py, and docs/lake.md's DDL is checked
against them (tests/unit/test_lake_export.py).

Types are Hive's names (what Athena takes as is); integers are `bigint` as JSON
numbers are, times stay nanoseconds since the epoch as in every export."""

from __future__ import annotations

import dataclasses
import os
import typing
from urllib.parse import urlsplit

from ..model import Event, Exec, Host, Process, Run, Sample, Task, ToolUse
from .rows import HOST_SAMPLE_FIELDS

# bumped when a column changes type, meaning or goes away (a new column is not a
# new version: readers of an older file get NULL for it)
SCHEMA_VERSION = 1

# the Hive partitions, from the path: `TABLE/dt=YYYY-MM-DD/host=HOST_ID/...`
# (`dt`, not `date`: a reserved word in Athena)
PARTITIONS = ("dt", "host")

_SCALAR = {int: "bigint", str: "string", bool: "boolean", float: "double"}
# dict-valued run fields: what their values are
_MAPS = {"drop_detail": "map<string,bigint>", "probes": "map<string,string>"}


def _hive(cls, name: str, hint) -> str:
    if name in _MAPS:
        return _MAPS[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args and typing.get_origin(hint) is not list else hint
    if typing.get_origin(base) is list:
        return f"array<{_SCALAR[typing.get_args(base)[0]]}>"
    try:
        return _SCALAR[base]
    except KeyError:
        raise TypeError(f"{cls.__name__}.{name}: no lake column type for {hint}") from None


def _columns(cls, first: tuple = ()) -> list[tuple[str, str]]:
    """A record class's fields as (name, type), in the export's order; `first`:
    columns the export puts before them (run_id)."""
    hints = typing.get_type_hints(cls)
    return [*first, *((f.name, _hive(cls, f.name, hints[f.name])) for f in dataclasses.fields(cls))]


_RUN_ID = (("run_id", "string"),)
_EVENT_DATA = [  # Event.data by kind (collect/decode.py); a key not listed here fails the export
    # oom_kill
    ("comm", "string"), ("rss_bytes", "bigint"), ("memcg_limit_bytes", "bigint"), ("memcg_usage_bytes", "bigint"),
    ("memcg_id", "bigint"), ("memcg_path", "string"),
    # tcp_connection
    ("family", "string"), ("local_addr", "string"), ("local_port", "bigint"), ("remote_addr", "string"),
    ("remote_port", "bigint"), ("direction", "string"), ("open_time_ns", "bigint"), ("close_time_ns", "bigint"),
    ("duration_ns", "bigint"), ("bytes_sent", "bigint"), ("bytes_received", "bigint"),
]

# table -> the JSON Lines record's columns (`export --what` names the same records)
_BODY: dict[str, list[tuple[str, str]]] = {
    "runs": _columns(Run),
    "hosts": [*_RUN_ID, *_columns(Host)],
    "processes": _columns(Process, _RUN_ID),
    "tasks": _columns(Task),
    "tools": _columns(ToolUse),
    "execs": _columns(Exec, _RUN_ID),
    "samples": _columns(Sample, _RUN_ID),
    "events": [*_RUN_ID, *((f.name, "bigint" if f.name != "kind" else "string")
                           for f in dataclasses.fields(Event) if f.name != "data"), *_EVENT_DATA],
    "host_samples": [*_RUN_ID, *((f, "double" if f == "cpu_util" else "bigint") for f in HOST_SAMPLE_FIELDS)],
}

# every row also says which host it came from (readers get `host` from the path too,
# but a file read on its own keeps it) and in which version of this schema
COLUMNS: dict[str, list[tuple[str, str]]] = {
    t: [*cols, *([] if any(n == "host_id" for n, _ in cols) else [("host_id", "string")]),
        ("schema_version", "int")]
    for t, cols in _BODY.items()}
TABLES = tuple(COLUMNS)
# what `export --what` calls a table, where its name differs
JSONL_KIND = {"host_samples": "host"}


# -- Arrow ------------------------------------------------------------------------
_ARROW = {"bigint": "int64", "int": "int32", "string": "string", "boolean": "bool_", "double": "float64"}


def _arrow_type(pa, t: str):
    if t.startswith("array<"):
        return pa.list_(_arrow_type(pa, t[6:-1]))
    if t.startswith("map<"):
        k, v = t[4:-1].split(",")
        return pa.map_(_arrow_type(pa, k), _arrow_type(pa, v))
    return getattr(pa, _ARROW[t])()


def arrow_schema(pa, table: str):
    """The Arrow schema of `table` (pyarrow passed in: imported by the caller, lazily)."""
    return pa.schema([pa.field(n, _arrow_type(pa, t)) for n, t in COLUMNS[table]],
                     metadata={"opensre.table": table, "opensre.schema_version": str(SCHEMA_VERSION)})


# -- S3 ---------------------------------------------------------------------------
def s3_location(dest: str, option: str) -> tuple[str, str] | None:
    """(bucket, prefix) of an s3://bucket/prefix lake, None for a directory; UsageError
    (naming `option`, --to or --lake) for any other URL."""
    from ..errors import UsageError

    if "://" not in dest:
        return None
    u = urlsplit(dest)
    if u.scheme != "s3":
        raise UsageError(f"{option} {dest}: not a directory or s3://bucket/prefix ({u.scheme}:// is not supported)")
    if not u.netloc or u.query or u.fragment or "@" in u.netloc:
        raise UsageError(f"{option} {dest}: give s3://BUCKET/PREFIX")
    return u.netloc, u.path.strip("/")


def s3_filesystem(fs):
    """pyarrow's S3 filesystem (module `fs` passed in) as the standard AWS environment
    configures it: endpoint (AWS_ENDPOINT_URL[_S3]), region (AWS_REGION /
    AWS_DEFAULT_REGION), credentials (AWS_ACCESS_KEY_ID, ... or the SDK's chain). One
    try per call: callers count and bound their retries."""
    kw: dict = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        e = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        kw.update(endpoint_override=e.netloc, scheme=e.scheme)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    return fs.S3FileSystem(retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1), connect_timeout=5,
                           request_timeout=60, **kw)
