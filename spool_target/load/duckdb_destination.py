"""The embedded DuckDB destination: one local database file, fully transactional.

Each unit is one DuckDB transaction: the rows (read by DuckDB's own Parquet
reader, ``read_parquet``, straight from the segment files: no Python per
row, memory bounded by DuckDB's streaming) and the ledger rows commit
together or not at all; DuckDB's WAL makes that hold across SIGKILL.

Types: integer BIGINT, number DOUBLE, decimal (a number that is not
exactly a double) and string/time/json VARCHAR (json as its
text: a column widened from string to json keeps plain strings as they
are), timestamp TIMESTAMPTZ (UTC), date DATE, boolean BOOLEAN.

No PRIMARY KEY on data tables, on purpose: DuckDB cannot ALTER the type of a
column an index depends on (a key widened from integer to string would stop
the load), an ART index must be rebuilt on every open, and append-only
loads of a keyed stream may hold several rows per key. Upserts are instead
set-based: deduplicate the unit by key (highest ``_sdc_sequence`` wins),
drop records older than their key's row in the table, DELETE the matching
rows, INSERT the survivors -- in the unit's transaction.
The ledger does have a primary key (spool_id, item), so an item can never
commit twice.

Staging tables are TEMP tables named ``_spool_stage_<spool>_<random>``: they
vanish with the connection, so a killed load leaves nothing behind; the
sweep still drops any persistent table with that prefix.

A database file locked by another process is a transient error (retry);
everything else DuckDB raises is permanent.
"""

from __future__ import annotations

import enum
import uuid
from pathlib import Path
from typing import Any, Sequence

import duckdb

from ..durable import make_dirs
from ..errors import SegmentCorrupt
from ..logs import Log
from ..naming import DUCKDB, TableRef
from .destination import (
    Access,
    ActivateStep,
    AlreadyLoaded,
    Checkpoint,
    ColumnInfo,
    ColumnSpec,
    DeleteMode,
    Destination,
    DestinationMissing,
    DestinationSpec,
    Failure,
    FailureKind,
    LedgerEntry,
    LoadUnit,
    Reject,
    SegmentStep,
    WriteMode,
)
from .options import DestinationOptions

SQL_TYPES = {
    "integer": "BIGINT",
    "number": "DOUBLE",
    "decimal": "VARCHAR",  # exact text: DuckDB has no numeric type for every 38-digit decimal
    "string": "VARCHAR",
    "time": "VARCHAR",
    "json": "VARCHAR",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "date": "DATE",
    "boolean": "BOOLEAN",
}
# What an existing column's type means to the engine; types we never create map to None.
LOGICAL_OF = {
    "BIGINT": "integer",
    "DOUBLE": "number",
    "VARCHAR": "string",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "DATE": "date",
    "BOOLEAN": "boolean",
}


class Compression(enum.Enum):
    FAST = "fast"  # no dict_fsst while loading: about 2x faster, files about 3x larger
    COMPACT = "compact"  # DuckDB's defaults


def open_destination(spec: DestinationSpec, options: DestinationOptions, log: Log | None) -> "DuckDBDestination":
    assert spec.path is not None
    return DuckDBDestination(
        spec.path,
        options.duckdb.default_target_schema or None,
        Compression(options.duckdb.duckdb_compression),
    )


