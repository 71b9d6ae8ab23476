"""A spool in a bucket (``s3://``, ``gs://``, ``az://``): the bucket holds the
truth, and every command works on a local *replica* of it.

Every command knows how to work on a spool directory, so a bucket spool is
one: a replica on local disk that this module keeps in step with the bucket.
Nothing else in ingest, load or ops changes. In the bucket, under the prefix::

    manifest/000000000000.jsonl     the manifest, as numbered batches: one header line
    manifest/000000000001.jsonl     (batch number, writer, entry count), then the entries
    streams/<dir>/<n>-<id>.parquet  segments, with the same keys as on disk
    rejects/<dir>/<run>.jsonl       reject files, as on disk
    replays/...                     `rejects replay`'s plans and journal, as on disk
    runs/ingest-<run>.json          each ingest's summary
    _lease.json                     who may write (storage/lease.py)

**Writing** (``ingest``, ``prune``, ``rejects replay``) needs the lease, so
there is one writer per spool across machines. The writer works on its
replica as on any spool; after each commit (a segment, an ACTIVATE_VERSION, a
STATE), ``publish`` uploads the side files that changed (reject files, replay
plans and journals), then every segment the new entries name, then the new
entries as the next batch, created with ``put_if_absent``. A STATE is
released only after the batch holding it is stored (I1).
The batch number is the commit point: a writer that lost its lease and
still tries to write batch N finds it taken and stops (``LeaseLost``); it
can never interleave entries with the new holder.

**Reading** (``load``, ``status``, ``sql``, ...): ``sync`` lists
``manifest/``, appends the batches the replica lacks to its manifest,
stopping at the first missing number, downloads the segments the replica
lacks, and makes its side files the bucket's. It keeps ``replica.json``: how many
batches and manifest bytes it holds. Local lines beyond them were never
published (a writer that died before its batch went up) and are cut.

**Crashes** (I2). A segment uploaded but never named by a batch is an
orphan: the next writer deletes it under the lease, and never a reader. An
upload killed midway is never listed (the store keeps its parts until a
lifecycle rule removes them on S3, 7 days on Azure). A batch is one object,
whole or absent.

This module never imports a destination driver (I3).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..durable import DurableAppender, describe_os_error, make_dirs, truncate_durably, write_atomic
from ..errors import SpoolError
from ..faults import crash_point
from ..logs import Log
from ..storage import Lease, LeaseLost, ObjectExists, Storage, StorageError
from .entries import Segment, entry_from_json
from .layout import REJECTS, RUNS, STREAMS, SpoolLayout, SpoolLock
from .manifest import read_manifest
from .rejects import REPLAYS

BATCHES = "manifest/"
#: files beside the manifest that readers need, published before the batches that follow them
SIDE_DIRS = (REJECTS, REPLAYS)
STATE_FILE = "replica.json"
#: segments up to this size go up in one request; larger ones as a multipart upload
SINGLE_PUT_BYTES = 32 * 1024 * 1024
#: how long a writer's lease lasts unless renewed (renewed every third of it)
LEASE_SECONDS = 60.0
_BATCH_KEY = re.compile(r"^manifest/(\d{12})\.jsonl$")


def batch_key(n: int) -> str:
    return f"{BATCHES}{n:012d}.jsonl"


def replica_root(url: str, base: str, role: str) -> Path:
    """Where the replica of the spool at ``url`` lives on this machine.

    ``base`` is the ``replica_dir`` setting; empty means the user's cache
    directory. Readers and the writer keep separate replicas (``read``,
    ``write``), so that an ingest and a ``load --follow`` on one machine never
    share a manifest file."""
    if base:
        root = Path(base)
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1]).strip("._")[:60]
        root = cache / "spool-target" / "replicas" / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    return root / role


@dataclass
class ReplicaState:
    """What of the bucket's manifest the replica holds: the first ``batches``
    batches, which are the first ``manifest_bytes`` bytes of its manifest."""

    url: str
    batches: int = 0
    manifest_bytes: int = 0
    # side file key (rejects/..., replays/...) -> the size the bucket has, as far as this replica knows
    side_files: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path, url: str) -> ReplicaState:
        try:
            data = orjson.loads((root / STATE_FILE).read_bytes())
        except (OSError, ValueError):
            return cls(url)
        if not isinstance(data, dict) or data.get("url") != url:
            return cls(url)  # another spool's replica, or damaged: rebuilt from the bucket
        return cls(url, int(data.get("batches", 0)), int(data.get("manifest_bytes", 0)), dict(data.get("side_files", {})))

    def write(self, root: Path) -> None:
        write_atomic(root / STATE_FILE, orjson.dumps(asdict(self)))


class BucketSpool:
    """One bucket spool and this machine's replica of it, in one role (``read`` or ``write``)."""

    def __init__(self, storage: Storage, root: Path, log: Log | None = None):
        self.storage = storage
        self.layout = SpoolLayout(root, replica_of=storage.url)
        self.log = log
        self.url = storage.url
        self._held = False  # the replica lock is held by ``writing``

    # ----- reading --------------------------------------------------------------
    def sync(self, *, segments: bool = True, side_files: bool = True) -> None:
        """Bring the replica up to the bucket: manifest batches, then (if asked) the
        segments it names and the side files (``rejects/``, ``replays/``), which are
        made exactly the bucket's. Under a local lock, so that two commands on one
        machine never write the replica at once."""
        with self._replica_lock():
            state = self._trimmed_state()
            for n, body in self._new_batches(state):
                lines = _batch_entries(body, self.storage.describe(batch_key(n)), n)
                with DurableAppender(self.layout.manifest) as appender:
                    appender.append(lines)
                state.batches, state.manifest_bytes = n + 1, state.manifest_bytes + len(lines)
            if side_files:
                state.side_files = self._mirror_side_files()
            state.write(self.layout.root)
            if segments and self.layout.exists():
                self._fetch_segments()

    def require(self) -> None:
        """Refuse a bucket prefix that holds no spool (exit 5), after a ``sync``."""
        if not self.layout.exists():
            raise SpoolError(f"no spool at {self.url} (no manifest batches under manifest/)",
                             hint="run `spool-target ingest` first, or pass the right --spool / spool_dir")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the replica for a writer (prune, replay) from its sync to its last
        publish: a reader's sync on this machine would otherwise cut the entries the
        writer appended before it published them."""
        with self._replica_lock():
            self._held = True
            try:
                yield
            finally:
                self._held = False

    @contextmanager
    def _replica_lock(self) -> Iterator[None]:
        if self._held:
            yield
            return
        make_dirs(self.layout.root)
        lock = SpoolLock(self.layout.root / "replica.lock", "replica sync").acquire(wait_seconds=600)
        try:
            yield
        finally:
            lock.release()

    def _trimmed_state(self) -> ReplicaState:
        """The replica's state, with its manifest cut to exactly what the bucket
        holds (or removed, to be rebuilt, when the two cannot be matched)."""
        state = ReplicaState.read(self.layout.root, self.url)
        path = self.layout.manifest
        size = path.stat().st_size if path.exists() else 0
        if size == state.manifest_bytes:
            return state
        if size > state.manifest_bytes and state.batches:
            if self.log is not None:
                self.log.warning("cutting manifest entries the bucket never received (a writer stopped before "
                                 "publishing them); their records were never acknowledged", spool=self.url)
            truncate_durably(path, state.manifest_bytes, "cutting")
            return state
        # Shorter than the state says, or a state without a manifest: start over.
        _unlink(path)
        return ReplicaState(self.url)

    def _new_batches(self, state: ReplicaState) -> list[tuple[int, bytes]]:
        numbers = sorted(int(m.group(1)) for o in self.storage.list(BATCHES) if (m := _BATCH_KEY.match(o.key)))
        present = set(numbers)
        if state.batches and state.batches - 1 not in present:
            raise SpoolError(
                f"{self.url}: the bucket no longer holds manifest batch {state.batches - 1}, which this machine's "
                f"replica ({self.layout.root}) was built from",
                hint="the spool was deleted or replaced in the bucket; remove the replica directory and run again",
            )
        out: list[tuple[int, bytes]] = []
        n = state.batches
        while n in present:  # a missing number is a batch in flight: stop before it
            body, _ = self.storage.get(batch_key(n))
            out.append((n, body))
            n += 1
        return out

    def _fetch_segments(self) -> None:
        manifest = read_manifest(self.layout)
        pruned = manifest.pruned
        for seg in manifest.segments():
            local = self.layout.root / seg.path
            if seg.path in pruned:
                _unlink(local)  # loaded and pruned: nothing reads it any more
                continue
            if local.exists() and local.stat().st_size == seg.bytes:
                continue
            data, _ = self.storage.get(seg.path)
            write_atomic(local, data, self.layout.tmp)

    def _mirror_side_files(self) -> dict[str, int]:
        """Make the replica's reject files and replay journals the bucket's: fetch what
        differs, remove what the bucket does not have (a writer's unpublished lines)."""
        present: dict[str, int] = {}
        for folder in SIDE_DIRS:
            for obj in self.storage.list(folder + "/"):
                present[obj.key] = obj.size
                local = self.layout.root / obj.key
                if local.exists() and local.stat().st_size == obj.size:
                    continue
                data, _ = self.storage.get(obj.key)
                write_atomic(local, data, self.layout.tmp)
        for key in _side_files(self.layout.root):
            if key not in present:
                _unlink(self.layout.root / key)
        return present

    def forget_side_files(self) -> None:
        """A new ingest's writer replica: drop side files a dead writer left (an ingest
        writes reject files of its own run only, so it needs none of them)."""
        for key in _side_files(self.layout.root):
            _unlink(self.layout.root / key)
        state = ReplicaState.read(self.layout.root, self.url)
        state.side_files = {}
        state.write(self.layout.root)

    # ----- writing --------------------------------------------------------------
    def take_lease(self) -> LeaseKeeper:
        """The writer's lease, renewed in the background while held. A writer that
        dies holds it until it lapses (``LEASE_SECONDS``): the next one is refused
        until then, with the time left in the message."""
        ttl = float(os.environ.get("SPOOL_TARGET_TEST_LEASE_SECONDS") or LEASE_SECONDS)  # crash tests shorten it
        return LeaseKeeper(Lease.acquire(self.storage, ttl_seconds=ttl, skew_seconds=min(5.0, ttl)), self.log)

    def publisher(self, keeper: LeaseKeeper, writer: str, *, keep_segments: bool = False) -> Publisher:
        return Publisher(self, keeper, writer, keep_segments=keep_segments)

    def delete_orphans(self) -> list[str]:
        """Delete segment objects no live manifest entry names: uploads whose batch
        never went up (a crash), and pruned segments whose delete a crash cut short.
        Only the lease holder may call this (nobody else uploads)."""
        manifest = read_manifest(self.layout)
        live = {s.path for s in manifest.segments()} - manifest.pruned
        removed = []
        for obj in self.storage.list(STREAMS + "/"):
            if obj.key not in live:
                self.storage.delete(obj.key)
                removed.append(obj.key)
        if removed and self.log is not None:
            self.log.warning(f"deleted {len(removed)} segment object(s) that no manifest entry names (uploads a "
                             "crash cut off before their commit, or pruned segments); their records were never "
                             "acknowledged or are already loaded", spool=self.url)
        return removed

    def keep_run_files(self) -> None:
        """Move the writer's run summaries (``runs/ingest-*.json``) to the bucket, where they
        outlive the machine. A summary that cannot be stored stays in the replica, with a
        warning: it never fails the run, nor hides the error a failed run is ending with."""
        for path in sorted(self.layout.runs.glob("ingest-*.json")):
            try:
                self.storage.put(f"{RUNS}/{path.name}", path.read_bytes())
            except StorageError as err:
                if self.log is not None:
                    self.log.warning(f"could not store the run summary in the bucket ({err.message}); it stays "
                                     f"at {path}")
                return
            _unlink(path)


class LeaseKeeper:
    """Renews the lease every ``ttl/3`` on a thread, so a quiet tap does not let it lapse.

    ``check`` raises ``LeaseLost`` once a renewal found the lease taken over;
    the publisher calls it (after a renewal of its own) before every batch."""

    def __init__(self, lease: Lease, log: Log | None = None):
        self.lease = lease
        self.log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lost: LeaseLost | None = None
        self._thread = threading.Thread(target=self._run, name="spool-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(self.lease.ttl_seconds / 3, 0.2)):
            try:
                self.renew()
            except LeaseLost:
                return
            except Exception:  # noqa: BLE001 - the store is down for now: the next publish renews or fails
                continue

    def renew(self) -> None:
        with self._lock:
            if self._lost is not None:
                raise self._lost
            try:
                self.lease.renew()
            except LeaseLost as err:
                self._lost = err
                raise

    def release(self) -> None:
        """Give the lease back. A store that cannot be reached now only leaves the lease
        to lapse (the next writer waits up to its ttl); it never fails a command whose
        work is stored, nor hides the error a failed one is ending with."""
        self._stop.set()
        self._thread.join()
        with self._lock:
            if self._lost is not None:
                return
            try:
                self.lease.release()
            except StorageError as err:
                if self.log is not None:
                    self.log.warning(f"could not release the spool's lease ({err.message}); it lapses in "
                                     f"{self.lease.ttl_seconds:.0f} s")


class Publisher:
    """Puts what the writer committed locally into the bucket, as one batch."""

    def __init__(self, spool: BucketSpool, keeper: LeaseKeeper, writer: str, *, keep_segments: bool):
        self.spool = spool
        self.keeper = keeper
        self.writer = writer
        self.keep_segments = keep_segments
        self.state = ReplicaState.read(spool.layout.root, spool.url)

    def __call__(self) -> None:
        self.publish()

    def publish(self) -> int:
        """Upload the side files that changed (reject files, replay journals), then new
        segments, then the new entries as the next batch. Returns the number of entries
        published (0: nothing new). Side files go first because each is written before
        the commit it belongs to (ingest's rejects, a replay's plan), so an entry never
        names a segment whose rejects the bucket lacks; a replay journals its outcomes
        after its segments commit, so they go up with a later publish."""
        layout, storage = self.spool.layout, self.spool.storage
        self._publish_side_files()
        try:
            with open(layout.manifest, "rb") as fh:
                fh.seek(self.state.manifest_bytes)
                data = fh.read()
        except OSError as err:
            raise describe_os_error(err, "reading", layout.manifest) from err
        data = data[: data.rfind(b"\n") + 1]
        if not data:
            return 0
        entries = [entry_from_json(orjson.loads(line)) for line in data.splitlines()]
        self.keeper.renew()  # a lost lease stops us before anything is acknowledged
        segments = [e.path for e in entries if isinstance(e, Segment)]
        for key in segments:
            _upload(storage, layout.root / key, key)
        crash_point("publish:segments-uploaded")
        n = self.state.batches
        header = orjson.dumps({"batch": n, "writer": self.writer, "entries": len(entries)})
        try:
            storage.put_if_absent(batch_key(n), header + b"\n" + data)
        except ObjectExists:
            raise LeaseLost(
                f"{storage.describe(batch_key(n))}: another writer committed manifest batch {n} first; this "
                "one lost the spool's lease and stops without acknowledging more",
                hint="run one ingest (or prune) per spool at a time; what was acknowledged before is stored",
            ) from None
        self.state.batches, self.state.manifest_bytes = n + 1, self.state.manifest_bytes + len(data)
        self.state.write(layout.root)
        if not self.keep_segments:
            for key in segments:  # the bucket has it now; a pod's disk is small
                _unlink(layout.root / key)
        return len(entries)

    def _publish_side_files(self) -> None:
        root = self.spool.layout.root
        changed = False
        for key in _side_files(root):
            size = (root / key).stat().st_size
            if self.state.side_files.get(key) != size:
                self.spool.storage.put(key, (root / key).read_bytes())
                self.state.side_files[key] = size
                changed = True
        if changed:
            self.state.write(root)


def _side_files(root: Path) -> list[str]:
    """Keys of the replica's side files (no temp files: their names start with a dot)."""
    keys = []
    for folder in SIDE_DIRS:
        base = root / folder
        if base.exists():
            keys += [p.relative_to(root).as_posix() for p in sorted(base.rglob("*"))
                     if p.is_file() and not p.name.startswith(".")]
    return keys


def _batch_entries(body: bytes, where: str, n: int) -> bytes:
    """The entry lines of a batch object, checked against its header."""
    head, _, lines = body.partition(b"\n")
    try:
        header: Any = orjson.loads(head)
        count = int(header["entries"])
        number = int(header["batch"])
    except (ValueError, KeyError, TypeError):
        raise SpoolError(f"{where} is not a manifest batch (bad header line)",
                         hint="the bucket was edited or damaged; restore the object from a backup") from None
    if number != n or not lines.endswith(b"\n") or lines.count(b"\n") != count:
        raise SpoolError(f"{where} is damaged: its header says batch {number} of {count} entries",
                         hint="the bucket was edited or damaged; restore the object from a backup")
    return lines


def _upload(storage: Storage, path: Path, key: str) -> None:
    try:
        size = path.stat().st_size
        if size <= SINGLE_PUT_BYTES:
            storage.put(key, path.read_bytes())
            return
        with storage.upload(key) as upload, open(path, "rb") as fh:
            while chunk := fh.read(16 * 1024 * 1024):
                upload.write(chunk)
            upload.complete()
    except OSError as err:
        raise describe_os_error(err, "uploading", path) from err


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise describe_os_error(err, "removing", path) from err


__all__ = ["BucketSpool", "LeaseKeeper", "Publisher", "ReplicaState", "batch_key", "replica_root"]
