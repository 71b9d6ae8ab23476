"""Every Oracle round trip goes through a ``Session``: one small interface, two implementations.

- ``DriverSession`` talks to a server with python-oracledb: ``load`` and ``check``.
- ``RecordingSession`` writes down what would be run, and answers catalog
  questions from a catalog it simulates (empty for ``plan --offline``, the
  server's own for ``plan``, read through a ``DriverSession`` that is never
  asked to write). ``plan`` prints the recording: session set-up, DDL, DML,
  bind types, COMMITs, in order.

So ``load`` and ``plan`` run the same destination code; only the session
differs. The interface (see ``Session``): connect (with the session set-up
of ``sql.SESSION_SETUP``) and the server's features; catalog queries
(columns, object types, key columns, tables by pattern); ``query`` for
other reads; ``execute`` / ``executemany``; ``feed`` (one segment's prepared
batches, by executemany or direct path); ``commit`` and ``rollback``; and
``note`` (what is happening, for the recording's comments).

``oracledb`` is imported only inside ``DriverSession``'s methods: a recording
without a server never loads the driver (I3).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import pyarrow as pa

from .binds import arrow_bind_type, direct_path_accepts, direct_path_chunks, prepare
from .sql import SESSION_SETUP, ColumnDDL, Effect, OracleSQL, Statement
from .types import ServerFeatures, parse_type


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    sql_type: str  # spelled like the loader spells types (``column_type_text``)
    is_json: bool = False


@dataclass(frozen=True)
class Outcome:
    rows: int | None  # rows the statement touched; None when not known (a recording)
    done: str | None = None  # the error code that said "already done", if it did


def column_type_text(data_type: str, precision: Any, scale: Any, char_length: Any, char_used: Any) -> str:
    """A data dictionary row's type in the same spelling the loader generates."""
    dt = str(data_type)
    if dt == "NUMBER":
        if precision is None:
            return "NUMBER" if scale is None else f"NUMBER(*,{int(scale)})"
        return f"NUMBER({int(precision)})" if not scale else f"NUMBER({int(precision)},{int(scale)})"
    if dt in ("VARCHAR2", "NVARCHAR2", "CHAR", "NCHAR"):
        return f"{dt}({int(char_length or 0)} {'CHAR' if char_used == 'C' else 'BYTE'})"
    if dt == "FLOAT" and precision is not None:
        return f"FLOAT({int(precision)})"
    return dt


class Session(abc.ABC):
    """One connection's worth of talking to Oracle (or of pretending to)."""

    @abc.abstractmethod
    def connect(self) -> ServerFeatures:
        """Connect, run the session set-up, and say what the server can do."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # ---- the catalog ---------------------------------------------------------------
    @abc.abstractmethod
    def columns(self, owner: str | None, table: str) -> list[CatalogColumn]:
        """The table's columns in order; [] if there is no such table."""

    @abc.abstractmethod
    def object_types(self, owner: str | None, name: str) -> list[str]:
        """Types of the objects that use ``name`` in the table namespace (TABLE, VIEW, SYNONYM...)."""

    @abc.abstractmethod
    def key_columns(self, owner: str | None, table: str) -> set[str]:
        """Columns in the table's primary key or unique constraints."""

    @abc.abstractmethod
    def tables_like(self, owner: str | None, pattern: str) -> list[str]: ...

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = (), *, reads: tuple[str | None, str] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a SELECT; ``reads``: the (owner, table) it reads, for a recording's sake."""

    # ---- work ------------------------------------------------------------------------
    @abc.abstractmethod
    def execute(self, stmt: Statement, params: Sequence[Any] = ()) -> Outcome: ...

    @abc.abstractmethod
    def executemany(self, stmt: Statement, rows: list[tuple[Any, ...]]) -> int: ...

    @abc.abstractmethod
    def feed(self, feed: Any, batches: Iterable[pa.Table], *, batch_rows: int) -> int | None:
        """One ``unit.Feed``: its prepared batches into its table. Rows inserted, None if not known."""

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None:
        """Roll back quietly: a dead connection has no transaction left to undo."""

    def note(self, text: str) -> None:
        """What the next statements are for; a recording prints it as a comment."""


