"""When to try again, and what a destination's native error means: the one
retry-and-translate helper of every command that talks to a destination.

``Backoff`` is the policy: exponential backoff with full jitter, within a
time budget. ``guarded`` runs one destination call and turns its native
errors into ours, as the destination classifies them (``Destination.classify``):
``TransientDestinationError`` (retry), ``DestinationError`` (permanent) or
``KeyboardInterrupt`` (the user's Ctrl-C reached the database call); anything
the destination does not recognise is a bug and propagates unchanged.
``with_retries`` retries a callable through transient errors until the
budget is spent. The engine, the ledger reader, ``check`` and ``status``
use these; none has a loop or a classification of its own.

An outage's budget starts at its first failure and is reset by any success,
so a long load survives several short outages, and one outage longer than
``max_wait`` seconds ends the load (exit 75, resume later).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from ..errors import DestinationError, SpoolTargetError, TransientDestinationError
from .destination import Destination, FailureKind

T = TypeVar("T")


@dataclass
class Backoff:
    max_wait: float  # seconds one outage may last before we give up
    base: float = 0.25  # first delay (before jitter)
    cap: float = 15.0  # no single delay longer than this
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0
    _outage_started: float | None = None

    def reset(self) -> None:
        """Something succeeded: the next failure starts a new outage."""
        self.attempts = 0
        self._outage_started = None

    @property
    def waited(self) -> float:
        return 0.0 if self._outage_started is None else self.clock() - self._outage_started

    def next_delay(self) -> float | None:
        """Seconds to sleep before the next attempt, or None when the budget is spent."""
        now = self.clock()
        if self._outage_started is None:
            self._outage_started = now
        remaining = self.max_wait - (now - self._outage_started)
        if remaining <= 0:
            return None
        ceiling = min(self.cap, self.base * (2**self.attempts))
        self.attempts += 1
        # Full jitter (AWS architecture blog): spreads out many loaders
        # retrying against one database after it comes back. Never below a
        # small floor, so a tight loop cannot hammer a busy lock.
        delay = max(0.05, self.rng.uniform(0, ceiling))
        return min(delay, remaining)


def first_line(exc: BaseException) -> str:
    """The first line of a native error's text (drivers append pages of context), or its type."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def guarded(dest: Destination, what: str, fn: Callable[[], T]) -> T:
    """Run a destination call; turn its native errors into ours, classified. ``what`` names the step."""
    try:
        return fn()
    except SpoolTargetError:
        raise
    except Exception as exc:
        failure = dest.classify(exc)
        if failure is None:
            raise  # not a database error: a bug, reported with its traceback
        if failure.kind is FailureKind.INTERRUPTED:
            raise KeyboardInterrupt(what) from exc
        detail = first_line(exc)
        if failure.kind is FailureKind.TRANSIENT:
            why = f" ({failure.hint})" if failure.hint else ""  # e.g. Oracle's DPY-6005 says "cannot connect", not why
            raise TransientDestinationError(f"{what}: {detail}{why}", detail=detail) from exc
        raise DestinationError(f"{what} failed: {detail}", hint=failure.hint, detail=detail) from exc


def with_retries(
    fn: Callable[[], T],
    backoff: Backoff,
    *,
    gave_up: Callable[[TransientDestinationError], BaseException],
    retrying: Callable[[TransientDestinationError, float], None],
    sleep: Callable[[float], None] = time.sleep,
    after_failure: Callable[[], None] = lambda: None,
) -> T:
    """``fn()``, again after each transient error (``after_failure`` first, then
    ``retrying`` is told the delay), until ``backoff``'s budget is spent: then
    the exception ``gave_up`` makes is raised."""
    while True:
        try:
            return fn()
        except TransientDestinationError as err:
            after_failure()
            delay = backoff.next_delay()
            if delay is None:
                raise gave_up(err) from err
            retrying(err, delay)
            sleep(delay)
