"""Arrow batches made ready to bind: whole-column casts, never a Python loop per row.

python-oracledb binds an Arrow table by position, one column per
placeholder, choosing the bind type from the Arrow type (``int64`` ->
NUMBER, ``double`` -> BINARY_DOUBLE, ``string`` -> VARCHAR, ``large_string``
-> LONG, ``timestamp`` -> TIMESTAMP, ``date32`` -> DATE, ``bool`` ->
BOOLEAN). So each column is cast here to what its target column needs:

- timestamps: the spool holds UTC (``timestamp[us, UTC]``); a zone is lost
  when bound anyway (python-oracledb #374), so they are cast to naive UTC
  and the SQL wraps them in ``FROM_TZ(:n, 'UTC')`` for TIME ZONE columns;
- booleans: 0/1 for NUMBER(1) columns (older servers have no BOOLEAN binds);
- text columns fed by other logical types (after a widening): the value as
  text, in the same format the SQL widening procedure writes
  (``sql.text_expr``);
- CLOB columns: ``large_string``, which binds as LONG -- the one string bind
  that may exceed 32767 bytes and that Oracle converts into a CLOB on INSERT.
  Those columns go last in the statement (a long bind before short ones can
  raise ORA-24816).

The column types are fixed by the spool's schema, so an all-NULL column
still binds with the right type (no ``setinputsizes`` needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .types import OracleType

TIMESTAMP_TEXT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # %S carries the microseconds: 2024-01-02T03:04:05.000000Z


@dataclass(frozen=True)
class BindColumn:
    """One segment column on its way into one table (or staging) column."""

    name: str  # the column in the table or staging table
    logical: str  # the segment's logical type for it
    target: OracleType  # the type of the column it is bound into

    @property
    def placeholder_wrap(self) -> str:
        """How the bind appears in SQL: ``{}`` is replaced by ``:n``."""
        if self.target.family == "tstz" and self.logical in ("timestamp", "date"):
            return "FROM_TZ({}, 'UTC')"
        return "{}"


def bind_order(columns: Sequence[BindColumn]) -> list[BindColumn]:
    """Short binds first, LONG (CLOB) binds last, each group in segment order."""
    return [c for c in columns if not c.target.is_long_text] + [c for c in columns if c.target.is_long_text]


def as_text(array: pa.Array | pa.ChunkedArray, logical: str) -> pa.Array | pa.ChunkedArray:
    """Values of ``logical`` type as the text a text column stores for them."""
    if logical in ("string", "time", "json"):
        return array
    if logical == "timestamp":
        return pc.strftime(array, format=TIMESTAMP_TEXT_FORMAT)
    # int64 -> "7", double -> "2.5", bool -> "true"/"false", date32 -> "2024-01-02"
    return pc.cast(array, pa.string())


def prepare_column(array: pa.Array | pa.ChunkedArray, col: BindColumn) -> pa.Array | pa.ChunkedArray:
    fam, logical = col.target.family, col.logical
    if isinstance(array.type, pa.DictionaryType):
        array = pc.cast(array, array.type.value_type)  # dictionaries do not bind (DPY-3032)
    if fam in ("varchar", "clob", "json"):
        # a native JSON column takes the text as VARCHAR and parses it
        return pc.cast(as_text(array, logical), pa.large_string() if col.target.is_long_text else pa.string())
    if fam in ("tstz", "timestamp"):
        if logical == "date":
            return pc.cast(array, pa.timestamp("us"))
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            return pc.cast(array, pa.timestamp(array.type.unit))  # the same instants, as naive UTC
        return array
    if fam in ("number", "float"):
        if pa.types.is_boolean(array.type):
            return pc.cast(array, pa.int8())
        return array
    if fam == "boolean":
        return array if pa.types.is_boolean(array.type) else pc.cast(array, pa.bool_())
    return array


def prepare(batch: pa.RecordBatch, columns: Sequence[BindColumn]) -> pa.Table:
    """The batch's columns, cast and ordered as ``columns`` says (by name)."""
    arrays = [prepare_column(batch.column(batch.schema.get_field_index(c.name)), c) for c in columns]
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


# ---- data checks before binding -----------------------------------------------
def empty_key_mask(batch: pa.RecordBatch, key_columns: Sequence[str]) -> pa.Array | None:
    """True for rows whose text key is '' (Oracle would store it as NULL); None if there are none."""
    mask = None
    for name in key_columns:
        idx = batch.schema.get_field_index(name)
        if idx < 0 or not (pa.types.is_string(batch.schema.field(idx).type) or pa.types.is_large_string(batch.schema.field(idx).type)):
            continue
        hit = pc.fill_null(pc.equal(batch.column(idx), ""), False)
        mask = hit if mask is None else pc.or_(mask, hit)
    if mask is None or not pc.any(mask).as_py():
        return None
    return mask


def text_extent(array: pa.Array | pa.ChunkedArray, logical: str) -> tuple[int, int]:
    """(characters, UTF-8 bytes) of the longest value once written as text."""
    text = as_text(array, logical)
    chars = pc.max(pc.utf8_length(text)).as_py() or 0
    nbytes = pc.max(pc.binary_length(text)).as_py() or 0
    return chars, nbytes
