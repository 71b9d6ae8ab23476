"""The storage interface over S3, Azure Blob and GCS, through ``obstore``
(Python bindings of the Rust ``object_store`` crate; the README says why).

What the library gives and we rely on:
- ``put(mode="create")`` sends ``If-None-Match: *`` (S3, Azure; GCS uses
  ``x-goog-if-generation-match: 0``) and ``put(mode={"e_tag": ...})`` sends
  ``If-Match``: the conditional writes the manifest and the lease need.
- ``open_writer`` streams a multipart upload (S3 multipart, Azure blocks,
  GCS XML multipart) that is not an object until it completes, and aborts
  it when the ``with`` block raises.
- Bounded retries of connection errors, 5xx and throttling, with
  exponential backoff and jitter (``location.retry_config``).

Every library error passes through ``_translate`` once: it becomes a
transient or permanent ``StorageError`` naming the object, scrubbed of
secrets.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import obstore
from obstore import exceptions as obx
from obstore.store import AzureStore, GCSStore, S3Store

from .base import CleanupReport, ObjectInfo, Storage, Upload
from .errors import (
    ObjectChanged,
    ObjectExists,
    ObjectMissing,
    StorageAccessDenied,
    StorageError,
    StorageNotFound,
    StorageUnavailable,
)
from .location import Location, client_options, retry_config, scrub

_MISSING_BUCKET_CODES = {"NoSuchBucket", "ContainerNotFound"}


def _build(loc: Location) -> Any:
    o = loc.options
    common: dict[str, Any] = {
        "prefix": loc.prefix or None,
        "client_options": client_options(o),
        "retry_config": retry_config(o),
    }
    # obstore types its config as TypedDicts; ours is built from the keys given.
    cfg: Any
    if loc.scheme == "s3":
        cfg = {k: o[k] for k in ("endpoint", "region", "access_key_id", "secret_access_key", "session_token") if o.get(k)}
        if "path_style" in o:
            cfg["virtual_hosted_style_request"] = not bool(o["path_style"])
        return S3Store(loc.bucket, config=cfg, **common)
    if loc.scheme == "az":
        cfg = {k: o[k] for k in ("endpoint", "account_name", "account_key", "use_emulator") if o.get(k)}
        if o.get("sas_token"):
            cfg["sas_key"] = o["sas_token"]
        return AzureStore(loc.bucket, config=cfg, **common)
    cfg = {k: o[k] for k in ("service_account_path", "service_account_key") if o.get(k)}
    if o.get("endpoint"):
        cfg["base_url"] = o["endpoint"]
    return GCSStore(loc.bucket, config=cfg, **common)


class ObjectStoreStorage(Storage):
    def __init__(self, loc: Location):
        self.loc = loc
        self.url = loc.url
        try:
            self.store = _build(loc)
        except Exception as err:  # the library's own config errors: bad endpoint, missing region
            raise StorageError(f"cannot open {self.url}: {scrub(_first_line(err), loc.secrets)}",
                               hint="check storage_options and the AWS_*/AZURE_*/GOOGLE_* variables") from None

    def _fail(self, err: Exception, action: str, key: str) -> NoReturn:
        raise _translate(err, action, self.describe(key), self.loc) from None

    # -- writes ------------------------------------------------------------
    def put(self, key: str, data: bytes) -> ObjectInfo:
        try:
            r = self.store.put(key, data, use_multipart=False)
        except Exception as err:
            self._fail(err, "storing", key)
        return ObjectInfo(key, len(data), _etag(r))

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        try:
            r = self.store.put(key, data, mode="create")
        except obx.AlreadyExistsError:
            # A retry of a create whose first attempt was stored (the answer
            # was lost) finds our own bytes there: that is our success.
            body, info = self.get(key)
            if body == data:
                return info
            raise ObjectExists(f"{self.describe(key)} already exists (another writer created it first)") from None
        except Exception as err:
            self._fail(err, "creating", key)
        return ObjectInfo(key, len(data), _etag(r))

    def replace_if(self, key: str, data: bytes, etag: str) -> ObjectInfo:
        try:
            r = self.store.put(key, data, mode={"e_tag": etag})
        except (obx.PreconditionError, FileNotFoundError):
            raise ObjectChanged(f"{self.describe(key)} was replaced or deleted since it was read") from None
        except Exception as err:
            self._fail(err, "replacing", key)
        return ObjectInfo(key, len(data), _etag(r))

    def delete(self, key: str) -> None:
        try:
            self.store.delete(key)
        except FileNotFoundError as err:
            if _code(err) in _MISSING_BUCKET_CODES:
                self._fail(err, "deleting", key)
        except Exception as err:
            self._fail(err, "deleting", key)

    def upload(self, key: str, *, part_size: int = 16 * 1024 * 1024) -> Upload:
        return _ObjectUpload(self, key, part_size)

    def cleanup_abandoned_uploads(self, older_than_seconds: float) -> CleanupReport:
        # obstore exposes no ListMultipartUploads (object_store has no such
        # call), so the parts of an upload killed with its process can only
        # be reclaimed by the store: see the README for the lifecycle rule.
        note = {
            "s3": "S3 keeps the parts of a killed multipart upload (never listed) until a bucket lifecycle "
            "rule AbortIncompleteMultipartUpload removes them",
            "az": "Azure discards uncommitted blocks (never listed) by itself after 7 days",
            "gs": "GCS keeps the parts of a killed XML multipart upload until a lifecycle rule removes them",
        }[self.loc.scheme]
        return CleanupReport((), note)

    # -- reads -------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        try:
            r = self.store.get(key)
            data = bytes(r.bytes())
            meta = r.meta
        except Exception as err:
            self._fail(err, "reading", key)
        return data, ObjectInfo(key, int(meta["size"]), meta["e_tag"] or "")

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            size = self.head(key).size
            if start >= size or length <= 0:
                return b""
            return bytes(self.store.get_range(key, start=start, end=min(start + length, size)))
        except StorageError:
            raise
        except Exception as err:
            self._fail(err, "reading", key)

    def head(self, key: str) -> ObjectInfo:
        try:
            m = self.store.head(key)
        except Exception as err:
            self._fail(err, "reading", key)
        return ObjectInfo(key, int(m["size"]), m["e_tag"] or "")

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        # The library lists by path segments ("a/b" matches "a/b/..." only),
        # so a prefix ending mid-name lists its directory and filters here.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        try:
            metas = [m for chunk in self.store.list(directory or None) for m in chunk]
        except Exception as err:
            self._fail(err, "listing", prefix)
        # Sorted here, not trusted: S3 lists in key order, other stores need not.
        return sorted((ObjectInfo(m["path"], int(m["size"]), m["e_tag"] or "") for m in metas
                       if m["path"].startswith(prefix)), key=lambda o: o.key)


class _ObjectUpload(Upload):
    def __init__(self, storage: ObjectStoreStorage, key: str, part_size: int):
        super().__init__(key)
        self.storage = storage
        self.size = 0
        try:
            self.writer = obstore.open_writer(storage.store, key, buffer_size=part_size)
        except Exception as err:
            storage._fail(err, "starting the upload of", key)

    def write(self, data: bytes | memoryview) -> None:
        try:
            self.writer.write(data)
        except Exception as err:
            self.abort()
            self.storage._fail(err, "uploading", self.key)
        self.size += len(data)

    def complete(self) -> ObjectInfo:
        try:
            self.writer.close()
        except Exception as err:
            self.abort()
            self.storage._fail(err, "completing the upload of", self.key)
        self.done = True
        return self.storage.head(self.key)

    def abort(self) -> None:
        self.done = True
        try:
            # The writer aborts its multipart upload when its block exits by
            # an exception; it has no public abort method.
            self.writer.__exit__(_Aborted, _Aborted(), None)
        except Exception:
            pass  # already closed or failed: nothing left to abort in this process


class _Aborted(Exception):
    pass


def _etag(r: Any) -> str:
    return str(r.get("e_tag") or "")


def _first_line(err: BaseException) -> str:
    return str(err).split("\n", 1)[0]


def _code(err: BaseException) -> str:
    m = re.search(r"<Code>([^<]+)</Code>", str(err))
    return m.group(1) if m else ""


def _status(err: BaseException) -> str:
    m = re.search(r"status code: (\d{3} [^:]*)", str(err))
    return m.group(1).strip() if m else ""


def _translate(err: Exception, action: str, where: str, loc: Location) -> StorageError:
    """The one place that classifies a library error: transient or permanent."""
    code, status, text = _code(err), _status(err), str(err)
    detail = " ".join(x for x in (status, f"({code})" if code else "") if x)
    if isinstance(err, FileNotFoundError) or code in _MISSING_BUCKET_CODES:
        if code in _MISSING_BUCKET_CODES:
            what = "container" if loc.scheme == "az" else "bucket"
            return StorageNotFound(
                f"{what} {loc.bucket!r} does not exist ({code}) while {action} {where}",
                hint=f"create the {what}, or fix the spool URL / the endpoint in storage_options",
            )
        return ObjectMissing(f"{where} does not exist")
    if isinstance(err, (obx.PermissionDeniedError, obx.UnauthenticatedError)) or status[:3] in ("401", "403"):
        return StorageAccessDenied(
            f"the store refused the credentials while {action} {where}: {detail}",
            hint=_credentials_hint(loc),
        )
    retried = re.search(r"after (\d+) retries", text)
    elapsed = re.search(r" in ([0-9.]+\w+)", text)
    transient = retried is not None or "HTTP error" in text or status[:1] == "5" or status.startswith("429")
    if transient:
        cause = detail or ("connection refused or dropped" if "error sending request" in text else "no answer")
        tries = f" after {retried.group(1)} retries" if retried else ""
        took = f" over {elapsed.group(1)}" if elapsed else ""
        return StorageUnavailable(
            f"{loc.url} is unavailable while {action} {where}: {cause}{tries}{took}",
            hint="nothing unacknowledged was stored; run again when the store answers "
            "(storage_options max_retries / retry_timeout_seconds bound the wait)",
        )
    return StorageError(f"{action} {where} failed: {scrub(_first_line(err), loc.secrets)}",
                        hint="check the spool URL and storage_options")


def _credentials_hint(loc: Location) -> str:
    if loc.scheme == "s3":
        return ("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the role the machine runs as) and that "
                "it may read and write this bucket and prefix")
    if loc.scheme == "az":
        return "check AZURE_STORAGE_ACCOUNT_NAME and the account key or SAS token, and the container's permissions"
    return "check GOOGLE_APPLICATION_CREDENTIALS / the service account and its permissions on the bucket"
