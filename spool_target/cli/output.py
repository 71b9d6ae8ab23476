"""Printing rows: an aligned table on a terminal; CSV, JSON lines or Markdown otherwise.

The default is ``table`` when stdout is a terminal and ``csv`` when it is
not (a header line, then one line per row; NULL is an empty field), so
`spool-target sql ... > out.csv` and pipes into other tools work as they
are. ``json`` is one JSON object per line (NULL is null), ``markdown`` a
GitHub table. Rows are streamed for csv and json; a table needs them all
to align its columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import sys
from typing import Any, Iterable, Iterator, TextIO

import orjson
import pyarrow as pa

from ..render import text_table


NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


class Format(enum.Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    MARKDOWN = "markdown"


def choose_format(requested: str | None, out: TextIO = sys.stdout) -> Format:
    if requested:
        try:
            return Format(requested.lower())
        except ValueError:
            from ..errors import ConfigError

            raise ConfigError(f"--format {requested!r}: expected table, csv, json or markdown") from None
    return Format.TABLE if out.isatty() else Format.CSV


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time, decimal.Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def _json_default(value: Any) -> Any:
    """Decimals (DuckDB's sum() of BIGINT is a HUGEINT) stay numbers, exactly."""
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    return str(value)


def _rows(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[Any, ...]]:
    for batch in batches:
        columns = [c.to_pylist() for c in batch.columns]
        yield from zip(*columns)


def write_rows(columns: list[str], types: list[str], batches: Iterable[pa.RecordBatch], fmt: Format, out: TextIO = sys.stdout) -> int:
    """Print rows in ``fmt``; return how many."""
    count = 0
    if fmt is Format.CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in _rows(batches):
            writer.writerow("" if v is None else _text(v) for v in row)
            count += 1
    elif fmt is Format.JSON:
        for row in _rows(batches):
            out.write(orjson.dumps(dict(zip(columns, row)), default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
            count += 1
    else:
        cells = [tuple(_text(v).replace("\n", "\\n") for v in row) for row in _rows(batches)]
        count = len(cells)

        numeric = {i for i, t in enumerate(types) if t.upper().startswith(NUMERIC_TYPES)}
        if fmt is Format.MARKDOWN:
            def md(cells_: tuple[str, ...]) -> str:
                return "| " + " | ".join(c.replace("|", "\\|") for c in cells_) + " |"

            out.write(md(tuple(columns)) + "\n")
            out.write("| " + " | ".join("---:" if i in numeric else "---" for i in range(len(columns))) + " |\n")
            for row in cells:
                out.write(md(row) + "\n")
        else:
            lines = text_table(tuple(columns), cells, numeric=numeric) if cells else ["  ".join(columns)]
            for line in lines:
                out.write(line + "\n")
            out.write(f"({count} row{'s' if count != 1 else ''})\n")
    out.flush()
    return count


def write_records(
    columns: list[str], rows: list[tuple[Any, ...]], fmt: Format, out: TextIO = sys.stdout, types: list[str] | None = None
) -> int:
    """``write_rows`` for rows already in Python."""
    if not rows:
        batches: list[pa.RecordBatch] = []
    else:
        arrays = [pa.array([_plain(r[i]) for r in rows]) for i in range(len(columns))]
        batches = [pa.RecordBatch.from_arrays(arrays, names=columns)]
    return write_rows(columns, types or ["VARCHAR"] * len(columns), batches, fmt, out)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value
