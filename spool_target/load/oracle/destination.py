"""The Oracle destination: ``Destination`` for python-oracledb (thin mode by default).

It keeps the engine's contract (``load/destination.py``): one transaction
per unit holding the rows and their ledger rows; idempotent DDL before it;
native errors classified in ``errors.py``. The SQL is in ``sql.py``, the
type decisions in ``types.py``, the unit's program in ``unit.py``. Every
round trip goes through a ``session.Session``: the driver for ``load`` and
``check``, a recording for ``plan`` -- the same code decides what to run.

Oracle-specific duties that live here:

- Oracle stores '' as NULL. In upserts and hard deletes a record whose text
  key is '' cannot be keyed, so it is rejected -- handed back to the engine
  before the unit commits, which writes it to the spool's rejects
  (``<spool>/rejects/<stream dir>/load-<run>.jsonl``) -- instead of being
  merged as NULL.
- A VARCHAR2(n CHAR) column also has a byte limit (4000, or 32767 with
  MAX_STRING_SIZE=EXTENDED). Before each unit the text headed for VARCHAR2
  columns is measured (whole-column Arrow kernels); a column too short is
  widened first (longer VARCHAR2, or CLOB), so a long value never fails the
  load with ORA-12899.
- JSON that a column cannot take: a scalar (``"abc"``, ``5``) for a ``CLOB IS
  JSON`` column on a server whose IS JSON means objects and arrays only
  (COMPATIBLE below 20) turns the column into plain CLOB first; JSON longer
  than a VARCHAR bind for a native JSON column is staged as CLOB.
- Keys: typed so that they can be a primary key (``types.key_types``), never
  a LOB, and within the index entry limit, also when a key column widens.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Callable, Mapping, Sequence

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...errors import ConfigError, DestinationError, SegmentCorrupt
from ...logs import NULL_LOG, Log
from ...naming import TableRef, oracle_rules
from ..destination import (
    Access,
    AlreadyLoaded,
    Checkpoint,
    ColumnInfo,
    ColumnSpec,
    Destination,
    DestinationMissing,
    DestinationSpec,
    Failure,
    LedgerEntry,
    LoadUnit,
    Reject,
    RejectedRecord,
    SegmentStep,
    StreamBinding,
)
from ..options import DestinationOptions, OracleOptions
from . import cloud
from .binds import empty_key_mask, has_json_scalar, prepare, text_extent
from .connect import ConnectSettings
from .errors import classify, error_code
from .session import DriverSession, Session, column_type_text
from .sql import ColumnDDL, OracleSQL, Statement, can_modify_in_place
from .types import (
    INDEX_ENTRY_OVERHEAD,
    INDEX_KEY_BYTES,
    MAX_COLUMNS,
    OFFLINE_FEATURES,
    UNBOUNDED,
    KeyTooLong,
    OracleTypes,
    ServerFeatures,
    TypeSettings,
    check_override,
    combine,
    logical_of,
    parse_type,
)
from .unit import Action, Exec, Feed, Ledger, UnitBuilder, UnitProgram, keys_matched

LEDGER_CHUNK = 500  # items per ledger lookup (an IN list)

__all__ = ["OracleDestination", "column_type_text", "open_destination"]


@dataclass
class _UnitState:
    read: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    rejected: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    inserted: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    unknown: set[int] = field(default_factory=set)  # runs whose counts a recording cannot know
    rejects: list[tuple[SegmentStep, Any, tuple[str, ...]]] = field(default_factory=list)


@dataclass
class _Measure:
    """What a unit's segments hold, per table column, before anything is bound."""

    extent: dict[str, tuple[int, int]] = field(default_factory=dict)  # (characters, bytes) of the longest text
    scalars: set[str] = field(default_factory=set)  # JSON columns with a scalar value


