"""Round-trip property testing of I8 ("exactly as sent"): generators, an oracle, a checker.

Three parts, each usable alone:

* **Generators** (hypothesis strategies): Singer input built as raw bytes, so that
  number spellings (``1.10``, ``1E5``, ``9007199254740993.0``), escapes (``\\u00e9``,
  ``\\/``, surrogate pairs), spaces inside objects and duplicate keys reach the
  target exactly as a tap could send them. ``singer_runs()`` draws a whole input:
  several streams with random JSON schemas, records interleaved with STATE lines.
* **The oracle** ``expected(schema_message, record_text)``: the typing rules of the
  README (the "Exactly as sent" rules), implemented here independently of
  ``spool_target``: numbers are parsed exactly (``Decimal``/``int``), JSON text is
  cut out of the record byte for byte by a small scanner (``object_members``).
* **The checker** ``check_roundtrip(lines, workdir)``: runs the real CLI (``ingest``,
  then ``load`` into the embedded DuckDB file), reads the tables, the rejects and
  stdout back, and returns every difference from the oracle as a ``Mismatch``.

Comparison rules (what "equal" means per column type): numbers as exact decimals
(DuckDB DOUBLE -> ``Decimal(repr(float))``, VARCHAR decimal text -> ``Decimal(text)``);
instants in UTC to the microsecond (``epoch_us``); dates; booleans (``bool`` only);
strings code point for code point; JSON text of object/array/mixed columns byte for
byte; ``_sdc_extra`` parsed with exact numbers. A rejected record must be in
``<spool>/rejects/`` with ``raw`` equal to its input line, and only those records.

Streams are mapped to tables ``t0, t1, ...`` and properties to columns ``c0, c1, ...``
with ``table_mappings``/``column_mappings``, so naming rules play no part here.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import random
import re
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

from hypothesis import strategies as st

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Oracle NUMBER's range and precision (TYPING_SPEC: number column).
NUMBER_MIN_ABS = Decimal("1e-130")
NUMBER_MAX_ABS = Decimal("1e126")  # exclusive
NUMBER_MAX_DIGITS = 38

# Names the target keeps for its own columns. The rules say nothing about a
# property spelled exactly like one of them, so the generators never use these.
METADATA_NAMES = frozenset(
    {"_sdc_extracted_at", "_sdc_received_at", "_sdc_sequence", "_sdc_table_version", "_sdc_deleted_at", "_sdc_extra"}
)
EXTRA = "_sdc_extra"
SEQUENCE = "_sdc_sequence"


# =====================================================================================
# Raw JSON: scanning byte slices (the oracle's view of "the text as sent")
# =====================================================================================

class RawJSONError(ValueError):
    pass


_WS = b" \t\n\r"
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERAL = re.compile(rb"true|false|null|NaN|-?Infinity")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _skip_ws(b: bytes, i: int) -> int:
    n = len(b)
    while i < n and b[i] in _WS:
        i += 1
    return i


def scan_value(b: bytes, i: int) -> int:
    """End index of the JSON value starting at ``b[i]`` (no leading whitespace)."""
    if i >= len(b):
        raise RawJSONError("unexpected end")
    c = b[i]
    if c == 0x22:  # "
        m = _STRING.match(b, i)
        if not m:
            raise RawJSONError(f"bad string at {i}")
        return m.end()
    if c == 0x7B:  # {
        return _scan_object(b, i, None)
    if c == 0x5B:  # [
        i = _skip_ws(b, i + 1)
        if i < len(b) and b[i] == 0x5D:
            return i + 1
        while True:
            i = _skip_ws(b, scan_value(b, i))
            if i < len(b) and b[i] == 0x2C:
                i = _skip_ws(b, i + 1)
                continue
            if i < len(b) and b[i] == 0x5D:
                return i + 1
            raise RawJSONError(f"bad array at {i}")
    m = _NUMBER.match(b, i) or _LITERAL.match(b, i)
    if not m:
        raise RawJSONError(f"bad value at {i}: {b[i:i + 20]!r}")
    return m.end()


def _scan_object(b: bytes, i: int, out: list[tuple[bytes, int, int]] | None) -> int:
    i = _skip_ws(b, i + 1)
    if i < len(b) and b[i] == 0x7D:
        return i + 1
    while True:
        m = _STRING.match(b, i)
        if not m:
            raise RawJSONError(f"bad object key at {i}")
        key = m.group(0)
        i = _skip_ws(b, m.end())
        if i >= len(b) or b[i] != 0x3A:
            raise RawJSONError(f"missing ':' at {i}")
        start = _skip_ws(b, i + 1)
        end = scan_value(b, start)
        if out is not None:
            out.append((key, start, end))
        i = _skip_ws(b, end)
        if i < len(b) and b[i] == 0x2C:
            i = _skip_ws(b, i + 1)
            continue
        if i < len(b) and b[i] == 0x7D:
            return i + 1
        raise RawJSONError(f"bad object at {i}")


def object_members(b: bytes) -> list[tuple[str, bytes]]:
    """(decoded key, raw value bytes) of a JSON object's members, in order, duplicates kept."""
    i = _skip_ws(b, 0)
    if i >= len(b) or b[i] != 0x7B:
        raise RawJSONError("not an object")
    found: list[tuple[bytes, int, int]] = []
    end = _skip_ws(b, _scan_object(b, i, found))
    if end != len(b):
        raise RawJSONError(f"trailing bytes at {end}")
    return [(json.loads(k), b[s:e]) for k, s, e in found]


def last_members(b: bytes) -> dict[str, bytes]:
    """Members of an object, the last of duplicate keys winning (insertion order = first appearance)."""
    out: dict[str, bytes] = {}
    for k, v in object_members(b):
        out[k] = v
    return out


# ----- exact numbers ------------------------------------------------------------------

def parse_exact(text: bytes | str) -> Any:
    """JSON with exact numbers: ints as int, other numbers as Decimal."""
    return json.loads(text, parse_float=Decimal, parse_int=int)


def _digits(d: Decimal) -> tuple[int, str, int]:
    sign, digits, exp = d.as_tuple()
    return sign, "".join(map(str, digits)), int(exp)


def is_integral(d: Decimal) -> bool:
    _, digits, exp = _digits(d)
    return exp >= 0 or set(digits[len(digits) + exp:]) <= {"0"}


def exact_int(d: Decimal) -> int:
    sign, digits, exp = _digits(d)
    n = int(digits) * 10**exp if exp >= 0 else int(digits[: len(digits) + exp] or "0")
    return -n if sign else n


def significant_digits(d: Decimal) -> int:
    """Digits after stripping leading and trailing zeros (0 for zero)."""
    return len(_digits(d)[1].strip("0"))


def in_double_range(d: Decimal) -> bool:
    return float(d) not in (float("inf"), float("-inf"))


def double_exact(d: Decimal) -> bool:
    """The decimal sent equals the decimal of the shortest repr of its nearest double."""
    return Decimal(repr(float(d))) == d


def is_zero(d: Decimal) -> bool:
    return not _digits(d)[1].strip("0")


# ----- values a RECORD line may not carry --------------------------------------------

