"""Every error spool-target raises on purpose, and the exit code each maps to.

The library raises these; only the CLI turns them into exit codes (see
``ExitCode``), so a pipeline can tell "fix your input" from "the database is
down, run ``load --resume`` later" without parsing messages.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1  # a bug: please report it with the log
    USAGE = 2  # bad flags or config (typer uses 2 for usage errors too)
    BAD_INPUT = 3  # malformed Singer input; data before it is safe
    REJECTS = 4  # more rejected records than `max_rejects` allows
    SPOOL = 5  # spool problem: disk full, unwritable, locked, corrupt segment
    DESTINATION = 6  # permanent destination error: credentials, privileges, quota
    UNAVAILABLE = 75  # destination unavailable (EX_TEMPFAIL): nothing lost, resume later
    INTERRUPTED = 130  # Ctrl-C / SIGINT (128 + 2): what was committed stays committed


class SpoolTargetError(Exception):
    """Base class. ``str(err)`` is the full user-facing message."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class ConfigError(SpoolTargetError):
    exit_code = ExitCode.USAGE


class InputError(SpoolTargetError):
    """The Singer input is malformed at a given line."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, line: int | None = None, hint: str | None = None):
        self.line = line
        prefix = f"input line {line}: " if line is not None else ""
        super().__init__(prefix + message, hint=hint)


class TooManyRejects(SpoolTargetError):
    exit_code = ExitCode.REJECTS


class SpoolError(SpoolTargetError):
    """The spool cannot be written or read as needed."""

    exit_code = ExitCode.SPOOL


class SpoolLocked(SpoolError):
    pass


class SegmentCorrupt(SpoolError):
    """A committed segment is missing or does not match its manifest entry."""


class DestinationError(SpoolTargetError):
    """A permanent destination error: retrying will not help."""

    exit_code = ExitCode.DESTINATION

    def __init__(self, message: str, *, hint: str | None = None, detail: str = ""):
        super().__init__(message, hint=hint)
        self.detail = detail or message  # the database's own first line, for reports that name the step themselves


class TransientDestinationError(SpoolTargetError):
    """The destination is unreachable or busy for now: retry with backoff."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, hint: str | None = None, detail: str = ""):
        super().__init__(message, hint=hint)
        self.detail = detail or message  # the database's own first line, for reports that name the step themselves


class DestinationUnavailable(SpoolTargetError):
    """Retries ran out. Everything not loaded is still pending in the spool."""

    exit_code = ExitCode.UNAVAILABLE
