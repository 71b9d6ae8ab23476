"""Singer BATCH messages: records that arrive as local files instead of lines.

A BATCH names its files in ``manifest`` (``file://`` URIs) and their
``encoding``: ``{"format": "jsonl" | "parquet", "compression": "gzip" | null}``.
Each record is handed to the ingest loop as JSON, exactly like a RECORD
line, so typing, rejects and segments work the same.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

import orjson

from ..errors import InputError


def _local_path(uri: Any, line: int) -> Path:
    if not isinstance(uri, str):
        raise InputError(f"BATCH manifest entries must be file:// URIs, got {uri!r}", line=line)
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise InputError(
            f"BATCH file {uri!r} is not local (scheme {parsed.scheme!r})",
            line=line,
            hint="spool-target reads only file:// batch files",
        )
    return Path(unquote(parsed.path))


def iter_batch_records(msg: dict[str, Any], line: int) -> Iterator[bytes]:
    encoding = msg.get("encoding") or {}
    if not isinstance(encoding, dict):
        raise InputError("BATCH 'encoding' must be an object", line=line)
    fmt = encoding.get("format", "jsonl")
    compression = encoding.get("compression")
    files = msg.get("manifest")
    if not isinstance(files, list):
        raise InputError("BATCH needs a 'manifest' list of file:// URIs", line=line)
    for uri in files:
        path = _local_path(uri, line)
        if not path.exists():
            raise InputError(f"BATCH file {path} does not exist", line=line)
        if fmt == "jsonl":
            yield from _jsonl_records(path, compression, line)
        elif fmt == "parquet":
            yield from _parquet_records(path, line)
        else:
            raise InputError(f"BATCH encoding format {fmt!r} is not supported (jsonl or parquet)", line=line)


def _jsonl_records(path: Path, compression: Any, line: int) -> Iterator[bytes]:
    opener = gzip.open if compression == "gzip" or path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for row_no, row in enumerate(fh, start=1):
                row = row.rstrip(b"\r\n")
                if not row.strip():
                    continue
                try:
                    obj = orjson.loads(row)
                except orjson.JSONDecodeError as err:
                    raise InputError(f"BATCH file {path} row {row_no} is not valid JSON ({err})", line=line) from None
                if type(obj) is not dict:
                    raise InputError(f"BATCH file {path} row {row_no} is not a JSON object", line=line)
                yield row
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputError(f"BATCH file {path} cannot be read: {err}", line=line) from None


def _parquet_records(path: Path, line: int) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                yield orjson.dumps(row, default=str, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    except (OSError, ValueError) as err:
        raise InputError(f"BATCH file {path} cannot be read as Parquet: {err}", line=line) from None