class _Constant:
    def __init__(self, name: str):
        self.name = name


def poison_in(text: bytes) -> str | None:
    """Why a RECORD line must be rejected as a whole (NaN/Infinity, a number beyond
    double range, a lone UTF-16 surrogate in a string or key), or None."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=int, parse_constant=_Constant,
                           object_pairs_hook=lambda pairs: ("__object__", pairs))
    except ValueError as err:
        return f"invalid JSON: {err}"
    # A value overwritten by a later duplicate key is gone ("the last one wins"), so a
    # number beyond double range counts only where it is kept; NaN, Infinity and lone
    # surrogates are not JSON at all, so they spoil the line wherever they stand.
    stack = [(value, True)]
    while stack:
        v, kept = stack.pop()
        if isinstance(v, _Constant):
            return f"non-finite number {v.name}"
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, Decimal)):
            if kept and not in_double_range(Decimal(v)):
                return "number beyond double range"
        elif isinstance(v, str):
            if _has_lone_surrogate(v):
                return "lone surrogate in a string"
        elif isinstance(v, tuple) and v and v[0] == "__object__":
            last = {k: i for i, (k, _) in enumerate(v[1])}
            for i, (k, item) in enumerate(v[1]):
                if _has_lone_surrogate(k):
                    return "lone surrogate in a key"
                stack.append((item, kept and last[k] == i))
        elif isinstance(v, list):
            stack.extend((item, kept) for item in v)
    return None


def _has_lone_surrogate(s: str) -> bool:
    # Python's json joins a valid escaped pair into one code point, so any surrogate left is lone.
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in s)


# =====================================================================================
# The oracle: TYPING_SPEC.md, independently
# =====================================================================================

SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})


def _types_of(node: Any) -> tuple[set[str], str | None]:
    """Non-null JSON types a property schema allows, and its string format."""
    if not isinstance(node, dict):
        return set(), None
    if isinstance(node.get("anyOf"), list):
        types: set[str] = set()
        fmt = None
        for branch in node["anyOf"]:
            t, f = _types_of(branch)
            types |= t
            fmt = fmt or f
        return types, fmt
    declared = node.get("type")
    if declared is None:
        return ({"object"} if "properties" in node else set()), None
    if isinstance(declared, str):
        declared = [declared]
    types = {t for t in declared if t != "null"}
    return types, node.get("format") if "string" in types else None


def logical_type(node: dict, is_key: bool = False) -> str:
    """integer, number, string, timestamp, date, time, boolean, json, or keystring
    (a key with several scalar types: stored as text, a string unquoted)."""
    types, fmt = _types_of(node)
    if types == {"integer"}:
        return "integer"
    if types and types <= {"integer", "number"}:
        return "number"
    if types == {"boolean"}:
        return "boolean"
    if types == {"string"}:
        return {"date-time": "timestamp", "date": "date", "time": "time"}.get(fmt or "", "string")
    if is_key and len(types) > 1 and types <= SCALAR_TYPES:
        return "keystring"
    return "json"


_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?", re.ASCII)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


def parse_instant(s: str) -> int | None:
    """Microseconds since 1970-01-01T00:00:00Z, or None when not an acceptable date-time."""
    m = _DATETIME.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac, off = m.group(7) or "", m.group(8)
    try:
        day = _dt.date(y, mo, d)
    except ValueError:
        return None
    if h > 23 or mi > 59 or sec > 59:
        return None
    if frac[6:].strip("0"):
        return None  # beyond microseconds and not zeros: cannot be held exactly
    micros = int((frac[:6] + "000000")[:6])
    offset = 0
    if off and off != "Z":
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (-1 if off[0] == "-" else 1)
    seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86400 + h * 3600 + mi * 60 + sec - offset
    return seconds * 1_000_000 + micros


def instant_date(micros: int) -> _dt.date:
    return _dt.date.fromordinal(_EPOCH_ORDINAL + micros // 86_400_000_000)


def instant_text(micros: int) -> str:
    return (_dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=micros)).isoformat() + "Z"


class _Refused(Exception):
    pass


def _json_string(raw: bytes) -> str | None:
    return json.loads(raw) if raw[:1] == b'"' else None


def _number(raw: bytes) -> Decimal:
    if not _NUMBER.fullmatch(raw):
        raise _Refused("not a JSON number")
    return Decimal(raw.decode())


def convert(ltype: str, raw: bytes) -> Any:
    """The stored value of a non-null raw JSON value in a column of ``ltype``; raises _Refused."""
    if ltype == "integer":
        d = _number(raw)
        if not is_integral(d):
            raise _Refused("integer with a fraction")
        n = exact_int(d)
        if not INT64_MIN <= n <= INT64_MAX:
            raise _Refused("integer beyond 64 bits")
        return n
    if ltype == "number":
        d = _number(raw)
        if significant_digits(d) > NUMBER_MAX_DIGITS:
            raise _Refused("more than 38 significant digits")
        if not is_zero(d) and not (NUMBER_MIN_ABS <= d.copy_abs() < NUMBER_MAX_ABS):
            raise _Refused("number outside NUMBER's range")
        return d
    if ltype == "boolean":
        if raw not in (b"true", b"false"):
            raise _Refused("not a boolean")
        return raw == b"true"
    if ltype in ("string", "keystring"):
        s = _json_string(raw)
        return s if s is not None else raw.decode("utf-8")
    if ltype == "json":
        return raw.decode("utf-8")
    s = _json_string(raw)
    if s is None:
        raise _Refused(f"{ltype}: not a string")
    if ltype == "timestamp":
        micros = parse_instant(s)
        if micros is None:
            raise _Refused("not an acceptable date-time")
        return micros
    if ltype == "date":
        m = _DATE.fullmatch(s)
        if m:
            try:
                return _dt.date(*(int(g) for g in m.groups()))
            except ValueError:
                raise _Refused("invalid date") from None
        micros = parse_instant(s)
        if micros is None:
            raise _Refused("not a date")
        return instant_date(micros)
    if ltype == "time":
        if not _TIME.fullmatch(s):
            raise _Refused("not an ISO time")
        return s
    raise AssertionError(ltype)


def expected(schema: dict, raw_record_text: bytes) -> tuple[str, Any]:
    """What the rules say a record becomes: ("row", {property: value, "_sdc_extra": ...})
    or ("reject", reason_kind). ``schema`` is a SCHEMA message (``schema``,
    ``key_properties``); values are int, Decimal, str, bool, date, instants as int
    microseconds since the epoch (UTC), None for NULL; ``_sdc_extra`` is the undeclared
    properties parsed with exact numbers (None when there are none)."""
    why = poison_in(raw_record_text)
    if why:
        return "reject", "poison: " + why
    try:
        members = last_members(raw_record_text)
    except (RawJSONError, ValueError) as err:
        return "reject", f"record is not an object: {err}"
    props: dict = (schema.get("schema") or {}).get("properties") or {}
    keys = set(schema.get("key_properties") or [])
    row: dict[str, Any] = {}
    for name, node in props.items():
        if name in METADATA_NAMES:
            continue
        ltype = logical_type(node, name in keys)
        raw = members.get(name)
        if raw is None or raw == b"null":
            if name in keys:
                return "reject", f"key {name!r} missing or null"
            row[name] = None
            continue
        try:
            row[name] = convert(ltype, raw)
        except _Refused as why:
            return "reject", f"{name!r} ({ltype}): {why}"
    extra = {k: parse_exact(v) for k, v in members.items() if k not in props}
    row[EXTRA] = extra or None
    return "row", row


def duckdb_type(ltype: str, values: Iterable[Any]) -> set[str]:
    """The column types the rules allow in DuckDB for a column of ``ltype`` holding ``values``."""
    if ltype == "number":
        return {"DOUBLE"} if all(double_exact(v) for v in values if v is not None) else {"VARCHAR"}
    return {
        "integer": {"BIGINT"},
        "timestamp": {"TIMESTAMP WITH TIME ZONE"},
        "date": {"DATE"},
        "boolean": {"BOOLEAN"},
    }.get(ltype, {"VARCHAR", "JSON"})


# =====================================================================================
# The checker: the real CLI against the oracle
# =====================================================================================

@dataclass(frozen=True)
class Mismatch:
    category: str  # e.g. "value:number", "missing-reject", "unexpected-reject", "state"
    stream: str | None
    line: int | None
    column: str | None
    detail: str

    def __str__(self) -> str:
        where = ", ".join(
            x for x in (f"stream {self.stream!r}" if self.stream is not None else "",
                        f"line {self.line}" if self.line else "",
                        f"property {self.column!r}" if self.column is not None else "") if x
        )
        return f"[{self.category}] {where}: {self.detail}"


@dataclass
class Report:
    lines: list[bytes]
    mismatches: list[Mismatch] = field(default_factory=list)
    spool: Path | None = None
    records: int = 0
    rejects_expected: int = 0

    def add(self, *args: Any) -> None:
        self.mismatches.append(Mismatch(*args))

    def for_stream(self, stream: str | None) -> list[Mismatch]:
        return [m for m in self.mismatches if m.stream == stream or m.stream is None]

    def categories(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.mismatches:
            out[m.category] = out.get(m.category, 0) + 1
        return out

    def explain(self, limit: int = 12, input_file: Path | None = None) -> str:
        """A readable account of the first mismatches, with the input lines they concern."""
        out = [f"{len(self.mismatches)} mismatches ({self.records} records, {self.rejects_expected} should be rejected); "
               f"categories: {self.categories()}"]
        if input_file is not None:
            out.append(f"input (replay with: spool-target ingest --spool S < FILE): {input_file}")
        schemas: dict[str, bytes] = {}
        for line in self.lines:
            kind, stream, _ = classify_line(line)
            if kind == "SCHEMA":
                schemas[stream] = line
        for m in self.mismatches[:limit]:
            out.append(str(m))
            if m.stream in schemas and m.line:
                out.append(f"    SCHEMA: {_short(schemas[m.stream])}")
                out.append(f"    line {m.line}: {_short(self.lines[m.line - 1])}")
        if len(self.mismatches) > limit:
            out.append(f"... and {len(self.mismatches) - limit} more")
        return "\n".join(out)


def _short(b: bytes, n: int = 600) -> str:
    text = b.decode("utf-8", "backslashreplace")
    return text if len(text) <= n else text[:n] + f"... ({len(text)} chars)"


def classify_line(line: bytes) -> tuple[str, Any, bytes | None]:
    """(type, stream, raw of 'record' or 'value') of a Singer line, read without re-encoding."""
    members = last_members(line)
    kind = json.loads(members.get("type", b'""'))
    stream = json.loads(members["stream"]) if "stream" in members else None
    payload = members.get("record") if kind == "RECORD" else members.get("value") if kind == "STATE" else None
    return kind, stream, payload


@dataclass
class _StreamExpect:
    """What the checker knows of one stream. A stream may get several SCHEMAs as long as a
    property only moves between integer and number (widened to decimal: compared as numbers);
    other widenings are not modelled, so the checker refuses them rather than guess."""

    table: str
    schema: dict = field(default_factory=dict)  # the latest SCHEMA message
    columns: dict[str, str] = field(default_factory=dict)  # property -> column, first seen first
    ltypes: dict[str, set[str]] = field(default_factory=dict)  # property -> logical types over its schemas
    records: list[tuple[int, tuple[str, Any], dict[str, str]]] = field(default_factory=list)  # (line, expected, ltypes)

    def add_schema(self, msg: dict, line: int) -> None:
        self.schema = msg
        props = msg["schema"].get("properties") or {}
        keys = set(msg.get("key_properties") or [])
        for p, node in props.items():
            if p in METADATA_NAMES:
                continue
            self.columns.setdefault(p, f"c{len(self.columns)}")
            types = self.ltypes.setdefault(p, set())
            types.add(logical_type(node, p in keys))
            if len(types) > 1 and not types <= {"integer", "number"}:
                raise ValueError(f"line {line}: the checker models only integer <-> number widening, not {types}")

    def current_ltypes(self) -> dict[str, str]:
        props = self.schema["schema"].get("properties") or {}
        keys = set(self.schema.get("key_properties") or [])
        return {p: logical_type(props[p], p in keys) for p in props if p not in METADATA_NAMES}


CliRunner = Callable[..., subprocess.CompletedProcess]


def check_roundtrip(
    lines: list[bytes],
    workdir: Path,
    *,
    run_cli: CliRunner | None = None,
    flush_rows: int | None = None,
    load: bool = True,
) -> Report:
    """Ingest ``lines`` with the real CLI, load them into DuckDB and compare everything with the oracle."""
    if run_cli is None:
        from conftest import run_cli  # tests/ is on sys.path under pytest and in scripts/roundtrip.py
    report = Report(lines)
    spool = workdir / "spool"
    report.spool = spool
    streams: dict[str, _StreamExpect] = {}
    states: list[bytes] = []
    expected_rejects: dict[tuple[str, int], str] = {}
    for n, line in enumerate(lines, start=1):
        kind, stream, payload = classify_line(line)
        if kind == "SCHEMA":
            streams.setdefault(stream, _StreamExpect(f"t{len(streams)}")).add_schema(json.loads(line), n)
        elif kind == "RECORD":
            report.records += 1
            why = poison_in(line)
            exp = streams[stream]
            outcome = ("reject", "poison: " + why) if why else expected(exp.schema, payload)
            exp.records.append((n, outcome, exp.current_ltypes()))
            if outcome[0] == "reject":
                expected_rejects[(stream, n)] = outcome[1]
        elif kind == "STATE":
            states.append(payload)
    report.rejects_expected = len(expected_rejects)

    # Segment boundaries decide column types (the number rule applies per
    # segment), so they must not depend on the machine's speed: no timed flush.
    env = {"SPOOL_TARGET_FLUSH_INTERVAL_SECONDS": "86400"}
    if flush_rows:
        env["SPOOL_TARGET_FLUSH_MAX_ROWS"] = str(flush_rows)
    data = b"".join(line + b"\n" for line in lines)
    # Half the inputs are read 512 bytes at a time: after the first block, whole
    # blocks of one stream's plain records take ingest's block path
    # (Ingester._take_block); the other half arrive in one block, read line by
    # line. Of the blocks read in pieces, half take the compiled block path
    # (records.BlockPlan) and half the pure-Python one it stands in for.
    pick = hashlib.sha256(data).digest()[0] % 4
    if pick >= 2:
        env["SPOOL_TARGET_TEST_READ_BYTES"] = "512"
    if pick == 3:
        env["SPOOL_TARGET_TEST_PURE_PYTHON"] = "1"
    r = run_cli("ingest", "--spool", str(spool), "--log-format", "json", input=data, env=env, timeout=300)
    if r.returncode != 0:
        report.add("ingest-failed", None, None, None, f"exit {r.returncode}: {_stderr_tail(r)}")
        return report
    _check_states(report, states, r.stdout)
    actual_rejects = _check_rejects(report, lines, expected_rejects, spool)
    if not load:
        return report
    config = workdir / "roundtrip-config.json"
    config.write_text(json.dumps({
        "table_mappings": {s: e.table for s, e in streams.items()},
        "column_mappings": {s: e.columns for s, e in streams.items()},
    }))
    r = run_cli("load", "--spool", str(spool), "--config", str(config), "--log-format", "json", timeout=300)
    if r.returncode != 0:
        report.add("load-failed", None, None, None, f"exit {r.returncode}: {_stderr_tail(r)}")
        return report
    import duckdb

    db = spool / "spool.duckdb"
    con = duckdb.connect(str(db), read_only=True) if db.exists() else None
    try:
        for name, exp in streams.items():
            _check_table(report, con, name, exp, actual_rejects)
    finally:
        if con is not None:
            con.close()
    return report


def _stderr_tail(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.decode("utf-8", "replace").strip().splitlines()
    messages = []
    for line in lines[-6:]:
        try:
            rec = json.loads(line)
            messages.append(" ".join(str(rec.get(k, "")) for k in ("message", "line", "hint") if rec.get(k)))
        except ValueError:
            messages.append(line)
    return " | ".join(messages)[-1500:]


def _check_states(report: Report, states: list[bytes], stdout: bytes) -> None:
    """Every stdout line is one of the input STATE values, byte for byte (bare, or wrapped as a
    STATE message), in input order; the last STATE always goes out."""
    out = [l for l in stdout.split(b"\n") if l]
    pos = 0
    for line in out:
        while pos < len(states) and line not in (states[pos], b'{"type":"STATE","value":' + states[pos] + b"}"):
            pos += 1
        if pos == len(states):
            report.add("state", None, None, None,
                       f"stdout line is not an input STATE value as sent (or out of order): {_short(line, 300)}; "
                       f"input values: {[_short(s, 120) for s in states[:4]]}")
            return
        pos += 1
    if states and (not out or out[-1] not in (states[-1], b'{"type":"STATE","value":' + states[-1] + b"}")):
        report.add("state", None, None, None, f"the last STATE {_short(states[-1], 300)} was not emitted last; "
                   f"stdout ends with {_short(out[-1], 300) if out else '(nothing)'}")


def _check_rejects(report: Report, lines: list[bytes], wanted: dict[tuple[str, int], str], spool: Path
                   ) -> dict[tuple[str, int], str]:
    got: dict[tuple[str, int], str] = {}
    for path in sorted((spool / "rejects").glob("*/*.jsonl")):
        for text in path.read_bytes().split(b"\n"):
            if not text.strip():
                continue
            entry = json.loads(text)
            key = (entry.get("stream"), entry.get("line"))
            got[key] = entry.get("reason", "")
            line = key[1]
            if not isinstance(line, int) or not 1 <= line <= len(lines):
                report.add("reject-line", key[0], None, None, f"reject names input line {line!r}")
                continue
            raw = entry.get("raw")
            if not isinstance(raw, str) or raw.encode("utf-8", "surrogatepass") != lines[line - 1]:
                report.add("reject-raw", key[0], line, None,
                           f"raw is not the input line byte for byte: {_short(str(raw).encode('utf-8', 'backslashreplace'), 300)}")
            if not entry.get("reason"):
                report.add("reject-reason", key[0], line, None, "empty reason")
    for key, why in wanted.items():
        if key not in got:
            report.add("missing-reject:" + _kind(why), key[0], key[1], None, f"should be rejected ({why})")
    for key, reason in got.items():
        if key not in wanted:
            report.add("unexpected-reject", key[0], key[1], None, f"rejected ({_short(reason.encode(), 300)}) but the rules accept it")
    return got


def _kind(why: str) -> str:
    if why.startswith("poison"):
        return "poison"
    if why.startswith("key"):
        return "key"
    m = re.search(r"\((\w+)\):", why)
    return m.group(1) if m else "other"


def _check_table(report: Report, con: Any, stream: str, exp: _StreamExpect, actual_rejects: dict) -> None:
    # Rows of the table in _sdc_sequence order are the stream's records the target did not
    # reject, in input order: compare those (the reject decisions themselves are checked apart).
    kept = [r for r in exp.records if (stream, r[0]) not in actual_rejects]
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?",
                             [exp.table]).fetchall()) if con is not None else {}
    if not types:
        if kept:
            report.add("rows", stream, None, None, f"table {exp.table} missing; {len(kept)} records were not rejected")
        return
    props = [p for p in exp.columns if exp.columns[p] in types]
    for p in exp.columns:
        if p not in props:
            report.add("column-missing", stream, None, p, f"table {exp.table} has no column {exp.columns[p]}")
    exprs = [f'epoch_us("{exp.columns[p]}")' if types.get(exp.columns[p]) == "TIMESTAMP WITH TIME ZONE"
             else f'"{exp.columns[p]}"' for p in props]
    rows = con.execute(f'SELECT {", ".join(exprs + [chr(34) + EXTRA + chr(34)])} FROM "{exp.table}" '
                       f'ORDER BY "{SEQUENCE}"').fetchall()
    if len(rows) != len(kept):
        report.add("rows", stream, None, None,
                   f"table has {len(rows)} rows; {len(kept)} records were not rejected (records lost or duplicated)")
        return
    values: dict[str, list[Any]] = {p: [] for p in props}
    seen_types: dict[str, set[str]] = {p: set() for p in props}  # logical types of the schemas rows came under
    for (line, outcome, ltypes), row in zip(kept, rows):
        if outcome[0] == "reject":
            continue  # already reported as missing-reject; its stored values are meaningless
        want = outcome[1]
        for p, got in zip(props, row):
            ltype = ltypes.get(p)
            if ltype:
                seen_types[p].add(ltype)
            if len(exp.ltypes[p]) > 1:
                ltype = "number"  # integer and number widened to decimal: compared as numbers
            values[p].append(want.get(p))
            problem = compare(ltype or "json", want.get(p), got)
            if problem:
                report.add(f"value:{ltype}", stream, line, p, problem)
        problem = compare_extra(want[EXTRA], row[-1])
        if problem:
            report.add("extra", stream, line, EXTRA, problem)
    for p in props:
        if len(seen_types[p]) > 1:
            allowed, ltype = {"VARCHAR"}, "decimal"  # integer+number -> decimal
        else:
            ltype = next(iter(seen_types[p] or exp.ltypes[p]))
            allowed = duckdb_type(ltype, values[p])
        actual = types.get(exp.columns[p])
        if actual not in allowed:
            report.add(f"column-type:{ltype}", stream, None, p, f"column is {actual}, the rules give {sorted(allowed)}")


def _show(v: Any) -> str:
    if isinstance(v, Decimal):
        return f"Decimal('{v}')"
    return _short(repr(v).encode(), 200)


def compare(ltype: str, want: Any, got: Any) -> str | None:
    """None when ``got`` (as DuckDB returns it) holds exactly ``want`` (as the oracle gives it)."""
    if want is None or got is None:
        return None if want is None and got is None else f"expected {_show(want)}, stored {_show(got)}"
    if ltype in ("integer", "number"):
        actual = _as_decimal(got)
        ok = actual is not None and actual == Decimal(want)
        if ok and ltype == "integer":
            ok = isinstance(got, int) and not isinstance(got, bool)
        if ok:
            return None
        return f"expected {_show(want)}, stored {_show(got)}"
    if ltype == "timestamp":
        if isinstance(got, int) and got == want:
            return None
        return f"expected {instant_text(want)} ({want} us), stored {_show(got)}"
    if ltype == "boolean":
        return None if isinstance(got, bool) and got == want else f"expected {want!r}, stored {_show(got)}"
    if ltype == "date":
        return None if type(got) is _dt.date and got == want else f"expected {want!r}, stored {_show(got)}"
    # string, keystring, time, json: text exactly
    if isinstance(got, str) and got == want:
        return None
    return f"expected {_show(want)}, stored {_show(got)}"


def _as_decimal(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, Decimal):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, str):
        try:
            return Decimal(v)
        except InvalidOperation:
            return None
    return None


def compare_extra(want: dict | None, got: Any) -> str | None:
    if got is None:
        return None if want is None else f"expected {_show(want)}, stored NULL"
    try:
        parsed = parse_exact(got)
    except ValueError:
        return f"not JSON: {_show(got)}"
    if want is None:
        return None if parsed == {} else f"expected no undeclared properties, stored {_show(got)}"
    return None if _exact_eq(parsed, want) else f"expected {_show(want)}, stored {_show(got)}"


def _exact_eq(a: Any, b: Any) -> bool:
    """Equality of parsed JSON where a boolean is never a number (Python: True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_exact_eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_exact_eq(x, y) for x, y in zip(a, b))
    return a == b and type(a) in (int, Decimal, str, type(None)) and type(b) in (int, Decimal, str, type(None))


