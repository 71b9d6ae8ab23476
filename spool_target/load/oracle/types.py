"""Logical types -> Oracle column types, and back; what a server version allows.

The mapping (also in the README's Oracle section):

===========  =========================================  ==========================================
logical      Oracle column                              notes
===========  =========================================  ==========================================
integer      NUMBER(38)
number       NUMBER                                     BINARY_DOUBLE with ``prefer_float``
decimal      NUMBER                                     always NUMBER: the exact text as sent
string       VARCHAR2(n CHAR)                           n = maxLength, else ``varchar_length``;
                                                        CLOB when n is past the server's limit
                                                        (4000, or 32767 with MAX_STRING_SIZE=EXTENDED)
time         VARCHAR2(64 CHAR)                          the text as sent
timestamp    TIMESTAMP(6) WITH TIME ZONE (UTC)          TIMESTAMP(6) holding UTC with
                                                        ``timestamp_type: timestamp``, and always
                                                        for key columns (see ``key_types``)
date         DATE
boolean      NUMBER(1) CHECK (c IN (0, 1))              BOOLEAN on 23ai (COMPATIBLE 23)
json         CLOB CHECK (c IS JSON)                     JSON on 21c and later (COMPATIBLE 20)
===========  =========================================  ==========================================

Widening never narrows and never re-types a column to the same logical type
(a setting changed later applies to new columns only). Text absorbs
everything: a column whose values mix JSON and other types becomes a plain
CLOB holding the text as it is (an ``IS JSON`` check would refuse a plain
string), like the DuckDB destination keeps such columns as VARCHAR. So does a
``CLOB IS JSON`` column that receives a JSON scalar (``"abc"``, ``5``) on a
server whose ``IS JSON`` only takes objects and arrays (COMPATIBLE below 20).

``column_types`` overrides are SQL types written by the operator; they are
checked against a strict pattern (no statement can hide in one) and columns
created with them are left alone by widening.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ...errors import ConfigError, DestinationError
from ..options import OracleOptions
from ...schema import widen as _spool_widen

STANDARD_STRING_BYTES = 4000
EXTENDED_STRING_BYTES = 32767
TIME_LENGTH = 64
UNBOUNDED = 1 << 30  # a ColumnSpec.max_length that only a CLOB holds
MAX_COLUMNS = 1000  # ORA-01792: maximum number of columns in a table or view is 1000

# ORA-01450 "maximum key length (6398) exceeded": on the default 8K block an index entry's
# key may take 6,398 bytes. Oracle's error text counts "the sum of the width of all indexed
# columns plus the number of indexed columns"; 9 more bytes (key length, rowid and its
# length, per Oracle Support note 136158.1) are kept free so a key exactly at the line
# cannot fail (Oracle Database Error Messages, ORA-01450).
INDEX_KEY_BYTES = 6398
INDEX_ENTRY_OVERHEAD = 9

# Characters a value of each logical type needs once written as text (the
# formats of ``binds.as_text`` and ``sql.text_expr``).
TEXT_LENGTH = {
    "integer": 20,
    "number": 40,  # the shortest round-trip repr of a double: at most 24 characters
    "decimal": 200,  # 38 digits, a sign, an exponent, and zeros as sent; longer text widens further
    "boolean": 5,
    "timestamp": 27,  # 2024-01-02T03:04:05.000000Z
    "date": 10,
    "time": TIME_LENGTH,
    "json": UNBOUNDED,
}

NUMERIC = frozenset({"integer", "number", "decimal"})


def widen(a: str, b: str) -> str:
    """schema.widen with the ``decimal`` rules of the typing spec (TYPING_SPEC, Loading):
    integer+number, integer+decimal and number+decimal give decimal (every digit kept),
    decimal+string gives string, anything+json gives json."""
    if a == b:
        return a
    pair = {a, b}
    if pair <= NUMERIC:
        return "decimal"
    if "decimal" in pair:
        return "json" if "json" in pair else "string"
    return _spool_widen(a, b)


def combine(a: str, b: str) -> str:
    """The logical type of a column whose segments in ONE unit say ``a`` and ``b``.

    Like ``widen``, except that JSON mixed with anything else is plain text: a
    ``CLOB IS JSON`` column (or a native JSON one) refuses the string ``hello``.
    """
    new = widen(a, b)
    if new == "json" and (a != "json" or b != "json"):
        return "string"
    return new


def _bytes_per_char(charset: str | None) -> int:
    """Most bytes one character takes in the database character set. Oracle names
    character sets <region><bits><name>: 7- and 8-bit ones are single-byte (WE8MSWIN1252,
    US7ASCII); UTF8 is CESU-8 (3 bytes); AL32UTF8 and anything unknown count 4, the worst case
    (Globalization Support Guide, "Naming Convention for Oracle Database Character Sets")."""
    if not charset:
        return 4
    name = charset.upper()
    if name == "UTF8":
        return 3
    if re.match(r"^[A-Z]+[78][A-Z]", name):
        return 1
    return 4


@dataclass(frozen=True)
class ServerFeatures:
    """What one server allows, detected once per connection (``connect.detect_features``)."""

    version: tuple[int, ...]
    max_identifier_length: int = 128
    max_string_bytes: int = STANDARD_STRING_BYTES
    json_type: bool = False  # native JSON columns (21c, COMPATIBLE >= 20)
    boolean_type: bool = False  # BOOLEAN columns (23ai, COMPATIBLE >= 23)
    json_scalars: bool = False  # IS JSON takes "abc" and 5 (COMPATIBLE >= 20); before: objects and arrays only
    compatible: str | None = None  # DBMS_UTILITY.DB_VERSION's compatibility
    banner: str | None = None
    charset: str | None = None
    current_schema: str | None = None
    assumed: str | None = None  # plan --offline: what was assumed ("19c", ...), nothing was asked of a server

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def max_string_size(self) -> str:
        return "EXTENDED" if self.max_string_bytes > STANDARD_STRING_BYTES else "STANDARD"

    @property
    def bytes_per_char(self) -> int:
        return _bytes_per_char(self.charset)

    @classmethod
    def from_version(cls, version: tuple[int, ...], compatible: str | None = None, **kw: Any) -> "ServerFeatures":
        """Features from the version and COMPATIBLE (``None``: as high as the version allows)."""
        major, minor = (tuple(version) + (0, 0))[:2]
        compat = int(str(compatible).split(".")[0]) if compatible else major
        kw.setdefault("max_identifier_length", 128 if (major, minor) >= (12, 2) else 30)
        kw.setdefault("json_type", major >= 21 and compat >= 20)
        kw.setdefault("boolean_type", major >= 23 and compat >= 23)
        kw.setdefault("json_scalars", compat >= 20)
        return cls(version=tuple(version), compatible=compatible, **kw)


# What plan --offline may assume (--assume). Each is a server at its own COMPATIBLE, with the
# AL32UTF8 character set (the default since 12.2) and 8K blocks.
ASSUMABLE = {"19c": (19, 0), "21c": (21, 0), "23ai": (23, 0)}


def assumed_features(name: str = "19c", max_string_size: str = "STANDARD") -> ServerFeatures:
    if name not in ASSUMABLE:
        raise ConfigError(f"--assume {name!r} is not a server this plan knows", hint=f"one of {', '.join(ASSUMABLE)}")
    size = max_string_size.upper()
    if size not in ("STANDARD", "EXTENDED"):
        raise ConfigError(f"--max-string-size {max_string_size!r}", hint="STANDARD or EXTENDED")
    version = ASSUMABLE[name]
    return ServerFeatures.from_version(
        version, compatible=f"{version[0]}.0.0", charset="AL32UTF8", assumed=name,
        max_string_bytes=EXTENDED_STRING_BYTES if size == "EXTENDED" else STANDARD_STRING_BYTES,
    )


# plan --offline without --assume: a 19c server (the long-term release most sites run):
# 128-byte names, MAX_STRING_SIZE=STANDARD, no JSON or BOOLEAN column types.
OFFLINE_FEATURES = assumed_features("19c")


@dataclass(frozen=True)
class TypeSettings:
    prefer_float: bool = False
    varchar_length: int = 4000
    timestamp_tz: bool = True

    @classmethod
    def from_options(cls, options: OracleOptions) -> "TypeSettings":
        length = options.varchar_length
        if length < 1:
            raise ConfigError(f"varchar_length must be at least 1, got {length}")
        return cls(
            prefer_float=options.prefer_float,
            varchar_length=length,
            timestamp_tz=options.timestamp_type != "timestamp",
        )


# ---- parsing Oracle type text ---------------------------------------------------
@dataclass(frozen=True)
class OracleType:
    """A column type, as text and as the family that decides how values bind."""

    text: str
    family: str  # number, float, varchar, clob, json, tstz, tsltz, timestamp, date, boolean, other
    length: int | None = None  # VARCHAR2: characters (CHAR) or bytes (BYTE)
    char_semantics: bool = True
    precision: int | None = None
    scale: int | None = None

    @property
    def is_text(self) -> bool:
        return self.family in ("varchar", "clob")

    @property
    def is_long_text(self) -> bool:
        """Bound as a LONG (Arrow large_string): CLOB and NCLOB columns, JSON text in a CLOB included."""
        return self.family == "clob" or (self.family == "json" and self.text in ("CLOB", "NCLOB"))

    @property
    def is_json_text(self) -> bool:
        """A CLOB (or VARCHAR2) with an IS JSON check: JSON kept as text, not the native type."""
        return self.family == "json" and self.text != "JSON"

    @property
    def comparable(self) -> bool:
        """Oracle can compare, group and index it: not a LOB (ORA-00932) nor JSON (ORA-40796)."""
        return self.family not in ("clob", "json")


_VARCHAR = re.compile(r"^N?VARCHAR2\((\d+)(?:\s+(CHAR|BYTE))?\)$|^N?CHAR\((\d+)(?:\s+(CHAR|BYTE))?\)$")
_NUMBER = re.compile(r"^NUMBER(?:\((\d+|\*)(?:\s*,\s*(-?\d+))?\))?$")
_TIMESTAMP = re.compile(r"^TIMESTAMP(?:\((\d)\))?( WITH (LOCAL )?TIME ZONE)?$")
# What column_types may say: a type name, an optional (n), (p,s) or (n CHAR|BYTE), an optional
# WITH [LOCAL] TIME ZONE. Nothing else, so no SQL can ride along in a setting.
_OVERRIDE = re.compile(
    r"^[A-Z][A-Z0-9_]*( [A-Z][A-Z0-9_]*)?(\(\s*(\d+|\*)\s*(,\s*-?\d+\s*)?(\s(CHAR|BYTE))?\s*\))?( WITH( LOCAL)? TIME ZONE)?$"
)


def parse_type(text: str, *, is_json: bool = False) -> OracleType:
    t = " ".join(text.upper().split())
    m = _VARCHAR.match(t)
    if m:
        length = int(m.group(1) or m.group(3))
        sem = m.group(2) or m.group(4)
        return OracleType(t, "json" if is_json else "varchar", length, sem != "BYTE")
    m = _NUMBER.match(t)
    if m:
        p = None if m.group(1) in (None, "*") else int(m.group(1))
        s = int(m.group(2)) if m.group(2) is not None else (0 if m.group(1) else None)
        return OracleType(t, "number", precision=p, scale=s)
    if t in ("BINARY_DOUBLE", "BINARY_FLOAT", "FLOAT") or t.startswith("FLOAT("):
        return OracleType(t, "float")
    if t in ("CLOB", "NCLOB", "LONG"):
        return OracleType(t, "json" if is_json else "clob")
    if t == "JSON":
        return OracleType(t, "json")
    m = _TIMESTAMP.match(t)
    if m:
        # WITH LOCAL TIME ZONE depends on the session's zone: not a type this loader writes.
        family = "tsltz" if m.group(3) else ("tstz" if m.group(2) else "timestamp")
        return OracleType(t, family, precision=int(m.group(1) or 6))
    if t == "DATE":
        return OracleType(t, "date")
    if t == "BOOLEAN":
        return OracleType(t, "boolean")
    return OracleType(t, "other")


def logical_of(t: OracleType) -> str | None:
    """The logical type a column of this type holds, for the types this loader creates."""
    if t.family == "number":
        if t.precision == 1 and t.scale == 0:
            return "boolean"
        if t.scale == 0:
            return "integer"
        if t.precision is None and t.scale is None:
            return "number"  # NUMBER holds decimal values as well: widening number -> decimal is a no-op
        return None
    if t.family == "float":
        return "number" if t.text == "BINARY_DOUBLE" else None
    if t.family == "varchar":
        return "string" if t.char_semantics and t.text.startswith("VARCHAR2") else None
    if t.family == "clob":
        return "string" if t.text == "CLOB" else None
    if t.family == "json":
        return "json" if t.text in ("JSON", "CLOB") else None
    if t.family in ("tstz", "timestamp"):
        return "timestamp" if t.precision == 6 else None
    if t.family == "date":
        return "date"
    if t.family == "boolean":
        return "boolean"
    return None


def check_override(text: Any, where: str) -> str:
    if not isinstance(text, str) or not _OVERRIDE.match(" ".join(text.upper().split())):
        raise ConfigError(
            f"column_types{where}: {text!r} is not an Oracle column type",
            hint='write a type such as "CLOB", "VARCHAR2(200 CHAR)", "NUMBER(12,2)" or "TIMESTAMP(6)"',
        )
    return " ".join(text.upper().split())


class KeyTooLong(DestinationError):
    """The key columns cannot be given types whose index entry fits (ORA-01450), or one of
    them is a LOB, which Oracle cannot compare (ORA-00932)."""


# ---- logical -> Oracle -----------------------------------------------------------
class OracleTypes:
    """Type decisions for one server and one configuration."""

    def __init__(self, features: ServerFeatures, settings: TypeSettings):
        self.features = features
        self.settings = settings

    @property
    def string_limit(self) -> int:
        return self.features.max_string_bytes

    def string_length(self, logical: str, max_length: int | None) -> int:
        """Characters a column needs for ``logical`` values written as text."""
        if logical == "string":
            return max_length or self.settings.varchar_length
        return TEXT_LENGTH[logical]

    def sql_type(self, logical: str, max_length: int | None = None) -> str:
        if logical == "integer":
            return "NUMBER(38)"
        if logical == "number":
            return "BINARY_DOUBLE" if self.settings.prefer_float else "NUMBER"
        if logical == "decimal":
            return "NUMBER"  # never BINARY_DOUBLE: the text was kept because no double holds it
        if logical == "string":
            n = self.string_length("string", max_length)
            return f"VARCHAR2({n} CHAR)" if n <= self.string_limit else "CLOB"
        if logical == "time":
            return f"VARCHAR2({TIME_LENGTH} CHAR)"
        if logical == "timestamp":
            return "TIMESTAMP(6) WITH TIME ZONE" if self.settings.timestamp_tz else "TIMESTAMP(6)"
        if logical == "date":
            return "DATE"
        if logical == "boolean":
            return "BOOLEAN" if self.features.boolean_type else "NUMBER(1)"
        if logical == "json":
            return "JSON" if self.features.json_type else "CLOB"
        raise ValueError(f"unknown logical type {logical!r}")

    def check_constraint(self, logical: str, sql_type: str, quoted_name: str) -> str:
        """The CHECK a column of ours carries: booleans as 0/1, JSON text that must parse."""
        if logical == "boolean" and sql_type == "NUMBER(1)":
            return f" CHECK ({quoted_name} IN (0, 1))"
        if logical == "json" and sql_type == "CLOB":
            return f" CHECK ({quoted_name} IS JSON)"
        return ""

    # ---- keys -------------------------------------------------------------------
    def index_bytes(self, t: OracleType) -> int | None:
        """Bytes a column counts in an index key (ORA-01450's sum), None for a LOB."""
        if t.family == "varchar":
            n = t.length or 0
            return min(n * self.features.bytes_per_char, self.string_limit) if t.char_semantics else n
        return {"number": 22, "float": 8, "date": 7, "timestamp": 11, "tstz": 13, "tsltz": 11,
                "boolean": 1}.get(t.family, None if not t.comparable else 22)

    def key_types(self, keys: Sequence[tuple[str, str, int | None]], overrides: Mapping[str, str]) -> dict[str, str]:
        """SQL types for key columns ``(name, logical, max_length)`` whose index entry fits.

        - date-time keys are TIMESTAMP(6) holding UTC: a TIME ZONE column cannot be in a
          primary key (ORA-02329), and a naive UTC value compares the same in every session;
        - string keys without maxLength share what the index entry has left (ORA-01450),
          at most ``varchar_length`` characters each; a maxLength is kept as it is.

        Raises KeyTooLong when even that cannot fit, or a key would be a CLOB.
        """
        types: dict[str, str] = {}
        fixed = 0
        unsized: list[str] = []
        for name, logical, max_length in keys:
            if name in overrides:
                types[name] = overrides[name]
            elif logical == "timestamp":
                types[name] = "TIMESTAMP(6)"
            elif logical == "string" and max_length is None:
                unsized.append(name)
                continue
            else:
                types[name] = self.sql_type(logical, max_length)
            t = parse_type(types[name])
            cost = self.index_bytes(t)
            if cost is None:
                raise KeyTooLong(
                    f"key column {name} would be {types[name]}, which Oracle cannot compare or index",
                    hint=self._key_hint(name),
                )
            fixed += cost
        budget = INDEX_KEY_BYTES - INDEX_ENTRY_OVERHEAD - len(keys) - fixed
        if unsized:
            chars = min(self.settings.varchar_length, self.string_limit)
            if (self.index_bytes(parse_type(f"VARCHAR2({chars} CHAR)")) or 0) * len(unsized) > budget:
                chars = min(chars, budget // len(unsized) // self.features.bytes_per_char)
            if chars < 1:
                budget = -1
            for name in unsized:
                types[name] = self.sql_type("string", chars)
            budget -= sum(self.index_bytes(parse_type(types[n])) or 0 for n in unsized)
        if budget < 0:
            listed = ", ".join(f"{n} {types.get(n, 'VARCHAR2')}" for n, _, _ in keys)
            raise KeyTooLong(
                f"the key columns ({listed}) take more than the "
                f"{INDEX_KEY_BYTES:,} bytes an index entry may hold on an 8K block (ORA-01450; "
                f"{self.features.bytes_per_char} bytes per character, MAX_STRING_SIZE={self.features.max_string_size})",
                hint=self._key_hint(keys[0][0]),
            )
        return types

    @staticmethod
    def _key_hint(name: str) -> str:
        return ("give the key properties a maxLength in the tap's schema (the README's Oracle section says how much fits), "
                'or set the key column types with column_types, e.g. {"<stream>": {"<property>": "VARCHAR2(200 CHAR)"}}')

    # ---- widening ---------------------------------------------------------------
    def widened_to(self, have: str, have_type: OracleType, want: str, want_length: int | None) -> tuple[str, int | None] | None:
        """(logical type, max_length) the column must become, or None if it holds ``want`` already."""
        new = combine(have, want)
        if new != "string":
            if new == have:
                return None
            if new in NUMERIC and have_type.family == "number" and have_type.text == self.sql_type(new):
                return None  # NUMBER holds number and decimal values alike
            return (new, None)
        if have_type.family == "clob":
            return None
        if have_type.family == "json":
            return ("string", UNBOUNDED)  # JSON (or CLOB IS JSON) -> plain CLOB: the text as it is
        need_want = self.string_length(want, want_length) if want != "json" else UNBOUNDED
        if have in ("string", "time"):
            capacity = have_type.length or 0
            if need_want <= capacity:
                return None
            return ("string", max(need_want, capacity))
        need_have = self.string_length(have, None)
        return ("string", max(need_want, need_have))
