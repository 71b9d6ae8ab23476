"""The manifest: an append-only JSON-lines journal, the spool's only truth.

One JSON object per line, in commit order; ``kind`` says what it is:

- ``spool``     first line: format version, spool id, creation time.
- ``schema``    a stream's schema (columns, keys, the original JSON Schema as
                text); segments refer to it by ``schema_id``.
- ``segment``   a committed Parquet file: stream, path, rows, bytes, sha256,
                schema_id, first/last ``_sdc_sequence``, first/last input line.
- ``activate_version``  a stream's ACTIVATE_VERSION, in its place.
- ``state``     a Singer STATE that was written to stdout (as JSON text).
- ``run_end``   an ingest run read its input to the end and committed all of
                it: every segment of ``run_id`` is above this line. A run
                that died has none. ``load_method: overwrite`` loads only
                ended runs (see ``load/units.py``).
- ``pruned``    a segment file deleted by ``prune`` after a confirmed load.

Each kind is a dataclass in ``entries.py`` (``SpoolHeader``, ``SchemaEntry``,
``Segment``, ``ActivateVersion``, ``StateEntry``, ``RunEnd``, ``Pruned``) with
the exact keys it writes; ``Manifest.entries`` holds them, and
``ManifestWriter.append`` takes one.

Every entry carries ``n``, its position. A line is only "committed" once
its trailing newline is fsynced, so a crash mid-append leaves at most one
torn last line: readers ignore it and the next writer cuts it off, exactly at
the end of the last complete line, and appends from there. A reader that
follows the file (``load --follow``) must therefore resume from the end of the
last complete line it saw, never from a byte count that included a torn tail.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from ..durable import DurableAppender, describe_os_error, truncate_durably
from ..errors import SpoolError
from ..faults import die, reached
from ..schema import StreamSchema
from .entries import (
    FORMAT_VERSION,
    ActivateVersion,
    ManifestEntry,
    Pruned,
    RunEnd,
    SchemaEntry,
    Segment,
    SpoolHeader,
    WorkItem,
    entry_from_json,
)
from .layout import SpoolLayout

E = TypeVar("E", bound=ManifestEntry)

# Entries that belong to a stream.
_STREAM_ENTRIES = (SchemaEntry, Segment, ActivateVersion, Pruned)


def utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


@dataclass
class Manifest:
    spool_id: str
    entries: list[ManifestEntry]  # typed: see entries.py
    schemas: dict[tuple[str, str], StreamSchema] = field(default_factory=dict)
    torn_tail: bool = False
    valid_bytes: int = 0  # length of the part made of complete lines

    @property
    def next_n(self) -> int:
        return (self.entries[-1].n + 1) if self.entries else 0

    def segments(self, stream: str | None = None) -> list[Segment]:
        return [e for e in self.entries if isinstance(e, Segment) and (stream is None or e.stream == stream)]

    def schema_entries(self) -> list[SchemaEntry]:
        return [e for e in self.entries if isinstance(e, SchemaEntry)]

    @property
    def pruned(self) -> set[str]:
        """Paths of the segments whose files ``prune`` deleted."""
        return {e.path for e in self.entries if isinstance(e, Pruned)}

    def streams(self) -> list[str]:
        """Stream names in the order they first appear."""
        seen: dict[str, None] = {}
        for e in self.entries:
            if isinstance(e, _STREAM_ENTRIES):
                seen.setdefault(e.stream, None)
        return list(seen)

    def work(self) -> list[WorkItem]:
        """Every stream's segments and ACTIVATE_VERSIONs, in manifest order."""
        return [e for e in self.entries if isinstance(e, (Segment, ActivateVersion))]

    def stream_work(self, stream: str) -> list[WorkItem]:
        """A stream's segments and ACTIVATE_VERSIONs in manifest order (I6)."""
        return [e for e in self.work() if e.stream == stream]

    def run_ends(self) -> dict[str, int]:
        """Runs that ended cleanly: run id -> ``n`` of its ``run_end`` entry."""
        return {e.run_id: e.n for e in self.entries if isinstance(e, RunEnd)}

    def schema_of(self, segment: Segment) -> StreamSchema:
        return self.schemas[(segment.stream, segment.schema_id)]

    def latest_schema(self, stream: str) -> StreamSchema | None:
        latest = None
        for e in self.schema_entries():
            if e.stream == stream:
                latest = self.schemas[(stream, e.schema_id)]
        return latest