class DuckDBDestination(Destination):
    rules = DUCKDB
    default_schema: str  # DuckDB always has one: main

    def __init__(self, path: Path, default_schema: str | None = None, compression: Compression = Compression.FAST):
        self.path = Path(path)
        self.label = f"duckdb:///{self.path}"  # an absolute path gives the four slashes
        self.default_schema = default_schema or "main"
        self.compression = compression
        self.con: duckdb.DuckDBPyConnection | None = None

    # ----- connection ----------------------------------------------------------
    def connect(self, access: Access = Access.READ_WRITE) -> None:
        self.close()
        if access is Access.READ_ONLY and not self.path.exists():
            raise DestinationMissing(f"{self.path} does not exist yet (nothing was loaded)")
        if access is Access.READ_WRITE:
            make_dirs(self.path.parent)
        self.con = duckdb.connect(str(self.path), read_only=access is Access.READ_ONLY)
        # Widening a timestamp to text must not depend on the machine's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        if access is Access.READ_ONLY:
            return
        # Row order inside a table means nothing to any load method (upserts
        # order by _sdc_sequence), and keeping it serialises DuckDB's inserts.
        self.con.execute("SET preserve_insertion_order = false")
        if self.compression is Compression.FAST:
            # Measured on 1M 9-field records (scripts/bench_load.py): analysing
            # strings for dict_fsst is about half of the load's CPU time.
            self.con.execute("SET disabled_compression_methods = 'dict_fsst'")

    def close(self) -> None:
        con, self.con = self.con, None
        if con is not None:
            try:
                con.close()
            except duckdb.Error:
                pass

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise duckdb.ConnectionException("not connected")
        return self.con

    def classify(self, exc: BaseException) -> Failure | None:
        if not isinstance(exc, duckdb.Error):
            return None
        if isinstance(exc, duckdb.InterruptException):
            return Failure(FailureKind.INTERRUPTED)
        text = str(exc)
        # DuckDB has no error codes; a lock held by another process is only
        # recognisable by its message ("Could not set lock on file ...").
        if isinstance(exc, duckdb.IOException) and ("Could not set lock" in text or "Conflicting lock" in text):
            return Failure(FailureKind.TRANSIENT)
        if isinstance(exc, duckdb.TransactionException) and "conflict" in text.lower():
            return Failure(FailureKind.TRANSIENT)
        if isinstance(exc, duckdb.OutOfMemoryException):
            return Failure(
                FailureKind.PERMANENT,
                "give DuckDB more memory (SET memory_limit) or lower transaction_rows, then `load --resume`",
            )
        if isinstance(exc, (duckdb.IOException, duckdb.PermissionException)):
            return Failure(FailureKind.PERMANENT, f"check that {self.path} and its directory are writable and have space")
        return Failure(
            FailureKind.PERMANENT,
            "nothing of this unit was written; fix the table (or its data) the message names, "
            "then run `spool-target load --resume`",
        )

    # ----- names and types ---------------------------------------------------
    def sql_type(self, column: ColumnSpec) -> str:
        return SQL_TYPES[column.type]

    def _table(self, table: TableRef) -> str:
        return self.rules.qualified(table.schema or self.default_schema, table.name)

    @property
    def _ledger(self) -> str:
        return self.rules.qualified(self.default_schema, self.rules.ledger_table)

    def _ensure_schema(self, schema: str) -> None:
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.rules.quote(schema)}")

    # ----- ledger -----------------------------------------------------------
    def ensure_ledger(self) -> None:
        self._ensure_schema(self.default_schema)
        self._con.execute(
            f"""CREATE TABLE IF NOT EXISTS {self._ledger} (
                spool_id VARCHAR NOT NULL,
                item VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                stream VARCHAR NOT NULL,
                table_name VARCHAR NOT NULL,
                rows BIGINT NOT NULL,
                sha256 VARCHAR NOT NULL,
                run_id VARCHAR NOT NULL,
                loaded_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (spool_id, item))"""
        )

    def read_ledger(self, spool_id: str) -> dict[str, LedgerEntry]:
        if self._columns(self.default_schema, self.rules.ledger_table) is None:
            return {}
        rows = self._con.execute(
            f"SELECT item, kind, stream, table_name, rows, loaded_at FROM {self._ledger} WHERE spool_id = ?",
            [spool_id],
        ).fetchall()
        return {r[0]: LedgerEntry(*r) for r in rows}

    # ----- tables -------------------------------------------------------------
    def _columns(self, schema: str, name: str) -> dict[str, ColumnInfo] | None:
        rows = self._con.execute(
            """SELECT column_name, data_type FROM duckdb_columns()
               WHERE database_name = current_database() AND lower(schema_name) = lower(?)
                 AND lower(table_name) = lower(?)
               ORDER BY column_index""",
            [schema, name],
        ).fetchall()
        if not rows:
            return None
        return {n: ColumnInfo(n, t, LOGICAL_OF.get(t)) for n, t in rows}

    def table_columns(self, table: TableRef) -> dict[str, ColumnInfo] | None:
        return self._columns(table.schema or self.default_schema, table.name)

    def create_table(self, table: TableRef, columns: Sequence[ColumnSpec], keys: Sequence[str]) -> None:
        # ``keys`` become no constraint here: see the module docstring.
        self._ensure_schema(table.schema or self.default_schema)
        cols = ", ".join(f"{self.rules.quote(c.name)} {self.sql_type(c)}" for c in columns)
        self._con.execute(f"CREATE TABLE IF NOT EXISTS {self._table(table)} ({cols})")

    def add_column(self, table: TableRef, column: ColumnSpec) -> None:
        self._con.execute(
            f"ALTER TABLE {self._table(table)} ADD COLUMN IF NOT EXISTS {self.rules.quote(column.name)} {self.sql_type(column)}"
        )

    def widen_column(self, table: TableRef, column: ColumnSpec) -> None:
        self._con.execute(
            f"ALTER TABLE {self._table(table)} ALTER COLUMN {self.rules.quote(column.name)} "
            f"SET DATA TYPE {self.sql_type(column)}"
        )

    def sweep(self, spool_id: str) -> list[str]:
        prefix = self.rules.stage_prefix + _spool_tag(spool_id)
        rows = self._con.execute(
            """SELECT schema_name, table_name FROM duckdb_tables()
               WHERE database_name = current_database() AND NOT temporary AND starts_with(table_name, ?)""",
            [prefix],
        ).fetchall()
        for schema, name in rows:
            self._con.execute(f"DROP TABLE IF EXISTS {self.rules.qualified(schema, name)}")
        return [f"{schema}.{name}" for schema, name in rows]

    # ----- the unit of work ----------------------------------------------------
    def load(self, unit: LoadUnit, checkpoint: Checkpoint, reject: Reject) -> None:
        """DuckDB holds every record it is given (a '' key is a key): ``reject`` is never called."""
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            self._refuse_loaded(unit)
            if unit.columns is not None:
                _UnitWriter(self, unit).run()
            # One statement for all ledger rows (executemany costs ~1 ms a row):
            # each column is bound as a list and unnested side by side.
            fields = ("spool_id", "item", "kind", "stream", "table", "rows", "sha256", "run_id")
            con.execute(
                f"INSERT INTO {self._ledger} (spool_id, item, kind, stream, table_name, rows, sha256, run_id, loaded_at) "
                "SELECT unnest(?), unnest(?), unnest(?), unnest(?), unnest(?), unnest(?::BIGINT[]), unnest(?), unnest(?), now()",
                [[getattr(r, f) for r in unit.ledger] for f in fields],
            )
            checkpoint("before-commit")
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the failed commit or statement already ended the transaction
            raise
        checkpoint("after-commit")

    def _refuse_loaded(self, unit: LoadUnit) -> None:
        spool_id = unit.ledger[0].spool_id
        found = self._con.execute(
            f"SELECT item FROM {self._ledger} WHERE spool_id = ? AND list_contains(?, item)",
            [spool_id, [r.item for r in unit.ledger]],
        ).fetchall()
        if found:
            raise AlreadyLoaded([r[0] for r in found])


