"""`spool-target status`: what is spooled, loaded and pending, per stream.

The spool side (segments, rows, rejects) always comes from the manifest and
the rejects files. The loaded side comes from the destination's ledger,
opened read-only; when the destination cannot be reached (down, or locked
by a running load) status says so, shows the spool side, and the last load
run's outcome from ``<spool>/runs/``.
"""

from __future__ import annotations

import time
from calendar import timegm
from dataclasses import dataclass, field
from typing import Any

from ..errors import DestinationError, TransientDestinationError
from ..logs import Log
from ..render import human_bytes, text_table
from ..spool.layout import SpoolLayout
from ..spool.manifest import read_manifest
from ..load.ledger import DestinationState
from ..load.destination import Access, DestinationChoice, DestinationMissing, LedgerEntry
from ..load.options import NamingOptions
from ..load.units import bind_streams, count_rejects
from ..load.report import previous_run
from ..load.retry import guarded


@dataclass
class StreamStatus:
    stream: str
    table: str
    segments: int = 0
    rows: int = 0
    loaded_segments: int | None = None
    loaded_rows: int | None = None
    pending_segments: int | None = None
    pending_rows: int | None = None
    oldest_pending: str | None = None  # created_at of the oldest pending segment
    oldest_pending_age_seconds: float | None = None
    rejects: int = 0
    spool_bytes: int = 0  # committed, unpruned segment files on disk (views.spool_usage)


@dataclass
class StatusReport:
    spool: str
    spool_id: str
    destination: str
    destination_state: DestinationState
    destination_error: str | None = None
    streams: list[StreamStatus] = field(default_factory=list)
    last_load: dict[str, Any] | None = None
    spool_total_bytes: int = 0  # the whole spool directory (views.spool_usage)
    free_bytes: int | None = 0  # left on the spool's filesystem (None: the spool is in a bucket)

    def to_json(self) -> dict[str, Any]:
        return {
            "spool": self.spool,
            "spool_id": self.spool_id,
            "destination": self.destination,
            "destination_state": self.destination_state.value,
            "destination_error": self.destination_error,
            "streams": [vars(s) for s in self.streams],
            "last_load": self.last_load,
            "spool_total_bytes": self.spool_total_bytes,
            "free_bytes": self.free_bytes,
        }


def spool_status(layout: SpoolLayout, destination: DestinationChoice, naming: NamingOptions, log: Log) -> StatusReport:
    """Per stream: spooled, loaded (per ``destination``'s ledger) and pending; ``naming`` gives the table names."""
    manifest = read_manifest(layout)
    dest = destination.open(log)
    ledger: dict[str, LedgerEntry] | None = None
    state, error = DestinationState.REACHABLE, None
    what = f"reading the load ledger of {dest.label}"
    try:
        guarded(dest, what, lambda: dest.connect(Access.READ_ONLY))
        ledger = guarded(dest, what, lambda: dest.read_ledger(manifest.spool_id))
    except DestinationMissing:
        state, ledger = DestinationState.NOT_CREATED, {}
    except (TransientDestinationError, DestinationError) as err:
        # status reports, never fails, for a destination it cannot read: even bad credentials
        state, error = DestinationState.UNREACHABLE, err.detail
    finally:
        dest.close()
    bindings = bind_streams(manifest, dest.rules, naming)  # after connecting: rules may depend on the server

    prev = previous_run(layout)
    report = StatusReport(
        spool=layout.label,
        spool_id=manifest.spool_id,
        destination=dest.label,
        destination_state=state,
        destination_error=error,
        last_load={k: prev.get(k) for k in ("run_id", "state", "started_at", "rows", "segments", "error")} if prev else None,
    )
    from .views import spool_usage  # disk space per stream (ops)

    usage = spool_usage(layout, manifest)
    report.spool_total_bytes, report.free_bytes = usage.total_bytes, usage.free_bytes
    now = time.time()
    for stream, binding in bindings.items():
        segments = manifest.segments(stream)
        s = StreamStatus(
            stream,
            str(binding.table),
            segments=len(segments),
            rows=sum(g.rows for g in segments),
            rejects=count_rejects(layout, stream),
        )
        if stream in usage.streams:
            s.spool_bytes = usage.streams[stream].bytes_on_disk
        if ledger is not None:
            pending = [g for g in segments if g.item not in ledger]
            s.pending_segments, s.pending_rows = len(pending), sum(g.rows for g in pending)
            s.loaded_segments, s.loaded_rows = s.segments - s.pending_segments, s.rows - s.pending_rows
            if pending and pending[0].created_at:
                s.oldest_pending = pending[0].created_at
                s.oldest_pending_age_seconds = round(now - _parse_utc(pending[0].created_at), 1)
        report.streams.append(s)
    return report


def _parse_utc(stamp: str) -> float:
    return float(timegm(time.strptime(stamp.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            return f"{s // size}{unit} {(s % size) // subsize}{sub}"
    return f"{s}s"


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def render_status(report: StatusReport) -> str:
    streams = report.streams
    lines = [
        f"spool {report.spool} (id {report.spool_id}): {len(streams)} stream(s), "
        f"{sum(s.segments for s in streams)} segments, {sum(s.rows for s in streams):,} rows spooled"
    ]
    if report.destination_state is DestinationState.REACHABLE:
        lines.append(f"destination {report.destination}: reachable")
    elif report.destination_state is DestinationState.NOT_CREATED:
        lines.append(f"destination {report.destination}: not created yet (nothing loaded; everything is pending)")
    else:
        lines.append(
            f"destination {report.destination}: UNREACHABLE ({report.destination_error}); "
            "loaded and pending counts are unknown"
        )
    if report.free_bytes is None:
        lines.append(f"spool size: {human_bytes(report.spool_total_bytes)} in the bucket")
    else:
        lines.append(f"spool size: {human_bytes(report.spool_total_bytes)} on disk, {human_bytes(report.free_bytes)} free")
    if report.last_load:
        last = report.last_load
        lines.append(f"last load: run {last['run_id']} started {last['started_at']}, {last['state']}, {last['rows'] or 0:,} rows")
    headers = ("stream", "table", "segments", "rows", "loaded rows", "pending segs", "pending rows", "oldest pending", "rejects", "on disk")
    rows = [
        (
            s.stream,
            s.table,
            _n(s.segments),
            _n(s.rows),
            _n(s.loaded_rows),
            _n(s.pending_segments),
            _n(s.pending_rows),
            _age(s.oldest_pending_age_seconds),
            _n(s.rejects),
            human_bytes(s.spool_bytes),
        )
        for s in streams
    ]
    lines.append("")
    lines.extend(text_table(headers, rows, numeric=set(range(2, 10))))
    return "\n".join(lines)
