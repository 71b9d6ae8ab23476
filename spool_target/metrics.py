"""Singer SDK style METRIC log lines, for dashboards that already parse them.

Each line is ``Log.metric(type, metric, value, **tags)``: counters
(``record_count``, ``rejected_count``, ``segment_count``) and timers
(``sync_duration``, seconds) tagged with the stream and the phase
(``ingest`` or ``load``). Duck-typed on the summaries, so ingest never
imports the load package (I3).
"""

from __future__ import annotations

from typing import Any

from .logs import Log


def ingest_metrics(log: Log, summary: Any) -> None:
    """Per stream: records read, rows committed, records rejected, segments; then the run's duration."""
    for stream, s in summary.streams.items():
        log.metric("counter", "record_count", s.records, stream=stream, phase="ingest")
        log.metric("counter", "row_count", s.rows, stream=stream, phase="ingest")
        log.metric("counter", "rejected_count", s.rejected, stream=stream, phase="ingest")
        log.metric("counter", "segment_count", s.segments, stream=stream, phase="ingest")
    log.metric("timer", "sync_duration", round(summary.seconds, 3), phase="ingest", status="succeeded", run_id=summary.run_id)


def load_metrics(log: Log, report: Any) -> None:
    """Per stream: rows and segments loaded and the time spent; then the run's duration."""
    for stream, s in report.streams.items():
        if not (s.rows or s.segments):
            continue
        log.metric("counter", "record_count", s.rows, stream=stream, phase="load", table=s.table)
        log.metric("counter", "segment_count", s.segments, stream=stream, phase="load")
        log.metric("timer", "sync_duration", round(s.seconds, 3), stream=stream, phase="load", status=s.outcome.value)
    log.metric("timer", "sync_duration", round(report.seconds, 3), phase="load", status=report.state.value, run_id=report.run_id)