# ---- python-oracledb ---------------------------------------------------------------------
class DriverSession(Session):
    def __init__(self, settings: Any):
        self.settings = settings
        self.conn: Any = None

    def connect(self) -> ServerFeatures:
        from .connect import detect_features, open_connection

        self.close()
        self.conn = open_connection(self.settings)
        for stmt in SESSION_SETUP:
            self.execute(stmt)
        return detect_features(self)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a dead connection may refuse even to close
                pass

    @property
    def _conn(self) -> Any:
        if self.conn is None:
            import oracledb

            raise oracledb.InterfaceError("DPY-1001: not connected to database")
        return self.conn

    # ---- what detect_features asks ---------------------------------------------------
    @property
    def server_version(self) -> str:
        return str(self._conn.version)

    @property
    def max_identifier_length(self) -> int:
        try:
            return int(self._conn.max_identifier_length or 0)
        except Exception:
            return 0

    def db_version(self) -> tuple[str | None, str | None]:
        """(version, compatibility) from DBMS_UTILITY.DB_VERSION."""
        from .sql import DB_VERSION

        with self._conn.cursor() as cur:
            version, compat = cur.var(str), cur.var(str)
            cur.execute(DB_VERSION, [version, compat])
            return version.getvalue(), compat.getvalue()

    # ---- the catalog -------------------------------------------------------------
    def columns(self, owner: str | None, table: str) -> list[CatalogColumn]:
        rows = self.query(OracleSQL.TABLE_COLUMNS, [owner, table])
        return [CatalogColumn(r[0], column_type_text(*r[1:6]), bool(r[6])) for r in rows]

    def object_types(self, owner: str | None, name: str) -> list[str]:
        return [r[0] for r in self.query(OracleSQL.OBJECT_TYPES, [owner, name])]

    def key_columns(self, owner: str | None, table: str) -> set[str]:
        return {r[0] for r in self.query(OracleSQL.KEY_COLUMNS, [owner, table])}

    def tables_like(self, owner: str | None, pattern: str) -> list[str]:
        return [r[0] for r in self.query(OracleSQL.STAGING_TABLES, [owner, pattern])]

    def query(self, sql: str, params: Sequence[Any] = (), *, reads: tuple[str | None, str] | None = None) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql, list(params))
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows

    # ---- work ----------------------------------------------------------------------
    def execute(self, stmt: Statement, params: Sequence[Any] = ()) -> Outcome:
        import oracledb

        from .errors import error_code

        with self._conn.cursor() as cur:
            if stmt.input_types:
                cur.setinputsizes(*[getattr(oracledb, t) if t else None for t in stmt.input_types])
            try:
                cur.execute(stmt.sql, list(params))
            except oracledb.DatabaseError as err:
                code = error_code(err)
                if code in stmt.done:
                    return Outcome(None, done=code)
                for when, alternative in stmt.instead:
                    if code == when:
                        return self.execute(alternative, params)
                raise
            return Outcome(cur.rowcount)

    def executemany(self, stmt: Statement, rows: list[tuple[Any, ...]]) -> int:
        with self._conn.cursor() as cur:
            cur.executemany(stmt.sql, rows)
            count: int = cur.rowcount
            return count

    def feed(self, feed: Any, batches: Iterable[pa.Table], *, batch_rows: int) -> int | None:
        inserted = 0
        for table in batches:
            if feed.direct is not None:
                schema, name = feed.direct
                # One direct path message holds at most ~1 GiB (DPY-4041): each call gets a
                # slice of bounded size, sent as one batch.
                for chunk in direct_path_chunks(table):
                    self._conn.direct_path_load(schema, name, list(chunk.column_names), chunk, batch_size=chunk.num_rows)
                    inserted += chunk.num_rows
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(feed.stmt.sql, table)
                    inserted += cur.rowcount
        return inserted

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        try:
            if self.conn is not None:
                self.conn.rollback()
        except Exception:
            pass  # the connection is gone, and with it the transaction


# ---- the recording ---------------------------------------------------------------------------
@dataclass
class _Table:
    columns: dict[str, CatalogColumn]
    created: bool  # by a recorded statement: holds no rows
    keys: set[str] = field(default_factory=set)


