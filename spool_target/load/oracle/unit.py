"""One LoadUnit as Oracle work: a small program of statements and row feeds.

The same program is executed by ``load`` and recorded by ``plan`` (through a
``session.RecordingSession``), so what a person reviews is what runs. It has
three parts:

``prepare``  before the transaction: staging tables (DDL commits implicitly)
             and their rows -- ``direct_path_load`` and ``DBMS_CLOUD.COPY_DATA``
             (``load_strategy: object-storage``, ``cloud.py``) commit by
             themselves, which is why they may only ever feed a staging table;
``work``     the transaction: DELETE for overwrite, the rows (executemany
             straight into the table, or one INSERT ... SELECT / MERGE from
             staging), ACTIVATE_VERSION updates, then the ledger rows; the
             destination commits it once;
``cleanup``  after the commit: drop the staging tables (a failure here is only
             logged; ``load --resume`` sweeps what is left).

When staging is used: always for upsert (one MERGE per unit, latest
``_sdc_sequence`` per key wins, deduplicated with ROW_NUMBER in SQL), for
``load_strategy: direct-path``, for append-only units with hard deletes, and
for units whose JSON is too long to bind as VARCHAR into a native JSON column
(it is staged as CLOB, bound as LONG, and the INSERT ... SELECT converts it).

Staging columns hold bind-friendly types (``stage_type``): TIMESTAMP(6)
(naive UTC, turned into TIME ZONE values by ``FROM_TZ`` on the way to the
table), CLOB for long text. Direct path is stricter than executemany
(python-oracledb ``check_convert_from_arrow`` and ``add_column_value``), so
there text is staged as VARCHAR2(n BYTE) -- the driver compares each value's
bytes with the column's size, which for a CHAR column is characters -- and
numbers that arrive as text as VARCHAR2 too, converted by ``TO_NUMBER`` on the
way to the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Mapping, Sequence

from ...errors import DestinationError
from ..destination import ActivateStep, ColumnInfo, DeleteMode, LedgerRow, LoadUnit, SegmentStep, WriteMode
from .binds import BindColumn, bind_order
from .cloud import CloudSettings, CopyData, copy_data, into_table, stage_column_name, stage_type
from .sql import OracleSQL, StagedColumn, Statement
from .types import OracleType, OracleTypes, parse_type

NUMBER_TEXT_BYTES = 4000  # a decimal as sent, staged for direct path (TYPING_SPEC: 38 digits, any zeros)


@dataclass(frozen=True)
class Exec:
    stmt: Statement
    params: tuple[Any, ...] = ()
    run: int | None = None  # an INSERT whose row count must match its run's rows


@dataclass(frozen=True)
class Feed:
    """A segment's rows, batch by batch, into a table or a staging table."""

    step: SegmentStep
    binds: tuple[BindColumn, ...]  # in bind order
    into: str  # the (quoted, qualified) table, for messages and plans
    run: int
    stmt: Statement | None = None  # INSERT ... VALUES for executemany
    direct: tuple[str, str] | None = None  # (schema, table) for direct_path_load
    reject_keys: tuple[str, ...] = ()  # columns whose '' rejects the row (it cannot be keyed)
    counted: bool = False  # rows go straight to the table: check the count


@dataclass(frozen=True)
class Ledger:
    stmt: Statement
    rows: tuple[LedgerRow, ...]


Action = Exec | Feed | Ledger | CopyData


@dataclass
class UnitProgram:
    prepare: list[Action] = field(default_factory=list)
    work: list[Action] = field(default_factory=list)
    cleanup: list[Action] = field(default_factory=list)
    run_rows: dict[int, int] = field(default_factory=dict)  # rows read per run of segments
    direct: bool = False
    staged_commit: bool = False  # prepare ends with a COMMIT: the staged rows are ready


def _runs(steps: Sequence[SegmentStep | ActivateStep]) -> list[list[SegmentStep] | ActivateStep]:
    out: list[list[SegmentStep] | ActivateStep] = []
    for step in steps:
        if isinstance(step, SegmentStep):
            if out and isinstance(out[-1], list):
                out[-1].append(step)
            else:
                out.append([step])
        else:
            out.append(step)
    return out


def keys_matched(unit: LoadUnit) -> tuple[str, ...]:
    """The key columns that are matched -- in upserts, and in hard deletes of a unit with
    deletions -- so whose '' (NULL in Oracle) cannot be keyed and rejects the record."""
    hard = unit.deletes is DeleteMode.HARD and bool(unit.keys)
    keyed = bool(unit.keys) and (unit.write is WriteMode.UPSERT or (hard and any(s.has_deletes for s in unit.segments)))
    return tuple(unit.keys) if keyed else ()


