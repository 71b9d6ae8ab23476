"""Arrow batches made ready to bind: whole-column casts, never a Python loop per row.

python-oracledb binds an Arrow table by position, one column per
placeholder, choosing the bind type from the Arrow type
(``OracleMetadata.from_arrow_schema`` in ``impl/base/metadata.pyx``:
integers -> NUMBER, ``double`` -> BINARY_DOUBLE, ``string`` -> VARCHAR,
``large_string`` -> LONG, ``timestamp`` -> TIMESTAMP, ``date32`` -> DATE,
``bool`` -> BOOLEAN; ``ARROW_BIND_TYPES`` below). So each column is cast
here to what its target column needs:

- timestamps: the spool holds UTC (``timestamp[us, UTC]``); a zone is lost
  when bound anyway (python-oracledb #374), so they are cast to naive UTC
  and the SQL wraps them in ``FROM_TZ(:n, 'UTC')`` for TIME ZONE columns;
- numbers into NUMBER: never through a double. A ``decimal`` column is the
  exact text as sent; a ``number`` (float64) column is cast to the text of its
  shortest round-trip repr (what the value means, TYPING_SPEC "Loading"). The
  server converts the text (``TO_NUMBER(:n)``) under the NLS_NUMERIC_CHARACTERS
  the session fixes at connect (``sql.SESSION_SETUP``);
- numbers into BINARY_DOUBLE (``prefer_float``): float64; integers and
  decimals are cast to the nearest double, which is all the column holds (and
  direct path takes only doubles there: ``check_convert_from_arrow``, DPY-3039);
- booleans: 0/1 for NUMBER(1) columns (older servers have no BOOLEAN binds);
- text columns fed by other logical types (after a widening): the value as
  text, in the same format the SQL widening procedure writes
  (``sql.text_expr``);
- CLOB columns: ``large_string``, which binds as LONG -- the one string bind
  that may exceed 32767 bytes and that Oracle converts into a CLOB on INSERT
  (the driver's test 1212). Those columns go last in the statement (a long
  bind before short ones can raise ORA-24816).

The column types are fixed by the spool's schema, so an all-NULL column
still binds with the right type (no ``setinputsizes`` needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .types import OracleType

TIMESTAMP_TEXT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # %S carries the microseconds: 2024-01-02T03:04:05.000000Z

# One direct path message may carry at most TNS_DPLS_MAX_MESSAGE_SIZE (1,073,728,895) bytes,
# else DPY-4041 (impl/thin/messages/direct_path_load_stream.pyx, PieceBuffer._finalize_piece).
# Each call's rows are cut so that their estimated wire size stays far below it.
DIRECT_PATH_MESSAGE_BYTES = 256 * 2**20


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
        if self.target.family == "number" and self.logical in ("number", "decimal"):
            return "TO_NUMBER({})"
        return "{}"


def bind_order(columns: Sequence[BindColumn]) -> list[BindColumn]:
    """Short binds first, LONG (CLOB) binds last, each group in segment order."""
    return [c for c in columns if not c.target.is_long_text] + [c for c in columns if c.target.is_long_text]


def as_text(array: pa.Array | pa.ChunkedArray, logical: str) -> pa.Array | pa.ChunkedArray:
    """Values of ``logical`` type as the text a text column stores for them."""
    if logical in ("string", "time", "json", "decimal"):
        return array
    if logical == "timestamp":
        return pc.strftime(array, format=TIMESTAMP_TEXT_FORMAT)
    # int64 -> "7", double -> its shortest round-trip repr ("2.5", "0.1", "1e+16"),
    # bool -> "true"/"false", date32 -> "2024-01-02"
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
    if fam == "number":
        if pa.types.is_boolean(array.type):
            return pc.cast(array, pa.int8())
        if logical in ("number", "decimal"):
            return pc.cast(as_text(array, logical), pa.string())  # the server reads the decimal: TO_NUMBER(:n)
        return array
    if fam == "float":
        if not pa.types.is_floating(array.type):
            return pc.cast(array, pa.float64(), safe=False)  # the nearest double: all the column holds
        return array
    if fam == "boolean":
        return array if pa.types.is_boolean(array.type) else pc.cast(array, pa.bool_())
    return array


def prepare(batch: pa.RecordBatch | pa.Table, columns: Sequence[BindColumn]) -> pa.Table:
    """The batch's columns, cast and ordered as ``columns`` says (by name)."""
    arrays = [prepare_column(batch.column(batch.schema.get_field_index(c.name)), c) for c in columns]
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


