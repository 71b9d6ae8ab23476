"""Durable file operations: the only place that decides how bytes reach the disk.

Every file that something else relies on is written temp -> fsync -> rename ->
fsync directory (as litestream does), and every append to a journal is
followed by fsync before anyone is told about it. Every directory is created
by ``make_dirs``, which fsyncs its parent: a file fsynced into a directory
whose own entry was lost in a power cut is lost with it. OSErrors become SpoolError
with the path and the advice a user needs (disk full, permission denied).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import SpoolError


def describe_os_error(err: OSError, action: str, path: Path | str) -> SpoolError:
    """The one translation of an OSError on the spool into what to do about it.

    Every write, close, fsync and rename of a spool file goes through here
    when it fails, whichever one the full disk hits first (a buffered write
    may only fail at its close)."""
    if err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        return SpoolError(
            f"disk full while {action} {path}",
            hint="free space on the spool's filesystem (or point --spool elsewhere) and run again; "
            "everything committed before this point is safe",
        )
    if err.errno == errno.EFBIG:
        return SpoolError(
            f"file size limit reached while {action} {path}",
            hint="raise the file size limit (ulimit -f) or lower flush_max_bytes; everything committed is safe",
        )
    if err.errno == errno.EROFS:
        return SpoolError(
            f"read-only file system while {action} {path}",
            hint="the spool's filesystem is mounted read-only (or was remounted so after an error): make it "
            "writable or choose another --spool; everything committed before this point is safe",
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return SpoolError(
            f"permission denied while {action} {path}",
            hint="make the spool directory writable for this user, or choose another with --spool",
        )
    return SpoolError(f"{action} {path} failed: {err.strerror or err}", hint="check the --spool path")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` that survives a power cut: each directory it creates is
    fsynced in its parent before it returns. Raises OSError like ``mkdir``.

    The one way a spool directory comes to exist (streams/<stream>,
    rejects/<stream>, quarantine, runs, replays/<run>, ...)."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if not missing and not path.is_dir():
        raise FileExistsError(errno.EEXIST, "File exists (not a directory)", str(path))
    for d in reversed(missing):  # under a file, the first mkdir fails with ENOTDIR, as mkdir -p does
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            # Another process made it a moment ago; its entry may not be
            # durable yet, and the fsync below costs little.
        fsync_dir(d.parent)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_durably(path: Path, size: int, action: str) -> None:
    """Cut ``path`` to its first ``size`` bytes, on disk when this returns (a torn
    manifest tail, or lines a bucket never received). ``action`` names it in errors."""
    try:
        with open(path, "r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise describe_os_error(err, action, path) from err


def publish(tmp: Path, final: Path) -> None:
    """Make a fully written temp file visible under its final name, durably.

    The caller has written ``tmp``; this fsyncs it, renames it and fsyncs the
    directory, so after a crash either the whole file is at ``final`` or
    nothing is.
    """
    try:
        fsync_file(tmp)
        make_dirs(final.parent)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as err:
        _unlink_quietly(tmp)  # on a full disk, give its space back
        raise describe_os_error(err, "publishing", final) from err


def write_atomic(final: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Write a whole small file atomically (temp, fsync, rename, fsync dir)."""
    tmp = (tmp_dir or final.parent) / f".{final.name}.{os.getpid()}.tmp"
    try:
        make_dirs(tmp.parent)
        with open(tmp, "wb") as fh:
            fh.write(data)
    except OSError as err:
        _unlink_quietly(tmp)
        raise describe_os_error(err, "writing", final) from err
    publish(tmp, final)


class DurableAppender:
    """An append-only file whose every ``append`` is on disk when it returns."""

    def __init__(self, path: Path):
        self.path = path
        try:
            make_dirs(path.parent)
            existed = path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not existed:
                fsync_dir(path.parent)
        except OSError as err:
            raise describe_os_error(err, "opening", path) from err

    def append(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError as err:
            raise describe_os_error(err, "appending to", self.path) from err

    def close(self) -> None:
        """Quiet by design: every append was fsynced when it returned, so a
        failing close (NFS reports late errors there) loses nothing, and close
        runs in ``finally`` blocks where it must not hide the real error."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "DurableAppender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
