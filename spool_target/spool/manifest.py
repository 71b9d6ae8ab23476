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

Every entry carries ``n``, its position. A line is only "committed" once
its trailing newline is fsynced, so a crash mid-append leaves at most one
torn last line: readers ignore it and the next writer cuts it off, exactly at
the end of the last complete line, and appends from there. A reader that
follows the file (``load --follow``) must therefore resume from the end of the
last complete line it saw, never from a byte count that included a torn tail.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson

from ..durable import DurableAppender, describe_os_error
from ..errors import SpoolError
from ..faults import die, reached
from ..schema import StreamSchema
from .layout import SpoolLayout

# 2: a number column of a segment may be `decimal` (exact text); see numbers.py
FORMAT_VERSION = 2


def utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


@dataclass(frozen=True)
class Segment:
    n: int
    stream: str
    path: str  # relative to the spool root; also the segment's id in the spool
    rows: int
    bytes: int
    sha256: str
    schema_id: str
    first_sequence: int
    last_sequence: int
    first_line: int | None
    last_line: int | None
    created_at: str
    run_id: str  # the ingest (or replay) run that committed it
    replay_of: str = ""  # written by `rejects replay`: the run that first sent its records

    @property
    def source_run(self) -> str:
        """The run whose records these are (what overwrite replaces a table with)."""
        return self.replay_of or self.run_id

    @classmethod
    def from_entry(cls, e: dict[str, Any]) -> "Segment":
        return cls(
            n=e["n"],
            stream=e["stream"],
            path=e["path"],
            rows=e["rows"],
            bytes=e["bytes"],
            sha256=e["sha256"],
            schema_id=e["schema_id"],
            first_sequence=e.get("first_sequence", 0),
            last_sequence=e.get("last_sequence", 0),
            first_line=e.get("first_line"),
            last_line=e.get("last_line"),
            created_at=e.get("created_at", ""),
            run_id=e.get("run_id", ""),
            replay_of=e.get("replay_of", ""),
        )


@dataclass(frozen=True)
class ActivateVersion:
    n: int
    stream: str
    version: int
    run_id: str = ""

    @property
    def source_run(self) -> str:
        return self.run_id

    @property
    def path(self) -> str:
        """The id the ledger records for this entry (segments use their path)."""
        return f"activate_version/{self.n}"


@dataclass
class Manifest:
    spool_id: str
    entries: list[dict[str, Any]]
    schemas: dict[tuple[str, str], StreamSchema] = field(default_factory=dict)
    torn_tail: bool = False
    valid_bytes: int = 0  # length of the part made of complete lines

    @property
    def next_n(self) -> int:
        return (self.entries[-1]["n"] + 1) if self.entries else 0

    def segments(self, stream: str | None = None) -> list[Segment]:
        return [
            Segment.from_entry(e)
            for e in self.entries
            if e["kind"] == "segment" and (stream is None or e["stream"] == stream)
        ]

    @property
    def pruned(self) -> set[str]:
        return {e["path"] for e in self.entries if e["kind"] == "pruned"}

    def streams(self) -> list[str]:
        """Stream names in the order they first appear."""
        seen: dict[str, None] = {}
        for e in self.entries:
            if "stream" in e:
                seen.setdefault(e["stream"], None)
        return list(seen)

    def stream_work(self, stream: str) -> list[Segment | ActivateVersion]:
        """A stream's segments and ACTIVATE_VERSIONs in manifest order (I6)."""
        out: list[Segment | ActivateVersion] = []
        for e in self.entries:
            if e.get("stream") != stream:
                continue
            if e["kind"] == "segment":
                out.append(Segment.from_entry(e))
            elif e["kind"] == "activate_version":
                out.append(ActivateVersion(e["n"], stream, e["version"], e.get("run_id", "")))
        return out

    def run_ends(self) -> dict[str, int]:
        """Runs that ended cleanly: run id -> ``n`` of its ``run_end`` entry."""
        return {e["run_id"]: e["n"] for e in self.entries if e["kind"] == "run_end"}

    def schema_of(self, segment: Segment) -> StreamSchema:
        return self.schemas[(segment.stream, segment.schema_id)]

    def latest_schema(self, stream: str) -> StreamSchema | None:
        latest = None
        for e in self.entries:
            if e["kind"] == "schema" and e["stream"] == stream:
                latest = self.schemas[(stream, e["schema_id"])]
        return latest

    def last_sequence(self, stream: str) -> int:
        last = -1
        for e in self.entries:
            if e["kind"] == "segment" and e["stream"] == stream:
                last = max(last, e["last_sequence"])
        return last


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
    entries: list[dict[str, Any]] = []
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
            entry = orjson.loads(raw)
            if not isinstance(entry, dict) or "kind" not in entry:
                raise ValueError("not a manifest entry")
        except ValueError:
            raise SpoolError(
                f"{layout.manifest} line {i + 1} is corrupt (not a manifest entry)",
                hint="the spool was edited or damaged; run `spool-target verify` and restore it from a backup",
            ) from None
        entries.append(entry)
        valid += len(raw) + 1
    if not entries or entries[0]["kind"] != "spool":
        raise SpoolError(f"{layout.manifest} does not start with a spool header")
    header = entries[0]
    if header.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise SpoolError(
            f"spool format {header['format']} is newer than this spool-target understands ({FORMAT_VERSION})",
            hint="upgrade spool-target",
        )
    manifest = Manifest(spool_id=header["spool_id"], entries=entries, torn_tail=torn, valid_bytes=valid)
    for e in entries:
        if e["kind"] == "schema":
            manifest.schemas[(e["stream"], e["schema_id"])] = StreamSchema.from_json(e["stream"], e)
    return manifest


class ManifestWriter:
    """Appends entries durably. Only one writer per spool (ingest holds a lock)."""

    def __init__(self, layout: SpoolLayout, log: Any = None):
        self.layout = layout
        if not layout.manifest.exists():
            header = {
                "n": 0,
                "kind": "spool",
                "format": FORMAT_VERSION,
                "spool_id": str(uuid.uuid4()),
                "created_at": utc_now_iso(),
            }
            from ..durable import write_atomic

            write_atomic(layout.manifest, orjson.dumps(header) + b"\n", layout.tmp)
        self.manifest = read_manifest(layout)
        if self.manifest.torn_tail:
            # A previous run died mid-append. Cut the torn bytes so that our
            # appends start on a clean line.
            if log is not None:
                log.warning("manifest had a torn last line (a crash mid-append); removing it", path=str(layout.manifest))
            try:
                with open(layout.manifest, "r+b") as fh:
                    fh.truncate(self.manifest.valid_bytes)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as err:
                raise describe_os_error(err, "repairing", layout.manifest) from err
        self._appender = DurableAppender(layout.manifest)
        self._next_n = self.manifest.next_n

    @property
    def spool_id(self) -> str:
        return self.manifest.spool_id

    def reserve_n(self) -> int:
        """The ``n`` the next entry will get (used to name a segment file)."""
        return self._next_n

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"n": self._next_n, **entry}
        line = orjson.dumps(entry) + b"\n"
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
        self.append({"kind": "schema", "stream": schema.stream, **schema.to_json()})
        self.manifest.schemas[(schema.stream, schema.schema_id)] = schema

    def close(self) -> None:
        self._appender.close()


def iter_entries(layout: SpoolLayout, kind: str) -> Iterator[dict[str, Any]]:
    for e in read_manifest(layout).entries:
        if e["kind"] == kind:
            yield e
