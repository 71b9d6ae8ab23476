"""Typed options for the destinations and for naming, made by the CLI from its ``Config``.

Nothing under ``spool/``, ``load/`` or ``ops/`` reads the config file: the
commands (``cli/common.py``) turn the resolved ``Config`` into these frozen
dataclasses and hand them down, as litestream's ``NewDBFromConfig`` does.
Field names are the setting names (see ``config.SETTINGS``), so a setting
is found under the same name on both sides.

They live here, not next to each destination, so that the CLI can build
the options of every destination without importing its module: a build
without the Oracle destination still parses its settings, and opening it
then says that it is not available (``destination.open_destination``).

Settings that hold JSON objects (mappings, column types) are kept as the
user wrote them and checked where they are used, with the stream named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class NamingOptions:
    """How streams and properties become tables and columns (``units.bind_streams``)."""

    default_target_schema: str = ""
    table_mappings: Mapping[str, str] = field(default_factory=dict)  # stream -> table name
    column_mappings: Mapping[str, object] = field(default_factory=dict)  # stream -> {property: column}


@dataclass(frozen=True)
class DuckDBOptions:
    default_target_schema: str = ""
    duckdb_compression: str = "fast"  # duckdb_destination.Compression


@dataclass(frozen=True)
class OracleOptions:
    """Everything the Oracle destination reads: where and as whom to connect
    (``connect.settings_from``), how to load, and the type mapping."""

    # where and as whom
    user: str = ""
    password: str = field(default="", repr=False)
    dsn: str = ""
    host: str = ""
    port: int = 1521
    service_name: str = ""
    sid: str = ""
    config_dir: str = ""
    wallet_location: str = ""
    wallet_password: str = field(default="", repr=False)
    target_schema: str = ""
    thick_mode: bool = False
    oracle_client_lib_dir: str = ""
    tcp_connect_timeout: float = 10.0
    connect_timeout: float = 30.0
    expire_time: int = 2
    call_timeout: int = 0
    # how to load
    load_strategy: str = "insert"
    load_method: str = "append-only"  # upsert: keys must be comparable from the first CREATE TABLE
    hard_delete: bool = False  # likewise: hard deletes compare keys
    batch_rows: int = 100_000
    max_identifier_length: int | None = None
    # load_strategy object-storage (cloud.py): where Oracle reads the segments, and with which credential
    spool_dir: str = ""
    object_storage_url: str = ""
    cloud_credential: str = ""
    storage_options: Mapping[str, object] = field(default_factory=dict)
    # types
    prefer_float: bool = False
    varchar_length: int = 4000
    timestamp_type: str = "timestamp_tz"
    column_types: Mapping[str, object] = field(default_factory=dict)  # stream -> {property: SQL type}


@dataclass(frozen=True)
class DestinationOptions:
    """The options of every destination kind; each destination reads its own part."""

    duckdb: DuckDBOptions = field(default_factory=DuckDBOptions)
    oracle: OracleOptions = field(default_factory=OracleOptions)
