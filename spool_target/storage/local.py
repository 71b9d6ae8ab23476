"""The storage interface over a local directory, on the same durable writes
as the rest of the spool (``durable.py``: temp, fsync, rename, fsync dir).

Uploads are written under ``.uploads/`` inside the root and renamed into
place on ``complete``; listing skips that directory, so a temp file left by
a killed process is never listed, and ``cleanup_abandoned_uploads`` removes
it. Conditional create is ``link(2)`` of a fully written temp file, which
fails if the name exists: atomic, and never a torn object. Conditional
replace holds an ``flock`` on ``.uploads/.cas.lock`` while it compares the
version and renames, so it is atomic for every process on this machine.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from pathlib import Path

from .. import durable
from .base import CleanupReport, ObjectInfo, Storage, Upload
from .errors import ObjectChanged, ObjectExists, ObjectMissing, StorageError

UPLOADS = ".uploads"


def _etag(st: os.stat_result) -> str:
    # A replace renames a new inode into place, so (inode, mtime, size)
    # changes with every version without hashing the bytes.
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


class LocalStorage(Storage):
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.url = str(self.root)

    # -- paths -------------------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == UPLOADS:
            raise StorageError(f"invalid object key {key!r} in {self.url}")
        return self.root.joinpath(*parts)

    def _temp(self) -> Path:
        d = self.root / UPLOADS
        durable.make_dirs(d)
        return d / f"{uuid.uuid4().hex}.part"

    def _info(self, key: str, path: Path) -> ObjectInfo:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectMissing(f"{self.describe(key)} does not exist") from None
        return ObjectInfo(key, st.st_size, _etag(st))

    def _write_temp(self, key: str, data: bytes) -> Path:
        try:
            tmp = self._temp()
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            raise durable.describe_os_error(err, "writing", self._path(key)) from err
        return tmp

    # -- writes ------------------------------------------------------------
    def put(self, key: str, data: bytes) -> ObjectInfo:
        final = self._path(key)
        durable.publish(self._write_temp(key, data), final)
        return self._info(key, final)

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        final = self._path(key)
        tmp = self._write_temp(key, data)
        try:
            durable.make_dirs(final.parent)
            os.link(tmp, final)
            durable.fsync_dir(final.parent)
        except FileExistsError:
            body, info = self.get(key)
            if body == data:  # the same contract as the object stores: our own bytes are success
                return info
            raise ObjectExists(f"{self.describe(key)} already exists (another writer created it first)") from None
        except OSError as err:
            raise durable.describe_os_error(err, "creating", final) from err
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, final)

    def replace_if(self, key: str, data: bytes, etag: str) -> ObjectInfo:
        final = self._path(key)
        tmp = self._write_temp(key, data)
        with self._cas_lock():
            try:
                current = self._info(key, final).etag
            except ObjectMissing:
                tmp.unlink(missing_ok=True)
                raise ObjectChanged(f"{self.describe(key)} was deleted since it was read") from None
            if current != etag:
                tmp.unlink(missing_ok=True)
                raise ObjectChanged(f"{self.describe(key)} was replaced since it was read")
            durable.publish(tmp, final)
            return self._info(key, final)

    def _cas_lock(self) -> _Flock:
        durable.make_dirs(self.root / UPLOADS)
        return _Flock(self.root / UPLOADS / ".cas.lock")

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
            durable.fsync_dir(path.parent)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise durable.describe_os_error(err, "deleting", path) from err

    def upload(self, key: str, *, part_size: int = 16 * 1024 * 1024) -> Upload:
        return _LocalUpload(self, key)

    def cleanup_abandoned_uploads(self, older_than_seconds: float) -> CleanupReport:
        d = self.root / UPLOADS
        cutoff = time.time() - older_than_seconds
        removed = []
        for p in sorted(d.glob("*.part")) if d.is_dir() else []:
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed.append(p.name)
            except FileNotFoundError:
                pass  # its upload completed or another cleanup took it
        return CleanupReport(tuple(removed))

    # -- reads -------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                return fh.read(), ObjectInfo(key, st.st_size, _etag(st))
        except FileNotFoundError:
            raise ObjectMissing(f"{self.describe(key)} does not exist") from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                fh.seek(start)
                return fh.read(length)
        except FileNotFoundError:
            raise ObjectMissing(f"{self.describe(key)} does not exist") from None

    def head(self, key: str) -> ObjectInfo:
        return self._info(key, self._path(key))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and UPLOADS in dirnames:
                dirnames.remove(UPLOADS)
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    try:
                        out.append(ObjectInfo(key, *_size_etag(Path(dirpath, name))))
                    except FileNotFoundError:
                        pass  # deleted while we walked
        return sorted(out, key=lambda o: o.key)


def _size_etag(path: Path) -> tuple[int, str]:
    st = path.stat()
    return st.st_size, _etag(st)


class _Flock:
    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Flock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


class _LocalUpload(Upload):
    def __init__(self, storage: LocalStorage, key: str):
        super().__init__(key)
        self.storage = storage
        self.final = storage._path(key)
        self.tmp = storage._temp()
        try:
            self.fh = open(self.tmp, "wb")
        except OSError as err:
            raise durable.describe_os_error(err, "starting the upload of", self.final) from err

    def write(self, data: bytes | memoryview) -> None:
        try:
            self.fh.write(data)
        except OSError as err:
            self.abort()
            raise durable.describe_os_error(err, "uploading", self.final) from err

    def complete(self) -> ObjectInfo:
        try:
            self.fh.close()
        except OSError as err:
            self.abort()
            raise durable.describe_os_error(err, "uploading", self.final) from err
        durable.publish(self.tmp, self.final)
        self.done = True
        return self.storage.head(self.key)

    def abort(self) -> None:
        self.done = True
        try:
            self.fh.close()
        except OSError:
            pass  # the upload is abandoned either way: its temp file goes next
        self.tmp.unlink(missing_ok=True)
