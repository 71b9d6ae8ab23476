"""The destination interface: the small, dialect-neutral part a database adds.

The engine (``engine.py``) owns planning, order, verification, retries and
reporting. A destination only knows its dialect: how to connect, what its
tables look like, how to create or widen them, and how to apply one
``LoadUnit`` -- an ordered list of a stream's segments and ACTIVATE_VERSIONs
plus their ledger rows -- in ONE transaction.

Contract of ``Destination.load(unit, checkpoint, reject)`` (each destination must keep it, I4):

1. begin a transaction;
2. if any of ``unit.ledger`` is already in the ledger, roll back and raise
   ``AlreadyLoaded`` (a commit whose answer was lost: the engine re-plans);
3. ``unit.write is WriteMode.OVERWRITE``: delete every row of the table first;
4. apply the steps in order (see ``WriteMode`` and ``DeleteMode``);
5. hand the records it could not load, if any, to ``reject`` (the engine
   writes them to the spool's rejects durably, I5); insert the ledger rows;
   call ``checkpoint("before-commit")``; commit; call ``checkpoint("after-commit")``.

The ledger (one table per destination, ``_spool_ledger`` unless the dialect
renames it) has the primary key (spool_id, item), so even a second commit
of one item fails instead of loading it twice.

Native errors stay native: the engine asks ``classify(exc)`` whether one is
transient (retry with backoff), permanent (fail fast) or not a database
error at all (a bug).

Destinations are chosen by URL (``parse_destination``) and opened with
``open_destination(spec, options, log)``, where ``options`` are typed
(``options.py``); a destination module exposes a function of that name and
signature. A ``DestinationChoice`` is a spec with its options: what the
commands pass to the library. The CLI makes it (``cli.common.destination_from_config``,
the one place that reads which destination a command talks to); nothing here
reads the config file.

Destinations stay dialect only: they never read or write the spool. Rows a
destination cannot load (Oracle: a key that is '') go back to the engine
through ``Destination.load``'s ``reject`` argument, and the engine writes
them with the spool's rejects writer; names and column-type overrides come
from the engine's ``StreamBinding``s (``Destination.use_bindings``).
"""

from __future__ import annotations

import abc
import enum
import importlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError, SpoolTargetError
from ..logs import Log
from ..naming import NamingRules, TableRef
from ..schema import widen
from .options import DestinationOptions

Checkpoint = Callable[[str], None]  # fault-injection points; see engine.checkpoint


class WriteMode(enum.Enum):
    """How a unit's segments meet the rows already in the table."""

    APPEND = "append-only"  # insert every record
    UPSERT = "upsert"  # per key, the record with the highest sequence replaces the row
    OVERWRITE = "overwrite"  # delete every row, then append: one unit holds a whole run (units.plan_overwrite)


class DeleteMode(enum.Enum):
    """What a record with _sdc_deleted_at, or an ACTIVATE_VERSION, does."""

    SOFT = "soft"  # keep the row; _sdc_deleted_at says it is gone
    HARD = "hard"  # delete the row (by key for records; by version for ACTIVATE_VERSION)


class Access(enum.Enum):
    READ_WRITE = "read-write"  # load: may create the database, ledger and tables
    READ_ONLY = "read-only"  # status: must not create or change anything


class FailureKind(enum.Enum):
    TRANSIENT = "transient"  # down, unreachable, locked, timed out: retry
    PERMANENT = "permanent"  # credentials, privileges, bad data or SQL: retrying won't help
    INTERRUPTED = "interrupted"  # the user's Ctrl-C reached the database call: the transaction is rolled back


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    hint: str | None = None


@dataclass(frozen=True)
class ColumnSpec:
    """A column the engine wants: its name in the table and logical type."""

    name: str
    type: str  # a schema.LOGICAL_TYPES member
    max_length: int | None = None


@dataclass(frozen=True)
class ColumnInfo:
    """A column as it exists in the destination."""

    name: str
    sql_type: str
    logical: str | None  # None: a type this engine never creates; left alone


