"""Logical types -> Oracle column types, and back; what a server version allows.

The mapping (also in the README's Oracle section):

===========  =========================================  ==========================================
logical      Oracle column                              notes
===========  =========================================  ==========================================
integer      NUMBER(38)
number       NUMBER                                     BINARY_DOUBLE with ``prefer_float``
string       VARCHAR2(n CHAR)                           n = maxLength, else ``varchar_length``;
                                                        CLOB when n is past the server's limit
                                                        (4000, or 32767 with MAX_STRING_SIZE=EXTENDED)
time         VARCHAR2(64 CHAR)                          the text as sent
timestamp    TIMESTAMP(6) WITH TIME ZONE (UTC)          TIMESTAMP(6) holding UTC with
                                                        ``timestamp_type: timestamp``
date         DATE
boolean      NUMBER(1) CHECK (c IN (0, 1))              BOOLEAN on 23ai
json         CLOB CHECK (c IS JSON)                     JSON on 21c and later
===========  =========================================  ==========================================

Widening never narrows and never re-types a column to the same logical type
(a setting changed later applies to new columns only). Text absorbs
everything: a column whose values mix JSON and other types becomes a plain
CLOB holding the text as it is (an ``IS JSON`` check would refuse a plain
string), like the DuckDB destination keeps such columns as VARCHAR.

``column_types`` overrides are SQL types written by the operator; they are
checked against a strict pattern (no statement can hide in one) and columns
created with them are left alone by widening.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ...schema import widen

STANDARD_STRING_BYTES = 4000
EXTENDED_STRING_BYTES = 32767
TIME_LENGTH = 64
UNBOUNDED = 1 << 30  # a ColumnSpec.max_length that only a CLOB holds

# Characters a value of each logical type needs once written as text (the
# formats of ``binds.as_text`` and ``sql.text_expr``).
TEXT_LENGTH = {
    "integer": 20,
    "number": 40,
    "decimal": 40,
    "boolean": 5,
    "timestamp": 27,  # 2024-01-02T03:04:05.000000Z
    "date": 10,
    "time": TIME_LENGTH,
    "json": UNBOUNDED,
}


@dataclass(frozen=True)
class ServerFeatures:
    """What one server allows, detected once per connection (``connect.detect_features``)."""

    version: tuple[int, ...]
    max_identifier_length: int = 128
    max_string_bytes: int = STANDARD_STRING_BYTES
    json_type: bool = False  # native JSON columns (21c, COMPATIBLE >= 20)
    boolean_type: bool = False  # BOOLEAN columns (23ai)
    banner: str | None = None
    charset: str | None = None
    current_schema: str | None = None
    assumed: bool = False  # plan --offline: nothing was asked of a server

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def max_string_size(self) -> str:
        return "EXTENDED" if self.max_string_bytes > STANDARD_STRING_BYTES else "STANDARD"

    @classmethod
    def from_version(cls, version: tuple[int, ...], **kw: Any) -> "ServerFeatures":
        major, minor = (tuple(version) + (0, 0))[:2]
        kw.setdefault("max_identifier_length", 128 if (major, minor) >= (12, 2) else 30)
        kw.setdefault("json_type", major >= 21)
        kw.setdefault("boolean_type", major >= 23)
        return cls(version=tuple(version), **kw)


# plan --offline assumes a 19c server (the long-term release most sites run):
# 128-byte names, MAX_STRING_SIZE=STANDARD, no JSON or BOOLEAN column types.
# SQL written for it also runs on 21c and 23ai.
OFFLINE_FEATURES = ServerFeatures.from_version((19, 0), assumed=True)


@dataclass(frozen=True)
class TypeSettings:
    prefer_float: bool = False
    varchar_length: int = 4000
    timestamp_tz: bool = True

    @classmethod
    def from_config(cls, config: Any) -> "TypeSettings":
        length = int(getattr(config, "varchar_length", 4000))
        if length < 1:
            raise ConfigError(f"varchar_length must be at least 1, got {length}")
        return cls(
            prefer_float=bool(getattr(config, "prefer_float", False)),
            varchar_length=length,
            timestamp_tz=getattr(config, "timestamp_type", "timestamp_tz") != "timestamp",
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
        return self.family == "clob" or (self.family == "json" and self.text != "JSON")


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
        return OracleType(t, "varchar", length, sem != "BYTE")
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
            return "number"
        return None
    if t.family == "float":
        return "number" if t.text == "BINARY_DOUBLE" else None
    if t.family == "varchar":
        return "string" if t.char_semantics and t.text.startswith("VARCHAR2") else None
    if t.family == "clob":
        return "string" if t.text == "CLOB" else None
    if t.family == "json":
        return "json"
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
        if logical == "decimal":  # exact digits: never a binary float
            return "NUMBER"
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

    def widened_to(self, have: str, have_type: OracleType, want: str, want_length: int | None) -> tuple[str, int | None] | None:
        """(logical type, max_length) the column must become, or None if it holds ``want`` already."""
        new = widen(have, want)
        if new == "json" and (have != "json" or want != "json"):
            new = "string"  # text holds every value; see the module docstring
        if new != "string":
            # number and decimal are both NUMBER: no DDL for a change of name only
            return None if new == have or self.sql_type(new) == self.sql_type(have) else (new, None)
        if have_type.family == "clob":
            return None
        if have_type.family == "json":
            return ("string", UNBOUNDED)
        need_want = self.string_length(want, want_length) if want != "json" else UNBOUNDED
        if have in ("string", "time"):
            capacity = have_type.length or 0
            if need_want <= capacity:
                return None
            return ("string", max(need_want, capacity))
        need_have = self.string_length(have, None)
        return ("string", max(need_want, need_have))