class RecordingSession(Session):
    """Writes statements down instead of running them; simulates the catalog they change.

    ``real``: a DriverSession to read the server's catalog and ledger from (``plan``);
    None for ``plan --offline``, where schemas start as ``tables`` and ``objects`` say
    (empty unless given) and ``features`` is assumed.

    The simulation answers DDL as the server would: a CREATE TABLE whose name is taken,
    an ADD of a column that exists, a DROP of what is gone come back "already done"
    (ORA-00955, ORA-01430, ORA-00942 / ORA-00904) when the statement expects that code.
    """

    def __init__(
        self,
        features: ServerFeatures | None = None,
        real: Session | None = None,
        *,
        tables: dict[tuple[str | None, str], Sequence[CatalogColumn]] | None = None,
        keys: dict[tuple[str | None, str], Sequence[str]] | None = None,
        objects: dict[tuple[str | None, str], str] | None = None,
    ):
        if features is None and real is None:
            raise ValueError("a recording needs assumed features or a server to read")
        self.features = features
        self.real = real
        self.lines: list[str] = []
        self._pending: list[str] = []
        self._tables: dict[tuple[str | None, str], _Table | None] = {}  # None: dropped
        for key, cols in (tables or {}).items():
            self._tables[key] = _Table({c.name: c for c in cols}, created=False, keys=set((keys or {}).get(key, ())))
        self._objects = dict(objects or {})  # other objects in the table namespace: (owner, name) -> VIEW...
        self._set_up = False

    # ---- the script --------------------------------------------------------------
    def note(self, text: str) -> None:
        self._pending.append("\n".join(f"-- {t}" for t in text.splitlines()))

    def _emit(self, text: str, *after: str) -> None:
        self.lines.append("\n".join([*self._pending, text, *(f"-- {a}" for a in after)]))
        self._pending = []

    # ---- connecting -------------------------------------------------------------------
    def connect(self) -> ServerFeatures:
        features = self.real.connect() if self.real is not None else self.features
        assert features is not None
        self.features = features
        if not self._set_up:
            for stmt in SESSION_SETUP:
                self._emit(render(stmt))
            self._set_up = True
        return features

    def close(self) -> None:
        if self.real is not None:
            self.real.close()

    # ---- the simulated catalog -----------------------------------------------------------
    def _table(self, owner: str | None, name: str) -> _Table | None:
        key = (owner, name)
        if key not in self._tables:
            cols = self.real.columns(owner, name) if self.real is not None else []
            keys = self.real.key_columns(owner, name) if (self.real is not None and cols) else set()
            self._tables[key] = _Table({c.name: c for c in cols}, created=False, keys=keys) if cols else None
        return self._tables[key]

    def _apply(self, effect: Effect) -> None:
        key = (effect.owner, effect.table)
        if effect.kind == "create":
            if self._table(*key) is None:
                cols = {c.name: CatalogColumn(c.name, c.sql_type, c.is_json) for c in effect.columns}
                self._tables[key] = _Table(cols, created=True, keys=set(effect.keys))
            return
        if effect.kind == "drop_table":
            self._tables[key] = None
            return
        table = self._table(*key)
        if table is None:
            return
        col = effect.column or ""
        if effect.kind == "add" and col not in table.columns:
            table.columns[col] = CatalogColumn(col, effect.to or "", effect.is_json)
        elif effect.kind == "modify" and col in table.columns:
            table.columns[col] = CatalogColumn(col, effect.to or "", table.columns[col].is_json)
        elif effect.kind == "drop_column":
            table.columns.pop(col, None)
        elif effect.kind == "rename" and col in table.columns:
            old = table.columns.pop(col)
            table.columns[effect.to or ""] = CatalogColumn(effect.to or "", old.sql_type, old.is_json)

    def columns(self, owner: str | None, table: str) -> list[CatalogColumn]:
        t = self._table(owner, table)
        return list(t.columns.values()) if t is not None else []

    def object_types(self, owner: str | None, name: str) -> list[str]:
        if (owner, name) in self._objects:
            return [self._objects[(owner, name)]]
        if (owner, name) in self._tables or self.real is None:
            return ["TABLE"] if self._table(owner, name) is not None else []
        return self.real.object_types(owner, name)

    def _already(self, effect: Effect) -> str | None:
        """The error the server would answer ``effect`` with, given the simulated catalog."""
        key = (effect.owner, effect.table)
        if effect.kind == "create":
            return "ORA-00955" if key in self._objects or self._table(*key) is not None else None
        table = None if key in self._objects else self._table(*key)
        if effect.kind == "drop_table":
            return "ORA-00942" if table is None else None
        if table is None:
            return "ORA-00942"
        if effect.kind == "add":
            return "ORA-01430" if effect.column in table.columns else None
        if effect.kind in ("drop_column", "rename", "modify"):
            return "ORA-00904" if effect.column not in table.columns else None
        return None

    def key_columns(self, owner: str | None, table: str) -> set[str]:
        t = self._table(owner, table)
        return set(t.keys) if t is not None else set()

    def tables_like(self, owner: str | None, pattern: str) -> list[str]:
        return self.real.tables_like(owner, pattern) if self.real is not None else []

    def query(self, sql: str, params: Sequence[Any] = (), *, reads: tuple[str | None, str] | None = None) -> list[tuple[Any, ...]]:
        if reads is not None:
            t = self._table(*reads)
            if t is None or t.created:
                return []  # made (or dropped) by this recording: it holds no rows
        return self.real.query(sql, params, reads=reads) if self.real is not None else []

    # ---- work ---------------------------------------------------------------------------------
    def execute(self, stmt: Statement, params: Sequence[Any] = ()) -> Outcome:
        after = [f"setinputsizes: {', '.join(f':{i + 1} {t}' for i, t in enumerate(stmt.input_types) if t)}"] \
            if stmt.input_types else []
        self._emit(render(stmt), *after)
        if stmt.effect is None:
            return Outcome(None)
        error = self._already(stmt.effect)
        if error is None:
            self._apply(stmt.effect)
            return Outcome(0)
        if error in stmt.done:
            return Outcome(None, done=error)
        raise RecordedError(f"{error}: the simulated catalog refuses: {stmt.sql.splitlines()[0]}")

    def executemany(self, stmt: Statement, rows: list[tuple[Any, ...]]) -> int:
        values = [f"  ({', '.join(_literal(v) for v in r)})" for r in rows]
        self._emit(render(Statement(stmt.sql, note=stmt.note)), f"executemany, {len(rows)} row(s) of binds:", *values)
        return len(rows)

    def feed(self, feed: Any, batches: Iterable[pa.Table], *, batch_rows: int) -> int | None:
        """Describes the feed from its segment's schema; reads (and rejects) no rows."""
        empty = _empty_batch(feed.step)
        bound = prepare(empty, feed.binds)
        types = ", ".join(f":{i + 1} {arrow_bind_type(f.type)}" for i, f in enumerate(bound.schema))
        keys = [b.name for b in feed.binds if b.name in feed.reject_keys and b.logical in ("string", "time", "json")]
        rejects = [f"rows whose key {', '.join(keys)} is '' are rejected first (Oracle stores '' as NULL)"] if keys else []
        if feed.direct is not None:
            owner, name = feed.direct
            table = self._table(owner or None, name)
            for f in bound.schema:
                col = table.columns.get(f.name) if table is not None else None
                if col is not None and not direct_path_accepts(f.type, parse_type(col.sql_type)):
                    raise ValueError(f"direct path would refuse Arrow {f.type} into {name}.{f.name} {col.sql_type} (DPY-3039)")
            cols = ", ".join(f"{f.name} {arrow_bind_type(f.type)}" for f in bound.schema)
            self._emit(
                f"-- direct path load (Connection.direct_path_load; it commits by itself) of {feed.step.rows} row(s) "
                f"of {feed.step.item}\n--   into {feed.into} ({cols})\n--   in calls of at most {batch_rows} rows and "
                "256 MiB each", *rejects,
            )
        else:
            self._emit(render(feed.stmt), f"executemany: {feed.step.rows} row(s) of {feed.step.item}; binds {types}", *rejects)
        return None

    def commit(self) -> None:
        self._emit("COMMIT;")

    def rollback(self) -> None:
        pass  # nothing ran


