"""Crash points for the fault-injection tests, read in one place.

``SPOOL_TARGET_TEST_CRASH_AT=<point>[:<n>]`` makes the process SIGKILL
itself the n-th time (default: the first) it reaches that point. Unset
(always, outside tests) a check costs one string comparison, and the
checks sit only at commit boundaries, never in per-record loops.

``SPOOL_TARGET_TEST_STOP_AT=<point>`` makes it SIGSTOP itself there instead,
so a test can hold it at that instant (a prune holding the manifest, say) and
let it go on with SIGCONT.
"""

from __future__ import annotations

import os
import signal

_ENV = "SPOOL_TARGET_TEST_CRASH_AT"
_point, _, _count = os.environ.get(_ENV, "").rpartition(":")
if not _count.isdigit():  # no count given: the whole value names the point
    _point, _count = os.environ.get(_ENV, ""), ""
_remaining = int(_count) if _count else 1


def reached(name: str) -> bool:
    """Count one pass through ``name``; True when this pass is the chosen one."""
    global _remaining
    if not _point or name != _point:
        return False
    _remaining -= 1
    return _remaining == 0


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_point(name: str) -> None:
    if reached(name):
        die()


_STOP_AT = os.environ.get("SPOOL_TARGET_TEST_STOP_AT", "")


def stop_point(name: str) -> None:
    if _STOP_AT and name == _STOP_AT:
        os.kill(os.getpid(), signal.SIGSTOP)
