"""Writing and checking segment files.

A segment is one Parquet file of one stream under one schema. It is written
under ``tmp/``, fsynced, renamed into ``streams/<stream-dir>/`` and the
directory fsynced (``durable.publish``); only then does its manifest entry
make it committed. Its sha256 covers the whole file, so the loader can
check it byte for byte (I2).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..durable import describe_os_error, publish
from ..errors import SegmentCorrupt
from ..faults import crash_point

ROW_GROUP_ROWS = 64 * 1024  # bounds the loader's memory per batch
COMPRESSION = "zstd"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_segment(table: pa.Table, tmp_path: Path, final_path: Path) -> tuple[int, str]:
    """Write ``table`` durably at ``final_path``; return (bytes, sha256)."""
    try:
        pq.write_table(
            table,
            tmp_path,
            row_group_size=ROW_GROUP_ROWS,
            compression=COMPRESSION,
            compression_level=1,
            # Dictionary pages cost more to build than zstd saves on typical
            # tap data (measured: half the write time, smaller files), and
            # Arrow readers would hand out dictionary arrays Oracle cannot bind.
            use_dictionary=False,
            write_statistics=True,
        )
        size = tmp_path.stat().st_size
        digest = file_sha256(tmp_path)
        crash_point("ingest:segment-written")
    except OSError as err:
        try:
            tmp_path.unlink()
        except OSError:
            pass
        raise describe_os_error(err, "writing segment", final_path) from err
    publish(tmp_path, final_path)
    return size, digest


def check_segment(path: Path, rows: int, sha256: str, *, label: str) -> pq.FileMetaData:
    """Raise SegmentCorrupt unless the file is there and matches its entry.

    Returns the Parquet footer it read, so callers need not read it again."""
    if not path.exists():
        raise SegmentCorrupt(
            f"segment {label} is missing ({path})",
            hint="restore the file from a backup, or see `spool-target verify`; later segments of this "
            "stream wait so that order is kept",
        )
    actual = file_sha256(path)
    if actual != sha256:
        raise SegmentCorrupt(
            f"segment {label} is corrupt: sha256 {actual[:12]}... does not match the manifest's {sha256[:12]}...",
            hint="restore the file from a backup; later segments of this stream wait so that order is kept",
        )
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise SegmentCorrupt(f"segment {label} is not readable Parquet: {err}") from err
    if meta.num_rows != rows:
        raise SegmentCorrupt(f"segment {label} holds {meta.num_rows} rows but the manifest says {rows}")
    return meta