# =====================================================================================
# Generators: raw Singer text
# =====================================================================================
#
# Hypothesis draws the shape of a run (streams, property names, schemas, how many
# records, segment size, which kinds of trouble) and a seed; ``Gen`` turns the seed
# into the records' raw text. Bulk values come from a seeded ``random.Random``
# because hypothesis' choice buffer (a few KB per example) cannot hold thousands of
# values; the seed is part of the example, so a derandomized run is reproducible.

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
STRING_STYLES = ("raw", "raw", "ascii", "mixed", "all")


def enc_string(s: str, style: str = "raw") -> bytes:
    """``s`` as a JSON string, escaped in one of several legal ways:
    raw (UTF-8, only what must be escaped), ascii (non-ASCII as \\uXXXX, astral as
    a surrogate pair), mixed (every other non-ASCII escaped, upper-case hex, ``\\/``),
    all (every character as \\uXXXX). A lone surrogate in ``s`` is written escaped."""
    out = []
    for i, ch in enumerate(s):
        o = ord(ch)
        escape = (
            0xD800 <= o <= 0xDFFF
            or style == "all"
            or (style == "ascii" and o > 0x7E)
            or (style == "mixed" and o > 0x7E and i % 2 == 0)
        )
        if escape and ch not in _SHORT_ESCAPES:
            hexfmt = "\\u{:04X}" if style == "mixed" else "\\u{:04x}"
            if o > 0xFFFF:
                o -= 0x10000
                out.append(hexfmt.format(0xD800 + (o >> 10)) + hexfmt.format(0xDC00 + (o & 0x3FF)))
            else:
                out.append(hexfmt.format(o))
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch] if style != "all" else f"\\u{o:04x}")
        elif o < 0x20:
            out.append(f"\\u{o:04x}")
        elif ch == "/" and style == "mixed":
            out.append("\\/")
        else:
            out.append(ch)
    return ('"' + "".join(out) + '"').encode("utf-8")


