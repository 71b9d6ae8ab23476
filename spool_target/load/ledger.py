"""One read of a destination's ledger, for the commands that only look at it.

``sql``, ``inspect``, ``verify`` and ``prune`` need to know which segments
the configured destination holds; none of them may create or change
anything there, so the destination is opened read-only. What came back is a
named state: read, never created (nothing loaded yet), or unreachable (down,
or a DuckDB file locked by a running load). ``prune`` waits through a short
outage (``max_wait``) and then refuses to guess; the others say "unknown".
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import TransientDestinationError
from ..logs import Log
from ..spool.manifest import utc_now_iso
from .destination import (
    SEGMENT_LEDGER_KINDS,
    Access,
    DestinationChoice,
    DestinationMissing,
    LedgerEntry,
)
from .retry import Backoff, guarded, with_retries


class DestinationState(enum.Enum):
    REACHABLE = "reachable"
    NOT_CREATED = "not created"  # never loaded into: everything is pending
    UNREACHABLE = "unreachable"  # loaded/pending unknown; see last_load


@dataclass
class LedgerSnapshot:
    destination: str  # label, never holds a secret
    state: DestinationState
    entries: dict[str, LedgerEntry] = field(default_factory=dict)  # {} unless REACHABLE
    error: str | None = None
    read_at: str = ""

    @property
    def known(self) -> bool:
        """Whether loaded/pending can be told for this destination."""
        return self.state is not DestinationState.UNREACHABLE

    def confirms(self, path: str, rows: int) -> bool:
        """The ledger lists this segment (loaded, or superseded), with the manifest's row count."""
        entry = self.entries.get(path)
        return entry is not None and entry.kind in SEGMENT_LEDGER_KINDS and entry.rows == rows


def read_ledger_snapshot(
    choice: DestinationChoice,
    spool_id: str,
    log: Log,
    *,
    max_wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> LedgerSnapshot:
    """The destination's ledger entries for this spool, read-only.

    Transient failures (down, locked) are retried for ``max_wait`` seconds,
    then give UNREACHABLE. A permanent one (bad credentials) raises
    DestinationError with the destination's advice.
    """
    dest = choice.open(log)
    backoff = Backoff(max_wait, cap=5.0)
    what = f"reading the load ledger of {dest.label}"

    def read() -> LedgerSnapshot:
        try:
            guarded(dest, what, lambda: dest.connect(Access.READ_ONLY))
            entries = guarded(dest, what, lambda: dest.read_ledger(spool_id))
            return LedgerSnapshot(dest.label, DestinationState.REACHABLE, entries, read_at=utc_now_iso())
        except DestinationMissing:
            return LedgerSnapshot(dest.label, DestinationState.NOT_CREATED, read_at=utc_now_iso())
        finally:
            dest.close()

    def retrying(err: TransientDestinationError, delay: float) -> None:
        log.warning(f"destination busy or unavailable, retrying in {delay:.1f}s: {err.detail}", destination=dest.label)

    try:
        return with_retries(read, backoff, gave_up=_GaveUp, retrying=retrying, sleep=sleep)
    except _GaveUp as gone:
        return LedgerSnapshot(dest.label, DestinationState.UNREACHABLE, error=gone.detail, read_at=utc_now_iso())


class _GaveUp(Exception):
    """The retry budget ran out: the snapshot says UNREACHABLE instead of failing."""

    def __init__(self, err: TransientDestinationError):
        super().__init__(err.message)
        self.detail = err.detail
