"""Every SQL statement the Oracle destination runs, generated in one place.

Identifiers come only from the naming module (always double-quoted);
values only ever travel as bind variables (``:1``, ``:2``...). Nothing here
touches a connection, so ``plan --offline`` and the golden tests use exactly
the text ``load`` executes.

DDL commits implicitly in Oracle, so each DDL statement carries the error
codes that mean "already done" (``Statement.done``): a step repeated after a
crash or a lost answer is then a no-op instead of a failure. ORA-00955 only
says that *some* object has the name, so the destination asks the catalog
what it is before it trusts a CREATE TABLE that failed with it. Each DDL
statement also says what it does to the catalog (``Statement.effect``), which
is how a recording session (``session.RecordingSession``) keeps its simulated
catalog true without parsing SQL.

Widening a column to a type Oracle cannot change in place (VARCHAR2 to CLOB,
NUMBER to text, DATE to TIMESTAMP, JSON text to plain text...) is
``retype_steps``: add a new column, copy every value (converted by
``text_expr`` & co.), drop the old column (on a table with basic compression,
where DROP COLUMN fails with ORA-39726, set it unused instead), rename the new
one. Each step is idempotent and the destination re-reads the table before
each run of them, so an interruption anywhere resumes at the right step. The
column moves to the end of the table; values are kept.

Time zones and numbers never depend on the client: every session starts with
``SESSION_SETUP`` (UTC, and '.' as the decimal character), and values of a
TIME ZONE column are compared as instants (``FROM_TZ(staged, 'UTC')``), not
through an implicit conversion of a naive value in the session's zone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ...naming import NamingRules, TableRef
from .binds import BindColumn
from .types import OracleType

ALREADY_EXISTS = "ORA-00955"  # name is already used by an existing object
COLUMN_EXISTS = "ORA-01430"  # column being added already exists in table
NO_SUCH_TABLE = "ORA-00942"
NO_SUCH_COLUMN = "ORA-00904"
COMPRESSED_TABLE = "ORA-39726"  # unsupported add/drop column operation on compressed tables

TIMESTAMP_TEXT_SQL = "'YYYY-MM-DD\"T\"HH24:MI:SS.FF6\"Z\"'"  # == binds.TIMESTAMP_TEXT_FORMAT


@dataclass(frozen=True)
class Effect:
    """What a DDL statement does to the catalog: create, add, modify, drop_column, rename, drop_table."""

    kind: str
    owner: str | None
    table: str
    column: str | None = None
    to: str | None = None  # the new name (rename) or type (add, modify)
    is_json: bool = False  # add: the column carries an IS JSON check
    columns: tuple["ColumnDDL", ...] = ()  # create
    keys: tuple[str, ...] = ()  # create: the primary key


@dataclass(frozen=True)
class Statement:
    sql: str
    done: tuple[str, ...] = ()  # error codes that mean: this step was already done
    plsql: bool = False
    note: str | None = None  # a comment for plan scripts
    binds: str | None = None  # what gets bound, for plan scripts
    input_types: tuple[str | None, ...] = ()  # setinputsizes, by position: oracledb DB type names
    effect: Effect | None = None
    instead: tuple[tuple[str, "Statement"], ...] = ()  # (error code, what to run when it occurs)


@dataclass(frozen=True)
class ColumnDDL:
    """A column of a CREATE TABLE: its type and the CHECK that goes with it."""

    name: str
    sql_type: str
    check: str = ""  # " CHECK (...)" or ""

    @property
    def is_json(self) -> bool:
        return "IS JSON" in self.check


@dataclass(frozen=True)
class StagedColumn:
    """A column of a staging table and of the table its values go to."""

    name: str
    target: OracleType  # the table's column
    stage: OracleType  # the staging table's column
    stage_name: str | None = None  # its name in staging when not ``name`` (COPY_DATA names it after Parquet)
    into: str | None = None  # SQL turning the staged value (``{}``) into the table's; None: ``from_stage`` decides

    @property
    def staged(self) -> str:
        return self.stage_name or self.name


# Run after every connect, before anything else. Thin mode sets the session time zone from the
# client host (impl/thin/messages/auth.pyx, _get_alter_timezone_statement: ORA_SDTZ or the local
# offset), and NLS_NUMERIC_CHARACTERS follows the client's or the database's territory; the loader
# wants neither to matter: instants are compared and converted in UTC, numbers are read and written
# with '.' (TO_NUMBER(:n), TO_CHAR(n, 'TM9')).
SESSION_SETUP = (
    Statement("ALTER SESSION SET TIME_ZONE = 'UTC'", note="session set-up, at every connect: instants in UTC"),
    Statement("ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'", note="numbers as text always use '.' (TO_NUMBER, TO_CHAR)"),
)

# DBMS_UTILITY.DB_VERSION(version OUT, compatibility OUT) is executable by every user, unlike
# V$PARAMETER; COMPATIBLE decides whether JSON (20) and BOOLEAN (23) columns may be created
# (PL/SQL Packages and Types Reference, DBMS_UTILITY.DB_VERSION).
DB_VERSION = "BEGIN DBMS_UTILITY.DB_VERSION(:1, :2); END;"


def h8(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8].upper()


def stage_tag(spool_id: str) -> str:
    return h8(spool_id)


def from_stage(alias: str, col: StagedColumn, quote) -> str:  # type: ignore[no-untyped-def]
    """A staged value as the table column wants it."""
    ref = f"{alias}.{quote(col.staged)}"
    if col.into is not None:
        return col.into.format(ref)
    if col.target.family == "tstz" and col.stage.family in ("timestamp", "date"):
        return f"FROM_TZ({ref}, 'UTC')"
    if col.target.family == "number" and col.stage.family == "varchar":
        return f"TO_NUMBER({ref})"
    if col.target.family == "float" and col.stage.family == "varchar":
        return f"TO_BINARY_DOUBLE({ref})"
    return ref


@dataclass
class OracleSQL:
    rules: NamingRules
    default_schema: str | None  # schema of the ledger, staging tables and unqualified tables
    q: Callable[[str], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.q = self.rules.quote

    # ---- names ------------------------------------------------------------
    def table(self, ref: TableRef) -> str:
        return self.rules.qualified(ref.schema or self.default_schema, ref.name)

    def owner(self, ref: TableRef) -> str | None:
        return ref.schema or self.default_schema

    @property
    def ledger(self) -> str:
        return self.rules.qualified(self.default_schema, self.rules.ledger_table)

    def stage_name(self, spool_id: str, item: str) -> str:
        """One staging table per unit (named after its first item): ``SPOOL_STAGE_<spool>_<item>``,
        29 bytes, so it fits the 30-byte limit of old servers too."""
        return f"{self.rules.stage_prefix}{stage_tag(spool_id)}_{h8(item)}"

    def stage_pattern(self, spool_id: str) -> str:
        """A LIKE pattern (escape ``\\``) for this spool's staging tables."""
        prefix = f"{self.rules.stage_prefix}{stage_tag(spool_id)}_"
        return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"

    def constraint_name(self, table: str, suffix: str) -> str:
        name = f"{table}_{suffix}"
        if len(name.encode()) <= self.rules.max_bytes:
            return name
        keep = self.rules.max_bytes - len(suffix) - 10
        return f"{table.encode()[:keep].decode('utf-8', 'ignore')}_{h8(table)}_{suffix}"

    @staticmethod
    def widen_temp_column(column: str) -> str:
        return f"SPOOL_W_{h8(column)}"

    # ---- the ledger -----------------------------------------------------------
    LEDGER_COLUMNS = (
        ColumnDDL("SPOOL_ID", "VARCHAR2(64 CHAR)"),
        ColumnDDL("ITEM", "VARCHAR2(512 CHAR)"),
        ColumnDDL("KIND", "VARCHAR2(32 CHAR)"),
        ColumnDDL("STREAM", "VARCHAR2(1000 CHAR)"),
        ColumnDDL("TABLE_NAME", "VARCHAR2(300 CHAR)"),
        ColumnDDL("ROW_COUNT", "NUMBER(19)"),
        ColumnDDL("SHA256", "VARCHAR2(64 CHAR)"),
        ColumnDDL("RUN_ID", "VARCHAR2(64 CHAR)"),
        ColumnDDL("LOADED_AT", "TIMESTAMP(6) WITH TIME ZONE"),
    )

    def create_ledger(self) -> Statement:
        pk = self.q(self.constraint_name(self.rules.ledger_table, "PK"))
        return Statement(
            f"CREATE TABLE {self.ledger} (\n"
            '  "SPOOL_ID" VARCHAR2(64 CHAR) NOT NULL,\n'
            '  "ITEM" VARCHAR2(512 CHAR) NOT NULL,\n'
            '  "KIND" VARCHAR2(32 CHAR) NOT NULL,\n'
            '  "STREAM" VARCHAR2(1000 CHAR) NOT NULL,\n'
            '  "TABLE_NAME" VARCHAR2(300 CHAR) NOT NULL,\n'
            '  "ROW_COUNT" NUMBER(19) NOT NULL,\n'
            '  "SHA256" VARCHAR2(64 CHAR),\n'
            '  "RUN_ID" VARCHAR2(64 CHAR) NOT NULL,\n'
            '  "LOADED_AT" TIMESTAMP(6) WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,\n'
            f'  CONSTRAINT {pk} PRIMARY KEY ("SPOOL_ID", "ITEM")\n'
            ")",
            done=(ALREADY_EXISTS,),
            note="the load ledger: one row per loaded segment or ACTIVATE_VERSION, committed with its data",
            effect=Effect("create", self.default_schema, self.rules.ledger_table, columns=self.LEDGER_COLUMNS),
        )

    def read_ledger(self) -> Statement:
        return Statement(
            'SELECT "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", SYS_EXTRACT_UTC("LOADED_AT") '
            f'FROM {self.ledger} WHERE "SPOOL_ID" = :1'
        )

    def ledger_items_in(self, count: int) -> Statement:
        marks = ", ".join(f":{i + 2}" for i in range(count))
        return Statement(f'SELECT "ITEM" FROM {self.ledger} WHERE "SPOOL_ID" = :1 AND "ITEM" IN ({marks})')

    def insert_ledger(self) -> Statement:
        return Statement(
            f'INSERT INTO {self.ledger} ("SPOOL_ID", "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", "SHA256", "RUN_ID") '
            "VALUES (:1, :2, :3, :4, :5, :6, :7, :8)",
            binds="one row per segment or ACTIVATE_VERSION of the unit",
        )

    # ---- the data dictionary ----------------------------------------------------
    TABLE_COLUMNS = (
        "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.DATA_PRECISION, c.DATA_SCALE, c.CHAR_LENGTH, c.CHAR_USED,\n"
        "       CASE WHEN j.COLUMN_NAME IS NULL THEN 0 ELSE 1 END AS IS_JSON\n"
        "FROM ALL_TAB_COLUMNS c\n"
        "LEFT JOIN ALL_JSON_COLUMNS j\n"
        "  ON j.OWNER = c.OWNER AND j.TABLE_NAME = c.TABLE_NAME AND j.COLUMN_NAME = c.COLUMN_NAME\n"
        "WHERE c.OWNER = :1 AND c.TABLE_NAME = :2\n"
        "ORDER BY c.COLUMN_ID"
    )
    # Tables, views, synonyms, sequences and PL/SQL units share one namespace (SQL Language
    # Reference, "Database Object Namespaces"): any of them makes CREATE TABLE fail with ORA-00955.
    OBJECT_TYPES = (
        "SELECT OBJECT_TYPE FROM ALL_OBJECTS WHERE OWNER = :1 AND OBJECT_NAME = :2\n"
        "  AND OBJECT_TYPE IN ('TABLE', 'VIEW', 'SYNONYM', 'SEQUENCE', 'PROCEDURE', 'FUNCTION', 'PACKAGE',\n"
        "                      'TYPE', 'MATERIALIZED VIEW', 'OPERATOR', 'INDEXTYPE', 'JAVA CLASS')"
    )
    KEY_COLUMNS = (
        "SELECT cc.COLUMN_NAME FROM ALL_CONSTRAINTS c\n"
        "JOIN ALL_CONS_COLUMNS cc ON cc.OWNER = c.OWNER AND cc.CONSTRAINT_NAME = c.CONSTRAINT_NAME\n"
        "WHERE c.OWNER = :1 AND c.TABLE_NAME = :2 AND c.CONSTRAINT_TYPE IN ('P', 'U')"
    )
    STAGING_TABLES = "SELECT TABLE_NAME FROM ALL_TABLES WHERE OWNER = :1 AND TABLE_NAME LIKE :2 ESCAPE '\\'"

    # ---- schema evolution -------------------------------------------------------
    def create_table(self, ref: TableRef, columns: Sequence[ColumnDDL], keys: Sequence[str]) -> Statement:
        """``columns`` in table order; ``keys``: the PRIMARY KEY, if any."""
        lines = [f"  {self.q(c.name)} {c.sql_type}{c.check}{' NOT NULL' if c.name in keys else ''}" for c in columns]
        if keys:
            pk = self.q(self.constraint_name(ref.name, "PK"))
            lines.append(f"  CONSTRAINT {pk} PRIMARY KEY ({', '.join(self.q(k) for k in keys)})")
        body = ",\n".join(lines)
        return Statement(f"CREATE TABLE {self.table(ref)} (\n{body}\n)", done=(ALREADY_EXISTS,),
                         effect=Effect("create", self.owner(ref), ref.name, columns=tuple(columns), keys=tuple(keys)))

    def add_column(self, ref: TableRef, column: ColumnDDL) -> Statement:
        return Statement(
            f"ALTER TABLE {self.table(ref)} ADD ({self.q(column.name)} {column.sql_type}{column.check})", done=(COLUMN_EXISTS,),
            effect=Effect("add", self.owner(ref), ref.name, column.name, column.sql_type, column.is_json),
        )

    def modify_column(self, ref: TableRef, name: str, sql_type: str) -> Statement:
        return Statement(f"ALTER TABLE {self.table(ref)} MODIFY ({self.q(name)} {sql_type})",
                         effect=Effect("modify", self.owner(ref), ref.name, name, sql_type))

    def retype_steps(
        self, ref: TableRef, name: str, old: OracleType, old_logical: str, new: ColumnDDL, new_type: OracleType,
        *, from_step: int = 1,
    ) -> list[Statement]:
        """The four idempotent steps that give column ``name`` a new type, from ``from_step`` on."""
        t, col, tmp_name = self.table(ref), self.q(name), self.widen_temp_column(name)
        tmp = self.q(tmp_name)
        owner = self.owner(ref)
        value = convert_expr(col, old, old_logical, new_type)
        unused = Statement(f"ALTER TABLE {t} SET UNUSED ({col})", note="a compressed table allows no DROP COLUMN: set it unused",
                           effect=Effect("drop_column", owner, ref.name, name))
        steps = [
            Statement(f"ALTER TABLE {t} ADD ({tmp} {new.sql_type}{new.check})", done=(COLUMN_EXISTS,),
                      note=f"widen {name}: {old.text}{' IS JSON' if old.is_json_text else ''} -> {new_type.text} (1/4: a new column)",
                      effect=Effect("add", owner, ref.name, tmp_name, new.sql_type, new.is_json)),
            Statement(f"UPDATE {t} SET {tmp} = {value} WHERE {col} IS NOT NULL AND {tmp} IS NULL",
                      note=f"widen {name} (2/4: copy every value, then COMMIT)"),
            Statement(f"ALTER TABLE {t} DROP COLUMN {col}", done=(NO_SUCH_COLUMN,),
                      note=f"widen {name} (3/4: drop the old column)", effect=Effect("drop_column", owner, ref.name, name),
                      instead=((COMPRESSED_TABLE, unused),)),
            Statement(f"ALTER TABLE {t} RENAME COLUMN {tmp} TO {col}", note=f"widen {name} (4/4: take its name)",
                      effect=Effect("rename", owner, ref.name, tmp_name, name)),
        ]
        return steps[from_step - 1:]

    # ---- staging ---------------------------------------------------------------
    def create_stage(self, name: str, columns: Sequence[tuple[str, str]]) -> Statement:
        body = ",\n".join(f"  {self.q(c)} {t}" for c, t in columns)
        return Statement(
            f"CREATE TABLE {self.rules.qualified(self.default_schema, name)} (\n{body}\n)",
            done=(ALREADY_EXISTS,),
            note="staging table for this unit (dropped after the commit; swept by `load --resume`)",
            effect=Effect("create", self.default_schema, name, columns=tuple(ColumnDDL(c, t) for c, t in columns)),
        )

    def drop_table(self, schema: str | None, name: str) -> Statement:
        return Statement(f"DROP TABLE {self.rules.qualified(schema, name)} PURGE", done=(NO_SUCH_TABLE,),
                         effect=Effect("drop_table", schema, name))

    def stage(self, name: str) -> str:
        return self.rules.qualified(self.default_schema, name)

    # ---- loading ----------------------------------------------------------------
    def insert_values(self, target: str, binds: Sequence[BindColumn]) -> Statement:
        cols = ", ".join(self.q(b.name) for b in binds)
        values = ", ".join(b.placeholder_wrap.format(f":{i + 1}") for i, b in enumerate(binds))
        return Statement(f"INSERT INTO {target} ({cols}) VALUES ({values})")

    def _staged_names(self, columns: Sequence[StagedColumn]) -> Callable[[str], str]:
        """Table column name -> its quoted name in staging."""
        names = {c.name: c.staged for c in columns}
        return lambda name: self.q(names.get(name, name))

    def _from(self, alias: str, col: StagedColumn) -> str:
        return from_stage(alias, col, self.q)

    def _match(self, left: str, right: str, keys: Sequence[StagedColumn]) -> str:
        """Key equality between a table row (``left``) and a staged one, as instants for TIME ZONE keys."""
        return " AND ".join(f"{left}.{self.q(k.name)} = {self._from(right, k)}" for k in keys)

    def insert_from_stage(
        self, ref: TableRef, stage: str, columns: Sequence[StagedColumn], *, keys: Sequence[str] = (),
        meta_deleted: str | None = None, meta_sequence: str | None = None,
    ) -> Statement:
        """INSERT ... SELECT every staged row; with ``meta_deleted`` (hard deletes, append-only):
        only records not deleted, and not deleted by a later record of the unit."""
        cols = ", ".join(self.q(c.name) for c in columns)
        exprs = ", ".join(self._from("s", c) for c in columns)
        sql = f"INSERT INTO {self.table(ref)} ({cols})\nSELECT {exprs}\nFROM {self.stage(stage)} s"
        if meta_deleted is not None:
            st = self._staged_names(columns)
            d, seq = st(meta_deleted), st(meta_sequence or "")
            match = " AND ".join(f"d.{st(k)} = s.{st(k)}" for k in keys)  # both staged: same types
            sql += (
                f"\nWHERE s.{d} IS NULL\n  AND NOT EXISTS (SELECT 1 FROM {self.stage(stage)} d "
                f"WHERE d.{d} IS NOT NULL AND {match} AND d.{seq} > s.{seq})"
            )
        return Statement(sql)

    def delete_deleted_keys(self, ref: TableRef, stage: str, keys: Sequence[StagedColumn], meta_deleted: str,
                            deleted_staged: str | None = None) -> Statement:
        """hard_delete, append-only: a deletion in the unit removes the rows of its key loaded before."""
        tk = ", ".join(f"t.{self.q(k.name)}" for k in keys)
        dk = ", ".join(self._from("d", k) for k in keys)
        deleted = self.q(meta_deleted) if deleted_staged is None else self.q(deleted_staged)
        return Statement(
            f"DELETE FROM {self.table(ref)} t\nWHERE ({tk}) IN "
            f"(SELECT {dk} FROM {self.stage(stage)} d WHERE d.{deleted} IS NOT NULL)"
        )

    def merge(
        self, ref: TableRef, stage: str, keys: Sequence[str], staged: Sequence[StagedColumn],
        cleared: Sequence[str] = (), *, meta_sequence: str, meta_deleted: str, hard: bool,
    ) -> Statement:
        """One set-based MERGE: per key, the staged record with the highest sequence
        replaces the row's values of the stream's columns, unless the row holds a later
        record (a replayed reject keeps its old sequence): staged ones, and ``cleared``
        (columns of the stream no staged record has) become NULL, as in a new row. Other
        columns (added by a DBA, say) are left alone. With ``hard``, a deleted latest
        record removes the row instead."""
        q = self.q
        st = self._staged_names(staged)
        by_name = {c.name: c for c in staged}
        partition = ", ".join(f"s.{st(k)}" for k in keys)
        names = ", ".join(q(c.staged) for c in staged)
        on = self._match("t", "s", [by_name[k] for k in keys])
        sets = [f"t.{q(c.name)} = {self._from('s', c)}" for c in staged if c.name not in keys]
        sets += [f"t.{q(c)} = NULL" for c in cleared if c not in keys and c not in by_name]
        ins_cols = ", ".join(q(c.name) for c in staged)
        ins_vals = ", ".join(self._from("s", c) for c in staged)
        sql = (
            f"MERGE INTO {self.table(ref)} t\n"
            f"USING (\n  SELECT {names}\n  FROM (\n"
            f"    SELECT s.*, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY s.{st(meta_sequence)} DESC) AS SPOOL_RN\n"
            f"    FROM {self.stage(stage)} s\n  )\n  WHERE SPOOL_RN = 1\n) s\n"
            f"ON ({on})\n"
        )
        if sets:
            sql += "WHEN MATCHED THEN UPDATE SET\n  " + ",\n  ".join(sets) + "\n"
            seq = q(meta_sequence)
            sql += f"  WHERE t.{seq} IS NULL OR t.{seq} < s.{st(meta_sequence)}\n"
            if hard:
                sql += f"  DELETE WHERE t.{q(meta_deleted)} IS NOT NULL\n"
        sql += f"WHEN NOT MATCHED THEN INSERT ({ins_cols})\n  VALUES ({ins_vals})"
        if hard:
            sql += f"\n  WHERE s.{st(meta_deleted)} IS NULL"
        return Statement(sql)

    def delete_all(self, ref: TableRef) -> Statement:
        # DELETE, not TRUNCATE: TRUNCATE is DDL, would commit at once, and readers
        # would see an empty table before the new rows arrive.
        return Statement(f"DELETE FROM {self.table(ref)}", note="overwrite: the old rows go in the same transaction")

    def activate_version(self, ref: TableRef, version_col: str, deleted_col: str, deleted_type: OracleType, *, hard: bool) -> Statement:
        t, v, d = self.table(ref), self.q(version_col), self.q(deleted_col)
        if hard:
            return Statement(f"DELETE FROM {t} WHERE {v} IS NULL OR {v} < :1", binds=":1 = the activated version")
        # A datetime without setinputsizes binds as DATE (impl/base/metadata.pyx, from_value):
        # FROM_TZ refuses a DATE (ORA-00932) and a DATE has no microseconds. So :1 is bound as
        # DB_TYPE_TIMESTAMP, and the CAST says so in the SQL too.
        if deleted_type.family == "tstz":
            at = "FROM_TZ(CAST(:1 AS TIMESTAMP(6)), 'UTC')"
        elif deleted_type.family == "timestamp":
            at = "CAST(:1 AS TIMESTAMP(6))"
        else:
            at = ":1"
        return Statement(
            f"UPDATE {t} SET {d} = {at} WHERE {d} IS NULL AND ({v} IS NULL OR {v} < :2)",
            binds=":1 = the time of the ACTIVATE_VERSION (UTC), :2 = its version",
            input_types=("DB_TYPE_TIMESTAMP", None) if at != ":1" else (),
        )


