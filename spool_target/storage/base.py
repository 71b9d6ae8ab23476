"""What a spool needs from the place it lives, and nothing more.

Keys are ``/``-separated paths relative to the spool's root (``manifest/
000000000042.json``, ``streams/orders/seg-....parquet``). Every write is
atomic: a reader sees the whole object or none of it. There is no rename and
no append, because object stores have neither; what a spool needs instead:

- ``put_if_absent``: a conditional create (``If-None-Match: *``). The way a
  manifest entry or a lease is written so that no writer can overwrite
  another's and none can be torn.
- ``replace_if``: a conditional replace on the version (etag) read before;
  how a lease is renewed or taken over.
- ``upload``: a streaming upload for large segments, invisible until
  ``complete()`` returns, aborted when the ``with`` block fails.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from types import TracebackType

from .errors import ObjectMissing


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class CleanupReport:
    """What ``cleanup_abandoned_uploads`` removed, and what it had to leave to the store."""

    removed: tuple[str, ...]
    note: str = ""


class Upload(abc.ABC):
    """A streaming upload: ``write`` chunks, then ``complete``. Use it as a
    context manager: leaving the block by an exception aborts the upload, and
    leaving it without ``complete()`` aborts it too (nothing half-written is
    ever published)."""

    def __init__(self, key: str):
        self.key = key
        self.done = False

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abc.abstractmethod
    def complete(self) -> ObjectInfo: ...

    @abc.abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Upload:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.done:
            self.abort()


class Storage(abc.ABC):
    """One spool's root: a local directory or a bucket/container prefix."""

    #: what to show a user: the URL, never a credential
    url: str

    def describe(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` at ``key`` atomically and durably, replacing any object."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        """Create ``key`` only if nothing is there; else raise ``ObjectExists``.

        A retried request whose first attempt was stored (its answer lost)
        finds its own bytes: that counts as success, so ``data`` must be unique
        to the writer (name the writer in it) for the check to be sound."""

    @abc.abstractmethod
    def replace_if(self, key: str, data: bytes, etag: str) -> ObjectInfo:
        """Replace ``key`` only if its current etag is ``etag``; else raise ``ObjectChanged``."""

    @abc.abstractmethod
    def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The object's bytes and the version they belong to. ``ObjectMissing`` if absent."""

    @abc.abstractmethod
    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object)."""

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every committed object whose key starts with ``prefix``, sorted by key.
        Uploads in progress or abandoned are never listed."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error (deletes are retried)."""

    @abc.abstractmethod
    def upload(self, key: str, *, part_size: int = 16 * 1024 * 1024) -> Upload: ...

    @abc.abstractmethod
    def cleanup_abandoned_uploads(self, older_than_seconds: float) -> CleanupReport:
        """Remove what uploads killed before completing left behind."""

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectMissing:
            return False
        return True