class UnitBuilder:
    def __init__(
        self,
        sql: OracleSQL,
        types: OracleTypes,
        unit: LoadUnit,
        columns: Mapping[str, ColumnInfo],
        *,
        direct: bool,
        schema: str | None,
        stage_all: bool = False,
        copy: CloudSettings | None = None,
    ):
        self.sql, self.types, self.unit = sql, types, unit
        self.copy = copy  # object-storage: the server stages each segment (cloud.blocker said it can)
        self.columns = columns
        self.direct = direct
        self.stage_all = stage_all  # long JSON for a native JSON column: bound as LONG into a CLOB stage
        self.schema = schema
        self.q = sql.rules.quote
        self.ttype: dict[str, OracleType] = {
            n: parse_type(c.sql_type, is_json=c.logical == "json") for n, c in columns.items()
        }
        self.spool_id = unit.ledger[0].spool_id
        self.hard = unit.deletes is DeleteMode.HARD and bool(unit.keys)
        self.reject_keys = keys_matched(unit)

    def stage_type(self, t: OracleType, logicals: set[str]) -> str:
        """The staging column for values of ``logicals`` headed for a column of type ``t``."""
        if t.family in ("tstz", "timestamp"):
            return "TIMESTAMP(6)"
        if t.family in ("clob", "json"):
            return f"VARCHAR2({self.types.string_limit} BYTE)" if self.direct else "CLOB"
        if not self.direct:
            return t.text
        if t.family == "varchar" and t.char_semantics:
            # Direct path checks bytes against the describe size, which is in characters for a
            # CHAR column (direct_path_load_stream.pyx, add_column_value; DPY-8000).
            return f"VARCHAR2({min(self.types.string_limit, (t.length or 1) * self.types.features.bytes_per_char)} BYTE)"
        if t.family == "number" and logicals & {"number", "decimal"}:
            return f"VARCHAR2({NUMBER_TEXT_BYTES} BYTE)"  # only NUMBER takes Arrow integers, no NUMBER takes text
        return t.text

    def build(self) -> UnitProgram:
        u = self.unit
        self._check_keys()
        prog = UnitProgram(direct=self.direct)
        table = self.sql.table(u.table)
        if u.write is WriteMode.OVERWRITE:
            prog.work.append(Exec(self.sql.delete_all(u.table)))
        runs = _runs(u.steps)
        if u.write is WriteMode.UPSERT:
            runs = [list(u.segments)]
        for index, run in enumerate(runs):
            if isinstance(run, ActivateStep):
                prog.work.append(self._activate(run))
                continue
            prog.run_rows[index] = sum(s.rows for s in run)
            staged = (u.write is WriteMode.UPSERT or self.direct or self.stage_all or self.copy is not None
                      or (self.hard and any(s.has_deletes for s in run)))
            if not staged:
                for step in run:
                    binds = self._binds(step, self.ttype)
                    prog.work.append(
                        Feed(step, binds, table, index, stmt=self.sql.insert_values(table, binds),
                             reject_keys=self.reject_keys, counted=True)
                    )
                continue
            self._staged_run(prog, index, run)
        prog.work.append(Ledger(self.sql.insert_ledger(), u.ledger))
        return prog

    # ---- pieces ------------------------------------------------------------
    def _check_keys(self) -> None:
        """A key that is matched must be comparable: a CLOB (or JSON) key fails every MERGE
        with ORA-00932, so refuse before anything runs."""
        if not self.reject_keys:
            return
        bad = [k for k in self.unit.keys if k in self.ttype and not self.ttype[k].comparable]
        if bad:
            listed = ", ".join(f"{k} ({self.ttype[k].text})" for k in bad)
            raise DestinationError(
                f"stream {self.unit.stream!r}: table {self.unit.table} cannot be keyed on {listed}: "
                "Oracle cannot compare LOB or JSON columns (ORA-00932)",
                hint="give the key property a maxLength in the tap's schema (short enough for an index: the README's "
                "Oracle section says how much fits), or set its type with column_types, e.g. "
                '{"<stream>": {"<property>": "VARCHAR2(200 CHAR)"}}, then rebuild the table',
            )

    def _binds(self, step: SegmentStep, types: Mapping[str, OracleType]) -> tuple[BindColumn, ...]:
        cols = [BindColumn(c.column, c.type, types[c.column]) for c in step.columns]
        return tuple(bind_order(cols))

    def _staged_run(self, prog: UnitProgram, index: int, run: list[SegmentStep]) -> None:
        sql = self.sql
        stage = sql.stage_name(self.spool_id, run[0].item)
        logicals: dict[str, set[str]] = {}
        for step in run:
            for c in step.columns:
                logicals.setdefault(c.column, set()).add(c.type)
        if self.copy is not None:
            self._copied_run(prog, index, run, stage, logicals)
            return
        stage_types = {n: parse_type(self.stage_type(self.ttype[n], logicals[n])) for n in logicals}
        prog.prepare.append(Exec(sql.drop_table(self.schema, stage)))  # a leftover of an interrupted attempt
        prog.prepare.append(Exec(sql.create_stage(stage, [(n, stage_types[n].text) for n in logicals])))
        staged_q = sql.stage(stage)
        for step in run:
            binds = self._binds(step, stage_types)
            if self.direct:
                prog.prepare.append(Feed(step, binds, staged_q, index, direct=(self.schema or "", stage),
                                         reject_keys=self.reject_keys))
            else:
                prog.prepare.append(Feed(step, binds, staged_q, index, stmt=sql.insert_values(staged_q, binds),
                                         reject_keys=self.reject_keys))
        prog.staged_commit = not self.direct
        self._apply_stage(prog, index, run, stage, [StagedColumn(n, self.ttype[n], stage_types[n]) for n in logicals])

    def _copied_run(self, prog: UnitProgram, index: int, run: list[SegmentStep], stage: str,
                    logicals: dict[str, set[str]]) -> None:
        """object-storage: staging named and typed after the Parquet columns, filled by
        DBMS_CLOUD.COPY_DATA segment by segment; the conversions go into the INSERT/MERGE."""
        assert self.copy is not None
        sql, limit = self.sql, self.types.string_limit
        sources = {c.column: c.source for step in run for c in step.columns}
        staged = []
        for name, kinds in logicals.items():
            (logical,) = kinds  # cloud.blocker: one type per column in a unit
            stage_name, text = stage_column_name(sources[name]), stage_type(logical, limit)
            into = into_table(logical, self.ttype[name])
            assert stage_name is not None and text is not None and into is not None  # cloud.blocker checked
            staged.append(StagedColumn(name, self.ttype[name], parse_type(text), stage_name=stage_name, into=into))
        prog.prepare.append(Exec(sql.drop_table(self.schema, stage)))  # a leftover of an interrupted attempt
        prog.prepare.append(Exec(sql.create_stage(stage, [(c.staged, c.stage.text) for c in staged])))
        total = 0
        for step in run:
            total += step.rows
            prog.prepare.append(copy_data(self.schema, stage, sql.stage(stage), self.copy, step, total, self.schema))
        self._apply_stage(prog, index, run, stage, staged)

    def _apply_stage(self, prog: UnitProgram, index: int, run: list[SegmentStep], stage: str,
                     staged: list[StagedColumn]) -> None:
        """The transaction's statements from a filled staging table."""
        u, sql = self.unit, self.sql
        logicals = {c.name for c in staged}
        m = u.meta
        if u.write is WriteMode.UPSERT:
            stream = set(u.stream_columns)
            cleared = [n for n in self.columns if n in stream and n not in logicals]
            prog.work.append(Exec(sql.merge(
                u.table, stage, u.keys, staged, cleared,
                meta_sequence=m.sequence, meta_deleted=m.deleted_at, hard=self.hard,
            )))
        elif self.hard and any(s.has_deletes for s in run):
            by_name = {c.name: c for c in staged}
            prog.work.append(Exec(sql.delete_deleted_keys(u.table, stage, [by_name[k] for k in u.keys], m.deleted_at,
                                                          by_name[m.deleted_at].staged if m.deleted_at in by_name else None)))
            prog.work.append(Exec(sql.insert_from_stage(
                u.table, stage, staged, keys=u.keys, meta_deleted=m.deleted_at, meta_sequence=m.sequence)))
        else:
            prog.work.append(Exec(sql.insert_from_stage(u.table, stage, staged), run=index))
        prog.cleanup.append(Exec(sql.drop_table(self.schema, stage)))

    def _activate(self, step: ActivateStep) -> Exec:
        m = self.unit.meta
        hard = self.unit.deletes is DeleteMode.HARD
        deleted_type = self.ttype.get(m.deleted_at, parse_type("TIMESTAMP(6) WITH TIME ZONE"))
        stmt = self.sql.activate_version(self.unit.table, m.table_version, m.deleted_at, deleted_type, hard=hard)
        at = step.deleted_at.astimezone(timezone.utc).replace(tzinfo=None)  # naive UTC: a bound zone is lost anyway
        return Exec(stmt, (step.version,) if hard else (at, step.version))


__all__ = ["Action", "Exec", "Feed", "Ledger", "UnitBuilder", "UnitProgram", "keys_matched"]