@dataclass(frozen=True)
class MetaColumns:
    """Names (in the table) of the metadata columns the load methods use."""

    sequence: str
    deleted_at: str
    table_version: str


@dataclass(frozen=True)
class StreamBinding:
    """How one stream maps onto its table, stable for the life of the spool (``units.bind_streams``)."""

    stream: str
    table: TableRef
    columns: Mapping[str, str]  # property or metadata name -> column name

    def column(self, source: str) -> str:
        return self.columns[source]


@dataclass(frozen=True)
class SourceColumn:
    position: int  # index of the column in the segment's Parquet file
    source: str  # its name there (the property name)
    column: str  # the table column it loads into
    type: str  # logical type in this segment


@dataclass(frozen=True)
class SegmentStep:
    item: str  # the segment's ledger id (Segment.item: its path, relative to the spool root)
    file: Path  # absolute path to read
    rows: int
    columns: tuple[SourceColumn, ...]  # one per Parquet column, in file order
    has_deletes: bool  # some record carries _sdc_deleted_at (from Parquet statistics)

    def batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The segment as Arrow batches with table column names, memory bounded
        by ``batch_rows`` (for destinations that bind Arrow data)."""
        names = [c.column for c in self.columns]
        with pq.ParquetFile(self.file) as pf:
            for batch in pf.iter_batches(batch_size=batch_rows):
                yield pa.RecordBatch.from_arrays(batch.columns, names=names)


@dataclass(frozen=True)
class ActivateStep:
    item: str  # its ledger id (ActivateVersion.item)
    version: int
    deleted_at: datetime  # the soft-delete timestamp to set (UTC)


Step = SegmentStep | ActivateStep


@dataclass(frozen=True)
class RejectedRecord:
    """A record a destination cannot load (Oracle: its key is ''), handed back to the engine."""

    item: str  # the segment it is in (SegmentStep.item)
    values: Mapping[str, object]  # by source name: properties and metadata (_sdc_sequence...)
    reason: str  # what is wrong with it, naming the table and the segment


# How a destination hands rejected records to the engine, before it commits the unit.
Reject = Callable[[Sequence[RejectedRecord]], None]


@dataclass(frozen=True)
class LedgerRow:
    spool_id: str
    item: str
    kind: str  # "segment", "activate_version", or "superseded" (overwrite: an older run's item, never loaded)
    stream: str
    table: str  # for people reading the ledger
    rows: int
    sha256: str  # "" for activate_version
    run_id: str


# A segment's ledger row: loaded, or (overwrite) superseded by a later run and never
# loaded. Either way the segment is done with: prune may delete it.
SEGMENT_LEDGER_KINDS = ("segment", "superseded")


@dataclass(frozen=True)
class LedgerEntry:
    item: str
    kind: str
    stream: str
    table: str
    rows: int
    loaded_at: datetime | None


@dataclass(frozen=True)
class LoadUnit:
    """Work for one transaction: consecutive pending steps of one stream.

    ``columns`` is the table as reconciled for these steps (None: the table
    does not exist, or there are no steps; then the unit holds only
    ACTIVATE_VERSION steps or none, and just gets its ledger rows). For UPSERT units every step is a segment.
    ``keys`` are table columns; empty means no key (then UPSERT and HARD
    never reach the destination: the engine downgrades them and says so).
    """

    stream: str
    table: TableRef
    columns: Mapping[str, ColumnInfo] | None
    write: WriteMode
    deletes: DeleteMode
    keys: tuple[str, ...]
    meta: MetaColumns
    steps: tuple[Step, ...]
    ledger: tuple[LedgerRow, ...]
    # Every column the stream's properties and metadata map to (in any schema version): what an
    # upsert may set; other columns of the table (a DBA's) are not the stream's to change.
    stream_columns: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.steps if isinstance(s, SegmentStep))

    @property
    def segments(self) -> tuple[SegmentStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, SegmentStep))


class AlreadyLoaded(SpoolTargetError):
    """Some items of a unit are in the ledger already: nothing was written."""

    def __init__(self, items: Sequence[str]):
        self.items = tuple(items)
        super().__init__(f"already loaded: {', '.join(items)}")


class DestinationMissing(SpoolTargetError):
    """Read-only access to a destination that was never created (nothing loaded yet)."""


class Destination(abc.ABC):
    """One connection to one destination. Not thread safe."""

    rules: NamingRules
    label: str  # where, for messages and logs; never holds a secret
    default_schema: str | None  # where tables without a schema go (None: the connection's default)

    @abc.abstractmethod
    def connect(self, access: Access = Access.READ_WRITE) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Close quietly; safe to call twice or after a failure."""

    @abc.abstractmethod
    def classify(self, exc: BaseException) -> Failure | None:
        """Transient or permanent for this database's errors; None for anything else."""

    @abc.abstractmethod
    def sql_type(self, column: ColumnSpec) -> str: ...

    @abc.abstractmethod
    def ensure_ledger(self) -> None: ...

    @abc.abstractmethod
    def read_ledger(self, spool_id: str) -> dict[str, LedgerEntry]:
        """This spool's ledger entries by item ({} if there is no ledger yet)."""

    @abc.abstractmethod
    def table_columns(self, table: TableRef) -> dict[str, ColumnInfo] | None:
        """Columns in table order, or None if the table does not exist."""

    @abc.abstractmethod
    def create_table(self, table: TableRef, columns: Sequence[ColumnSpec], keys: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def add_column(self, table: TableRef, column: ColumnSpec) -> None: ...

    @abc.abstractmethod
    def widen_column(self, table: TableRef, column: ColumnSpec) -> None:
        """Change an existing column's type to the (wider) ``column.type``, keeping every value."""

    @abc.abstractmethod
    def load(self, unit: LoadUnit, checkpoint: Checkpoint, reject: Reject) -> None:
        """Apply ``unit`` in one transaction (see the module docstring)."""

    def use_bindings(self, bindings: Mapping[str, StreamBinding]) -> None:
        """The engine's tables and columns per stream, once it has bound them (after
        connecting). Dialects with per-column settings (Oracle's ``column_types``) resolve
        them through these; the default needs nothing."""

    @abc.abstractmethod
    def sweep(self, spool_id: str) -> list[str]:
        """Drop what an interrupted load of this spool left (staging tables...); return their names."""

    def combine_columns(self, a: ColumnSpec, b: ColumnSpec) -> ColumnSpec:
        """The column that holds the values of both ``a`` and ``b`` (one column's specs in two
        segments of a unit). Dialects whose JSON columns refuse plain text (Oracle's IS JSON)
        override this."""
        lengths = [n for n in (a.max_length, b.max_length) if n]
        return ColumnSpec(a.name, widen(a.type, b.type), max(lengths) if lengths else None)

    def widened(self, existing: ColumnInfo, wanted: ColumnSpec) -> ColumnSpec | None:
        """The column type ``existing`` must become to also hold ``wanted``'s
        values, or None if it already can. Dialects with sized types (Oracle's
        VARCHAR2(n)) override this."""
        if existing.logical is None:
            return None  # not ours: leave it; the insert casts or fails with the column named
        target = ColumnSpec(wanted.name, widen(existing.logical, wanted.type), wanted.max_length)
        if self.sql_type(target) == existing.sql_type:
            return None
        return target


# --- choosing a destination ------------------------------------------------
class DestinationKind(enum.Enum):
    DUCKDB = "duckdb"
    ORACLE = "oracle"


# The module under load/ that holds each destination's ``open_destination``;
# imported only when a command opens that destination (I3: ingest never does).
DESTINATION_MODULES = {DestinationKind.DUCKDB: "duckdb_destination", DestinationKind.ORACLE: "oracle"}


@dataclass(frozen=True)
class DestinationSpec:
    kind: DestinationKind
    path: Path | None = None  # DuckDB file
    user: str = ""
    host: str = ""
    port: int | None = None
    service: str = ""
    implicit: bool = False  # no destination configured: the embedded default

    def describe(self) -> str:
        if self.kind is DestinationKind.DUCKDB:
            return f"duckdb://{self.path}"
        where = self.host + (f":{self.port}" if self.port else "") + (f"/{self.service}" if self.service else "")
        return f"oracle://{self.user + '@' if self.user else ''}{where}"


DEFAULT_DUCKDB_FILE = "spool.duckdb"


def parse_destination(url: str, spool_dir: Path, *, oracle_configured: bool = False) -> DestinationSpec:
    """``duckdb:///rel.duckdb``, ``duckdb:////abs/x.duckdb``, ``oracle://user@host:port/service``.

    Empty: the embedded DuckDB file ``<spool>/spool.duckdb`` -- unless Oracle
    settings (``dsn`` or ``host``) are configured, which select Oracle.
    """
    url = (url or "").strip()
    if not url:
        if oracle_configured:
            return DestinationSpec(DestinationKind.ORACLE)
        return DestinationSpec(DestinationKind.DUCKDB, path=Path(spool_dir) / DEFAULT_DUCKDB_FILE, implicit=True)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"destination {url!r} is not a URL",
            hint="use duckdb:///relative.duckdb, duckdb:////absolute/path.duckdb or oracle://user@host:port/service",
        )
    scheme = scheme.lower()
    if scheme == "duckdb":
        # duckdb:///x -> "x" (relative); duckdb:////x -> "/x" (absolute), as SQLAlchemy does.
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(
                f"destination {url!r}: a DuckDB URL has three slashes and a file",
                hint="duckdb:///relative.duckdb or duckdb:////absolute/path.duckdb",
            )
        return DestinationSpec(DestinationKind.DUCKDB, path=Path(unquote(rest[1:])))
    if scheme in ("oracle", "oracle+oracledb"):
        parts = urlsplit("oracle://" + rest)
        if parts.password:
            raise ConfigError(
                "destination URL holds a password; it would end up in logs and shell history",
                hint="remove it from the URL and set SPOOL_TARGET_ORACLE_PASSWORD (or `password` in a config file)",
            )
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"destination {url!r}: the port is not a number") from None
        if not parts.hostname:
            raise ConfigError(f"destination {url!r} names no host", hint="oracle://user@host:1521/service_name")
        return DestinationSpec(
            DestinationKind.ORACLE,
            user=unquote(parts.username or ""),
            host=parts.hostname,
            port=port,
            service=unquote(parts.path.lstrip("/")),
        )
    raise ConfigError(
        f"destination {url!r}: unknown kind {scheme!r}",
        hint="supported: duckdb:///file.duckdb and oracle://user@host:port/service",
    )


def open_destination(spec: DestinationSpec, options: DestinationOptions, log: Log | None) -> Destination:
    """The destination object for ``spec`` (not connected yet)."""
    module_name = f"{__package__}.{DESTINATION_MODULES[spec.kind]}"
    factory: Callable[[DestinationSpec, DestinationOptions, Log | None], Destination] | None
    try:
        factory = getattr(importlib.import_module(module_name), "open_destination", None)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        factory = None
    if factory is None:
        raise ConfigError(
            f"the {spec.kind.value} destination is not available in this build of spool-target",
            hint="use a duckdb:// destination for now, or install a spool-target release with Oracle support",
        )
    dest: Destination = factory(spec, options, log)
    return dest


@dataclass(frozen=True)
class DestinationChoice:
    """The destination a command talks to and its options, as the CLI resolved them
    (``cli.common.destination_from_config``). Opened afresh by each ``open``."""

    spec: DestinationSpec
    options: DestinationOptions = field(default_factory=DestinationOptions)

    def open(self, log: Log | None) -> Destination:
        return open_destination(self.spec, self.options, log)
