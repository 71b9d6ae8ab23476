"""Rejected records: reading them with stable ids, and the journal of replayed ones.

Ingest writes rejects to ``rejects/<stream-dir>/<run_id>.jsonl``, append
only, one JSON object per line (``stream``, ``line``, ``reason``, ``raw``,
``run_id``, ``rejected_at``, and ``sequence``: the record's reserved
``_sdc_sequence``, which a replay reuses). The load engine writes the records
a destination refused (Oracle: a key that is '') the same way, with
``append_rejects``, to ``rejects/<stream-dir>/load-<load run>.jsonl``: ``raw``
is then the bare record, ``line`` is null, and ``run_id`` and ``sequence``
are those of the ingest run and record it came from, so a replay puts it
back where it was. Those files are evidence and are never rewritten. A reject's id is its place: ``<stream-dir>/<file>#<row>`` (row
counted from 1 over the file's lines), stable because the files only grow.
As everywhere in the spool, bytes after the last newline were never
committed (a crash mid-append) and are ignored.

``rejects replay`` never deletes a reject either: it appends what happened
to ``replays/resolved.jsonl``, one JSON object per line::

    {"id": ..., "stream": ..., "outcome": "replayed" | "still_rejected",
     "reason": <the latest reason, for still_rejected>, "replay_run_id": ..., "at": ...}

The latest entry per id wins, and ``replayed`` is final: that record is in a
committed segment of the replay run. The ``rejects`` view of ``spool-target
sql`` reads the same files the same way (see ``ops/views.py``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from ..durable import DurableAppender, describe_os_error
from ..errors import SpoolError
from .layout import REJECTS, SpoolLayout
from .manifest import utc_now_iso

REPLAYS = "replays"
RESOLVED = "resolved.jsonl"


class RejectState(enum.Enum):
    OPEN = "open"  # still rejected (maybe again, by a replay: see latest_reason)
    REPLAYED = "replayed"  # a replay committed it; kept as evidence only


class Resolution(enum.Enum):
    REPLAYED = "replayed"
    STILL_REJECTED = "still_rejected"


@dataclass(frozen=True)
class Reject:
    id: str
    stream: str
    file: str  # relative to the spool root
    row: int  # line number within ``file``, from 1
    line: int | None  # input line of the ingest run that rejected it
    reason: str
    raw: str
    run_id: str
    rejected_at: str
    sequence: int | None = None  # its _sdc_sequence, reserved at ingest (None: rejected by an older version or a destination)
    state: RejectState = RejectState.OPEN
    latest_reason: str = ""  # the reason the last replay gave, else ``reason``
    replay_run_id: str | None = None


def replays_dir(layout: SpoolLayout) -> Path:
    return layout.root / REPLAYS


def resolved_path(layout: SpoolLayout) -> Path:
    return replays_dir(layout) / RESOLVED


def reject_files(layout: SpoolLayout, stream: str | None = None) -> list[Path]:
    """Rejects files, oldest run first (run ids start with their UTC start time)."""
    if stream is not None:
        return sorted(layout.rejects_path(stream).glob("*.jsonl"))
    return sorted((layout.root / REJECTS).glob("*/*.jsonl"), key=lambda p: (p.name, p.parent.name))


def committed_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(row, text) of every complete line of an append-only JSON-lines file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as err:
        raise describe_os_error(err, "reading", path) from err
    lines = data.split(b"\n")
    for row, text in enumerate(lines[:-1], start=1):  # the last piece has no newline: never committed
        if text.strip():
            yield row, text


def reject_id(layout: SpoolLayout, path: Path, row: int) -> str:
    return f"{path.parent.name}/{path.name}#{row}"


def read_resolutions(layout: SpoolLayout) -> dict[str, dict[str, Any]]:
    """The latest resolution entry per reject id; ``replayed`` is never undone."""
    latest: dict[str, dict[str, Any]] = {}
    for _, text in committed_lines(resolved_path(layout)):
        try:
            entry = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # cannot happen with fsynced appends; never let it hide rejects
        rid = entry.get("id")
        if not isinstance(rid, str):
            continue
        prev = latest.get(rid)
        if prev is not None and prev.get("outcome") == Resolution.REPLAYED.value:
            continue
        latest[rid] = entry
    return latest


def iter_rejects(layout: SpoolLayout, stream: str | None = None, *, include_replayed: bool = False) -> Iterator[Reject]:
    """Rejects in the order they happened (per file: oldest run first; then by row)."""
    resolutions = read_resolutions(layout)
    for path in reject_files(layout, stream):
        rel = path.relative_to(layout.root).as_posix()
        for row, text in committed_lines(path):
            rid = reject_id(layout, path, row)
            try:
                entry = orjson.loads(text)
            except orjson.JSONDecodeError:
                entry = {"reason": "(this rejects line is not valid JSON)", "raw": text.decode("utf-8", "replace")}
            res = resolutions.get(rid)
            state = RejectState.OPEN
            latest_reason = str(entry.get("reason", ""))
            replay_run = None
            if res is not None:
                replay_run = res.get("replay_run_id")
                if res.get("outcome") == Resolution.REPLAYED.value:
                    state = RejectState.REPLAYED
                elif res.get("reason"):
                    latest_reason = str(res["reason"])
            if state is RejectState.REPLAYED and not include_replayed:
                continue
            yield Reject(
                id=rid,
                stream=str(entry.get("stream", stream or "")),
                file=rel,
                row=row,
                line=entry.get("line"),
                reason=str(entry.get("reason", "")),
                raw=str(entry.get("raw", "")),
                run_id=str(entry.get("run_id", "")),
                rejected_at=str(entry.get("rejected_at", "")),
                sequence=entry["sequence"] if isinstance(entry.get("sequence"), int) else None,
                state=state,
                latest_reason=latest_reason,
                replay_run_id=replay_run,
            )


@dataclass(frozen=True)
class NewReject:
    """One rejected record to journal (see the module docstring for the fields)."""

    reason: str
    raw: str
    run_id: str  # the ingest run that sent the record
    line: int | None = None  # its input line, when an ingest rejects it
    sequence: int | None = None  # its reserved _sdc_sequence, when it has one


def append_rejects(layout: SpoolLayout, stream: str, file_name: str, rejects: list[NewReject]) -> Path:
    """Append ``rejects`` of ``stream`` to ``rejects/<stream-dir>/<file_name>`` durably, in
    one fsynced append (I5: before whatever depends on them commits); return the file."""
    path = layout.rejects_path(stream) / file_name
    if not rejects:
        return path
    at = utc_now_iso()
    data = b"".join(
        orjson.dumps({"stream": stream, "line": r.line, "reason": r.reason, "raw": r.raw, "run_id": r.run_id,
                      "rejected_at": at, "sequence": r.sequence}) + b"\n"
        for r in rejects
    )
    with DurableAppender(path) as appender:
        appender.append(data)
    return path


def count_open_rejects(layout: SpoolLayout, stream: str) -> int:
    """Records of ``stream`` that are rejected and not replayed since (informational:
    an unreadable file counts as none rather than failing `status` or `load`)."""
    count = 0
    try:
        for _ in iter_rejects(layout, stream):
            count += 1
    except SpoolError:
        pass
    return count


def append_resolutions(layout: SpoolLayout, entries: list[dict[str, Any]]) -> None:
    """Journal outcomes durably, all in one fsynced append."""
    if not entries:
        return
    at = utc_now_iso()
    data = b"".join(orjson.dumps({**e, "at": at}) + b"\n" for e in entries)
    with DurableAppender(resolved_path(layout)) as appender:
        appender.append(data)


@dataclass(frozen=True)
class RejectCount:
    stream: str
    reason: str
    count: int


@dataclass
class RejectListing:
    counts: list[RejectCount]  # open rejects by stream and reason, biggest first
    records: list[Reject]  # every listed reject, oldest first
    replayed: int  # rejects already replayed (listed only with include_replayed)

    @property
    def open(self) -> int:
        return sum(1 for r in self.records if r.state is RejectState.OPEN)


def list_rejects(layout: SpoolLayout, stream: str | None = None, *, include_replayed: bool = False) -> RejectListing:
    records = list(iter_rejects(layout, stream, include_replayed=True))
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        if r.state is RejectState.OPEN:
            key = (r.stream, _reason_kind(r.latest_reason))
            counts[key] = counts.get(key, 0) + 1
    replayed = sum(1 for r in records if r.state is RejectState.REPLAYED)
    if not include_replayed:
        records = [r for r in records if r.state is RejectState.OPEN]
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return RejectListing([RejectCount(s, reason, n) for (s, reason), n in ordered], records, replayed)


# The offending value in a reason runs to the end or to the next cause
# (``convert.py`` joins several causes with "; ").
_GOT_VALUE = re.compile(r", got (?:(?!; (?:property |key property |time_extracted|version|_sdc_)).)*", re.S)


def _reason_kind(reason: str) -> str:
    """A reason without the offending values, so that counts group by cause:
    "property 'age': expected a number, got "x"" -> "property 'age': expected a number, got ..."."""
    return _GOT_VALUE.sub(", got ...", reason)
