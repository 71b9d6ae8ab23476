"""One JSON summary per ingest run in ``<spool>/runs/`` (loads write theirs in load/report.py).

``runs/ingest-<run_id>.json`` holds ``IngestSummary.to_json()`` plus how the
run ended (``state``: succeeded or failed, and the error), so a person or a
scheduler can see what each run did without parsing logs.
"""

from __future__ import annotations

from typing import Callable

import orjson

from ..durable import write_atomic
from ..errors import SpoolTargetError
from ..logs import Log
from .ingest import IngestOptions, Ingester, IngestSummary
from .manifest import utc_now_iso


def ingest_with_run_file(
    options: IngestOptions,
    log: Log,
    input_fd: int,
    out: Callable[[bytes], None],
    progress: Callable[[int, IngestSummary], None] | None = None,
    publish: Callable[[], object] | None = None,
) -> IngestSummary:
    """``spool.ingest.ingest``, plus the run file, written whether the run succeeds or fails.
    ``publish``: a bucket spool's publisher (see ``Ingester``)."""
    ingester = Ingester(options, log, out, progress, publish)
    started_at = utc_now_iso()
    try:
        summary = ingester.run(input_fd)
    except BaseException as err:
        _write(ingester, started_at, "failed", log.scrub(str(err)))
        raise
    _write(ingester, started_at, "succeeded", None)
    return summary


def _write(ingester: Ingester, started_at: str, state: str, error: str | None) -> None:
    layout = ingester.layout
    if not layout.exists():
        return  # the spool was never created (unwritable, say): nowhere to put it
    data = {**ingester.summary.to_json(), "spool": str(layout.root), "started_at": started_at, "state": state, "error": error}
    try:
        write_atomic(layout.runs / f"ingest-{ingester.run_id}.json", ingester.log.dumps(data, option=orjson.OPT_INDENT_2))
    except SpoolTargetError as err:
        if error is None:
            raise
        ingester.log.warning(f"could not write the run file: {err.message}")  # never hide the run's own error
