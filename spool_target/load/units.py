"""What to load, where, in which order: streams bound to tables, pending work, units.

Everything here is a pure function of the manifest, the naming options and the
destination's ledger, so a plan can be recomputed at any time -- after a
reconnect, after a lost commit, on ``--resume`` -- and comes out the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pyarrow.parquet as pq

from ..errors import ConfigError, SegmentCorrupt
from ..naming import NamingRules, column_names, table_names
from ..schema import DELETED_AT, METADATA_COLUMNS, StreamSchema
from ..spool.layout import SpoolLayout
from ..spool.entries import ActivateVersion, Segment, WorkItem
from ..spool.manifest import Manifest
from ..spool.segment import check_segment
from .destination import LedgerEntry, StreamBinding
from .options import NamingOptions

def bind_streams(manifest: Manifest, rules: NamingRules, naming: NamingOptions) -> dict[str, StreamBinding]:
    """Tables and column names for every stream of the manifest (see naming.py)."""
    streams = manifest.streams()
    tables = table_names(
        streams,
        rules,
        default_schema=naming.default_target_schema,
        mappings=naming.table_mappings,
    )
    # Properties in the order they first appear across each stream's schemas:
    # the order collisions are resolved in, which only ever grows at the end.
    seen: dict[str, dict[str, None]] = {s: {} for s in streams}
    for entry in manifest.schema_entries():
        schema = manifest.schemas[(entry.stream, entry.schema_id)]
        for col in schema.property_columns:
            seen[entry.stream].setdefault(col.name, None)
    column_overrides = naming.column_mappings
    out: dict[str, StreamBinding] = {}
    for stream in streams:
        overrides = column_overrides.get(stream, {})
        if not isinstance(overrides, dict):
            raise ConfigError(f"column_mappings[{stream!r}] must be an object of property -> column name")
        cols = column_names(
            stream,
            seen[stream],
            rules,
            reserved_first=[name for name, _ in METADATA_COLUMNS],
            mappings=overrides,
        )
        out[stream] = StreamBinding(stream, tables[stream], cols)
    return out


def pending_items(manifest: Manifest, stream: str, ledger: Mapping[str, LedgerEntry]) -> list[WorkItem]:
    """The stream's segments and ACTIVATE_VERSIONs the ledger does not list, in manifest order (I6)."""
    return [item for item in manifest.stream_work(stream) if item.item not in ledger]


@dataclass(frozen=True)
class RunPlan:
    """What an overwrite load does with one stream (``plan_overwrite``)."""

    run: str | None  # the run the table is to hold: the last one that ended with items of this stream
    load: list[WorkItem]  # its pending items, in manifest order: one transaction
    replace: bool  # none of its items is loaded yet: that transaction replaces the table's rows
    superseded: list[WorkItem]  # pending items of older runs: recorded in the ledger, never loaded
    waiting: list[WorkItem]  # items of runs that have not ended (running, or died since): left pending

    @property
    def work(self) -> bool:
        return bool(self.load or self.superseded)


def plan_overwrite(manifest: Manifest, stream: str, ledger: Mapping[str, LedgerEntry]) -> RunPlan:
    """overwrite means what the Singer SDK means: a *run* replaces the table (I9).

    Only runs that ended (a ``run_end`` entry) are loaded, each one whole, in
    one transaction, so however many loads see a run go by, the table goes
    from one run's records straight to the next one's. The run loaded is the
    last ended one that has items of this stream; an ingest writes one run at
    a time, so every other run with items of the stream either ended before
    it or began before its end and died: superseded. Items of a run that
    began after it and has not ended wait. Records a replay brings back
    belong to the run that first sent them (``Segment.source_run``): to the
    loaded run they are appended, to a superseded one they are superseded.
    """
    ends = manifest.run_ends()
    items = manifest.stream_work(stream)
    runs = {i.source_run for i in items}
    ended = [r for r in runs if r in ends]
    target = max(ended, key=ends.__getitem__) if ended else None
    started: dict[str, int] = {}
    for item in items:
        started.setdefault(item.source_run, item.n)
    load: list[WorkItem] = []
    superseded: list[WorkItem] = []
    waiting: list[WorkItem] = []
    replace = True
    for item in items:
        run = item.source_run
        if run == target and item.item in ledger:
            replace = False
        if item.item in ledger:
            continue
        if run == target:
            load.append(item)
        elif target is not None and started[run] < ends[target]:
            superseded.append(item)
        else:
            waiting.append(item)
    return RunPlan(target, load, replace, superseded, waiting)