# ---- what the driver makes of a prepared table --------------------------------------
def arrow_bind_type(t: pa.DataType) -> str:
    """The DB type python-oracledb binds an Arrow column as (``from_arrow_schema``)."""
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        return "DB_TYPE_NUMBER"
    if pa.types.is_large_string(t):
        return "DB_TYPE_LONG"
    if pa.types.is_string(t) or pa.types.is_null(t):
        return "DB_TYPE_VARCHAR"
    if pa.types.is_float64(t):
        return "DB_TYPE_BINARY_DOUBLE"
    if pa.types.is_float32(t):
        return "DB_TYPE_BINARY_FLOAT"
    if pa.types.is_boolean(t):
        return "DB_TYPE_BOOLEAN"
    if pa.types.is_timestamp(t):
        return "DB_TYPE_TIMESTAMP"
    if pa.types.is_date(t):
        return "DB_TYPE_DATE"
    if pa.types.is_large_binary(t):
        return "DB_TYPE_LONG_RAW"
    if pa.types.is_binary(t):
        return "DB_TYPE_RAW"
    return f"unsupported ({t})"


def direct_path_accepts(t: pa.DataType, column: OracleType) -> bool:
    """Whether a direct path load takes Arrow type ``t`` into ``column``
    (``OracleMetadata.check_convert_from_arrow``; else DPY-3039). Direct path reads a CLOB
    column as LONG (``DirectPathPrepareMessage._process_metadata``)."""
    fam = column.family
    if pa.types.is_null(t):
        return True
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        return fam == "number"
    if pa.types.is_floating(t):
        return fam in ("float", "number")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return fam in ("varchar", "clob")
    if pa.types.is_boolean(t):
        return fam == "boolean"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return fam in ("date", "timestamp", "tstz", "tsltz")
    return False


def wire_bytes(table: pa.Table) -> pa.Array:
    """Per row, an upper bound of the bytes the row takes in a direct path message: text
    and binary as long as they are plus a length prefix; an Oracle NUMBER at most 22 bytes,
    a TIMESTAMP 11 (``direct_path_load_stream.pyx``, ``add_column_value``)."""
    total = pa.array([8] * table.num_rows, pa.int64())  # the row header
    for column in table.columns:
        t = column.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            size = pc.add(pc.fill_null(pc.binary_length(column), 0), 3)
        else:
            size = pa.array([22] * table.num_rows, pa.int64())
        total = pc.add(total, pc.cast(size, pa.int64()))
    return total


def direct_path_chunks(table: pa.Table, limit: int = DIRECT_PATH_MESSAGE_BYTES) -> Iterator[pa.Table]:
    """``table`` in consecutive slices whose ``wire_bytes`` stay under ``limit`` (DPY-4041)."""
    sizes = wire_bytes(table)

    def cut(start: int, length: int) -> Iterator[pa.Table]:
        weight = pc.sum(sizes.slice(start, length)).as_py() or 0
        if weight <= limit or length == 1:
            yield table.slice(start, length)
            return
        half = length // 2
        yield from cut(start, half)
        yield from cut(start + half, length - half)

    if table.num_rows:
        yield from cut(0, table.num_rows)


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


def has_json_scalar(array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether some JSON text is a scalar (``"abc"``, ``5``, ``true``), not an object or array."""
    if array.null_count == len(array):
        return False
    first = pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(array), 0, 1)
    container = pc.is_in(first, value_set=pa.array(["{", "["]))
    return bool(pc.any(pc.and_(pc.is_valid(array), pc.invert(container))).as_py())
