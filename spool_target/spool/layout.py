"""Where things live inside a spool directory.

    <spool>/
      manifest.jsonl                 the journal: the only truth about what is committed
      streams/<stream-dir>/*.parquet committed segments (one directory per stream)
      rejects/<stream-dir>/*.jsonl   records that could not be typed or keyed
      tmp/                           work files of a running ingest; never read by load
      quarantine/                    segment files found without a manifest entry
      runs/                          one JSON summary per ingest or load run
      ingest.lock, load.lock         advisory locks (flock) held while a command runs

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

from ..errors import SpoolError, SpoolLocked

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


class SpoolLayout:
    def __init__(self, root: Path | str):
        self.root = Path(root)

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
    run never leaves a stale lock behind.
    """

    def __init__(self, path: Path, purpose: str):
        self.path = path
        self.purpose = purpose
        self._fd = -1

    def acquire(self, wait_seconds: float = 0.0) -> "SpoolLock":
        """Take the lock, waiting up to ``wait_seconds`` for a short holder
        (prune and verify hold the ingest lock for a moment only)."""
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
                holder = ""
                try:
                    holder = os.read(self._fd, 64).decode().strip()
                except OSError:
                    pass
                os.close(self._fd)
                self._fd = -1
                raise SpoolLocked(
                    f"another {self.purpose} is already running on spool {self.path.parent}"
                    + (f" (pid {holder})" if holder else ""),
                    hint=f"wait for it to finish, or give this {self.purpose} its own --spool directory",
                ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())
        return self

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "SpoolLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def require_spool(root: Path | str) -> SpoolLayout:
    layout = SpoolLayout(root)
    if not layout.exists():
        raise SpoolError(
            f"no spool at {layout.root} (no {MANIFEST})",
            hint="run `spool-target ingest` first, or pass the right --spool / spool_dir",
        )
    return layout