def group_units(items: Sequence[WorkItem], *, max_rows: int, max_segments: int) -> list[list[WorkItem]]:
    """Split a stream's pending items into transactions (append-only, upsert).

    Consecutive segments share a unit up to ``max_rows`` / ``max_segments``
    (one big segment is a unit of its own), and each ACTIVATE_VERSION is a
    unit of its own, applied after the units before it committed. (Overwrite
    loads whole runs: see ``plan_overwrite``.)
    """
    if not items:
        return []
    units: list[list[WorkItem]] = []
    current: list[WorkItem] = []
    rows = 0
    for item in items:
        if isinstance(item, ActivateVersion):
            if current:
                units.append(current)
            units.append([item])
            current, rows = [], 0
            continue
        if current and (rows + item.rows > max_rows or len(current) >= max_segments):
            units.append(current)
            current, rows = [], 0
        current.append(item)
        rows += item.rows
    if current:
        units.append(current)
    return units


# --- verification (I2) ------------------------------------------------------
@dataclass(frozen=True)
class VerifiedSegment:
    segment: Segment
    schema: StreamSchema
    file: Path
    has_deletes: bool


def verify_segment(layout: SpoolLayout, manifest: Manifest, segment: Segment) -> VerifiedSegment:
    """Check a committed segment against its manifest entry before loading it.

    File present, sha256 of its bytes, row count from the Parquet footer
    (``segment.check_segment``), plus the column names the load relies on:
    the loader reads columns by position.
    """
    label = f"{segment.path} (stream {segment.stream!r})"
    file = layout.root / segment.path
    meta = check_segment(file, segment.rows, segment.sha256, label=label)
    try:
        schema = manifest.schema_of(segment)
    except KeyError:
        raise SegmentCorrupt(
            f"segment {label} refers to schema {segment.schema_id}, which the manifest does not hold",
            hint="the manifest was edited or damaged; restore it from a backup",
        ) from None
    found = [meta.schema.column(i).name for i in range(meta.num_columns)]
    wanted = [c.name for c in schema.columns]
    if found != wanted:
        raise SegmentCorrupt(
            f"segment {label} has columns {found}, but its schema {segment.schema_id} says {wanted}",
            hint="restore the file from a backup; later segments of this stream wait so that order is kept",
        )
    return VerifiedSegment(segment, schema, file, _has_deletes(meta, wanted.index(DELETED_AT)))


def _has_deletes(meta: pq.FileMetaData, column: int) -> bool:
    """Whether any record has _sdc_deleted_at set, from the footer's statistics.

    Lets plain appends skip the delete handling. Missing statistics count as
    "maybe", which is always safe.
    """
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        stats = rg.column(column).statistics
        if stats is None or not stats.has_null_count or stats.null_count < rg.num_rows:
            return True
    return False


def pending_totals(manifest: Manifest, ledger: Mapping[str, LedgerEntry], streams: Iterable[str]) -> tuple[int, int]:
    """(segments, rows) not yet in the ledger."""
    segments = rows = 0
    for stream in streams:
        for item in pending_items(manifest, stream, ledger):
            if isinstance(item, Segment):
                segments += 1
                rows += item.rows
    return segments, rows


def count_rejects(layout: SpoolLayout, stream: str) -> int:
    """Records of ``stream`` that ingest (or a destination) rejected and no replay has committed since."""
    from ..spool.rejects import count_open_rejects  # ops: skips rejects that `rejects replay` resolved

    return count_open_rejects(layout, stream)
