"""Phase two: load a spool into a destination, exactly once, in order.

The engine owns everything that is not dialect: the pending units (``units.py``),
verification of each segment before it is loaded (I2), order per stream
(I6), schema reconciliation, retries (``retry.py``), progress, the run file.
A destination (``destination.py``) applies one unit of work per transaction
together with its ledger rows (I4).

Flow of one run::

    read the manifest (committed entries only) -> bind streams to tables
    connect -> ensure the ledger -> sweep leftovers -> read the ledger
    per stream, in manifest order of first appearance:
        pending = stream_work - ledger          (I6 order)
        per unit: verify segments -> reconcile table -> destination.load(unit)
        (overwrite: one unit, the latest ended run's pending items plus the
        ledger rows of the older runs it supersedes -- units.plan_overwrite)
    a transient error anywhere: close, back off, reconnect, re-read the
    ledger and carry on from what it says (a lost commit is found there)

A missing or corrupt segment stops its stream there; other streams go on;
the run then exits 5. A permanent destination error stops the run (exit 6).
Transient errors past ``max_wait`` stop it with exit 75.

Records a destination cannot load come back through ``Destination.load``'s
``reject`` argument; the engine writes them to the spool's rejects
(``spool/rejects.py``) before the destination commits the unit (I5).

The engine reads no config file: the CLI gives it typed ``LoadOptions``
(with the ``NamingOptions`` of ``bind_streams``) and an opened destination.

Fault injection for tests (``spool_target.faults``):
``SPOOL_TARGET_TEST_CRASH_AT=<point>:<count>`` SIGKILLs the process the
<count>-th time it reaches <point>: ``load:unit-start``, ``load:after-ddl``,
``load:before-commit`` or ``load:after-commit`` (the last two are reached
inside ``Destination.load``, through its ``checkpoint`` argument).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence, TypeVar

import orjson

from ..faults import crash_point
from ..errors import (
    DestinationUnavailable,
    SegmentCorrupt,
    TransientDestinationError,
)
from ..logs import Log
from ..schema import DELETED_AT, METADATA_NAMES, SEQUENCE, TABLE_VERSION
from ..spool.layout import SpoolLayout, SpoolLock
from ..spool.entries import ActivateVersion, Segment, WorkItem
from ..spool.manifest import Manifest, read_manifest, utc_now_iso
from ..spool.rejects import NewReject, append_rejects
from .destination import (
    Access,
    ActivateStep,
    ColumnInfo,
    ColumnSpec,
    DeleteMode,
    Destination,
    DestinationChoice,
    LedgerEntry,
    LedgerRow,
    LoadUnit,
    MetaColumns,
    RejectedRecord,
    SegmentStep,
    SourceColumn,
    StreamBinding,
    AlreadyLoaded,
    WriteMode,
)
from .options import NamingOptions
from .units import (
    RunPlan,
    VerifiedSegment,
    bind_streams,
    count_rejects,
    group_units,
    pending_items,
    pending_totals,
    plan_overwrite,
    verify_segment,
)
from .progress import Reporter, make_reporter
from .report import LoadReport, RunState, StreamOutcome, StreamReport, new_run_id, previous_run, write_run_file
from .retry import Backoff, guarded, with_retries

T = TypeVar("T")


class RunMode(enum.Enum):
    FRESH = "load"
    RESUME = "resume"  # after an outage or a crash: also reports what earlier runs did


class UnitResult(enum.Enum):
    COMMITTED = "committed"
    REPLAN = "replan"  # the ledger already had part of the unit: plan the stream again
    STOPPED = "stopped"  # a segment is missing or corrupt: the stream waits


@dataclass(frozen=True)
class LoadOptions:
    """How a load runs; made by the CLI from its config (``cli.common.load_options``)."""

    mode: RunMode
    write: WriteMode = WriteMode.APPEND
    deletes: DeleteMode = DeleteMode.SOFT
    max_wait: float = 300.0
    unit_rows: int = 1_000_000
    unit_segments: int = 256
    naming: NamingOptions = field(default_factory=NamingOptions)


def checkpoint(point: str) -> None:
    """A named moment of a load, for the fault-injection tests."""
    crash_point(f"load:{point}")


def run_load(layout: SpoolLayout, choice: DestinationChoice, options: LoadOptions, log: Log) -> LoadReport:
    """``spool-target load``: everything pending in the spool, into the chosen destination."""
    spec, destination = choice.spec, choice.open(log)
    if spec.implicit:
        log.info(f"no destination configured: loading into the embedded DuckDB file {spec.path}")
    else:
        log.info(f"loading spool {layout.label} into {spec.describe()}")
    with SpoolLock(layout.root / "load.lock", "load"):
        engine = LoadEngine(layout, destination, options, log, make_reporter(log))
        return engine.run()


class LoadEngine:
    def __init__(
        self,
        layout: SpoolLayout,
        destination: Destination,
        options: LoadOptions,
        log: Log,
        reporter: Reporter,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.layout = layout
        self.dest = destination
        self.opt = options
        self.log = log
        self.reporter = reporter
        self.sleep = sleep
        self.backoff = Backoff(options.max_wait)
        self.ledger: dict[str, LedgerEntry] | None = None  # None until read once
        self._verified: dict[str, VerifiedSegment] = {}
        self._warned: set[tuple[str, str]] = set()
        self._swept = False  # leftovers are swept once per run, at the first connect
        self._rejected: set[str] = set()  # segments whose refused records are written (a retried unit refuses them again)
        self.bindings: dict[str, StreamBinding] = {}  # set after the first connect (names may depend on the server)

    # ----- the run ---------------------------------------------------------
    def run(self) -> LoadReport:
        started = time.monotonic()
        self.manifest: Manifest = read_manifest(self.layout)
        report = self.report = LoadReport(
            run_id=new_run_id(),
            spool=self.layout.label,
            destination=self.dest.label,
            mode=self.opt.mode.value,
            started_at=utc_now_iso(),
        )
        self._previous = previous_run(self.layout)
        write_run_file(self.layout, report, self.log)
        try:
            self._with_retries(self._load_all)
            report.state = RunState.PARTIAL if report.stopped else RunState.SUCCEEDED
        except DestinationUnavailable as err:
            report.state, report.error = RunState.UNAVAILABLE, err.message
            raise
        except BaseException as err:
            report.state, report.error = RunState.FAILED, str(err)
            raise
        finally:
            self.dest.close()
            report.seconds = time.monotonic() - started
            for sr in report.streams.values():  # a destination may reject records while loading (Oracle: '' keys)
                sr.rejected = count_rejects(self.layout, sr.stream)
            write_run_file(self.layout, report, self.log)
            self.reporter.finish(report)
        if report.stopped:
            where = "; ".join(f"stream {s.stream!r}: {s.error}" for s in report.stopped)
            raise SegmentCorrupt(
                f"{len(report.stopped)} stream(s) stopped at a missing or corrupt segment ({where})",
                hint="restore the named files from a backup, then run `spool-target load --resume`; "
                "every other stream was loaded",
            )
        return report

    def rehearse(self) -> LoadReport:
        """What ``run`` does, minus the run file and the lock: for ``plan``, whose destination
        only records statements, so that the spool is left exactly as it was."""
        self.manifest = read_manifest(self.layout)
        self.report = LoadReport(run_id=new_run_id(), spool=self.layout.label, destination=self.dest.label,
                                 mode="plan", started_at=utc_now_iso())
        self._previous = None
        try:
            self._with_retries(self._load_all)
        finally:
            self.dest.close()
        return self.report

    def _with_retries(self, fn: Callable[[], T]) -> T:
        def retrying(err: TransientDestinationError, delay: float) -> None:
            self.log.warning(
                f"destination unavailable, retrying in {delay:.1f}s: {err.message}",
                attempt=self.backoff.attempts,
                waited_seconds=round(self.backoff.waited, 1),
                max_wait_seconds=self.opt.max_wait,
            )

        return with_retries(fn, self.backoff, gave_up=self._unavailable, retrying=retrying,
                            sleep=self.sleep, after_failure=self.dest.close)

    def _unavailable(self, err: TransientDestinationError) -> DestinationUnavailable:
        segments, rows = pending_totals(self.manifest, self.ledger or {}, self.manifest.streams())
        bound = "" if self.ledger is not None else "up to "
        return DestinationUnavailable(
            f"destination {self.dest.label} is still unavailable after {self.backoff.waited:.0f}s of retries "
            f"({err.message}); {bound}{segments} segment(s) ({rows:,} rows) are pending in the spool, nothing is lost",
            hint="run `spool-target load --resume` later (exit code 75 means: try again); "
            "--max-wait / max_wait_seconds sets how long to keep retrying",
        )

    def _load_all(self) -> None:
        self._connect()
        if not self.bindings:
            self._bind()
            self._announce()
        for stream in self.bindings:
            self._load_stream(stream)

    def _connect(self) -> None:
        self._guard(f"connecting to {self.dest.label}", lambda: self.dest.connect(Access.READ_WRITE))
        self._guard("creating the load ledger", self.dest.ensure_ledger)
        if not self._swept:
            swept = self._guard("sweeping leftovers of an interrupted load", lambda: self.dest.sweep(self.manifest.spool_id))
            for name in swept:
                self.log.warning("dropped a staging table left by an interrupted load", table=name)
            self.report.swept.extend(swept)
            self._swept = True
        self.ledger = self._guard("reading the load ledger", lambda: self.dest.read_ledger(self.manifest.spool_id))

    def _bind(self) -> None:
        """Tables and columns for every stream. After connecting, because a
        dialect's rules may depend on the server (Oracle's identifier length)."""
        self.rules = self.dest.rules
        self.bindings = bind_streams(self.manifest, self.rules, self.opt.naming)
        self.dest.use_bindings(self.bindings)
        for stream, binding in self.bindings.items():
            self.report.streams[stream] = StreamReport(
                stream, str(binding.table), rejected=count_rejects(self.layout, stream)
            )

    def _announce(self) -> None:
        """Say what earlier runs did and what this one will do."""
        assert self.ledger is not None
        for stream, sr in self.report.streams.items():
            for seg in self.manifest.segments(stream):
                if seg.item in self.ledger:
                    sr.segments_before += 1
                    sr.rows_before += seg.rows
                else:
                    sr.pending_segments += 1
                    sr.pending_rows += seg.rows
        streams = self.report.streams.values()
        before_s, before_r = sum(s.segments_before for s in streams), sum(s.rows_before for s in streams)
        pend_s, pend_r = sum(s.pending_segments for s in streams), sum(s.pending_rows for s in streams)
        prev = self._previous
        if prev is not None and prev.get("state") in (RunState.RUNNING.value, RunState.UNAVAILABLE.value):
            how = "was killed" if prev["state"] == RunState.RUNNING.value else "ran out of retries"
            self.log.info(
                f"the previous load (run {prev.get('run_id')}) {how}; continuing from the destination's ledger",
                previous_run=prev.get("run_id"),
            )
        if self.opt.mode is RunMode.RESUME or before_s:
            self.log.info(
                f"{'resuming: ' if self.opt.mode is RunMode.RESUME else ''}{before_s} of {before_s + pend_s} segments "
                f"({before_r:,} rows) are already loaded; {pend_s} segments ({pend_r:,} rows) pending",
                swept=len(self.report.swept),
            )
        elif pend_s:
            self.log.info(f"{pend_s} segments ({pend_r:,} rows) of {len(self.bindings)} stream(s) to load")
        if not any(pending_items(self.manifest, s, self.ledger) for s in self.bindings):
            self.log.info("nothing to load: everything in this spool is in the destination's ledger")
        self.reporter.begin(self.report)

    # ----- one stream --------------------------------------------------------
    def _load_stream(self, stream: str) -> None:
        sr = self.report.streams[stream]
        if sr.outcome is StreamOutcome.STOPPED:
            return
        binding = self.bindings[stream]
        assert self.ledger is not None
        if self.opt.write is WriteMode.OVERWRITE:
            if not self._load_run(binding, sr):
                return
        else:
            while units := group_units(
                pending_items(self.manifest, stream, self.ledger),
                max_rows=self.opt.unit_rows,
                max_segments=self.opt.unit_segments,
            ):
                for items in units:
                    result = self._load_unit(binding, sr, items)
                    if result is UnitResult.STOPPED:
                        return
                    if result is UnitResult.REPLAN:
                        break
        if sr.outcome is StreamOutcome.WAITING:
            sr.outcome = StreamOutcome.LOADED if (sr.segments or sr.activations) else StreamOutcome.NOTHING_PENDING

    def _load_run(self, binding: StreamBinding, sr: StreamReport) -> bool:
        """overwrite: the stream's latest ended run, whole, in one transaction (I9);
        False if the stream stopped at a bad segment."""
        assert self.ledger is not None
        while True:
            plan = plan_overwrite(self.manifest, binding.stream, self.ledger)
            if not plan.work:
                break
            result = self._load_unit(binding, sr, plan.load, superseded=plan.superseded, replace=plan.replace)
            if result is UnitResult.STOPPED:
                return False
            if result is UnitResult.COMMITTED:
                self._say_superseded(sr, plan)
                break
        self._say_waiting(sr, plan)
        return True

    def _say_superseded(self, sr: StreamReport, plan: RunPlan) -> None:
        segments = [i for i in plan.superseded if isinstance(i, Segment)]
        if not segments:
            return
        sr.superseded += len(segments)
        runs = ", ".join(sorted({i.source_run for i in segments}))
        self.log.info(
            f"stream {sr.stream!r}: {len(segments)} segment(s) ({sum(s.rows for s in segments):,} rows) of run(s) {runs} "
            f"are superseded by run {plan.run} (load_method overwrite): recorded in the ledger, not loaded",
            stream=sr.stream,
        )

    def _say_waiting(self, sr: StreamReport, plan: RunPlan) -> None:
        segments = [i for i in plan.waiting if isinstance(i, Segment)]
        sr.waiting = len(segments)
        if not segments:
            return
        runs = ", ".join(sorted({i.source_run for i in segments}))
        self.log.info(
            f"stream {sr.stream!r}: {len(segments)} segment(s) ({sum(s.rows for s in segments):,} rows) of run(s) {runs} "
            "wait for their run to end: load_method overwrite replaces a table with whole runs only "
            "(a run that died is superseded by the next run that ends)",
            stream=sr.stream,
        )

    def _verify(self, items: list[WorkItem]) -> tuple[list[VerifiedSegment | ActivateVersion], SegmentCorrupt | None]:
        """The unit's items up to the first bad segment, and that segment's error."""
        good: list[VerifiedSegment | ActivateVersion] = []
        for item in items:
            if isinstance(item, Segment):
                verified = self._verified.get(item.item)
                if verified is None:
                    try:
                        verified = verify_segment(self.layout, self.manifest, item)
                    except SegmentCorrupt as err:
                        if self.opt.write is WriteMode.OVERWRITE:
                            return [], err  # never switch a table to a partial set of records
                        return good, err
                    self._verified[item.item] = verified
                good.append(verified)
            else:
                good.append(item)
        return good, None

    def _load_unit(
        self,
        binding: StreamBinding,
        sr: StreamReport,
        items: list[WorkItem],
        *,
        superseded: list[WorkItem] | None = None,
        replace: bool = True,
    ) -> UnitResult:
        started = time.monotonic()
        checkpoint("unit-start")
        entries, corrupt = self._verify(items)
        result = UnitResult.COMMITTED
        if entries or (superseded and corrupt is None):
            unit = self._make_unit(binding, entries, superseded or [], replace)
            def reject(records: Sequence[RejectedRecord]) -> None:
                self._write_rejects(unit, records)

            try:
                self._guard(self._describe(unit), lambda: self.dest.load(unit, checkpoint, reject))
            except AlreadyLoaded as err:
                # A commit whose answer we lost (or another loader): trust the ledger.
                self.log.warning("part of this work is already in the ledger; planning the stream again", items=list(err.items))
                self.ledger = self._guard("reading the load ledger", lambda: self.dest.read_ledger(self.manifest.spool_id))
                return UnitResult.REPLAN
            self._committed(sr, unit, time.monotonic() - started)
        if corrupt is not None:
            sr.outcome, sr.error = StreamOutcome.STOPPED, corrupt.message
            self.log.error(
                f"stream {sr.stream!r} stops here: {corrupt.message}; its later segments wait so that order is kept",
                hint=corrupt.hint,
            )
            result = UnitResult.STOPPED
        return result

    def _committed(self, sr: StreamReport, unit: LoadUnit, seconds: float) -> None:
        assert self.ledger is not None
        now = datetime.now(timezone.utc)
        for row in unit.ledger:
            self.ledger[row.item] = LedgerEntry(row.item, row.kind, row.stream, row.table, row.rows, now)
        segments = len(unit.segments)
        sr.segments += segments
        sr.rows += unit.rows
        sr.activations += len(unit.steps) - segments
        sr.seconds += seconds
        self.backoff.reset()  # progress: the next failure is a new outage
        self.reporter.unit_loaded(sr, unit)

    @staticmethod
    def _describe(unit: LoadUnit) -> str:
        segs = unit.segments
        if segs:
            what = f"{len(segs)} segment(s) ({segs[0].item} .. {segs[-1].item})"
        elif unit.steps:
            what = "ACTIVATE_VERSION"
        else:
            return f"recording {len(unit.ledger)} superseded item(s) of stream {unit.stream!r} in the ledger"
        return f"loading {what} of stream {unit.stream!r} into table {unit.table}"

    # ----- building a unit -----------------------------------------------------
    def _make_unit(
        self,
        binding: StreamBinding,
        entries: list[VerifiedSegment | ActivateVersion],
        superseded: list[WorkItem],
        replace: bool,
    ) -> LoadUnit:
        """One transaction: ``entries`` applied in order, plus the ledger rows of
        ``superseded`` items (overwrite: older runs', never loaded). ``replace``:
        an overwrite unit empties the table first; otherwise it appends (the
        rest of a run that is in the table already)."""
        segments = [e for e in entries if isinstance(e, VerifiedSegment)]
        columns = self._reconcile(binding, segments) if entries else None
        by_key = {self.rules.key(n): info for n, info in (columns or {}).items()}

        def actual(source: str) -> str:
            name = binding.column(source)
            info = by_key.get(self.rules.key(name))
            return info.name if info is not None else name

        write, deletes = self.opt.write, self.opt.deletes
        if write is WriteMode.OVERWRITE and not replace:
            write = WriteMode.APPEND
        keys: tuple[str, ...] = ()
        if segments:
            keys = tuple(actual(k) for k in segments[-1].schema.key_properties)
            if write is WriteMode.UPSERT and not keys:
                self._warn_once(binding.stream, "upsert", "it has no key_properties, so upsert loads it append-only")
                write = WriteMode.APPEND
            if deletes is DeleteMode.HARD and not keys and any(s.has_deletes for s in segments):
                self._warn_once(
                    binding.stream,
                    "hard_delete",
                    "it has no key_properties, so records with _sdc_deleted_at are kept (soft-deleted) "
                    "instead of deleting rows",
                )
        if not segments:
            # Only ACTIVATE_VERSIONs: nothing to merge, and never empty a table for them.
            write = WriteMode.APPEND
        spool_id, run_id, table = self.manifest.spool_id, self.report.run_id, str(binding.table)
        steps: list[SegmentStep | ActivateStep] = []
        ledger: list[LedgerRow] = []
        now = datetime.now(timezone.utc)
        for e in entries:
            if isinstance(e, VerifiedSegment):
                seg = e.segment
                cols = tuple(
                    SourceColumn(i, c.name, actual(c.name), c.type) for i, c in enumerate(e.schema.columns)
                )
                steps.append(SegmentStep(seg.item, e.file, seg.rows, cols, e.has_deletes))
                ledger.append(LedgerRow(spool_id, seg.item, "segment", seg.stream, table, seg.rows, seg.sha256, run_id))
            else:
                steps.append(ActivateStep(e.item, e.version, now))
                ledger.append(LedgerRow(spool_id, e.item, "activate_version", e.stream, table, 0, "", run_id))
        for item in superseded:
            rows, sha = (item.rows, item.sha256) if isinstance(item, Segment) else (0, "")
            ledger.append(LedgerRow(spool_id, item.item, "superseded", item.stream, table, rows, sha, run_id))
        return LoadUnit(
            stream=binding.stream,
            table=binding.table,
            columns=columns,
            write=write,
            deletes=deletes,
            keys=keys,
            meta=MetaColumns(actual(SEQUENCE), actual(DELETED_AT), actual(TABLE_VERSION)),
            steps=tuple(steps),
            ledger=tuple(ledger),
            stream_columns=tuple(dict.fromkeys(actual(s) for s in binding.columns)),
        )

    def _reconcile(self, binding: StreamBinding, segments: list[VerifiedSegment]) -> dict[str, ColumnInfo] | None:
        """Make the table able to hold these segments: create it, add columns,
        widen types. Never drops or narrows anything. DDL runs before (not in)
        the unit's transaction, since some databases commit DDL implicitly; it
        is idempotent, so a crash between the two is harmless."""
        table = binding.table
        existing = self._guard(f"reading table {table}", lambda: self.dest.table_columns(table))
        wanted: dict[str, ColumnSpec] = {}
        for seg in segments:
            for col in seg.schema.columns:
                name = binding.column(col.name)
                k = self.rules.key(name)
                prev = wanted.get(k)
                spec = ColumnSpec(name, col.type, col.max_length)
                wanted[k] = spec if prev is None else self.dest.combine_columns(prev, spec)
        if not segments:
            if existing is None:
                return None  # ACTIVATE_VERSION before any data: nothing to clear
            meta = ((SEQUENCE, "integer"), (DELETED_AT, "timestamp"), (TABLE_VERSION, "integer"))
            wanted = {self.rules.key(binding.column(s)): ColumnSpec(binding.column(s), t) for s, t in meta}
        changed = False
        if existing is None:
            schema = segments[-1].schema
            keys = [binding.column(k) for k in schema.key_properties]
            self._guard(f"creating table {table}", lambda: self.dest.create_table(table, list(wanted.values()), keys))
            self.log.info(f"created table {table}", stream=binding.stream, columns=len(wanted))
            changed = True
        else:
            by_key = {self.rules.key(n): info for n, info in existing.items()}
            for k, spec in wanted.items():
                info = by_key.get(k)
                if info is None:
                    self._guard(f"adding column {spec.name} to table {table}", lambda: self.dest.add_column(table, spec))
                    self.log.info(f"added column {spec.name} ({spec.type}) to table {table}", stream=binding.stream)
                    changed = True
                    continue
                target = self.dest.widened(info, spec)
                if target is not None:
                    target = ColumnSpec(info.name, target.type, target.max_length)
                    self._guard(
                        f"widening column {info.name} of table {table} to {target.type}",
                        lambda: self.dest.widen_column(table, target),
                    )
                    self.log.info(
                        f"widened column {info.name} of table {table}: {info.sql_type} -> "
                        f"{self.dest.sql_type(target)} (a segment holds {spec.type} values)",
                        stream=binding.stream,
                    )
                    changed = True
        if changed:
            checkpoint("after-ddl")
            existing = self._guard(f"reading table {table}", lambda: self.dest.table_columns(table))
        return existing

    # ----- records the destination refused ---------------------------------------
    def _write_rejects(self, unit: LoadUnit, records: Sequence[RejectedRecord]) -> None:
        """Journal what the destination refused, durably, before it commits the unit (I5).

        Each record keeps its ``_sdc_sequence`` and the ingest run that sent it (its
        segment's, or the run a replay brought it back for), so that ``rejects replay``
        puts it back in its place in the stream (I6) and in its run (overwrite, I9)."""
        fresh = [r for r in records if r.item not in self._rejected]  # a retried unit: written already
        if not fresh:
            return
        runs = {s.item: s.source_run for s in self.manifest.segments(unit.stream)}
        out: list[NewReject] = []
        for r in fresh:
            sequence = r.values.get(SEQUENCE)
            record = {k: v for k, v in r.values.items() if k not in METADATA_NAMES}
            out.append(NewReject(
                reason=r.reason,
                raw=orjson.dumps(record, default=str).decode(),
                run_id=runs.get(r.item, self.report.run_id),
                sequence=sequence if isinstance(sequence, int) else None,
            ))
        path = append_rejects(self.layout, unit.stream, f"load-{self.report.run_id}.jsonl", out)
        self._rejected.update(r.item for r in fresh)
        self.log.warning(
            f"rejected {len(out)} record(s) of stream {unit.stream!r} that table {unit.table} cannot hold",
            stream=unit.stream, rejects=str(path),
        )

    # ----- errors -----------------------------------------------------------
    def _guard(self, what: str, fn: Callable[[], T]) -> T:
        return guarded(self.dest, what, fn)

    def _warn_once(self, stream: str, topic: str, text: str) -> None:
        if (stream, topic) not in self._warned:
            self._warned.add((stream, topic))
            self.log.warning(f"stream {stream!r}: {text}", stream=stream)

