"""Where things live inside a spool directory.

    <spool>/
      manifest.jsonl                 the journal: the only truth about what is committed
      streams/<stream-dir>/*.parquet committed segments (one directory per stream)
      rejects/<stream-dir>/*.jsonl   records that could not be typed or keyed
      tmp/                           work files of a running ingest; never read by load
      quarantine/                    segment files found without a manifest entry
      runs/                          one JSON summary per ingest or load run
      ingest.lock, load.lock         advisory locks (flock) held while a command runs; each
                                     says who holds it: "<pid> <holder>" (ingest, prune, verify)

Stream names can hold any character; directory names on disk are a safe,
stable rendering of them (``stream_dir``). The manifest keeps the real name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SpoolError, SpoolLocked

MANIFEST = "manifest.jsonl"
STREAMS = "streams"
REJECTS = "rejects"
TMP = "tmp"
QUARANTINE = "quarantine"
RUNS = "runs"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def stream_dir(stream: str) -> str:
    """A file-system-safe directory name for a stream, unique per stream name.

    Readable prefix plus a hash of the exact name, so ``Users`` and ``users``
    stay apart on case-insensitive disks and ``a/b`` cannot escape the spool.
    """
    readable = _UNSAFE.sub("_", stream).strip("._")[:60] or "stream"
    digest = hashlib.sha256(stream.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}"


# "s3://bucket/p" made into a Path is "s3:/bucket/p": a local directory named
# "s3:" that nobody meant. Bucket spools (s3://, az://, gs://) reach here as
# their local replica's path (spool/remote.py); any other URL is refused rather
# than silently taken as a local directory.
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


class SpoolLayout:
    def __init__(self, root: Path | str, replica_of: str | None = None):
        if _URL_LIKE.match(str(root)):
            raise ConfigError(
                f"spool location {str(root)!r} is a URL of a kind spool-target does not know",
                hint="use s3://bucket/prefix, az://container/prefix, gs://bucket/prefix or a local directory "
                "for --spool / spool_dir (see the README: Spools on object storage)",
            )
        self.root = Path(root)
        # A bucket spool's local replica (spool/remote.py) knows the bucket's URL: reports name
        # the bucket, and its size is the bucket's, not the replica's files.
        self.replica_of = replica_of
        self.label = replica_of or str(self.root)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def tmp(self) -> Path:
        return self.root / TMP

    @property
    def quarantine(self) -> Path:
        return self.root / QUARANTINE

    @property
    def runs(self) -> Path:
        return self.root / RUNS

    @property
    def streams(self) -> Path:
        return self.root / STREAMS

    def stream_path(self, stream: str) -> Path:
        return self.streams / stream_dir(stream)

    def rejects_path(self, stream: str) -> Path:
        return self.root / REJECTS / stream_dir(stream)

    def exists(self) -> bool:
        return self.manifest.exists()

    def create_dirs(self) -> None:
        from ..durable import describe_os_error, make_dirs

        for p in (self.root, self.streams, self.tmp, self.root / REJECTS, self.runs):
            try:
                make_dirs(p)
            except OSError as err:
                raise describe_os_error(err, "creating", p) from err


class SpoolLock:
    """An exclusive, non-blocking flock on a file in the spool.

    The kernel drops it when the process dies (even by SIGKILL), so a crashed
    run never leaves a stale lock behind. The file names its holder, so that
    whoever waits can tell a prune (minutes at most) from an ingest (hours).
    """

    HOLDER_WIDTH = 63  # fixed, so rewriting the name never needs a new disk block

    def __init__(self, path: Path, purpose: str, *, holder: str | None = None):
        self.path = path
        self.purpose = purpose  # what the lock guards against: "another <purpose> is running"
        self.holder = holder or purpose  # what this process is, for whoever waits
        self._fd = -1

    def acquire(self, wait_seconds: float = 0.0) -> "SpoolLock":
        """Take the lock, waiting up to ``wait_seconds`` for a short holder."""
        from ..durable import describe_os_error, make_dirs

        try:
            make_dirs(self.path.parent)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise describe_os_error(err, "opening lock file", self.path) from err
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = read_lock_holder(self.path)
                os.close(self._fd)
                self._fd = -1
                if holder is not None and holder[1] != self.purpose:
                    what = f"a {holder[1]} (pid {holder[0]}) holds the {self.purpose} lock of spool {self.path.parent}"
                else:
                    what = f"another {self.purpose} is already running on spool {self.path.parent}" + (
                        f" (pid {holder[0]})" if holder else ""
                    )
                raise SpoolLocked(what, hint=f"wait for it to finish, or give this {self.purpose} its own --spool directory") from None
        record = f"{os.getpid()} {self.holder}"[: self.HOLDER_WIDTH].ljust(self.HOLDER_WIDTH) + "\n"
        try:
            os.pwrite(self._fd, record.encode(), 0)
        except OSError:
            pass  # the name is informational: the flock is what excludes (and a full disk must not stop a prune)
        return self

    def release(self) -> None:
        if self._fd >= 0:
            try:  # no stale name for the next waiter to misread
                os.pwrite(self._fd, b" " * self.HOLDER_WIDTH + b"\n", 0)
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "SpoolLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_lock_holder(path: Path) -> tuple[int, str] | None:
    """(pid, holder) as the lock file says, or None if it says nothing usable
    (being written this instant, or written by an older version: pid only)."""
    try:
        words = path.read_text(errors="replace").split()
    except OSError:
        return None
    if len(words) < 2 or not words[0].isdigit():
        return None
    return int(words[0]), " ".join(words[1:])


# Holders of the ingest lock that finish on their own in minutes: an ingest
# waits for them. Another ingest (or a replay) may run for hours: never waited for.
SHORT_HOLDERS = ("prune", "verify")
UNNAMED_HOLDER_GRACE_SECONDS = 2.0  # a holder writes its name right after taking the lock
WAIT_LOG_EVERY_SECONDS = 30.0


def acquire_ingest_lock(root: Path, log: Any, max_wait: float, *, sleep: Any = time.sleep) -> SpoolLock:
    """The ingest lock (the manifest's single writer), for an ingest.

    A prune or verify holding it is waited for, up to ``max_wait`` seconds
    (setting ``lock_wait_seconds``), with a log line now and then saying for
    whom; another ingest fails at once."""
    lock = SpoolLock(root / "ingest.lock", "ingest")
    started = time.monotonic()
    said_at: float | None = None
    while True:
        try:
            return lock.acquire()
        except SpoolLocked:
            holder = read_lock_holder(lock.path)
            waited = time.monotonic() - started
            if holder is None or holder[1] not in SHORT_HOLDERS:
                if holder is None and waited < UNNAMED_HOLDER_GRACE_SECONDS:
                    sleep(0.05)
                    continue
                raise
            pid, name = holder
            if waited >= max_wait:
                raise SpoolLocked(
                    f"a {name} (pid {pid}) has held spool {root}'s manifest for {waited:.0f}s; ingest waited "
                    f"lock_wait_seconds={max_wait:g} and gives up",
                    hint=f"let the {name} finish (or stop it), then run the tap again; raise lock_wait_seconds "
                    "if prunes of this spool take longer. Nothing was written",
                ) from None
            now = time.monotonic()
            if said_at is None or now - said_at >= WAIT_LOG_EVERY_SECONDS:
                log.info(
                    f"waiting for a {name} (pid {pid}) to finish with the spool's manifest "
                    f"({waited:.0f}s so far, up to {max_wait:g}s); the tap's input waits meanwhile",
                    spool=str(root),
                )
                said_at = now
            sleep(0.1)


def require_spool(root: Path | str) -> SpoolLayout:
    layout = SpoolLayout(root)
    if not layout.exists():
        raise SpoolError(
            f"no spool at {layout.root} (no {MANIFEST})",
            hint="run `spool-target ingest` first, or pass the right --spool / spool_dir",
        )
    return layout
