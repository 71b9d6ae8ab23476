"""Where a spool lives: a local directory or an object store prefix.

A core-level package: it imports only ``spool_target.errors``,
``spool_target.durable``, the stdlib and ``obstore``. Ingest and load do not
use it yet (issue 11, step one); see the README section "Spools on object
storage (in progress)".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import CleanupReport, ObjectInfo, Storage, Upload
from .errors import (
    ObjectChanged,
    ObjectExists,
    ObjectMissing,
    StorageAccessDenied,
    StorageConfigError,
    StorageError,
    StorageNotFound,
    StorageUnavailable,
)
from .lease import Lease, LeaseLost
from .local import LocalStorage
from .location import Location, is_remote, parse_location, scrub


def open_storage(spool: str, storage_options: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None) -> Storage:
    """The storage for ``--spool``: ``s3://``, ``gs://``, ``az://`` or a local path."""
    loc = parse_location(spool, storage_options, env)
    if loc.scheme == "file":
        return LocalStorage(loc.path)
    from .objectstore import ObjectStoreStorage  # keeps obstore unloaded for local spools

    return ObjectStoreStorage(loc)


__all__ = [
    "CleanupReport", "Lease", "LeaseLost", "LocalStorage", "Location", "ObjectChanged", "ObjectExists",
    "ObjectInfo", "ObjectMissing", "Storage", "StorageAccessDenied", "StorageConfigError", "StorageError",
    "StorageNotFound", "StorageUnavailable", "Upload", "is_remote", "open_storage", "parse_location", "scrub",
]
