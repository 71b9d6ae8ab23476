"""One ingester per spool, across machines: a lease object with an expiry.

The lease is one small JSON object (``_lease.json`` at the spool's root)::

    {"owner": "<uuid of this run>", "host": "...", "pid": 123,
     "expires_at": 1767225600.0, "ttl_seconds": 60, "released": false}

- **acquire**: a conditional create (``If-None-Match: *``). If a lease is
  already there, it is read with its etag; when it has expired (or was
  released, or is our own), it is taken over with a conditional replace on
  that etag, so of two machines stealing at once exactly one wins. A live
  lease held by someone else raises ``SpoolLocked`` naming the holder and
  when it expires.
- **renew**: a conditional replace on the etag of our last write, every
  ``ttl/3`` or so. If it fails, someone took the lease over after it
  expired: ``LeaseLost``, and the ingester must stop before acknowledging
  anything more (its earlier writes are whole objects and stay valid).
- **release**: a conditional replace with ``released: true``, never a plain
  delete, so a release can never remove a lease someone else now holds.

Expiry compares ``expires_at`` (the holder's clock) with the reader's
clock, so clocks must agree within ``skew_seconds`` (default 5 s; NTP keeps
machines far closer). A holder that cannot renew for ``ttl`` seconds (a
paused VM, a network partition) loses the lease; renewing before every
acknowledgement turns that into ``LeaseLost`` rather than two writers.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import SpoolLocked
from .base import Storage
from .errors import ObjectChanged, ObjectExists, ObjectMissing

LEASE_KEY = "_lease.json"


class LeaseLost(SpoolLocked):
    """Another process took over the lease after ours expired."""


@dataclass
class Lease:
    storage: Storage
    owner: str
    ttl_seconds: float
    etag: str = ""
    key: str = LEASE_KEY
    skew_seconds: float = 5.0

    @classmethod
    def acquire(cls, storage: Storage, *, ttl_seconds: float = 60.0, owner: str | None = None,
                key: str = LEASE_KEY, skew_seconds: float = 5.0, now: float | None = None) -> Lease:
        lease = cls(storage, owner or uuid.uuid4().hex, ttl_seconds, key=key, skew_seconds=skew_seconds)
        lease._acquire(time.time() if now is None else now)
        return lease

    def _body(self, now: float, released: bool = False) -> bytes:
        return json.dumps({
            "owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
            "expires_at": 0.0 if released else now + self.ttl_seconds,
            "ttl_seconds": self.ttl_seconds, "released": released,
        }, sort_keys=True).encode()

    def _acquire(self, now: float) -> None:
        try:
            self.etag = self.storage.put_if_absent(self.key, self._body(now)).etag
            return
        except ObjectExists:
            pass
        try:
            raw, info = self.storage.get(self.key)
        except ObjectMissing:
            return self._acquire(now)  # released and deleted by hand meanwhile: try the create again
        held = _parse(raw)
        free = held.get("released") or held.get("owner") == self.owner or \
            now > float(held.get("expires_at", 0)) + self.skew_seconds
        if not free:
            raise SpoolLocked(
                f"{self.storage.describe(self.key)}: another ingester holds this spool "
                f"(host {held.get('host')}, pid {held.get('pid')}, lease expires in "
                f"{max(0.0, float(held.get('expires_at', 0)) - now):.0f} s unless renewed)",
                hint="run one ingester per spool; if that process is gone, run again after the lease expires",
            )
        try:
            self.etag = self.storage.replace_if(self.key, self._body(now), info.etag).etag
        except ObjectChanged:
            raise SpoolLocked(f"{self.storage.describe(self.key)}: another ingester took this spool's "
                              "expired lease at the same moment", hint="run one ingester per spool") from None

    def renew(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        try:
            self.etag = self.storage.replace_if(self.key, self._body(now), self.etag).etag
        except (ObjectChanged, ObjectMissing):
            raise LeaseLost(
                f"{self.storage.describe(self.key)}: this ingester's lease expired and another one took "
                "the spool over", hint="stop: what was acknowledged is stored; the other ingester goes on") from None

    def release(self) -> None:
        try:
            self.etag = self.storage.replace_if(self.key, self._body(time.time(), released=True), self.etag).etag
        except (ObjectChanged, ObjectMissing):
            pass  # already taken over: it is not ours to release


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}  # unreadable: treated as expired (expires_at 0), so a stuck spool can be taken over
    return value if isinstance(value, dict) else {}