WHITESPACE = ("", "", "", " ", "  ", "\t", " \t ")

NUMBER_EDGES = [
    "0", "-0", "0.0", "-0.0", "0.000", "1.10", "0.1", "0.30000000000000004", "0.30000000000000001665", "1E-5",
    "1e-05", "1e+100", "1E5", "1e2", "12345678901234.5678", "-9999999999999999.9999", "9007199254740993",
    "9007199254740993.0", "9007199254740992", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "-9223372036854775809", "18446744073709551616", "0.33333333333333333333", "1e-130", "-1E-130", "9.99e125",
    "1e126", "1e-131", "12345678901234567890123456789012345678", "123456789012345678901234567890123456789",
    "123456789012345678901234567890.123456789", "1234567890123456789012345678901234567800000",
    "0.00000000000000000000000000000000000000001234567890123456789012345678901234567800",
    "100e-2", "1.7976931348623157e308", "5e-324", "2.2250738585072014e-308", "1234567900.123456789",
    "12345678901234567.89", "0.1000000000000000000001", "123456789012345678901234567890", "3.0", "1.5",
]
INTEGER_EDGES = [
    "0", "-0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "-9223372036854775809", "18446744073709551616", "9007199254740993", "9007199254740993.0", "3.0", "1e2", "1E+2",
    "100e-2", "12.50e1", "-0.0", "1.5", "1e19", "0.5", "9223372036854775807.0", "9223372036854775807.5",
    "9.223372036854775807e18", "-9.223372036854775808E+18", "2.5e0", "1e-1",
]
SCALED_EDGES = ["12345678901234.5678", "-9999999999999999.9999", "9999999999999999.9999", "0.0001", "1.1000",
                "0", "0.0000", "-0.0001", "1234567890123456.7890", "100"]