# ---- converting existing values during a widening ------------------------------------
def text_expr(col: str, old: OracleType, old_logical: str) -> str:
    """SQL that writes a column's values as the text ``binds.as_text`` gives new ones."""
    if old_logical == "integer":
        return f"TO_CHAR({col})"
    if old_logical == "number":
        n = f"CAST({col} AS NUMBER)" if old.family == "float" else col
        # TO_CHAR(0.5) is '.5'; Arrow (and JSON) write 0.5. 'TM9' writes the NLS decimal character,
        # which SESSION_SETUP fixes to '.'.
        return f"CASE WHEN {n} > -1 AND {n} < 1 AND {n} <> 0 THEN REPLACE(TO_CHAR({n}, 'TM9'), '.', '0.') ELSE TO_CHAR({n}, 'TM9') END"
    if old_logical == "boolean":
        if old.family == "boolean":
            return f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
        return f"CASE {col} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"
    if old_logical == "timestamp":
        utc = f"SYS_EXTRACT_UTC({col})" if old.family == "tstz" else col
        return f"TO_CHAR({utc}, {TIMESTAMP_TEXT_SQL})"
    if old_logical == "date":
        return f"TO_CHAR({col}, 'YYYY-MM-DD')"
    if old_logical == "json" and old.family == "json" and old.text == "JSON":
        return f"JSON_SERIALIZE({col} RETURNING CLOB)"
    return col  # string, time, json text


def convert_expr(col: str, old: OracleType, old_logical: str, new: OracleType) -> str:
    if new.family in ("varchar", "clob"):
        text = text_expr(col, old, old_logical)
        return f"TO_CLOB({text})" if new.family == "clob" and old.family == "varchar" else text
    if new.family == "float":
        return f"TO_BINARY_DOUBLE({col})"
    if new.family == "tstz" and old.family == "date":
        return f"FROM_TZ(CAST({col} AS TIMESTAMP(6)), 'UTC')"
    if new.family == "timestamp" and old.family == "date":
        return f"CAST({col} AS TIMESTAMP(6))"
    return col


def can_modify_in_place(old: OracleType, new: OracleType) -> bool:
    """ALTER TABLE MODIFY keeps the data: a longer VARCHAR2, or NUMBER(p) to NUMBER."""
    if old.family == "varchar" and new.family == "varchar":
        return (new.length or 0) >= (old.length or 0)
    if old.family == "number" and new.family == "number":
        return new.precision is None and new.scale is None
    return False