class RecordedError(Exception):
    """A recorded statement the simulated catalog says the server would refuse: a bug in the plan."""


def _empty_batch(step: Any) -> pa.RecordBatch:
    import pyarrow.parquet as pq

    schema = pq.read_schema(step.file)
    names = [c.column for c in step.columns]
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], names=names)


def render(stmt: Statement) -> str:
    """One statement as script text: ``;``, or a PL/SQL block with ``/`` when an error is expected
    (a repeat that is harmless, or a known alternative)."""
    head = f"-- {stmt.note}\n" if stmt.note else ""
    binds = f"\n-- binds: {stmt.binds}" if stmt.binds and not stmt.done else ""
    if not stmt.done and not stmt.instead:
        end = "\n/" if stmt.plsql else ";"  # a PL/SQL block (BEGIN ... END;) runs in a script with /
        return f"{head}{stmt.sql}{end}{binds}"
    branches = []
    if stmt.done:
        cond = " OR ".join(f"SQLCODE = -{_number(c)}" for c in stmt.done)
        branches.append(f"IF {cond} THEN NULL;  -- {', '.join(stmt.done)}: already done")
    for code, alternative in stmt.instead:
        word = "ELSIF" if branches else "IF"
        branches.append(f"{word} SQLCODE = -{_number(code)} THEN  -- {code}: {alternative.note or 'instead'}\n"
                        f"      EXECUTE IMMEDIATE q'[{alternative.sql}]';")
    body = "\n    ".join(branches)
    return (
        f"{head}BEGIN\n  EXECUTE IMMEDIATE q'[{stmt.sql}]';\nEXCEPTION\n  WHEN OTHERS THEN\n"
        f"    {body}\n    ELSE RAISE; END IF;\nEND;\n/"
    )


def _number(code: str) -> int:
    return int(code.split("-")[1])


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


__all__ = ["CatalogColumn", "ColumnDDL", "DriverSession", "Outcome", "RecordingSession", "Session", "render"]