# Values that make a RECORD line invalid JSON or unstorable: the record is rejected, the run goes on.
POISON_VALUES = ["NaN", "Infinity", "-Infinity", "1e400", "-1E400", '"\\ud800"', '"a\\udfffb"', '"\\ude00\\ud83d"',
                 "[1, NaN]", '{"x": Infinity}', '{"\\udc00": 1}']
POISON_KEYS = ['"\\ud800"', '"k\\udbff"']
STRING_EDGES = ["", "\x00", "a\x00b", "😀", "a😀b", "é", "名前", "\u2028", "\ufeff", 'quote"s', "back\\slash",
                "tab\t", "new\nline", "\x7f", "\x1f", "  spaces  ", "1.10", "null", "true", '{"a": 1}', "\U0010FFFF",
                "e\u0301", "/path/", "<>&'"]
_SPECIAL_CHARS = "\x00\n\t\x01\x7féß名😀𝔘\u2028\ufeff\U0010FFFF\"\\/"
BAD_DATETIMES = ["epoch", "infinity", "-infinity", "now", "today", "", "not a date", "2024-02-30T00:00:00Z",
                 "2023-02-29T12:00:00Z", "1900-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-32T00:00:00Z",
                 "2024-01-01T25:00:00Z", "2024-01-01T10:60:00Z", "2024-01-01T10:00:00.1234567Z", "2024-01-01",
                 "2024-00-10T00:00:00Z"]