def read_manifest(layout: SpoolLayout) -> Manifest:
    """Read every complete entry. A torn last line is ignored, never fatal."""
    try:
        data = layout.manifest.read_bytes()
    except FileNotFoundError:
        raise SpoolError(
            f"no spool at {layout.root} (no manifest.jsonl)",
            hint="run `spool-target ingest` first, or pass the right --spool / spool_dir",
        ) from None
    except OSError as err:
        raise describe_os_error(err, "reading", layout.manifest) from err
    entries: list[ManifestEntry] = []
    torn = False
    valid = 0
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if i == last:
            # Text after the final newline was never committed.
            torn = bool(raw.strip())
            break
        try:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ValueError("not JSON") from None
            if not isinstance(obj, dict) or "kind" not in obj:
                raise ValueError("not a manifest entry")
            entry = entry_from_json(obj)
        except KeyError as err:
            raise SpoolError(
                f"{layout.manifest} line {i + 1} is corrupt (an entry without {err.args[0]!r})",
                hint="the spool was edited or damaged; run `spool-target verify` and restore it from a backup",
            ) from None
        except (ValueError, TypeError) as err:
            raise SpoolError(
                f"{layout.manifest} line {i + 1} is corrupt ({err})",
                hint="the spool was edited or damaged; run `spool-target verify` and restore it from a backup",
            ) from None
        entries.append(entry)
        valid += len(raw) + 1
    header = entries[0] if entries else None
    if not isinstance(header, SpoolHeader):
        raise SpoolError(f"{layout.manifest} does not start with a spool header")
    if header.format > FORMAT_VERSION:
        raise SpoolError(
            f"spool format {header.format} is newer than this spool-target understands ({FORMAT_VERSION})",
            hint="upgrade spool-target",
        )
    manifest = Manifest(spool_id=header.spool_id, entries=entries, torn_tail=torn, valid_bytes=valid)
    for e in manifest.schema_entries():
        manifest.schemas[(e.stream, e.schema_id)] = e.stream_schema()
    return manifest


class ManifestWriter:
    """Appends entries durably. Only one writer per spool (ingest holds a lock)."""

    def __init__(self, layout: SpoolLayout, log: Any = None):
        self.layout = layout
        if not layout.manifest.exists():
            header = SpoolHeader(FORMAT_VERSION, str(uuid.uuid4()), utc_now_iso(), n=0)
            from ..durable import write_atomic

            write_atomic(layout.manifest, orjson.dumps(header.to_json()) + b"\n", layout.tmp)
        self.manifest = read_manifest(layout)
        if self.manifest.torn_tail:
            # A previous run died mid-append. Cut the torn bytes so that our
            # appends start on a clean line.
            if log is not None:
                log.warning("manifest had a torn last line (a crash mid-append); removing it", path=str(layout.manifest))
            truncate_durably(layout.manifest, self.manifest.valid_bytes, "repairing")
        self._appender = DurableAppender(layout.manifest)
        self._next_n = self.manifest.next_n

    @property
    def spool_id(self) -> str:
        return self.manifest.spool_id

    def reserve_n(self) -> int:
        """The ``n`` the next entry will get (used to name a segment file)."""
        return self._next_n

    def append(self, entry: E) -> E:
        """Append ``entry`` durably, numbered with the next ``n``; returns the numbered entry."""
        entry = dataclasses.replace(entry, n=self._next_n)
        line = orjson.dumps(entry.to_json()) + b"\n"
        if reached("manifest:torn-append"):
            self._appender.append(line[: len(line) // 2])  # what a crash mid-write leaves
            die()
        self._appender.append(line)
        self._next_n += 1
        self.manifest.entries.append(entry)
        return entry

    def append_schema(self, schema: StreamSchema) -> None:
        if (schema.stream, schema.schema_id) in self.manifest.schemas:
            return
        self.append(SchemaEntry.of(schema))
        self.manifest.schemas[(schema.stream, schema.schema_id)] = schema

    def close(self) -> None:
        self._appender.close()

