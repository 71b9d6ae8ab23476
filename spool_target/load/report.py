"""What a load did: named outcomes per stream and per run, and the run file.

Each load writes ``<spool>/runs/load-<run_id>.json`` when it starts (state
``running``) and again when it ends, so the next ``load --resume`` (and
``status``, when the destination is unreachable) can say how the previous
run ended -- a run that still says ``running`` was killed.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..durable import write_atomic
from ..logs import Log
from ..spool.layout import SpoolLayout


class RunState(enum.Enum):
    RUNNING = "running"  # still on the disk after the run: it was killed
    SUCCEEDED = "succeeded"  # everything pending was loaded
    PARTIAL = "partial"  # some stream stopped at a missing or corrupt segment (exit 5)
    UNAVAILABLE = "unavailable"  # the destination stayed down past max_wait (exit 75)
    FAILED = "failed"  # a permanent destination error or a bug (exit 6 or 1)


class StreamOutcome(enum.Enum):
    WAITING = "waiting"  # not reached yet (or the run stopped before it)
    NOTHING_PENDING = "nothing pending"
    LOADED = "loaded"  # every pending item is in the ledger now
    STOPPED = "stopped"  # at a missing or corrupt segment; later items wait (I6)


@dataclass
class StreamReport:
    stream: str
    table: str
    outcome: StreamOutcome = StreamOutcome.WAITING
    segments_before: int = 0  # loaded by earlier runs
    rows_before: int = 0
    pending_segments: int = 0  # at the start of this run
    pending_rows: int = 0
    segments: int = 0  # loaded by this run
    rows: int = 0
    activations: int = 0  # ACTIVATE_VERSIONs applied by this run
    superseded: int = 0  # overwrite: segments of older runs this run recorded as superseded (never loaded)
    waiting: int = 0  # overwrite: segments of runs that have not ended, left pending
    rejected: int = 0  # records in the spool's rejects files for this stream
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "outcome": self.outcome.value, "seconds": round(self.seconds, 3)}


@dataclass
class LoadReport:
    run_id: str
    spool: str
    destination: str
    mode: str
    state: RunState = RunState.RUNNING
    started_at: str = ""
    seconds: float = 0.0
    streams: dict[str, StreamReport] = field(default_factory=dict)
    swept: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams.values())

    @property
    def segments(self) -> int:
        return sum(s.segments for s in self.streams.values())

    @property
    def stopped(self) -> list[StreamReport]:
        return [s for s in self.streams.values() if s.outcome is StreamOutcome.STOPPED]

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "load",
            "run_id": self.run_id,
            "spool": self.spool,
            "destination": self.destination,
            "mode": self.mode,
            "state": self.state.value,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "segments": self.segments,
            "swept": self.swept,
            "error": self.error,
            "streams": {k: v.to_json() for k, v in self.streams.items()},
        }


def new_run_id() -> str:
    """UTC start time to the millisecond, then random: run files sort by start."""
    import uuid

    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z-" + uuid.uuid4().hex[:6]


def run_file(layout: SpoolLayout, run_id: str) -> Path:
    return layout.runs / f"load-{run_id}.json"


def write_run_file(layout: SpoolLayout, report: LoadReport, log: Log) -> None:
    # The temp file goes next to the run file, not in tmp/: a starting ingest
    # empties tmp/ and may run at the same time as a load. Errors quote the
    # driver, which may quote a connect string: scrubbed before encoding (I7).
    write_atomic(run_file(layout, report.run_id), log.dumps(report.to_json(), option=orjson.OPT_INDENT_2))


def previous_run(layout: SpoolLayout) -> dict[str, Any] | None:
    """The newest load run file (run ids start with their UTC start time)."""
    files = sorted(layout.runs.glob("load-*.json"))
    for path in reversed(files):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # unreadable: try an older one; this is only for reporting
        if isinstance(data, dict):
            return data
    return None