BAD_DATES = [b for b in BAD_DATETIMES if b not in ("2024-01-01", "2024-01-01T10:00:00.1234567Z")] + [
    "2023-02-29", "2024-02-30", "2024-13-01"]
BAD_TIMES = ["25:00:00", "12:60:00", "noon", "", "12:00:61"]
_OFFSETS = ["", "Z", "Z", "+00:00", "+05:30", "-05:00", "+14:00", "-12:00", "+01:00", "-03:45"]
_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

NAME_POOL = ["id", "", "a/b", "~", "~1", "a~1b", "a.b", "a b", " lead", "trail ", "é", "Ünïcödé", "名前", "😀", "Name",
             "name", "NAME", "_sdc_x", "_sdc_extra_", "_SDC_EXTRA", "sdc_sequence", 'a"b', "back\\slash", "tab\tin",
             "null", "type", "record", "$.x", "a[0]", "@x", "x-y", "123", "\u2028", "value"]
STREAM_POOL = ["s", "orders", "public-orders", "Café Orders", "a/b", "Users", "users", "日本", "x.y", "s p a c e"]


@dataclass
class Features:
    """Which kinds of input a run may contain (scripts/roundtrip.py can switch some off)."""
    poison: bool = True  # NaN, Infinity, 1e400, lone surrogates in RECORD lines
    duplicates: bool = True  # duplicate keys in a record
    undeclared: bool = True  # properties the schema does not declare
    wrong_types: bool = True  # values the rules refuse; missing and null keys
    exclude_names: frozenset = frozenset()  # property names never to use (e.g. "" to get past a crash)


@dataclass(frozen=True)
class ColumnPlan:
    name: str
    kind: str  # what values ``Gen.value`` makes for it
    node: dict  # its JSON Schema
    key: bool = False


