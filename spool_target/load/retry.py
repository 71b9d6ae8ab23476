"""When to try again: exponential backoff with full jitter, within a time budget.

Only the *policy* lives here. Whether an error is transient is the
destination's call (``Destination.classify``); what to retry is the engine's.

An outage's budget starts at its first failure and is reset by any success,
so a long load survives several short outages, and one outage longer than
``max_wait`` seconds ends the load (exit 75, resume later).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable


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
