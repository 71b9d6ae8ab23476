"""The errors of the storage layer, split the way a caller must act on them.

Transient (``StorageUnavailable``): the store refused connections, answered
5xx or throttled (503 SlowDown) through every bounded retry. Nothing was
stored that was not acknowledged, so running again later is the fix; it
maps to the same exit code as an unavailable destination (75).

Permanent (``StorageAccessDenied``, ``StorageNotFound``, ``StorageConfigError``):
retrying cannot help; the message says what to change.

Outcomes a caller expects and handles (``ObjectExists``, ``ObjectChanged``,
``ObjectMissing``) are ``SpoolError``s too, so an unhandled one still exits
with the spool's code and a message naming the object.
"""

from __future__ import annotations

from ..errors import ConfigError, ExitCode, SpoolError


class StorageError(SpoolError):
    """A spool storage operation failed. ``str(err)`` names the object."""


class StorageUnavailable(StorageError):
    """Bounded retries ran out against a store that is down, failing or throttling."""

    exit_code = ExitCode.UNAVAILABLE


class StorageAccessDenied(StorageError):
    """The store refused the credentials: wrong, expired or lacking permission."""


class StorageNotFound(StorageError):
    """The bucket or container itself does not exist."""


class StorageConfigError(ConfigError):
    """A spool URL or a ``storage_options`` key that cannot be used."""


class ObjectMissing(StorageError):
    """The object does not exist."""


class ObjectExists(StorageError):
    """A conditional create lost: another writer stored this key first."""


class ObjectChanged(StorageError):
    """A conditional replace lost: the object is no longer the version we read."""