class Gen:
    """Raw JSON text from a seeded random source: valid values, edge values, wrong ones."""

    def __init__(self, rnd: random.Random, features: Features | None = None):
        self.r = rnd
        self.f = features or Features()

    # --- basics
    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, seq: Any) -> Any:
        return self.r.choice(seq)

    def ws(self) -> str:
        return self.pick(WHITESPACE)

    def digits(self, n: int, lead_nonzero: bool) -> str:
        if n <= 0:
            return ""
        s = str(self.r.randrange(10 ** (n - 1), 10**n)) if lead_nonzero else str(self.r.randrange(10**n)).zfill(n)
        if self.chance(0.15):  # runs of zeros: trailing zeros are what exactness is about
            keep = self.r.randint(1, n)
            s = s[:keep] + "0" * (n - keep)
        return s

    # --- numbers
    def decimal_text(self, wide: bool = True) -> str:
        """A JSON number spelled any legal way: sign, up to ~45 digits, fraction, exponent."""
        big = wide and self.chance(0.17)
        ip = self.digits(self.r.randint(0, 45 if big else 19), True) or "0"
        frac = "." + self.digits(self.r.randint(1, 45 if big else 19), False) if self.chance(0.5) else ""
        exp = self.pick("eE") + self.pick(["", "+", "-"]) + str(self.r.randint(0, 140)) if self.chance(0.2) else ""
        return self.pick(["", "", "-"]) + ip + frac + exp

    def integer_text(self) -> str:
        """A 64-bit integer, mostly plainly spelled, sometimes as 3.0 / 5e2 (a zero fraction)."""
        roll = self.r.random()
        n = (self.r.randint(INT64_MIN, INT64_MAX) if roll < 0.4 else self.r.randint(-1000, 1000) if roll < 0.85
             else self.pick([2**53 + 1, -(2**53 + 1), INT64_MAX, INT64_MIN, 0, 10**18]))
        form = self.r.random()
        if form < 0.15:
            return f"{n}.{'0' * self.r.randint(1, 3)}"
        if form < 0.3 and n and str(n).endswith("00"):
            s = str(n).rstrip("0")
            return f"{s}{self.pick(['e', 'E', 'e+'])}{len(str(n)) - len(s)}"
        return str(n)

    def scaled_text(self, scale: int) -> str:
        """What a numeric(20, scale) column sends: up to 20 digits, at most ``scale`` decimals."""
        if self.chance(0.25):
            return self.pick([e for e in SCALED_EDGES if len(e.partition(".")[2]) <= scale])
        ip = self.digits(self.r.randint(0, 20 - scale), True) or "0"
        frac = "." + self.digits(self.r.randint(1, scale), False) if self.chance(0.6) else ""
        return self.pick(["", "-"]) + ip + frac

    def number_text(self) -> str:
        return self.pick(NUMBER_EDGES) if self.chance(0.3) else self.decimal_text()

    # --- strings and JSON
    def char(self) -> str:
        roll = self.r.random()
        if roll < 0.5:
            return chr(self.r.randint(0x20, 0x7E))
        if roll < 0.75:
            return self.pick(_SPECIAL_CHARS)
        if roll < 0.9:
            o = self.r.randint(0x80, 0xFFFD)
            return chr(o) if not 0xD800 <= o <= 0xDFFF else "\ue000"
        return chr(self.r.randint(0x10000, 0x10FFFF))

    def text(self, max_size: int = 12) -> str:
        if self.chance(0.25):
            return self.pick(STRING_EDGES)
        return "".join(self.char() for _ in range(self.r.randint(0, max_size)))

    def string_json(self, s: str | None = None) -> str:
        return enc_string(self.text() if s is None else s, self.pick(STRING_STYLES)).decode("utf-8")

    def json_text(self, depth: int = 0) -> str:
        roll = self.r.random()
        if depth >= 3 or roll < 0.55:
            leaf = self.r.random()
            return self.number_text() if leaf < 0.4 else self.string_json() if leaf < 0.8 else self.pick(["true", "false", "null"])
        return self.object_text(depth + 1) if roll < 0.8 else self.array_text(depth + 1)

    def array_text(self, depth: int = 0) -> str:
        items = [self.json_text(depth + 1) for _ in range(self.r.randint(0, 4))]
        a, b, c = self.ws(), self.ws(), self.ws()
        return "[" + a + (b + "," + c).join(items) + b + "]" if items else "[" + a + "]"

    def object_text(self, depth: int = 0) -> str:
        keys = list(dict.fromkeys(self.text(6) for _ in range(self.r.randint(0, 4))))  # no duplicates inside values
        a, b = self.ws(), self.ws()
        parts = [self.string_json(k) + self.ws() + ":" + self.ws() + self.json_text(depth + 1) for k in keys]
        return "{" + a + (b + "," + a).join(parts) + b + "}" if parts else "{" + a + "}"

    # --- dates and times
    def datetime_string(self, max_digits: int = 9) -> str:
        y = self.r.randint(1900, 2100) if self.chance(0.7) else self.pick([1969, 1970, 2000, 2024])
        mo = self.r.randint(1, 12)
        d = self.r.randint(1, _DAYS[mo - 1])  # Feb 29 in a common year: invalid on purpose
        h, mi, s = self.r.randint(0, 23), self.r.randint(0, 59), self.r.randint(0, 59)
        frac = ""
        if self.chance(0.5):
            n = self.r.randint(1, max_digits)
            digits = self.digits(n, False)
            if n > 6 and self.chance(0.5):
                digits = digits[:6] + "0" * (n - 6)  # beyond microseconds, but zeros: exact
            frac = "." + digits
        return f"{y:04d}-{mo:02d}-{d:02d}{self.pick('TT ')}{h:02d}:{mi:02d}:{s:02d}{frac}{self.pick(_OFFSETS)}"

    def date_string(self) -> str:
        # A date column also takes a full date-time (never with a 7th fractional digit: the rules
        # leave that question to date-time columns).
        return self.datetime_string(max_digits=6) if self.chance(0.35) else self.datetime_string()[:10]

    def time_string(self) -> str:
        s = f"{self.r.randint(0, 23):02d}:{self.r.randint(0, 59):02d}:{self.r.randint(0, 59):02d}"
        return s + "." + self.digits(self.r.randint(1, 6), False) if self.chance(0.5) else s

    def non_string(self) -> str:
        roll = self.r.random()
        return (self.number_text() if roll < 0.5 else self.pick(["true", "false"]) if roll < 0.65
                else self.object_text() if roll < 0.85 else self.array_text())

    # --- one property value
    def value(self, kind: str) -> str:
        """Raw JSON text of a non-null value for a column of ``kind``; with ``wrong_types`` some
        values the rules refuse (wrong JSON types, invalid dates, numbers beyond range)."""
        for _ in range(50):
            text = self._value(kind)
            if self.f.wrong_types or _accepted(kind, text):
                return text
        raise AssertionError(f"no acceptable value for {kind}")

    def _value(self, kind: str) -> str:
        wrong = self.f.wrong_types and self.chance(0.05)
        roll = self.r.random()
        if kind in ("integer", "key_int"):
            if wrong:
                return self.pick(['"5"', "true", "false", "[]", "{}", '"abc"', "1.000001"])
            return self.pick(INTEGER_EDGES) if roll < 0.25 else self.integer_text()
        if kind in ("number", "intnum"):
            if wrong:
                return self.pick(['"1.5"', "false", "{}", "[1]"])
            return (self.pick(NUMBER_EDGES) if roll < 0.2 else self.integer_text() if roll < 0.35
                    else self.decimal_text(wide=roll < 0.7))
        if kind.startswith("scaled"):
            return self.pick(['"12.5"', "true"]) if wrong else self.scaled_text(int(kind[6:]))
        if kind in ("string", "key_str"):
            return self.non_string() if roll < 0.2 else self.string_json()
        if kind == "datetime":
            if wrong:
                return self.pick(["1700000000", "true", '{"t": 1}', "1.5", self.string_json(self.pick(BAD_DATETIMES))])
            return self.string_json(self.datetime_string())
        if kind == "date":
            if wrong:
                return self.pick(["20240101", "false", self.string_json(self.pick(BAD_DATES))])
            return self.string_json(self.date_string())
        if kind == "time":
            if wrong:
                return self.pick(["1200", "true", self.string_json(self.pick(BAD_TIMES))])
            return self.string_json(self.time_string())
        if kind == "boolean":
            return self.pick(['"true"', "1", "0", '"false"', '"yes"', "[]"]) if wrong else self.pick(["true", "false"])
        if kind == "object":
            return self.object_text()
        if kind == "array":
            return self.array_text()
        if kind == "any":
            return self.json_text()
        if kind.startswith("multi:"):
            t = self.pick(kind[6:].split(","))
            return {"string": self.string_json, "integer": self.integer_text, "number": self.number_text,
                    "boolean": lambda: self.pick(["true", "false"]), "object": self.object_text,
                    "array": self.array_text}[t]()
        if kind == "key_multi":
            return self.string_json() if roll < 0.5 else str(self.r.randint(INT64_MIN, INT64_MAX) if roll < 0.75 else self.r.randint(-5, 5))
        raise AssertionError(kind)

    # --- records and STATE values
    def record(self, plan: "StreamPlan") -> str:
        """A RECORD's ``record`` object as raw text: declared values (valid, edge, wrong-typed,
        null, absent), sometimes an earlier duplicate, undeclared properties and a poison value;
        members in any order, keys escaped in any legal way, whitespace wherever JSON allows it."""
        f = self.f
        members: list[tuple[str, str]] = []  # (key text, value text)
        for col in plan.columns:
            roll = self.r.random()
            if col.key and f.wrong_types and roll < 0.03:
                # a missing or a null key: rejected
                if roll < 0.015:
                    members.append((self.string_json(col.name), "null"))
                continue
            if not col.key and roll < 0.15:
                if roll < 0.05:
                    members.append((self.string_json(col.name), "null"))
                continue  # absent or null: NULL
            if f.duplicates and self.chance(0.06):
                members.append((self.string_json(col.name), self.value(col.kind)))
            members.append((self.string_json(col.name), self.value(col.kind)))
        if f.undeclared and self.chance(0.25):
            declared = {c.name for c in plan.columns}
            for _ in range(self.r.randint(1, 3)):
                name = self.pick(NAME_POOL) if self.chance(0.5) else self.text(6)
                if name not in declared and name not in METADATA_NAMES and name not in f.exclude_names:
                    declared.add(name)
                    members.append((self.string_json(name), self.json_text()))
        if f.poison and self.chance(0.02):
            if self.chance(0.2):
                members.append((self.pick(POISON_KEYS), "1"))
            else:
                name = self.pick([c.name for c in plan.columns] + ["zz"])
                members.append((self.string_json(name), self.pick(POISON_VALUES)))
        # Which duplicate is last is read from the text, by the oracle as by the target.
        if self.chance(0.6):
            self.r.shuffle(members)
        a, b, c = self.ws(), self.ws(), self.ws()
        return "{" + a + (b + "," + a).join(k + c + ":" + a + v for k, v in members) + b + "}"

    def state(self, n: int) -> str:
        """A STATE value: odd number spellings, escapes, spaces; unique through its counter."""
        if self.chance(0.3):
            return ('{"#state":' + self.ws() + str(n) + ', "big": 123456789012345678901234567890, '
                    '"dec": 0.1000000000000000000001, "e": 1E5, "s": "\\u00e9", "x": 1.10}')
        body = self.object_text()
        inner = body[1:].lstrip(" \t")
        return '{"#state":' + self.ws() + str(n) + ("" if inner.startswith("}") else "," + self.ws()) + inner


