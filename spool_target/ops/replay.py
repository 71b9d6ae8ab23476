"""`spool-target rejects replay`: push open rejects through ingest again, after a fix.

There is one typing path. A replay writes a Singer message file -- the
stream's SCHEMA (its latest in the manifest, or ``--schema``) followed by the
rejected RECORDs in the order they were first seen -- and runs the real
``Ingester`` over it, under its own run id R. Records that now pass become
committed segments of run R; the rest are rejected again. The original
rejects files are evidence and are never changed: outcomes are journaled in
``replays/resolved.jsonl`` (see ``rejects.py``).

A replayed record keeps its place in the stream's order: it gets back the
``_sdc_sequence`` ingest reserved for it (stored in its reject line), so an
upsert never lets it replace a later record of its key (I6). It also stays
a record of the run that first sent it: one replay per (stream, original
run), whose segments say ``replay_of`` that run, which is what
``load_method: overwrite`` replaces a table with. A replay is not a run of
its own and journals no ``run_end``.

Crash safety -- never lose a reject, never commit a record twice:

1. ``replays/R/plan.json`` (input line -> reject id) and ``replays/R/input.singer``
   are written durably before ingest starts.
2. Ingest writes R's new rejects to ``replays/R/rejects.jsonl`` (not to the
   stream's rejects directory), each batch before its segment is committed.
3. R's outcomes are appended to the journal, then ``replays/R/done.json``.

A replay that died before step 3 is settled by the next replay from the
manifest: R's segments cover a prefix of R's input (ingest commits a
stream's buffers in order), so every input line up to the last committed
segment's ``last_line`` was committed unless R rejected it again; every
later line was not, and its reject simply stays open. Settling twice writes
the same outcomes, so a crash during step 3 is harmless too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import orjson
import pyarrow as pa

from ..durable import write_atomic
from ..errors import ConfigError, SpoolError
from ..logs import Log
from ..schema import EXTRA_COLUMN
from ..spool.ingest import IngestOptions, Ingester, IngestSummary
from ..spool.layout import SpoolLayout, SpoolLock, require_spool
from ..spool.manifest import read_manifest, utc_now_iso
from ..spool.rejects import Reject, Resolution, append_resolutions, committed_lines, iter_rejects, replays_dir

PLAN = "plan.json"
INPUT = "input.singer"
NEW_REJECTS = "rejects.jsonl"
DONE = "done.json"


@dataclass
class StreamReplay:
    stream: str
    run_id: str
    replay_of: str = ""  # the ingest run whose rejects these are
    attempted: int = 0
    replayed: int = 0  # now in committed segments
    still_rejected: int = 0
    segments: int = 0


@dataclass
class ReplayReport:
    streams: list[StreamReplay] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # run ids of interrupted replays settled first

    @property
    def replayed(self) -> int:
        return sum(s.replayed for s in self.streams)

    @property
    def still_rejected(self) -> int:
        return sum(s.still_rejected for s in self.streams)


class _ReplayIngester(Ingester):
    """The real ingest, except that its rejects go to the replay's own file
    (the originals stay open until the journal says otherwise, so a reject
    is never listed twice), and its records keep the sequence and the run
    they first had."""

    def __init__(self, options: IngestOptions, log: Log, replay_of: str, publish: Callable[[], object] | None):
        super().__init__(options, log, lambda _data: None, publish=publish)  # no STATE in a replay's input
        self.rejects_file = replays_dir(self.layout) / self.run_id / NEW_REJECTS
        self.replay_of = replay_of
        self.original_sequences: dict[int, int] = {}  # input line -> the record's reserved _sdc_sequence

    def _rejects_file(self, stream: str) -> Path:
        return self.rejects_file

    def _sequences(self, buf: Any) -> tuple[pa.Array, list[int]]:
        lines = list(buf.lines) + [r[0] for r in buf.python_rejects]
        wanted = [self.original_sequences.get(line) for line in lines]
        missing = wanted.count(None)  # rejected before sequences were kept: new records, after all others
        fresh = iter(range(base := self._reserve_sequences(buf.stream, missing), base + missing)) if missing else iter(())
        seqs = [s if s is not None else next(fresh) for s in wanted]
        return pa.array(seqs[: buf.count], pa.int64()), seqs[buf.count :]

    def _replay_of(self) -> str:
        return self.replay_of

    def _journal_run_end(self) -> None:
        pass  # not a run of the tap's: its records belong to the run they came from


def replay_rejects(
    options: IngestOptions,
    log: Log,
    *,
    stream: str | None = None,
    schema_file: Path | None = None,
    publish: Callable[[], object] | None = None,
) -> ReplayReport:
    """``publish``: a bucket spool's publisher (spool/remote.py), called by the replay's
    ingest after each commit. It uploads steps 1 and 2 before the segments they lead to;
    the journal of step 3 goes up with the next publish, after every segment it names."""
    layout = require_spool(options.spool_dir)
    if schema_file is not None and stream is None:
        raise ConfigError("--schema needs --stream: a schema belongs to one stream")
    report = ReplayReport()
    with SpoolLock(layout.root / "replay.lock", "rejects replay"):
        report.recovered = settle_interrupted(layout, log)
        groups: dict[tuple[str, str], list[Reject]] = {}
        for r in iter_rejects(layout, stream):
            groups.setdefault((r.stream, r.run_id), []).append(r)
        schemas: dict[str, dict[str, Any]] = {}
        for (name, origin), rejects in groups.items():
            if name not in schemas:
                schemas[name] = _schema_for(layout, name, schema_file)
            report.streams.append(_replay_stream(layout, options, log, name, schemas[name], rejects, origin, publish))
    return report


def _schema_for(layout: SpoolLayout, stream: str, schema_file: Path | None) -> dict[str, Any]:
    """The SCHEMA message a replay starts with."""
    latest = read_manifest(layout).latest_schema(stream)
    if schema_file is None:
        if latest is None:
            raise ConfigError(
                f"stream {stream!r} has no schema in the manifest (none of its records was ever committed)",
                hint=f"pass the corrected schema: spool-target rejects replay --stream {stream} --schema FILE",
            )
        return _schema_message(stream, latest.json_schema, list(latest.key_properties), list(latest.bookmark_properties))
    try:
        given = json.loads(Path(schema_file).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--schema {schema_file}: cannot read a JSON object from it ({err})") from None
    if not isinstance(given, dict):
        raise ConfigError(f"--schema {schema_file} must hold a JSON object: a SCHEMA message or a JSON Schema")
    if str(given.get("type", "")).upper() == "SCHEMA":  # a whole Singer SCHEMA message
        if given.get("stream") not in (None, stream):
            raise ConfigError(f"--schema {schema_file} is the SCHEMA of stream {given['stream']!r}, not {stream!r}")
        keys = given.get("key_properties", list(latest.key_properties) if latest else [])
        return _schema_message(stream, given.get("schema"), keys, given.get("bookmark_properties"))
    keys = list(latest.key_properties) if latest else []
    return _schema_message(stream, given, keys, list(latest.bookmark_properties) if latest else None)


def _schema_message(stream: str, schema: Any, keys: Any, bookmarks: Any) -> dict[str, Any]:
    msg = {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}
    if bookmarks:
        msg["bookmark_properties"] = bookmarks
    return msg


def _record_line(stream: str, raw: str) -> bytes:
    """The RECORD message to replay for a reject's raw text.

    ``raw`` is the input line (ingest's rejects) or the bare record (rejects a
    destination wrote while loading). Kept byte for byte when it is already a
    RECORD of this stream with no ``_sdc_extra``; otherwise rebuilt with the standard json module (exact
    for big integers). Properties an earlier ingest moved into _sdc_extra go
    back to the top level, so a corrected schema that declares them types them.
    """
    try:
        msg = json.loads(raw)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        # Not replayable as a record: ingest rejects it again, with the reason.
        return json.dumps({"type": "RECORD", "stream": stream, "record": None, "raw": raw}).encode()
    if str(msg.get("type", "")).upper() != "RECORD" and "record" not in msg:
        msg = {"record": msg}  # a bare record: rejected by a destination while loading (Oracle: '' keys)
    record = msg.get("record")
    if isinstance(record, dict) and isinstance(record.get(EXTRA_COLUMN), dict):
        extra = record[EXTRA_COLUMN]
        record = {k: v for k, v in record.items() if k != EXTRA_COLUMN}
        record.update({k: v for k, v in extra.items() if k not in record})
    elif msg.get("stream") == stream and str(msg.get("type", "")).upper() == "RECORD" and "\n" not in raw:
        return raw.encode()
    return json.dumps({**msg, "type": "RECORD", "stream": stream, "record": record}, ensure_ascii=False).encode()


def _replay_stream(
    layout: SpoolLayout,
    options: IngestOptions,
    log: Log,
    stream: str,
    schema: dict[str, Any],
    rejects: list[Reject],
    origin: str,
    publish: Callable[[], object] | None,
) -> StreamReplay:
    """Replay the open rejects of one stream that one run (``origin``) rejected."""
    work = replays_dir(layout)
    ingester = _ReplayIngester(
        replace(
            options,
            flush_interval_seconds=3600.0,  # the input is a file: size thresholds and its end decide
            max_rejects=None,  # a replay never fails for rejects: they stay open
        ),
        log,
        origin,
        publish,
    )
    run_id = ingester.run_id
    folder = work / run_id
    lines = [orjson.dumps(schema)] + [_record_line(stream, r.raw) for r in rejects]
    ingester.original_sequences = {i: r.sequence for i, r in enumerate(rejects, start=2) if r.sequence is not None}
    plan = {
        "run_id": run_id,
        "stream": stream,
        "replay_of": origin,
        "created_at": utc_now_iso(),
        # input line (the SCHEMA is line 1) -> reject id, and the record's reserved _sdc_sequence
        "items": [{"line": i, "id": r.id, "sequence": r.sequence} for i, r in enumerate(rejects, start=2)],
    }
    write_atomic(folder / INPUT, b"\n".join(lines) + b"\n")
    write_atomic(folder / PLAN, orjson.dumps(plan))
    log.info(f"replaying {len(rejects)} rejected record(s) of stream {stream!r}", stream=stream, replay_run_id=run_id)
    fd = os.open(folder / INPUT, os.O_RDONLY)
    summary: IngestSummary | None = None
    try:
        summary = ingester.run(fd)
    finally:
        os.close(fd)
        if summary is None:  # ingest failed: settle what it committed, then let the error out
            _settle(layout, folder, complete=False)
    return _settle(layout, folder, complete=True)


def settle_interrupted(layout: SpoolLayout, log: Log) -> list[str]:
    """Settle replays that died before journaling their outcome."""
    settled = []
    work = replays_dir(layout)
    for folder in sorted(p for p in work.glob("*") if p.is_dir()) if work.exists() else []:
        if (folder / DONE).exists() or not (folder / PLAN).exists():
            continue
        result = _settle(layout, folder, complete=False)
        log.warning(
            f"settled an interrupted replay: {result.replayed} record(s) it had committed are marked replayed; "
            "the others stay rejected",
            replay_run_id=folder.name,
            stream=result.stream,
        )
        settled.append(folder.name)
    return settled


def _settle(layout: SpoolLayout, folder: Path, *, complete: bool) -> StreamReplay:
    """Journal the outcome of replay ``folder``; ``complete``: its ingest finished."""
    try:
        plan = orjson.loads((folder / PLAN).read_bytes())
    except (OSError, ValueError) as err:
        raise SpoolError(
            f"replay plan {folder / PLAN} is unreadable ({err})",
            hint="restore it, or remove the folder if its run committed nothing",
        ) from None
    run_id, stream = plan["run_id"], plan["stream"]
    rejected_again: dict[int, str] = {}
    for _, text in committed_lines(folder / NEW_REJECTS):
        entry = orjson.loads(text)
        rejected_again.setdefault(int(entry["line"]), str(entry.get("reason", "")))
    manifest = read_manifest(layout)
    ours = [s for s in manifest.segments(stream) if s.run_id == run_id]
    committed_through = max((s.last_line or 0 for s in ours), default=0)
    result = StreamReplay(stream, run_id, plan.get("replay_of", ""), attempted=len(plan["items"]))
    entries = []
    for item in plan["items"]:
        line, rid = int(item["line"]), item["id"]
        processed = complete or line <= committed_through
        if not processed:
            continue  # never committed: the original reject stays open
        if line in rejected_again:
            result.still_rejected += 1
            outcome = {"outcome": Resolution.STILL_REJECTED.value, "reason": rejected_again[line]}
            entries.append({"id": rid, "stream": stream, **outcome, "replay_run_id": run_id})
        else:
            result.replayed += 1
            entries.append({"id": rid, "stream": stream, "outcome": Resolution.REPLAYED.value, "replay_run_id": run_id})
    append_resolutions(layout, entries)
    done = {"run_id": run_id, "stream": stream, "complete": complete, "replayed": result.replayed,
            "still_rejected": result.still_rejected, "settled_at": utc_now_iso()}
    write_atomic(folder / DONE, orjson.dumps(done))
    result.segments = len(ours)
    return result