class OracleDestination(Destination):
    def __init__(self, settings: ConnectSettings, options: OracleOptions, log: Log | None = None,
                 *, session: Callable[[ConnectSettings], Session] = DriverSession):
        self.settings = settings
        self.options = options
        self.log = log or NULL_LOG
        self.label = settings.label
        self.new_session = session
        pinned = options.max_identifier_length
        if pinned is not None and not 30 <= int(pinned) <= 128:
            raise ConfigError(f"max_identifier_length must be between 30 and 128, got {pinned}")
        self.pinned_limit = int(pinned) if pinned is not None else None
        self.rules = oracle_rules(self.pinned_limit or 128)  # until a server says otherwise
        self.default_schema = self.rules.check_explicit(settings.target_schema, "target_schema") if settings.target_schema else None
        self.type_settings = TypeSettings.from_options(options)
        self.strategy = options.load_strategy
        if self.strategy == "direct-path" and settings.thick_mode:
            raise ConfigError(
                "load_strategy direct-path needs python-oracledb thin mode (Connection.direct_path_load)",
                hint="set thick_mode: false, or load_strategy: insert",
            )
        # object-storage: the credential's name and the spool's URL, checked now (a local spool is exit 2)
        self.cloud = cloud.CloudSettings.from_options(options) if self.strategy == cloud.STRATEGY else None
        self.batch_rows = options.batch_rows
        self.upsert_keys = options.load_method == "upsert"
        self.keys_compared = self.upsert_keys or options.hard_delete
        self.session: Session | None = None
        self.access = Access.READ_WRITE
        self.set_features(OFFLINE_FEATURES, self.default_schema)
        self._bindings: Mapping[str, StreamBinding] = {}
        self._overrides: dict[tuple[str, str], str] | None = None
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
        self.session = self.new_session(self.settings)
        features = self.session.connect()
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
        session, self.session = self.session, None
        if session is not None:
            session.close()

    @property
    def db(self) -> Session:
        if self.session is None:
            import oracledb

            raise oracledb.InterfaceError("DPY-1001: not connected to database")
        return self.session

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)

    def _owner(self, table: TableRef) -> str | None:
        return table.schema or self.schema

    # ---- names and types ------------------------------------------------------
    def sql_type(self, column: ColumnSpec) -> str:
        return self.types.sql_type(column.type, column.max_length)

    def _override(self, table: TableRef, column: str) -> str | None:
        return self.overrides().get((self.rules.key(str(table)), column))

    def _column_ddl(self, table: TableRef, column: ColumnSpec, sql_type: str | None = None) -> ColumnDDL:
        """A new column: an override, else ``sql_type`` or the mapping, with its CHECK."""
        override = self._override(table, column.name)
        if override:
            return ColumnDDL(column.name, override)
        sql_type = sql_type or self.sql_type(column)
        return ColumnDDL(column.name, sql_type, self.types.check_constraint(column.type, sql_type, self.rules.quote(column.name)))

    def use_bindings(self, bindings: Mapping[str, StreamBinding]) -> None:
        self._bindings = dict(bindings)
        self._overrides = None

    def overrides(self) -> dict[tuple[str, str], str]:
        """``column_types`` by (table, column), resolved through the engine's bindings
        (``use_bindings``): a stream the engine has not bound has none yet."""
        if self._overrides is None:
            self._overrides = {}
            wanted = self.options.column_types
            if wanted:
                bindings = self._bindings
                for stream, props in wanted.items():
                    if not isinstance(props, dict):
                        raise ConfigError(f"column_types[{stream!r}] must be an object of property -> SQL type")
                    binding = bindings.get(stream)
                    for prop, text in props.items():
                        sql_type = check_override(text, f"[{stream!r}][{prop!r}]")
                        if binding is not None and prop in binding.columns:
                            self._overrides[(self.rules.key(str(binding.table)), binding.columns[prop])] = sql_type
        return self._overrides

    def combine_columns(self, a: ColumnSpec, b: ColumnSpec) -> ColumnSpec:
        """JSON with anything else is plain text, a CLOB like a JSON column widened later
        (``types.widened_to``), so one unit or two give the same column."""
        new = combine(a.type, b.type)
        if new == "string" and "json" in (a.type, b.type):
            return ColumnSpec(a.name, "string", UNBOUNDED)
        return super().combine_columns(ColumnSpec(a.name, new, a.max_length), ColumnSpec(a.name, new, b.max_length))

    def widened(self, existing: ColumnInfo, wanted: ColumnSpec) -> ColumnSpec | None:
        if existing.logical is None:
            return None
        have = parse_type(existing.sql_type, is_json=existing.logical == "json")
        target = self.types.widened_to(existing.logical, have, wanted.type, wanted.max_length)
        return None if target is None else ColumnSpec(wanted.name, target[0], target[1])

    # ---- the ledger ----------------------------------------------------------------
    def _table_exists(self, schema: str | None, name: str) -> bool:
        return "TABLE" in self.db.object_types(schema or self.schema, name)

    def ensure_ledger(self) -> None:
        if not self._table_exists(self.schema, self.rules.ledger_table):
            self._create(self.sql.create_ledger(), self.schema, self.rules.ledger_table)

    def _create(self, stmt: Statement, owner: str | None, name: str) -> bool:
        """Run a CREATE TABLE; False if the table was there already. ORA-00955 only says the
        name is taken -- by a table, or by a view, synonym, sequence... -- so ask the catalog."""
        if self.db.execute(stmt).done is None:
            return True
        kinds = self.db.object_types(owner, name)
        if "TABLE" not in kinds:
            what = " and ".join(k.lower() for k in kinds) or "an object that is gone now"
            raise DestinationError(
                f"cannot create table {owner + '.' if owner else ''}{name}: the name is used by {what} (ORA-00955)",
                hint="map the stream to another table with table_mappings, or have the other object renamed",
            )
        return False

    def read_ledger(self, spool_id: str) -> dict[str, LedgerEntry]:
        if not self._table_exists(self.schema, self.rules.ledger_table):
            if self.access is Access.READ_ONLY:
                raise DestinationMissing(f"{self.label} has no {self.schema}.{self.rules.ledger_table} yet (nothing loaded)")
            return {}
        rows = self.db.query(self.sql.read_ledger().sql, [spool_id], reads=(self.schema, self.rules.ledger_table))
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
            found += [r[0] for r in self.db.query(self.sql.ledger_items_in(len(chunk)).sql, [spool_id, *chunk],
                                                  reads=(self.schema, self.rules.ledger_table))]
        if found:
            raise AlreadyLoaded(found)

    # ---- tables -------------------------------------------------------------------
    def _raw_columns(self, table: TableRef) -> dict[str, ColumnInfo]:
        overrides = self.overrides()
        tkey = self.rules.key(str(table))
        out: dict[str, ColumnInfo] = {}
        for col in self.db.columns(self._owner(table), table.name):
            logical = None if (tkey, col.name) in overrides else logical_of(parse_type(col.sql_type, is_json=col.is_json))
            out[col.name] = ColumnInfo(col.name, col.sql_type, logical)
        return out

    def table_columns(self, table: TableRef) -> dict[str, ColumnInfo] | None:
        cols = self._raw_columns(table)
        if not cols:
            return None
        # A widening in progress (see sql.retype_steps) is the destination's business.
        return {n: c for n, c in cols.items() if not n.startswith("SPOOL_W_")}

    def _room_for(self, table: TableRef, have: int, more: int, why: str) -> None:
        if have + more > MAX_COLUMNS:
            raise DestinationError(
                f"table {table}: {why} needs {have + more} columns, and Oracle allows {MAX_COLUMNS:,} (ORA-01792)",
                hint="leave properties out of the tap's catalog (select fewer), or split the stream in the tap; "
                "columns already loaded stay as they are",
            )

    def _key_types(self, table: TableRef, columns: Sequence[ColumnSpec], keys: Sequence[str]) -> dict[str, str]:
        """Types for the key columns (see types.key_types); {} when they cannot all be keys and
        nothing compares them (append-only without hard deletes): then they are ordinary columns."""
        specs = {c.name: c for c in columns}
        wanted = [(k, specs[k].type, specs[k].max_length) for k in keys if k in specs]
        if not wanted:
            return {}
        overrides = {k: o for k, _, _ in wanted if (o := self._override(table, k))}
        try:
            return self.types.key_types(wanted, overrides)
        except KeyTooLong as err:
            if self.keys_compared:
                raise DestinationError(f"table {table}: {err.message}", hint=err.hint) from None
            self.log.warning(f"table {table}: {err.message}; it gets no primary key (append-only)")
            return {}

    def create_table(self, table: TableRef, columns: Sequence[ColumnSpec], keys: Sequence[str]) -> None:
        self._room_for(table, 0, len(columns), f"stream's {len(columns)} properties and metadata")
        key_types = self._key_types(table, columns, keys)
        ddl = [self._column_ddl(table, c, key_types.get(c.name)) for c in columns]
        pk = list(keys) if (self.upsert_keys and keys and key_types) else []
        self.db.note(f"table {table}: create it" + (f", keyed on {', '.join(pk)}" if pk else ""))
        if not self._create(self.sql.create_table(table, ddl, pk), self._owner(table), table.name):
            # It exists already: an earlier attempt created it, or someone else did. Make
            # sure it has our columns; the engine re-reads it after this.
            have = self._raw_columns(table)
            for col in columns:
                if col.name not in have:
                    self.add_column(table, col)

    def add_column(self, table: TableRef, column: ColumnSpec) -> None:
        raw = self._raw_columns(table)
        tmp = OracleSQL.widen_temp_column(column.name)
        if tmp in raw:
            # A widening was interrupted after the old column was dropped: finish it.
            self.widen_column(table, column)
            return
        self._room_for(table, len(raw), 1, f"adding column {column.name}")
        self.db.note(f"table {table}: add column {column.name} ({column.type})")
        self.db.execute(self.sql.add_column(table, self._column_ddl(table, column)))

    def widen_column(self, table: TableRef, column: ColumnSpec) -> None:
        raw = self._raw_columns(table)
        new_ddl = self._column_ddl(table, column)
        new = parse_type(new_ddl.sql_type, is_json=column.type == "json")
        tmp_present = OracleSQL.widen_temp_column(column.name) in raw
        cur = raw.get(column.name)
        if cur is None and not tmp_present:
            self.db.note(f"table {table}: add column {column.name} ({column.type})")
            self.db.execute(self.sql.add_column(table, new_ddl))
            return
        self.db.note(f"table {table}: widen column {column.name} to {new_ddl.sql_type}"
                     + (" (plain text: no IS JSON check)" if new.family == "clob" and cur and cur.logical == "json" else ""))
        if cur is None:
            steps = self.sql.retype_steps(table, column.name, new, column.type, new_ddl, new, from_step=4)
        else:
            old = parse_type(cur.sql_type, is_json=cur.logical == "json")
            # Same type text is not the same column: CLOB with IS JSON becomes plain CLOB.
            if not tmp_present and cur.sql_type == new.text and old.family == new.family:
                return
            keys = self.db.key_columns(self._owner(table), table.name)
            if column.name in keys:
                self._check_key_widening(table, column.name, cur.sql_type, new, raw, keys)
            if not tmp_present and can_modify_in_place(old, new):
                self.db.execute(self.sql.modify_column(table, column.name, new_ddl.sql_type))
                return
            if column.name in keys:
                raise DestinationError(
                    f"table {table}: key column {column.name} would have to change from {cur.sql_type} to "
                    f"{new_ddl.sql_type}, which Oracle can only do by copying the column, and that drops its key",
                    hint="give the key a wide enough type up front with column_types, or rebuild the table",
                )
            if not tmp_present:
                self._room_for(table, len(raw), 1, f"widening column {column.name} (a copy of it, for a moment)")
            steps = self.sql.retype_steps(
                table, column.name, old, cur.logical or "string", new_ddl, new, from_step=2 if tmp_present else 1
            )
        for step in steps:
            self.db.execute(step)
            if step.sql.startswith("UPDATE "):
                self.db.commit()

    def _check_key_widening(self, table: TableRef, name: str, old: str, new: Any, raw: dict[str, ColumnInfo],
                            keys: set[str]) -> None:
        """A longer key column must still fit one index entry (ORA-01450 at the ALTER)."""
        widths = [self.types.index_bytes(new if k == name else parse_type(raw[k].sql_type)) for k in keys if k in raw]
        total = sum(w if w is not None else INDEX_KEY_BYTES for w in widths) + len(widths) + INDEX_ENTRY_OVERHEAD
        if total > INDEX_KEY_BYTES:
            raise DestinationError(
                f"table {table}: key column {name} would grow from {old} to {new.text}, and the key would no longer "
                f"fit one index entry ({total:,} of {INDEX_KEY_BYTES:,} bytes, ORA-01450)",
                hint="a key value is longer than its column: give the key property a larger maxLength from the start, "
                "or set its type with column_types and rebuild the table",
            )

    def sweep(self, spool_id: str) -> list[str]:
        names = self.db.tables_like(self.schema, self.sql.stage_pattern(spool_id))
        for name in names:
            self.db.execute(self.sql.drop_table(self.schema, name))
        return [f"{self.schema}.{name}" for name in names]

    # ---- the unit of work ----------------------------------------------------------
    def program(self, unit: LoadUnit, columns: dict[str, ColumnInfo] | None, *, direct: bool,
                stage_all: bool = False, copy: cloud.CloudSettings | None = None) -> UnitProgram:
        if columns is None:
            return UnitProgram(work=[Ledger(self.sql.insert_ledger(), unit.ledger)])
        return UnitBuilder(self.sql, self.types, unit, columns, direct=direct, schema=self.schema,
                           stage_all=stage_all, copy=copy).build()

    def load(self, unit: LoadUnit, checkpoint: Checkpoint, reject: Reject) -> None:
        self._refuse_loaded(unit)
        columns = dict(unit.columns) if unit.columns is not None else None
        direct = stage_all = False
        copy, not_copied = None, None
        if columns is not None and unit.segments:
            columns, fits, stage_all = self._fit_text(unit, columns)  # DDL, if any: before the transaction
            direct = self.strategy == "direct-path" and fits
            if self.strategy == "direct-path" and not fits:
                self._warn_once(unit.stream, f"stream {unit.stream!r}: text longer than {self.types.string_limit} bytes "
                                "cannot go through direct path; these units are staged with executemany")
            if self.cloud is not None:
                copy, not_copied = self._copy_or_not(unit, columns, fits)  # never with stage_all: no CLOB text
        self._describe(unit)
        if not_copied:
            self.db.note(f"not through DBMS_CLOUD.COPY_DATA: {not_copied}")
        prog = self.program(unit, columns, direct=direct, stage_all=stage_all, copy=copy)
        state = _UnitState()
        try:
            for action in prog.prepare:
                self._do(action, state, unit)
            if prog.staged_commit:
                self.db.note("the staged rows are ready; the unit's transaction starts now")
                self.db.commit()
            for action in prog.work:
                self._do(action, state, unit)
            self._check_counts(prog, state, unit)
            if state.rejects:
                reject(self._rejected_records(unit, state))
            checkpoint("before-commit")
            self.db.commit()
        except BaseException:
            if self.session is not None:
                self.session.rollback()
            raise
        checkpoint("after-commit")
        for action in prog.cleanup:
            try:
                self._do(action, state, unit)
            except Exception as err:  # the data is committed; the sweep of the next run drops it
                self.log.warning(f"could not drop a staging table: {str(err).splitlines()[0]}", stream=unit.stream)

    def _copy_or_not(self, unit: LoadUnit, columns: dict[str, ColumnInfo],
                     fits: bool) -> tuple[cloud.CloudSettings | None, str | None]:
        """object-storage, unless this unit cannot be staged by COPY_DATA exactly: then why not."""
        types = {n: parse_type(c.sql_type, is_json=c.logical == "json") for n, c in columns.items()}
        why = cloud.blocker(unit, types, fits, keys_matched(unit))
        if why is None:
            return self.cloud, None
        self._warn_once(unit.stream, f"stream {unit.stream!r}: {why}; such units load with executemany "
                        "(load_strategy insert) instead of DBMS_CLOUD.COPY_DATA")
        return None, why

    def _describe(self, unit: LoadUnit) -> None:
        segs = unit.segments
        acts = len(unit.steps) - len(segs)
        what = [f"{len(segs)} segment(s), {unit.rows} row(s)"] if segs else []
        what += [f"{acts} ACTIVATE_VERSION"] if acts else []
        self.db.note(
            f"stream {unit.stream!r} -> table {unit.table}: one transaction ({unit.write.value}, {', '.join(what)})"
            + "".join(f"\n  {s.item}" for s in segs)
        )

    def _do(self, action: Action, state: _UnitState, unit: LoadUnit) -> None:
        if isinstance(action, Exec):
            count = self.db.execute(action.stmt, action.params).rows
            if action.run is not None:
                if count is None:
                    state.unknown.add(action.run)
                else:
                    state.inserted[action.run] += count
        elif isinstance(action, Feed):
            self._run_feed(action, state)
        elif isinstance(action, cloud.CopyData):
            cloud.run_copy(self.db, action)
        elif isinstance(action, Ledger):
            rows = [(r.spool_id, r.item, r.kind, r.stream, r.table, r.rows, r.sha256 or None, r.run_id) for r in action.rows]
            try:
                self.db.executemany(action.stmt, rows)
            except Exception as err:
                if error_code(err) == "ORA-00001":  # another loader committed an item first
                    raise AlreadyLoaded([r.item for r in action.rows]) from err
                raise

    def _run_feed(self, feed: Feed, state: _UnitState) -> None:
        def batches() -> Any:
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
                    yield prepare(batch, feed.binds)

        count = self.db.feed(feed, batches(), batch_rows=self.batch_rows)
        if feed.counted:
            if count is None:
                state.unknown.add(feed.run)
            else:
                state.inserted[feed.run] += count

    def _check_counts(self, prog: UnitProgram, state: _UnitState, unit: LoadUnit) -> None:
        counted: set[int] = set()
        for a in prog.work:
            if isinstance(a, Feed) and a.counted:
                counted.add(a.run)
            elif isinstance(a, Exec) and a.run is not None:
                counted.add(a.run)
        for run in counted - state.unknown:
            expected = prog.run_rows[run] - state.rejected[run]
            if state.inserted[run] != expected:
                raise SegmentCorrupt(
                    f"stream {unit.stream!r}: {state.inserted[run]} rows went into {unit.table} but the "
                    f"segments hold {expected}",
                    hint="a segment file changed after it was verified; restore it from a backup",
                )

    def _measure(self, unit: LoadUnit, types: dict[str, Any], columns: dict[str, ColumnInfo]) -> _Measure:
        """Longest text per watched column, and JSON scalars headed for a CLOB IS JSON column
        that refuses them; read with whole-column Arrow kernels."""
        watched = {n for n, t in types.items() if t.family in ("clob", "json") or (t.family == "varchar" and columns[n].logical)}
        no_scalars = {n for n, t in types.items()  # ours only: a DBA's IS JSON column is left as it is
                      if t.is_json_text and columns[n].logical == "json" and not self.features.json_scalars}
        out = _Measure()
        for step in unit.segments:
            cols = [c for c in step.columns if c.column in watched]
            if not cols:
                continue
            with pq.ParquetFile(step.file) as pf:
                for batch in pf.iter_batches(batch_size=self.batch_rows, columns=[c.source for c in cols]):
                    for c in cols:
                        values = batch.column(c.source)
                        chars, nbytes = text_extent(values, c.type)
                        old = out.extent.get(c.column, (0, 0))
                        out.extent[c.column] = (max(old[0], chars), max(old[1], nbytes))
                        if c.column in no_scalars and c.type == "json" and c.column not in out.scalars \
                                and has_json_scalar(values):
                            out.scalars.add(c.column)
        return out

    def _fit_text(self, unit: LoadUnit, columns: dict[str, ColumnInfo]) -> tuple[dict[str, ColumnInfo], bool, bool]:
        """Widen columns the unit's values would not fit: VARCHAR2 too short, IS JSON text that
        would refuse a scalar. Then say whether its long text (CLOB / JSON columns) fits a VARCHAR2
        staging column for direct path, and whether JSON for a native JSON column is too long to
        bind as VARCHAR (it is staged as CLOB then)."""
        limit = self.types.string_limit
        types = {n: parse_type(c.sql_type, is_json=c.logical == "json") for n, c in columns.items()}
        seen = self._measure(unit, types, columns)
        changed = False
        for name in sorted(seen.scalars):
            self.log.warning(
                f"column {name} of table {unit.table} holds JSON scalars (such as \"abc\" or 5), which IS JSON refuses "
                f"before COMPATIBLE 20 (this server: {self.features.compatible}); it becomes a plain CLOB",
                stream=unit.stream,
            )
            self.widen_column(unit.table, ColumnSpec(name, "string", UNBOUNDED))
            changed = True
        fits = all(seen.extent.get(n, (0, 0))[1] <= limit for n, t in types.items() if t.family in ("clob", "json"))
        stage_all = any(seen.extent.get(n, (0, 0))[1] > limit for n, t in types.items() if t.text == "JSON")
        for name, (chars, nbytes) in seen.extent.items():
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
        return columns, fits, stage_all

    def _rejected_records(self, unit: LoadUnit, state: _UnitState) -> list[RejectedRecord]:
        """Records that could not be keyed, by source name, with why (the engine journals them)."""
        out: list[RejectedRecord] = []
        for step, table, keys in state.rejects:
            source = {c.column: c.source for c in step.columns}
            for row in table.to_pylist():
                empty = [source.get(k, k) for k in keys if row.get(k) == ""]
                reason = (
                    f"key property {', '.join(repr(e) for e in empty)} is an empty string, which Oracle stores "
                    f"as NULL, so the record cannot be keyed in table {unit.table} (segment {step.item})"
                )
                out.append(RejectedRecord(step.item, {source.get(k, k): v for k, v in row.items()}, reason))
        return out

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(text)


def open_destination(spec: DestinationSpec, options: DestinationOptions, log: Log | None) -> OracleDestination:
    from .connect import settings_from

    dest = OracleDestination(settings_from(spec, options.oracle), options.oracle, log)
    if log is not None:
        log.redact(dest.settings.password, dest.settings.wallet_password)
    return dest