def _accepted(kind: str, text: str) -> bool:
    ltype = {"key_int": "integer", "intnum": "number", "datetime": "timestamp", "key_str": "string",
             "key_multi": "keystring", "object": "json", "array": "json", "any": "json"}.get(kind, kind)
    ltype = "number" if ltype.startswith("scaled") else "json" if ltype.startswith("multi:") else ltype
    try:
        convert(ltype, text.encode("utf-8"))
    except _Refused:
        return False
    return True


def record_line(stream: str, record: str, shape: int = 0) -> bytes:
    """A RECORD message around raw record text, in one of three member orders and spacings."""
    s = enc_string(stream).decode()
    if shape == 0:
        text = '{"type":"RECORD","stream":' + s + ',"record":' + record + "}"
    elif shape == 1:
        text = '{"record": ' + record + ', "type": "RECORD", "stream": ' + s + "}"
    else:
        text = '{ "type" : "RECORD" , "stream" : ' + s + ' , "record" : ' + record + ' , "version": 1 }'
    return text.encode("utf-8")


# ----- hypothesis strategies -----------------------------------------------------------------

def _nullable(t: str | list, style: int, extra: dict | None = None) -> dict:
    extra = extra or {}
    base = [t] if isinstance(t, str) else list(t)
    if style == 0:
        return {"type": base[0] if len(base) == 1 else base, **extra}
    if style == 1:
        return {"type": [*base, "null"], **extra}
    if style == 2:
        return {"type": ["null", *base], **extra}
    return {"anyOf": [{"type": base[0] if len(base) == 1 else base, **extra}, {"type": "null"}]}


KINDS = ["integer", "number", "intnum", "scaled", "string", "datetime", "date", "time", "boolean", "object",
         "array", "any", "multi"]
KEY_KINDS = ["key_int", "key_str", "key_multi"]


@st.composite
def column_nodes(draw: Any, kind: str) -> tuple[str, dict]:
    """(value kind, JSON Schema) of a column: every type, nullable as a type list or anyOf."""
    style = draw(st.integers(0, 3))
    if kind in ("integer", "number", "string", "boolean"):
        return kind, _nullable(kind, style)
    if kind == "intnum":
        return kind, _nullable(draw(st.sampled_from([["integer", "number"], ["number", "integer"]])), style % 3)
    if kind == "scaled":
        scale = draw(st.sampled_from([2, 4, 6]))
        return f"scaled{scale}", _nullable("number", style, {"multipleOf": float(f"1e-{scale}")})
    if kind in ("datetime", "date", "time"):
        fmt = {"datetime": "date-time", "date": "date", "time": "time"}[kind]
        return kind, _nullable("string", style, {"format": fmt})
    if kind == "object":
        inner = {"properties": {"a": {"type": ["integer", "null"]}, "b": {"type": "string"}}}
        return kind, draw(st.sampled_from([{"type": "object", **inner}, {"type": ["object", "null"]},
                                           {"type": "object"}, inner]))
    if kind == "array":
        return kind, draw(st.sampled_from([{"type": "array", "items": {"type": "number"}},
                                           {"type": ["array", "null"], "items": {}}, {"type": "array"}]))
    if kind == "any":
        return kind, {}
    if kind == "multi":
        types = draw(st.sampled_from([["string", "integer"], ["string", "number", "null"], ["boolean", "integer"],
                                      ["object", "array"], ["integer", "string", "object", "null"]]))
        node = draw(st.sampled_from([{"type": types}, {"anyOf": [{"type": t} for t in types]}]))
        return "multi:" + ",".join(t for t in types if t != "null"), node
    if kind == "key_int":
        return kind, {"type": "integer"}
    if kind == "key_str":
        return kind, {"type": "string"}
    if kind == "key_multi":
        return kind, draw(st.sampled_from([{"type": ["string", "integer"]}, {"type": ["integer", "string"]},
                                           {"anyOf": [{"type": "string"}, {"type": "integer"}]}]))
    raise AssertionError(kind)


@dataclass
class StreamPlan:
    name: str
    columns: list[ColumnPlan]

    @property
    def keys(self) -> list[str]:
        return [c.name for c in self.columns if c.key]

    def schema_line(self) -> bytes:
        return json.dumps({"type": "SCHEMA", "stream": self.name,
                           "schema": {"type": "object", "properties": {c.name: c.node for c in self.columns}},
                           "key_properties": self.keys}).encode()


_NAME_CHARS = st.one_of(st.characters(min_codepoint=0x20, max_codepoint=0x7E), st.sampled_from(list(_SPECIAL_CHARS[1:])),
                        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@st.composite
def stream_plans(draw: Any, name: str, features: Features | None = None) -> StreamPlan:
    """A stream's schema: 1-8 properties with odd names, 0-2 of them keys, every column type."""
    banned = METADATA_NAMES | (features.exclude_names if features else frozenset())
    names = draw(st.lists(st.one_of(st.sampled_from(NAME_POOL), st.text(_NAME_CHARS, max_size=6)),
                          min_size=1, max_size=8, unique=True).map(lambda ns: [n for n in ns if n not in banned])
                 .filter(bool))
    n_keys = draw(st.integers(0, min(2, len(names))))
    columns = []
    for i, n in enumerate(names):
        kind, node = draw(column_nodes(draw(st.sampled_from(KEY_KINDS if i < n_keys else KINDS))))
        columns.append(ColumnPlan(n, kind, node, key=i < n_keys))
    return StreamPlan(name, columns)


@dataclass
class Run:
    lines: list[bytes]
    flush_rows: int | None
    streams: list[StreamPlan]

    def text(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)

    def __repr__(self) -> str:
        return (f"Run({len(self.lines)} lines, streams {[p.name for p in self.streams]}, "
                f"flush_max_rows={self.flush_rows}; the failure message names the input file)")


@st.composite
def singer_runs(draw: Any, features: Features = Features(), max_streams: int = 6, max_records: int = 40) -> Run:
    """A whole Singer input: SCHEMAs, then the streams' RECORDs (in stream order or interleaved)
    with STATE lines between them, ending with a STATE; and the segment size to ingest it with."""
    names = draw(st.lists(st.sampled_from(STREAM_POOL), min_size=1, max_size=max_streams, unique=True))
    plans = [draw(stream_plans(n, features)) for n in names]
    gen = Gen(random.Random(draw(st.integers(0, 2**64 - 1))), features)
    lines = [p.schema_line() for p in plans]
    records = [record_line(p.name, gen.record(p), gen.r.randint(0, 2))
               for p in plans for _ in range(gen.r.randint(0, max_records))]
    if draw(st.booleans()):
        gen.r.shuffle(records)
    states = 0
    for line in records:
        lines.append(line)
        if gen.chance(0.08):
            states += 1
            lines.append(b'{"type":"STATE","value":' + gen.state(states).encode("utf-8") + b"}")
    lines.append(b'{"type": "STATE", "value": ' + gen.state(states + 1).encode("utf-8") + b"}")
    flush = draw(st.sampled_from([None, None, 7, 25, 60]))
    return Run(lines, flush, plans)


def tests_dir() -> Path:
    return Path(__file__).resolve().parent
