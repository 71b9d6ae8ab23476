"""The manifest's entries, one frozen dataclass per ``kind``.

Each line of ``manifest.jsonl`` is one entry. ``to_json`` gives the exact
object that is written (``n`` and ``kind`` first, then the entry's fields in
the order the README documents), so the bytes on disk are what they were when
entries were dict literals; ``from_json`` reads a line back, filling in what
older spools did not write yet (``run_id``, ``rejected``...). A writer builds
one of these classes, so it cannot misspell or forget a key, and a reader
matches on the class (``isinstance``), never on the ``kind`` string.

A ``kind`` this version does not know (a newer spool-target of the same
format) reads as an ``UnknownEntry`` that keeps its object as it was: readers
skip it, as they skipped unknown dicts before.

``n`` is an entry's position in the manifest. A new entry is built without it
(``-1``) and ``ManifestWriter.append`` numbers it.

The ledger (in the destination) records which work items are loaded under one
id, ``item``: a segment's path, or ``activate_version/<n>`` for an
ACTIVATE_VERSION.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import orjson

from ..schema import Column, StreamSchema

# 2: a number column of a segment may be `decimal` (exact text); see numbers.py
FORMAT_VERSION = 2

UNNUMBERED = -1  # ``n`` of an entry not appended yet


@dataclass(frozen=True)
class ManifestEntry:
    """What every entry has: its position ``n`` and its ``kind``."""

    KIND: ClassVar[str] = ""
    n: int = field(default=UNNUMBERED, kw_only=True)

    def __post_init__(self) -> None:
        # A manifest edited by hand or damaged must stop a command with the line
        # and the field named, not deep inside it (an int added to a str...).
        for name, kind, optional, item in _field_checks(type(self)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if not isinstance(value, kind) or (kind is int and type(value) is bool):
                what = _KIND_NAMES.get(kind, kind.__name__)
            elif item is not None and not all(isinstance(v, item) for v in typing.cast("tuple[object, ...]", value)):
                what = f"a list of {'strings' if item is str else item.__name__ + 's'}"
            else:
                continue
            raise TypeError(f"{self.KIND or 'an'} entry's {name!r} should be {what}, got {value!r:.80}")

    @property
    def kind(self) -> str:
        return self.KIND

    def to_json(self) -> dict[str, Any]:
        """The object written to the manifest: ``n``, ``kind``, then the fields."""
        return {"n": self.n, "kind": self.kind, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ManifestEntry:
        raise NotImplementedError


@dataclass(frozen=True)
class SpoolHeader(ManifestEntry):
    """The first line: format version, spool id, creation time."""

    KIND: ClassVar[str] = "spool"
    format: int
    spool_id: str
    created_at: str

    def _fields(self) -> dict[str, Any]:
        return {"format": self.format, "spool_id": self.spool_id, "created_at": self.created_at}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SpoolHeader:
        return cls(d.get("format", FORMAT_VERSION), d["spool_id"], d.get("created_at", ""), n=d["n"])


@dataclass(frozen=True)
class SchemaEntry(ManifestEntry):
    """A stream's schema; segments refer to it by ``schema_id``.

    Holds the fields as they were written (the id as stored, the JSON Schema as
    its text), so that reading never depends on how this version would hash or
    print them; ``stream_schema()`` is the schema itself."""

    KIND: ClassVar[str] = "schema"
    stream: str
    schema_id: str
    columns: tuple[Column, ...]
    key_properties: tuple[str, ...]
    bookmark_properties: tuple[str, ...]
    json_schema: str  # the original JSON Schema, as JSON text (one simple type for DuckDB's read_json)

    @classmethod
    def of(cls, schema: StreamSchema) -> SchemaEntry:
        return cls.from_json({"n": UNNUMBERED, "stream": schema.stream, **schema.to_json()})

    def stream_schema(self) -> StreamSchema:
        return StreamSchema.from_json(self.stream, self._fields())

    def _fields(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "schema_id": self.schema_id,
            "columns": [c.to_json() for c in self.columns],
            "key_properties": list(self.key_properties),
            "bookmark_properties": list(self.bookmark_properties),
            "json_schema": self.json_schema,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SchemaEntry:
        return cls(
            d["stream"],
            d["schema_id"],
            tuple(Column.from_json(c) for c in d["columns"]),
            tuple(d.get("key_properties") or ()),
            tuple(d.get("bookmark_properties") or ()),
            d.get("json_schema") or "{}",
            n=d["n"],
        )


@dataclass(frozen=True)
class Segment(ManifestEntry):
    """A committed Parquet file of one stream."""

    KIND: ClassVar[str] = "segment"
    stream: str
    path: str  # the file, relative to the spool root
    rows: int
    bytes: int
    sha256: str
    schema_id: str
    first_sequence: int
    last_sequence: int
    first_line: int | None
    last_line: int | None
    rejected: int = 0  # records of the same buffer written to the rejects file instead
    created_at: str = ""
    run_id: str = ""  # the ingest (or replay) run that committed it
    replay_of: str = ""  # written by `rejects replay`: the run that first sent its records

    @property
    def item(self) -> str:
        """Its id in the ledger: its path."""
        return self.path

    @property
    def source_run(self) -> str:
        """The run whose records these are (what overwrite replaces a table with)."""
        return self.replay_of or self.run_id

    def _fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "stream": self.stream,
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "schema_id": self.schema_id,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "rejected": self.rejected,
            "created_at": self.created_at,
            "run_id": self.run_id,
        }
        if self.replay_of:
            d["replay_of"] = self.replay_of
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Segment:
        return cls(
            d["stream"],
            d["path"],
            d["rows"],
            d["bytes"],
            d["sha256"],
            d["schema_id"],
            d.get("first_sequence", 0),
            d.get("last_sequence", 0),
            d.get("first_line"),
            d.get("last_line"),
            d.get("rejected", 0),
            d.get("created_at", ""),
            d.get("run_id", ""),
            d.get("replay_of", ""),
            n=d["n"],
        )


@dataclass(frozen=True)
class ActivateVersion(ManifestEntry):
    """A stream's ACTIVATE_VERSION, in its place among the stream's segments."""

    KIND: ClassVar[str] = "activate_version"
    stream: str
    version: int
    run_id: str = ""

    @property
    def item(self) -> str:
        """Its id in the ledger."""
        return f"activate_version/{self.n}"

    @property
    def source_run(self) -> str:
        return self.run_id

    def _fields(self) -> dict[str, Any]:
        return {"stream": self.stream, "version": self.version, "run_id": self.run_id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActivateVersion:
        return cls(d["stream"], d["version"], d.get("run_id", ""), n=d["n"])


# What a load works through, stream by stream, in manifest order (I6).
WorkItem = Segment | ActivateVersion


@dataclass(frozen=True)
class StateEntry(ManifestEntry):
    """A Singer STATE that was written to stdout, as the JSON text the tap sent."""

    KIND: ClassVar[str] = "state"
    value: str
    run_id: str = ""

    def _fields(self) -> dict[str, Any]:
        return {"value": self.value, "run_id": self.run_id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StateEntry:
        return cls(d["value"], d.get("run_id", ""), n=d["n"])


@dataclass(frozen=True)
class RunEnd(ManifestEntry):
    """An ingest run read its input to the end and committed all of it."""

    KIND: ClassVar[str] = "run_end"
    run_id: str
    ended_at: str = ""

    def _fields(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ended_at": self.ended_at}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunEnd:
        return cls(d["run_id"], d.get("ended_at", ""), n=d["n"])


@dataclass(frozen=True)
class Pruned(ManifestEntry):
    """A segment file deleted by ``prune`` after its load was confirmed."""

    KIND: ClassVar[str] = "pruned"
    stream: str
    path: str  # the segment's path (its ledger item)
    rows: int
    bytes: int
    pruned_at: str = ""

    def _fields(self) -> dict[str, Any]:
        return {"stream": self.stream, "path": self.path, "rows": self.rows, "bytes": self.bytes, "pruned_at": self.pruned_at}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Pruned:
        return cls(d["stream"], d["path"], d["rows"], d["bytes"], d.get("pruned_at", ""), n=d["n"])


@dataclass(frozen=True)
class UnknownEntry(ManifestEntry):
    """An entry of a kind this version does not know, kept as it was read."""

    data: dict[str, Any] = field(default_factory=dict)  # the whole object, ``kind`` included

    @property
    def kind(self) -> str:
        return str(self.data["kind"])

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "n": self.n}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> UnknownEntry:
        return cls(dict(d), n=d["n"])


KINDS: dict[str, type[ManifestEntry]] = {
    c.KIND: c for c in (SpoolHeader, SchemaEntry, Segment, ActivateVersion, StateEntry, RunEnd, Pruned)
}


_KIND_NAMES: dict[type, str] = {int: "an integer", str: "a string", tuple: "a list", dict: "an object"}
_CHECKS: dict[type, list[tuple[str, type, bool, type | None]]] = {}


def _field_checks(cls: type) -> list[tuple[str, type, bool, type | None]]:
    """(field, its type, whether None is allowed, the type of its items) for each
    field of an entry class, read once from its annotations."""
    checks = _CHECKS.get(cls)
    if checks is None:
        hints = typing.get_type_hints(cls)
        checks = []
        for f in fields(cls):
            hint = hints[f.name]
            args = typing.get_args(hint)
            optional = isinstance(hint, types.UnionType) and type(None) in args
            if optional:
                hint = next(a for a in args if a is not type(None))
            origin = typing.get_origin(hint) or hint
            item = typing.get_args(hint)[0] if origin is tuple else None
            checks.append((f.name, origin, optional, item))
        _CHECKS[cls] = checks
    return checks


def entry_from_json(d: dict[str, Any]) -> ManifestEntry:
    """The typed entry of one manifest line (``UnknownEntry`` for a kind not in ``KINDS``).

    Raises KeyError, TypeError or ValueError if the object lacks what its kind needs."""
    kind = d["kind"]
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    return cls.from_json(d) if cls is not None else UnknownEntry.from_json(d)


def kind_marker(cls: type[ManifestEntry]) -> bytes:
    """The bytes that mark an entry of ``cls`` in a manifest line, as the writer prints them."""
    return orjson.dumps({"kind": cls.KIND})[1:-1]