def _spool_tag(spool_id: str) -> str:
    return spool_id.replace("-", "")[:8]


class _UnitWriter:
    """The SQL of one unit, inside the open transaction."""

    def __init__(self, dest: DuckDBDestination, unit: LoadUnit):
        assert unit.columns is not None
        self.dest = dest
        self.con = dest._con
        self.q = dest.rules.quote
        self.unit = unit
        self.table = dest._table(unit.table)
        self.columns = list(unit.columns.values())
        self.all_cols = ", ".join(self.q(c.name) for c in self.columns)
        self.tag = _spool_tag(unit.ledger[0].spool_id)
        # Keys apply to records only when the stream has them (the engine warns otherwise).
        self.record_deletes = unit.deletes if unit.keys else DeleteMode.SOFT

    def run(self) -> None:
        u = self.unit
        if u.write is WriteMode.OVERWRITE:
            # Same transaction as the inserts: readers see the old rows until COMMIT.
            self.con.execute(f"DELETE FROM {self.table}")
        if u.write is WriteMode.UPSERT:
            self._upsert(list(u.segments))
            return
        # Segments and ACTIVATE_VERSIONs in order; runs of consecutive
        # segments with the same columns become one statement.
        run: list[SegmentStep] = []
        for step in u.steps:
            if isinstance(step, SegmentStep):
                run.append(step)
                continue
            self._append(run)
            run = []
            self._activate(step)
        self._append(run)

    # --- SQL pieces ---
    def _groups(self, steps: list[SegmentStep]) -> list[list[SegmentStep]]:
        groups: list[list[SegmentStep]] = []
        for step in steps:
            if groups and groups[-1][0].columns == step.columns:
                groups[-1].append(step)
            else:
                groups.append([step])
        return groups

    def _select(self, group: list[SegmentStep]) -> tuple[str, list[Any]]:
        """SELECT every table column (cast to its type; NULL where the segment
        lacks it) from the group's files, read by position (see plan.verify_segment)."""
        by_column = {c.column: c for c in group[0].columns}
        exprs = []
        for col in self.columns:
            src = by_column.get(col.name)
            value = f"s.c{src.position}" if src is not None else "NULL"
            exprs.append(f"CAST({value} AS {col.sql_type}) AS {self.q(col.name)}")
        aliases = ", ".join(f"c{i}" for i in range(len(group[0].columns)))
        sql = f"SELECT {', '.join(exprs)} FROM read_parquet(?) AS s({aliases})"
        return sql, [[str(s.file) for s in group]]

    def _stage(self, groups: list[list[SegmentStep]], suffix: str = "") -> str:
        name = self.q(f"{self.dest.rules.stage_prefix}{self.tag}_{uuid.uuid4().hex[:8]}{suffix}")
        parts, params = [], []
        for group in groups:
            sql, p = self._select(group)
            parts.append(sql)
            params.extend(p)
        self.con.execute(f"CREATE TEMP TABLE {name} AS {' UNION ALL '.join(parts)}", params)
        return name

    def _key_match(self, left: str, right: str) -> str:
        # IS NOT DISTINCT FROM: a NULL key still matches itself; 0 and '' are ordinary values.
        return " AND ".join(f"{left}.{self.q(k)} IS NOT DISTINCT FROM {right}.{self.q(k)}" for k in self.unit.keys)

    def _append(self, steps: list[SegmentStep]) -> None:
        if not steps:
            return
        groups = self._groups(steps)
        if self.record_deletes is DeleteMode.HARD and any(s.has_deletes for s in steps):
            self._append_with_deletes(groups)
            return
        for group in groups:
            sql, params = self._select(group)
            inserted = self.con.execute(f"INSERT INTO {self.table} ({self.all_cols}) {sql}", params).fetchone()
            _check_count(group, inserted)

    def _append_with_deletes(self, groups: list[list[SegmentStep]]) -> None:
        """hard_delete, append-only: a deletion removes the key's rows loaded
        before it (in the table, or earlier in this unit) and is not stored."""
        m = self.unit.meta
        stage = self._stage(groups)
        keys = ", ".join(self.q(k) for k in self.unit.keys)
        deleted_at, seq = self.q(m.deleted_at), self.q(m.sequence)
        self.con.execute(
            f"DELETE FROM {self.table} AS t USING (SELECT DISTINCT {keys} FROM {stage} WHERE {deleted_at} IS NOT NULL) AS d "
            f"WHERE {self._key_match('t', 'd')}"
        )
        self.con.execute(
            f"INSERT INTO {self.table} ({self.all_cols}) SELECT {self.all_cols} FROM {stage} AS s "
            f"WHERE s.{deleted_at} IS NULL AND NOT EXISTS (SELECT 1 FROM {stage} AS d WHERE d.{deleted_at} IS NOT NULL "
            f"AND {self._key_match('d', 's')} AND d.{seq} > s.{seq})"
        )
        self.con.execute(f"DROP TABLE {stage}")

    def _upsert(self, steps: list[SegmentStep]) -> None:
        """Per key, the record with the highest _sdc_sequence in this unit
        replaces every row with that key (or, hard_delete and deleted, removes
        them) -- unless the table holds a later record of the key: a replayed
        reject keeps its old sequence and must not undo what came after it."""
        m = self.unit.meta
        keys = ", ".join(self.q(k) for k in self.unit.keys)
        seq, deleted_at = self.q(m.sequence), self.q(m.deleted_at)
        stage = self._stage(self._groups(steps))
        latest = self.q(f"{self.dest.rules.stage_prefix}{self.tag}_{uuid.uuid4().hex[:8]}_latest")
        self.con.execute(
            f"CREATE TEMP TABLE {latest} AS SELECT * FROM {stage} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {seq} DESC) = 1"
        )
        self.con.execute(
            f"DELETE FROM {latest} AS s USING {self.table} AS t WHERE {self._key_match('t', 's')} AND t.{seq} >= s.{seq}"
        )
        self.con.execute(f"DELETE FROM {self.table} AS t USING {latest} AS s WHERE {self._key_match('t', 's')}")
        survivors = f" WHERE {deleted_at} IS NULL" if self.record_deletes is DeleteMode.HARD else ""
        self.con.execute(f"INSERT INTO {self.table} ({self.all_cols}) SELECT {self.all_cols} FROM {latest}{survivors}")
        self.con.execute(f"DROP TABLE {latest}")
        self.con.execute(f"DROP TABLE {stage}")

    def _activate(self, step: ActivateStep) -> None:
        """Rows of older versions (or none) are gone: soft-deleted, or deleted with hard_delete."""
        m = self.unit.meta
        version, deleted_at = self.q(m.table_version), self.q(m.deleted_at)
        older = f"({version} IS NULL OR {version} < ?)"
        if self.unit.deletes is DeleteMode.HARD:
            self.con.execute(f"DELETE FROM {self.table} WHERE {older}", [step.version])
        else:
            self.con.execute(
                f"UPDATE {self.table} SET {deleted_at} = ? WHERE {deleted_at} IS NULL AND {older}",
                [step.deleted_at, step.version],
            )


def _check_count(group: list[SegmentStep], inserted: Any) -> None:
    expected = sum(s.rows for s in group)
    if inserted is not None and inserted[0] != expected:
        raise SegmentCorrupt(
            f"segment(s) {', '.join(s.item for s in group)} gave {inserted[0]} rows but the manifest says {expected}",
            hint="a segment file changed after it was verified; restore it from a backup",
        )
