"""The Oracle destination: ``Destination`` for python-oracledb (thin mode by default).

It keeps the engine's contract (``load/destination.py``): one transaction
per unit holding the rows and their ledger rows; idempotent DDL before it;
native errors classified in ``errors.py``. The SQL is in ``sql.py``, the
type decisions in ``types.py``, the unit's program in ``unit.py``.

Two Oracle-specific duties live here:

- Oracle stores '' as NULL. In upserts and hard deletes a record whose text
  key is '' cannot be keyed, so it is rejected -- written to
  ``<spool>/rejects/<stream dir>/load-<run>.jsonl`` (ingest's format, before
  the unit commits) -- instead of being merged as NULL.
- A VARCHAR2(n CHAR) column also has a byte limit (4000, or 32767 with
  MAX_STRING_SIZE=EXTENDED). Before each unit the text headed for VARCHAR2
  columns is measured (whole-column Arrow kernels); a column too short is
  widened first (longer VARCHAR2, or CLOB), so a long value never fails the
  load with ORA-12899.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any, Sequence

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...durable import DurableAppender
from ...errors import ConfigError, DestinationError, SegmentCorrupt
from ...logs import NULL_LOG, Log
from ...naming import TableRef, oracle_rules
from ...schema import METADATA_NAMES
from ...spool.layout import SpoolLayout
from ...spool.manifest import utc_now_iso
from ..destination import (
    Access,
    AlreadyLoaded,
    Checkpoint,
    ColumnInfo,
    ColumnSpec,
    Destination,
    DestinationMissing,
    Failure,
    LedgerEntry,
    LoadUnit,
    SegmentStep,
)
from .binds import empty_key_mask, prepare, text_extent
from .connect import ConnectSettings, detect_features, open_connection
from .errors import classify, error_code
from .sql import OracleSQL, Statement, can_modify_in_place
from .types import OFFLINE_FEATURES, UNBOUNDED, OracleTypes, ServerFeatures, TypeSettings, check_override, logical_of, parse_type
from .unit import Action, Exec, Feed, Ledger, UnitBuilder, UnitProgram

LEDGER_CHUNK = 500  # items per ledger lookup (an IN list)


@dataclass
class _UnitState:
    read: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    rejected: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    inserted: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    rejects: list[tuple[SegmentStep, Any, tuple[str, ...]]] = field(default_factory=list)


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


class OracleDestination(Destination):
    def __init__(self, settings: ConnectSettings, config: Any, log: Log | None = None):
        self.settings = settings
        self.config = config
        self.log = log or NULL_LOG
        self.label = settings.label
        pinned = getattr(config, "max_identifier_length", None)
        if pinned is not None and not 30 <= int(pinned) <= 128:
            raise ConfigError(f"max_identifier_length must be between 30 and 128, got {pinned}")
        self.pinned_limit = int(pinned) if pinned is not None else None
        self.rules = oracle_rules(self.pinned_limit or 128)  # until a server says otherwise
        self.default_schema = self.rules.check_explicit(settings.target_schema, "target_schema") if settings.target_schema else None
        self.type_settings = TypeSettings.from_config(config)
        self.strategy = getattr(config, "load_strategy", "insert")
        if self.strategy == "direct-path" and settings.thick_mode:
            raise ConfigError(
                "load_strategy direct-path needs python-oracledb thin mode (Connection.direct_path_load)",
                hint="set thick_mode: false, or load_strategy: insert",
            )
        self.batch_rows = int(getattr(config, "batch_rows", 100_000))
        self.upsert_keys = getattr(config, "load_method", "append-only") == "upsert"
        self.conn: Any = None
        self.access = Access.READ_WRITE
        self.set_features(OFFLINE_FEATURES, self.default_schema)
        self._overrides: dict[tuple[str, str], str] | None = None
        self._rejects_written: set[str] = set()
        self._warned: set[str] = set()

    def set_features(self, features: ServerFeatures, schema: str | None) -> None:
        self.features = features
        self.schema = schema  # where the ledger, staging and unqualified tables live
        self.types = OracleTypes(features, self.type_settings)
        self.sql = OracleSQL(self.rules, schema)

    # ---- connection -------------------------------------------------------------
    def connect(self, access: Access = Access.READ_WRITE) -> None:
        self.close()
        self.access = access
        self.conn = open_connection(self.settings)
        features = detect_features(self.conn)
        if self.pinned_limit is not None and features.max_identifier_length < self.pinned_limit:
            self.close()
            raise DestinationError(
                f"{self.label} allows names of at most {features.max_identifier_length} bytes, "
                f"but max_identifier_length is {self.pinned_limit}",
                hint=f"set max_identifier_length: {features.max_identifier_length} (longer names are then cut "
                "and end with a hash; see the README's Oracle section)",
            )
        limit = self.pinned_limit or features.max_identifier_length
        if limit != self.rules.max_bytes:
            self.rules = oracle_rules(limit)
            self._overrides = None
        self.set_features(features, self.default_schema or features.current_schema)

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

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)

    # ---- the only places that talk to the server (``planning`` overrides them) -----
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._conn.cursor() as cur:
            cur.execute(sql, list(params))
            return cur.fetchall()

    def _execute(self, stmt: Statement, params: Sequence[Any] = ()) -> int | None:
        """Run one statement; None if it failed with a code that means "already done"."""
        if stmt.sql == "COMMIT":
            self._conn.commit()
            return None
        import oracledb

        with self._conn.cursor() as cur:
            try:
                cur.execute(stmt.sql, list(params))
            except oracledb.DatabaseError as err:
                if error_code(err) in stmt.done:
                    return None
                raise
            return cur.rowcount

    def _executemany(self, stmt: Statement, rows: list[tuple]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(stmt.sql, rows)

    def _feed_batch(self, feed: Feed, data: Any) -> int:
        if feed.direct is not None:
            schema, table = feed.direct
            self._conn.direct_path_load(schema, table, [b.name for b in feed.binds], data, batch_size=self.batch_rows)
            return data.num_rows
        assert feed.stmt is not None
        with self._conn.cursor() as cur:
            cur.executemany(feed.stmt.sql, data)
            return cur.rowcount

    def _commit(self) -> None:
        self._conn.commit()

    def _rollback(self) -> None:
        try:
            if self.conn is not None:
                self.conn.rollback()
        except Exception:
            pass  # the connection is gone, and with it the transaction

    # ---- names and types ------------------------------------------------------
    def sql_type(self, column: ColumnSpec) -> str:
        return self.types.sql_type(column.type, column.max_length)

    def _column_ddl(self, table: TableRef, column: ColumnSpec) -> tuple[str, str]:
        """(type, type plus CHECK) for a new column: an override, else the mapping."""
        override = self.overrides().get((self.rules.key(str(table)), column.name))
        if override:
            return override, override
        sql_type = self.sql_type(column)
        return sql_type, sql_type + self.types.check_constraint(column.type, sql_type, self.rules.quote(column.name))

    def overrides(self) -> dict[tuple[str, str], str]:
        """``column_types`` by (table, column), resolved through the same naming as the engine."""
        if self._overrides is None:
            self._overrides = {}
            wanted = getattr(self.config, "column_types", {}) or {}
            if wanted:
                from ...spool.manifest import read_manifest
                from ..plan import bind_streams

                bindings = bind_streams(read_manifest(SpoolLayout(self.config.spool_dir)), self.rules, self.config)
                for stream, props in wanted.items():
                    if not isinstance(props, dict):
                        raise ConfigError(f"column_types[{stream!r}] must be an object of property -> SQL type")
                    binding = bindings.get(stream)
                    for prop, text in props.items():
                        sql_type = check_override(text, f"[{stream!r}][{prop!r}]")
                        if binding is not None and prop in binding.columns:
                            self._overrides[(self.rules.key(str(binding.table)), binding.columns[prop])] = sql_type
        return self._overrides

    def widened(self, existing: ColumnInfo, wanted: ColumnSpec) -> ColumnSpec | None:
        if existing.logical is None:
            return None
        have = parse_type(existing.sql_type, is_json=existing.logical == "json")
        target = self.types.widened_to(existing.logical, have, wanted.type, wanted.max_length)
        return None if target is None else ColumnSpec(wanted.name, target[0], target[1])

    # ---- the ledger ----------------------------------------------------------------
    def _table_exists(self, schema: str | None, name: str) -> bool:
        rows = self._query(OracleSQL.TABLE_EXISTS, [schema or self.schema, name])
        return bool(rows and rows[0][0])

    def ensure_ledger(self) -> None:
        if not self._table_exists(self.schema, self.rules.ledger_table):
            self._execute(self.sql.create_ledger())

    def read_ledger(self, spool_id: str) -> dict[str, LedgerEntry]:
        if not self._table_exists(self.schema, self.rules.ledger_table):
            if self.access is Access.READ_ONLY:
                raise DestinationMissing(f"{self.label} has no {self.schema}.{self.rules.ledger_table} yet (nothing loaded)")
            return {}
        rows = self._query(self.sql.read_ledger().sql, [spool_id])
        return {
            item: LedgerEntry(item, kind, stream, table, int(n), at.replace(tzinfo=timezone.utc) if at else None)
            for item, kind, stream, table, n, at in rows
        }

    def _refuse_loaded(self, unit: LoadUnit) -> None:
        spool_id = unit.ledger[0].spool_id
        items = [r.item for r in unit.ledger]
        found: list[str] = []
        for i in range(0, len(items), LEDGER_CHUNK):
            chunk = items[i:i + LEDGER_CHUNK]
            found += [r[0] for r in self._query(self.sql.ledger_items_in(len(chunk)).sql, [spool_id, *chunk])]
        if found:
            raise AlreadyLoaded(found)

    # ---- tables -------------------------------------------------------------------
    def _raw_columns(self, table: TableRef) -> dict[str, ColumnInfo]:
        rows = self._query(OracleSQL.TABLE_COLUMNS, [table.schema or self.schema, table.name])
        overrides = self.overrides()
        tkey = self.rules.key(str(table))
        out: dict[str, ColumnInfo] = {}
        for name, data_type, precision, scale, char_length, char_used, is_json in rows:
            text = column_type_text(data_type, precision, scale, char_length, char_used)
            logical = None if (tkey, name) in overrides else logical_of(parse_type(text, is_json=bool(is_json)))
            out[name] = ColumnInfo(name, text, logical)
        return out

    def table_columns(self, table: TableRef) -> dict[str, ColumnInfo] | None:
        cols = self._raw_columns(table)
        if not cols:
            return None
        # A widening in progress (see sql.retype_steps) is the destination's business.
        return {n: c for n, c in cols.items() if not n.startswith("SPOOL_W_")}

    def create_table(self, table: TableRef, columns: Sequence[ColumnSpec], keys: Sequence[str]) -> None:
        ddl = [(c.name, self._column_ddl(table, c)) for c in columns]
        pk: list[str] = []
        if self.upsert_keys and keys:
            types = {name: parse_type(t[0]) for name, t in ddl}
            if all(types[k].family not in ("clob", "json") for k in keys if k in types):
                pk = list(keys)
            else:
                self.log.warning(f"table {table}: a key column is CLOB or JSON, so it gets no PRIMARY KEY")
        if self._execute(self.sql.create_table(table, [(n, t[1]) for n, t in ddl], pk)) is None:
            # It exists already: an earlier attempt created it, or someone else did. Make
            # sure it has our columns; the engine re-reads it after this.
            have = self._raw_columns(table)
            for col in columns:
                if col.name not in have:
                    self.add_column(table, col)

    def add_column(self, table: TableRef, column: ColumnSpec) -> None:
        tmp = OracleSQL.widen_temp_column(column.name)
        if tmp in self._raw_columns(table):
            # A widening was interrupted after the old column was dropped: finish it.
            self.widen_column(table, column)
            return
        self._execute(self.sql.add_column(table, column.name, self._column_ddl(table, column)[1]))

    def widen_column(self, table: TableRef, column: ColumnSpec) -> None:
        raw = self._raw_columns(table)
        sql_type, ddl = self._column_ddl(table, column)
        new = parse_type(sql_type, is_json=column.type == "json")
        tmp_present = OracleSQL.widen_temp_column(column.name) in raw
        cur = raw.get(column.name)
        if cur is None and not tmp_present:
            self._execute(self.sql.add_column(table, column.name, ddl))
            return
        if cur is None:
            steps = self.sql.retype_steps(table, column.name, new, column.type, ddl, new, from_step=4)
        else:
            old = parse_type(cur.sql_type, is_json=cur.logical == "json")
            if not tmp_present and cur.sql_type == new.text:
                return
            if not tmp_present and can_modify_in_place(old, new):
                self._execute(self.sql.modify_column(table, column.name, sql_type))
                return
            if column.name in self._key_columns(table):
                raise DestinationError(
                    f"table {table}: key column {column.name} would have to change from {cur.sql_type} to "
                    f"{sql_type}, which Oracle can only do by copying the column, and that drops its key",
                    hint="give the key a wide enough type up front with column_types, or rebuild the table",
                )
            steps = self.sql.retype_steps(
                table, column.name, old, cur.logical or "string", ddl, new, from_step=2 if tmp_present else 1
            )
        for step in steps:
            self._execute(step)
            if step.sql.startswith("UPDATE "):
                self._execute(Statement("COMMIT"))

    def _key_columns(self, table: TableRef) -> set[str]:
        return {r[0] for r in self._query(OracleSQL.KEY_COLUMNS, [table.schema or self.schema, table.name])}

    def sweep(self, spool_id: str) -> list[str]:
        rows = self._query(OracleSQL.STAGING_TABLES, [self.schema, self.sql.stage_pattern(spool_id)])
        for (name,) in rows:
            self._execute(self.sql.drop_table(self.schema, name))
        return [f"{self.schema}.{name}" for (name,) in rows]

    # ---- the unit of work ----------------------------------------------------------
    def program(self, unit: LoadUnit, columns: dict[str, ColumnInfo] | None, *, direct: bool) -> UnitProgram:
        if columns is None:
            return UnitProgram(work=[Ledger(self.sql.insert_ledger(), unit.ledger)])
        return UnitBuilder(self.sql, self.types, unit, columns, direct=direct, schema=self.schema).build()

    def load(self, unit: LoadUnit, checkpoint: Checkpoint) -> None:
        self._refuse_loaded(unit)
        columns = dict(unit.columns) if unit.columns is not None else None
        direct = False
        if columns is not None and unit.segments:
            columns, fits = self._fit_text(unit, columns)
            direct = self.strategy == "direct-path" and fits
            if self.strategy == "direct-path" and not fits:
                self._warn_once(unit.stream, f"stream {unit.stream!r}: text longer than {self.types.string_limit} bytes "
                                "cannot go through direct path; these units are staged with executemany")
        prog = self.program(unit, columns, direct=direct)
        state = _UnitState()
        try:
            for action in prog.prepare:
                self._do(action, state, unit)
            for action in prog.work:
                self._do(action, state, unit)
            self._check_counts(prog, state, unit)
            if state.rejects:
                self._write_rejects(unit, state)
            checkpoint("before-commit")
            self._commit()
        except BaseException:
            self._rollback()
            raise
        checkpoint("after-commit")
        for action in prog.cleanup:
            try:
                self._do(action, state, unit)
            except Exception as err:  # the data is committed; the sweep of the next run drops it
                self.log.warning(f"could not drop a staging table: {str(err).splitlines()[0]}", stream=unit.stream)

    def _do(self, action: Action, state: _UnitState, unit: LoadUnit) -> None:
        if isinstance(action, Exec):
            count = self._execute(action.stmt, action.params)
            if action.run is not None:
                state.inserted[action.run] += count or 0
        elif isinstance(action, Feed):
            self._run_feed(action, state)
        elif isinstance(action, Ledger):
            rows = [(r.spool_id, r.item, r.kind, r.stream, r.table, r.rows, r.sha256 or None, r.run_id) for r in action.rows]
            try:
                self._executemany(action.stmt, rows)
            except Exception as err:
                if error_code(err) == "ORA-00001":  # another loader committed an item first
                    raise AlreadyLoaded([r.item for r in action.rows]) from err
                raise

    def _run_feed(self, feed: Feed, state: _UnitState) -> None:
        for batch in feed.step.batches(self.batch_rows):
            state.read[feed.run] += batch.num_rows
            if feed.reject_keys:
                mask = empty_key_mask(batch, feed.reject_keys)
                if mask is not None:
                    bad = batch.filter(mask)
                    state.rejects.append((feed.step, bad, feed.reject_keys))
                    state.rejected[feed.run] += bad.num_rows
                    batch = batch.filter(pc.invert(mask))
            if batch.num_rows:
                count = self._feed_batch(feed, prepare(batch, feed.binds))
                if feed.counted:
                    state.inserted[feed.run] += count

    def _check_counts(self, prog: UnitProgram, state: _UnitState, unit: LoadUnit) -> None:
        counted = {a.run for a in prog.work if (isinstance(a, Feed) and a.counted) or (isinstance(a, Exec) and a.run is not None)}
        for run in counted:
            expected = prog.run_rows[run] - state.rejected[run]
            if state.inserted[run] != expected:
                raise SegmentCorrupt(
                    f"stream {unit.stream!r}: {state.inserted[run]} rows went into {unit.table} but the "
                    f"segments hold {expected}",
                    hint="a segment file changed after it was verified; restore it from a backup",
                )

    def _fit_text(self, unit: LoadUnit, columns: dict[str, ColumnInfo]) -> tuple[dict[str, ColumnInfo], bool]:
        """Widen VARCHAR2 columns the unit's text would overflow; say whether its long
        text (CLOB / JSON columns) fits a VARCHAR2 staging column for direct path."""
        limit = self.types.string_limit
        types = {n: parse_type(c.sql_type, is_json=c.logical == "json") for n, c in columns.items()}
        watched = {n for n, t in types.items() if t.family in ("clob", "json") or (t.family == "varchar" and columns[n].logical)}
        extent: dict[str, tuple[int, int]] = {}
        for step in unit.segments:
            cols = [c for c in step.columns if c.column in watched]
            if not cols:
                continue
            with pq.ParquetFile(step.file) as pf:
                for batch in pf.iter_batches(batch_size=self.batch_rows, columns=[c.source for c in cols]):
                    for c in cols:
                        chars, nbytes = text_extent(batch.column(c.source), c.type)
                        old = extent.get(c.column, (0, 0))
                        extent[c.column] = (max(old[0], chars), max(old[1], nbytes))
        fits = all(extent.get(n, (0, 0))[1] <= limit for n, t in types.items() if t.family in ("clob", "json"))
        changed = False
        for name, (chars, nbytes) in extent.items():
            t = types[name]
            if t.family != "varchar":
                continue
            too_long = nbytes > limit or (chars > (t.length or 0) if t.char_semantics else nbytes > (t.length or 0))
            if not too_long:
                continue
            spec = ColumnSpec(name, "string", UNBOUNDED if nbytes > limit else max(chars, t.length or 0))
            self.log.warning(
                f"widened column {name} of table {unit.table}: {t.text} -> {self.sql_type(spec)} "
                f"(a value has {chars} characters, {nbytes} bytes)",
                stream=unit.stream,
            )
            self.widen_column(unit.table, spec)
            if nbytes > limit:
                fits = False
            changed = True
        if changed:
            columns = self.table_columns(unit.table) or columns
        return columns, fits

    def _write_rejects(self, unit: LoadUnit, state: _UnitState) -> None:
        """Records that could not be keyed, durably, before the unit commits (I5)."""
        run_id = unit.ledger[0].run_id
        lines: list[bytes] = []
        at = utc_now_iso()
        items = set()
        for step, table, keys in state.rejects:
            if step.item in self._rejects_written:
                continue  # a retry of the same unit in this run: written already
            items.add(step.item)
            source = {c.column: c.source for c in step.columns}
            for row in table.to_pylist():
                record = {source.get(k, k): v for k, v in row.items() if source.get(k, k) not in METADATA_NAMES}
                empty = [source.get(k, k) for k in keys if row.get(k) == ""]
                reason = (
                    f"key property {', '.join(repr(e) for e in empty)} is an empty string, which Oracle stores "
                    f"as NULL, so the record cannot be keyed in table {unit.table} (segment {step.item})"
                )
                lines.append(orjson.dumps({
                    "stream": unit.stream, "line": None, "reason": reason,
                    "raw": orjson.dumps(record, default=str).decode(), "run_id": run_id, "rejected_at": at,
                }) + b"\n")
        if not lines:
            return
        path = Path(SpoolLayout(self.config.spool_dir).rejects_path(unit.stream)) / f"load-{run_id}.jsonl"
        with DurableAppender(path) as out:
            out.append(b"".join(lines))
        self._rejects_written |= items
        self.log.warning(
            f"rejected {len(lines)} record(s) of stream {unit.stream!r} whose key is '' (Oracle stores '' as NULL)",
            stream=unit.stream, rejects=str(path),
        )

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(text)


def open_destination(spec: Any, config: Any, log: Any) -> OracleDestination:
    from .connect import settings_from

    dest = OracleDestination(settings_from(spec, config), config, log)
    if log is not None and hasattr(log, "redact"):
        log.redact(dest.settings.password, dest.settings.wallet_password)
    return dest
