"""One config object from files, environment variables and flags.

Precedence, lowest first: defaults, ``--config`` files (repeatable, merged
left to right as Meltano does), ``SPOOL_TARGET_<NAME>`` environment
variables, then command-line flags. Every setting is declared once in
``SETTINGS``; ``--about`` and the README's reference are generated from it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

ENV_PREFIX = "SPOOL_TARGET_"


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {v!r}")


def _json_obj(v: Any) -> dict[str, Any]:
    if isinstance(v, str):
        v = json.loads(v)
    if not isinstance(v, dict):
        raise ValueError("expected a JSON object")
    return v


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        s = str(v)
        if s not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {s!r}")
        return s

    parse.__name__ = "|".join(choices)
    return parse


def _opt_int(v: Any) -> int | None:
    return None if v is None or v == "" else int(v)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(v: Any) -> float:
    """Seconds in ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` or combined (``1d12h``); a bare number is seconds."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if v < 0:
            raise ValueError(f"expected a duration such as 7d, 12h or 30m, got {v!r}")
        return float(v)
    text = str(v).strip().lower().replace(" ", "")
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None and seconds >= 0:
        return seconds
    if not text or _DURATION_PART.sub("", text):
        raise ValueError(f"expected a duration such as 7d, 12h or 30m, got {v!r}")
    return float(sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text)))


def _opt_duration(v: Any) -> float | None:
    """A duration, or None for "" (the setting is off)."""
    return None if v is None or v == "" else parse_duration(v)


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    group: str = "general"
    secret: bool = False
    env: str | None = None  # an extra env var name besides SPOOL_TARGET_<NAME>

    @property
    def kind(self) -> str:
        """The setting's kind in Meltano's vocabulary (its SettingKind), which `--about` reports."""
        return {
            str: "string",
            int: "integer",
            float: "decimal",  # Meltano has no `number`: it refuses to install a plugin that declares one
            _bool: "boolean",
            _json_obj: "object",
            _opt_int: "integer",
            _opt_duration: "string",  # 7d, 12h, 30m (Meltano has no duration kind)
        }.get(self.parse, "string")

    @property
    def env_vars(self) -> list[str]:
        names = [ENV_PREFIX + self.name.upper()]
        if self.env:
            names.insert(0, self.env)
        return names


LOAD_METHODS = ("append-only", "upsert", "overwrite")

SETTINGS: tuple[Setting, ...] = (
    # --- spool (ingest) ---
    Setting(
        "spool_dir",
        str,
        "./spool",
        "Where the spool (segments, manifest, rejects) lives: a local directory, or a bucket prefix "
        "s3://bucket/prefix, az://container/prefix or gs://bucket/prefix.",
        "spool",
    ),
    Setting(
        "storage_options",
        _json_obj,
        {},
        'A spool in a bucket: endpoint, region, path_style, retries and keys, e.g. {"endpoint": '
        '"http://minio:9000", "path_style": true}. Credentials are better left to the environment (AWS_*, AZURE_STORAGE_*).',
        "spool",
    ),
    Setting(
        "replica_dir",
        str,
        "",
        "A spool in a bucket: the local directory where commands keep their copy of it. Empty: a directory per "
        "spool URL under the user cache ($XDG_CACHE_HOME or ~/.cache)/spool-target/replicas.",
        "spool",
    ),
    Setting("flush_max_rows", int, 100_000, "Commit a stream's segment once it holds this many records.", "spool"),
    Setting("flush_max_bytes", int, 64 * 1024 * 1024, "Commit a stream's segment once its input reaches this many bytes.", "spool"),
    Setting(
        "flush_interval_seconds",
        float,
        10.0,
        "Commit everything buffered at least this often, so STATE keeps flowing on slow or long runs.",
        "spool",
    ),
    Setting(
        "max_rejects",
        _opt_int,
        None,
        "Fail the run (exit 4) when more records than this are rejected; 0 fails on any reject. Unset: never.",
        "spool",
    ),
    Setting("min_free_disk_mb", int, 1024, "Warn when the spool's filesystem has less free space than this.", "spool"),
    Setting(
        "lock_wait_seconds",
        float,
        900.0,
        "How long `ingest` waits for a `prune` (or `verify`) that is writing the spool's manifest before it "
        "exits 5, logging what it waits for; another ingest on the same spool is never waited for.",
        "spool",
    ),
    Setting(
        "retention",
        _opt_duration,
        None,
        "Make `load` prune as it goes: after loading, delete segments the destination's ledger confirms as "
        "loaded once they are older than this (7d, 12h, 0s = at once). Unset: keep every segment.",
        "spool",
    ),
    # --- load (any destination) ---
    Setting(
        "destination",
        str,
        "",
        "Where `load` writes: duckdb:///relative.duckdb, duckdb:////abs/path.duckdb or "
        "oracle://user@host:port/service. Empty: an embedded DuckDB file inside the spool.",
        "load",
    ),
    Setting("load_method", _choice(*LOAD_METHODS), "append-only", "append-only, upsert (by key properties) or overwrite.", "load"),
    Setting("hard_delete", _bool, False, "Delete rows whose record carries _sdc_deleted_at instead of keeping them soft-deleted.", "load"),
    Setting(
        "max_wait_seconds",
        float,
        300.0,
        "How long `load` retries a destination that is down or busy before it exits 75 (resume later).",
        "load",
    ),
    Setting("default_target_schema", str, "", "Schema for the tables (Oracle: default is the user's own schema).", "load"),
    Setting("table_mappings", _json_obj, {}, 'Stream name -> table name overrides, e.g. {"public-users": "USERS"}.', "load"),
    Setting(
        "column_mappings",
        _json_obj,
        {},
        'Per stream, property -> column name overrides, e.g. {"users": {"e-mail": "EMAIL"}}.',
        "load",
    ),
    Setting("batch_rows", int, 100_000, "Rows per bulk insert call when a segment is streamed to the destination.", "load"),
    Setting(
        "transaction_rows",
        int,
        1_000_000,
        "`load` puts consecutive small segments of a stream into one transaction up to this many rows "
        "(a bigger segment is a transaction of its own).",
        "load",
    ),
    # --- DuckDB ---
    Setting(
        "duckdb_compression",
        _choice("fast", "compact"),
        "fast",
        "DuckDB destination: fast skips DuckDB's costliest string compression while loading (about twice "
        "the load speed, a file about three times larger); compact keeps DuckDB's defaults.",
        "duckdb",
    ),
    # --- Oracle ---
    Setting("host", str, "", "Oracle host (instead of `destination` or `dsn`).", "oracle"),
    Setting("port", int, 1521, "Oracle listener port.", "oracle"),
    Setting("service_name", str, "", "Oracle service name.", "oracle"),
    Setting("sid", str, "", "Oracle SID (old style; prefer service_name).", "oracle"),
    Setting("user", str, "", "Oracle user.", "oracle"),
    Setting(
        "password",
        str,
        "",
        "Oracle password. Prefer the env var SPOOL_TARGET_ORACLE_PASSWORD so it never sits in a file.",
        "oracle",
        secret=True,
        env="SPOOL_TARGET_ORACLE_PASSWORD",
    ),
    Setting("dsn", str, "", "A full Easy Connect string or TNS alias (with config_dir).", "oracle"),
    Setting("config_dir", str, "", "Directory of tnsnames.ora for a TNS alias.", "oracle"),
    Setting("wallet_location", str, "", "Directory of the wallet for TCPS / mTLS.", "oracle"),
    Setting("wallet_password", str, "", "Password of the wallet (PEM).", "oracle", secret=True),
    Setting("target_schema", str, "", "Oracle schema for the tables; default: the user's own.", "oracle"),
    Setting("thick_mode", _bool, False, "Use python-oracledb thick mode (needs Oracle Client libraries).", "oracle"),
    Setting("oracle_client_lib_dir", str, "", "Where the Oracle Client libraries are (thick mode).", "oracle"),
    Setting("tcp_connect_timeout", float, 10.0, "Seconds to wait for the TCP connection to Oracle.", "oracle"),
    Setting(
        "connect_timeout",
        float,
        30.0,
        "Seconds one connection attempt to Oracle may take in all (TCP, TLS, handshake, login): bounds a "
        "server that accepts the connection but never answers. Then `load` backs off and retries.",
        "oracle",
    ),
    Setting("expire_time", int, 2, "Minutes between keepalive probes on idle connections (0: off).", "oracle"),
    Setting("call_timeout", int, 0, "Milliseconds one database round trip may take (0: no limit).", "oracle"),
    Setting(
        "load_strategy",
        _choice("insert", "direct-path", "object-storage"),
        "insert",
        "insert: executemany into the table in the ledger's transaction; direct-path: direct_path_load "
        "into a staging table, then INSERT/MERGE plus the ledger row in one transaction; object-storage: "
        "Oracle reads each segment from the bucket with DBMS_CLOUD.COPY_DATA into a staging table, then the same.",
        "oracle",
    ),
    Setting(
        "cloud_credential",
        str,
        "",
        "load_strategy object-storage: name of the DBMS_CLOUD credential (made by DBMS_CLOUD.CREATE_CREDENTIAL) "
        "Oracle reads the bucket with. Only the name: the secret stays in the database.",
        "oracle",
    ),
    Setting(
        "object_storage_url",
        str,
        "",
        "load_strategy object-storage: the spool's URL on object storage (s3://, az://, gs://) when the spool "
        "read by `load` is a local copy of it. Empty: the spool itself (spool_dir), which must then be a bucket.",
        "oracle",
    ),
    Setting(
        "max_identifier_length",
        _opt_int,
        None,
        "Longest Oracle name in bytes the naming rules produce. Unset: the server's limit (128, or 30 before "
        "12.2). Set it (e.g. 30) to keep names stable across a server upgrade; a server with a lower limit is refused.",
        "oracle",
    ),
    Setting("prefer_float", _bool, False, "Map JSON number to BINARY_DOUBLE instead of NUMBER.", "oracle"),
    Setting("varchar_length", int, 4000, "VARCHAR2 length (in characters) for strings without maxLength.", "oracle"),
    Setting(
        "timestamp_type",
        _choice("timestamp_tz", "timestamp"),
        "timestamp_tz",
        "date-time columns as TIMESTAMP(6) WITH TIME ZONE (UTC) or plain TIMESTAMP(6) holding UTC.",
        "oracle",
    ),
    Setting(
        "column_types",
        _json_obj,
        {},
        'Per stream, property -> SQL type overrides, e.g. {"users": {"bio": "CLOB"}}.',
        "oracle",
    ),
    # --- output ---
    Setting("log_format", _choice("auto", "text", "json"), "auto", "auto: text on a terminal, JSON lines otherwise.", "output"),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


class Config:
    """Resolved settings. Attribute access: ``config.spool_dir``."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]):
        self._values = values
        self._sources = sources

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def source_of(self, name: str) -> str:
        return self._sources.get(name, "default")

    def as_dict(self, *, redact: bool = True) -> dict[str, Any]:
        return {
            k: ("***" if redact and SETTINGS_BY_NAME[k].secret and v else v) for k, v in self._values.items()
        }

    @property
    def secrets(self) -> list[str]:
        return [v for k, v in self._values.items() if SETTINGS_BY_NAME[k].secret and v]


def load_config(
    files: list[Path] | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path in files or []:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, ValueError) as err:
            raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a JSON object")
        for k, v in data.items():
            raw[k] = v
            sources[k] = str(path)
    for s in SETTINGS:
        for var in s.env_vars:
            if var in env:
                raw[s.name] = env[var]
                sources[s.name] = f"env {var}"
                break
    for k, v in (overrides or {}).items():
        if v is not None:
            raw[k] = v
            sources[k] = "flag"
    values: dict[str, Any] = {}
    for s in SETTINGS:
        if s.name in raw and raw[s.name] is not None:
            try:
                values[s.name] = s.parse(raw[s.name])
            except (ValueError, TypeError) as err:
                raise ConfigError(
                    f"setting {s.name} (from {sources.get(s.name)}) is invalid: {err}"
                ) from None
        else:
            values[s.name] = s.default
    # Unknown keys are ignored on purpose: Meltano and shared config files
    # carry settings meant for other tools.
    return Config(values, sources)
