"""Phase one: read Singer messages, write a durable spool, emit STATE when safe.

Two threads share the work. The *reader* (the caller's thread) decodes each
RECORD line once, with a decoder built for its stream's schema
(``records.py``), into a row of exact values, and appends the line itself
to a per-stream work file under ``tmp/`` (the reject file quotes it byte for
byte). When a stream's buffer is big enough, or on a timer, it hands the
buffer to the *committer* thread, which types its columns
(``columns.py``), writes rejects, writes the Parquet segment durably and
appends its manifest entry. Jobs run strictly in order, so the manifest
order is the input order per stream (I6).

I8: a value is never re-rendered on the way: numbers, JSON text and the
STATE value travel as the tap's own text until they are typed exactly.

STATE (I1): a STATE is parked until every record before it sits in a
committed segment. It is released at a "full flush point" (no stream holds
buffered records), which the size thresholds, the timer
(``flush_interval_seconds``) and the end of input all create. The committer
journals it, then the reader writes it to stdout.

A run that reads its input to the end and commits all of it journals
``run_end`` last: ``load_method: overwrite`` replaces a table only with whole
runs (I9). A run that fails (a bad line, Ctrl-C, ``max_rejects``) has none.

This module never imports a destination driver (I3).
"""

from __future__ import annotations

import array
import bisect
import collections
import os
import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..durable import DurableAppender, describe_os_error, make_dirs
from ..errors import InputError, SpoolError, TooManyRejects
from ..faults import crash_point
from ..logs import Log
from ..schema import SEQUENCE, StreamSchema, parse_schema_message
from . import batch
from .columns import BLOCK_ROWS, RowBlock, build_segment, refused_mask, row_numbers
from .layout import SpoolLayout, acquire_ingest_lock, stream_dir
from .lines import READ_CHUNK, line_blocks, split_lines
from .entries import ActivateVersion, RunEnd, Segment, StateEntry
from .manifest import ManifestWriter, utc_now_iso
from .records import FAST_PATH_MISSES, RecordDecoder, Rejected, StateLine, lenient_message
from .segment import write_segment

@dataclass(frozen=True)
class IngestOptions:
    spool_dir: Path
    flush_max_rows: int = 100_000
    flush_max_bytes: int = 64 * 1024 * 1024
    flush_interval_seconds: float = 10.0
    max_rejects: int | None = None
    min_free_disk_mb: int = 1024
    lock_wait_seconds: float = 900.0  # how long to wait for a prune or verify holding the manifest


@dataclass
class StreamStats:
    records: int = 0
    rejected: int = 0
    segments: int = 0
    rows: int = 0


@dataclass
class IngestSummary:
    run_id: str
    lines: int = 0
    states_emitted: int = 0
    streams: dict[str, StreamStats] = field(default_factory=dict)
    seconds: float = 0.0
    # Lines typed a whole block at a time, by the compiled path and by msgspec
    # (records.py); the rest went line by line. Says whether the fast paths serve.
    compiled_block_lines: int = 0
    block_lines: int = 0

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams.values())

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.streams.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": "ingest",
            "lines": self.lines,
            "records": self.records,
            "rejected": self.rejected,
            "states_emitted": self.states_emitted,
            "seconds": round(self.seconds, 3),
            "compiled_block_lines": self.compiled_block_lines,
            "block_lines": self.block_lines,
            "streams": {k: vars(v) for k, v in self.streams.items()},
        }


# After a block that was not all plain records, this many go line by line
# before the block path is tried again.
BLOCKS_SKIPPED_AFTER_A_MISS = 8


class _Buffer:
    """Records of one stream under one schema, waiting to be committed.

    The hot loop only appends to ``rows``, ``lines`` and ``pending``;
    ``spill`` writes pending lines to the work file and packs rows into
    ``blocks`` every ``BLOCK_ROWS`` rows (so a full buffer costs compact
    Arrow memory rather than Python objects). Row ``i`` (across blocks) came
    from input line ``lines[i]`` and is line ``i`` of the work file, which
    the committer reads only for the original text of rows it rejects.
    """

    __slots__ = (
        "stream", "schema", "decoder", "fast", "decode", "path", "fh", "rows", "blocks",
        "pending", "lines", "bytes", "python_rejects",
    )

    def __init__(self, stream: str, schema: StreamSchema, decoder: RecordDecoder, path: Path):
        self.stream = stream
        self.schema = schema
        self.decoder = decoder
        self.fast = decoder.fast
        self.decode = decoder.decode
        self.path = path
        try:
            self.fh: IO[bytes] = open(path, "wb", buffering=1 << 16)
        except OSError as err:
            raise describe_os_error(err, "creating work file", path) from err
        self.rows: list[Any] = []  # decoded records (see records.RowShape)
        self.blocks: list[RowBlock] = []
        self.pending: list[bytes | memoryview] = []  # lines, or whole blocks of lines, for the work file
        self.lines = array.array("q")
        self.bytes = 0
        # (line, reason, raw) for records refused before typing
        self.python_rejects: list[tuple[int, str, bytes]] = []

    def add(self, row: Any, line: int, raw: bytes) -> None:
        self.rows.append(row)
        self.lines.append(line)
        self.pending.append(raw)

    def spill(self, pack_at: int = BLOCK_ROWS) -> None:
        if len(self.rows) >= pack_at:
            self.blocks.append(RowBlock(self.decoder.shape, self.rows))
            self.rows = []
        pending = self.pending
        if not pending:
            return
        self.bytes += sum(map(len, pending))
        try:
            if len(pending) <= 16:  # whole input blocks, as a rule: written as they are, not copied into one
                for part in pending:
                    self.fh.write(part)
                    self.fh.write(b"\n")
            else:
                pending.append(b"")
                self.fh.write(b"\n".join(pending))
        except OSError as err:
            raise describe_os_error(err, "writing work file", self.path) from err
        pending.clear()

    def close(self) -> None:
        """Pack the last rows and close the work file (before the committer takes it)."""
        self.spill(pack_at=1)
        try:
            self.fh.close()
        except OSError as err:
            raise describe_os_error(err, "writing work file", self.path) from err

    def abandon(self) -> None:
        """Drop a buffer that will never be committed (the run is failing).

        Its close may fail like any write (a full disk: the flush of the last
        64 KB), and must not hide the error that ends the run; its records
        were never acknowledged, so the tap sends them again. Removing the
        file gives its space back."""
        try:
            self.fh.close()
        except OSError:
            pass
        try:
            self.path.unlink()
        except OSError:
            pass

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def first_line(self) -> int:
        candidates = [self.lines[0]] if self.lines else []
        candidates += [r[0] for r in self.python_rejects[:1]]
        return min(candidates) if candidates else 0

    @property
    def last_line(self) -> int:
        candidates = [self.lines[-1]] if self.lines else []
        candidates += [r[0] for r in self.python_rejects[-1:]]
        return max(candidates) if candidates else 0


@dataclass
class _FlushJob:
    buffer: _Buffer


@dataclass
class _ActivateJob:
    stream: str
    version: int


@dataclass
class _StateJob:
    value: bytes  # the STATE's value, its JSON text exactly as the tap sent it


class Ingester:
    def __init__(
        self,
        options: IngestOptions,
        log: Log,
        out: Callable[[bytes], None],
        progress: Callable[[int, "IngestSummary"], None] | None = None,
        publish: Callable[[], object] | None = None,
    ):
        self.opt = options
        # A bucket spool's publisher (spool/remote.py): puts what is committed here into the
        # bucket. It runs after each commit, so before each STATE is released (I1), and at the end.
        self.publish = publish
        self.progress = progress
        self.log = log
        self.out = out
        self.layout = SpoolLayout(options.spool_dir)
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self.summary = IngestSummary(self.run_id)
        self.schemas: dict[str, StreamSchema] = {}
        self.buffers: dict[str, _Buffer] = {}
        self.decoders: dict[str, RecordDecoder] = {}
        self._hot: _Buffer | None = None  # the buffer of the stream the last record went to
        self._hot_stream: str | None = None  # that stream, still hot after its buffer is flushed
        self._blocks_skipped = 0  # blocks still to go line by line after one that was not all records
        self._work_seq = 0
        self._pending_state: Any = None
        self._have_pending_state = False
        self._last_emitted: bytes | None = None
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._ready_states: collections.deque[bytes] = collections.deque()
        self._failure: BaseException | None = None
        self._last_flush = time.monotonic()
        self._warned_disk = False

    # ----- setup -------------------------------------------------------
    def _prepare(self) -> None:
        self.layout.create_dirs()
        self.lock = acquire_ingest_lock(self.layout.root, self.log, self.opt.lock_wait_seconds)
        self.manifest = ManifestWriter(self.layout, self.log)
        self._sweep_leftovers()
        self.last_sequence: dict[str, int] = {}
        for seg in self.manifest.manifest.segments():
            self.last_sequence[seg.stream] = max(self.last_sequence.get(seg.stream, -1), seg.last_sequence)

    def _sweep_leftovers(self) -> None:
        """Clean what a crashed run left: work files, and segment files that
        never got their manifest entry (quarantined, never loaded: I2)."""
        for p in sorted(self.layout.tmp.glob("*")):
            self.log.warning("removing a work file left by an interrupted ingest", path=str(p))
            try:
                p.unlink()
            except OSError as err:
                raise describe_os_error(err, "removing", p) from err
        committed = {seg.path for seg in self.manifest.manifest.segments()}
        for p in sorted(self.layout.streams.glob("*/*.parquet")):
            rel = p.relative_to(self.layout.root).as_posix()
            if rel not in committed:
                dest = self.layout.quarantine / f"{p.parent.name}--{p.name}"
                self.log.warning(
                    "quarantining a segment file with no manifest entry (a crash before its commit); "
                    "its records were never acknowledged and will be sent again by the tap",
                    path=rel,
                    moved_to=str(dest.relative_to(self.layout.root)),
                )
                try:
                    make_dirs(dest.parent)
                    os.replace(p, dest)
                except OSError as err:
                    raise describe_os_error(err, "quarantining", p) from err

    # ----- the committer thread -----------------------------------------
    def _committer(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._failure is not None:
                self._discard(job)
                continue
            try:
                if isinstance(job, _FlushJob):
                    self._commit_buffer(job.buffer)
                elif isinstance(job, _ActivateJob):
                    self.manifest.append(ActivateVersion(job.stream, job.version, self.run_id))
                elif isinstance(job, _StateJob):
                    self.manifest.append(StateEntry(job.value.decode(), self.run_id))
                    crash_point("ingest:state-journaled")
                if self.publish is not None:
                    # After every job, so that loaders see a segment as soon as it is committed,
                    # as they do on disk; before a STATE is released, as I1 requires.
                    self.publish()
                    crash_point("ingest:published")
                if isinstance(job, _StateJob):
                    self._ready_states.append(job.value)
            except BaseException as err:  # noqa: BLE001 - handed to the reader thread
                self._failure = err
                self._discard(job)

    def _discard(self, job: object) -> None:
        if isinstance(job, _FlushJob):
            try:
                job.buffer.path.unlink()
            except OSError:
                pass

    def _commit_buffer(self, buf: _Buffer) -> None:
        stream = buf.stream
        stats = self.summary.streams[stream]
        stats.records += buf.count + len(buf.python_rejects)
        received_at = utc_now_iso()
        built = build_segment(buf.schema, buf.blocks, datetime.fromisoformat(received_at))
        schema = built.schema
        # Every record gets its _sdc_sequence now, rejected ones included, so
        # that a replayed reject keeps its place in the stream's order (I6).
        row_seqs, early_seqs = self._sequences(buf)
        rejects = [(line, reason, raw, seq) for (line, reason, raw), seq in zip(buf.python_rejects, early_seqs)]
        if built.problems:
            raws = _work_file_rows(buf.path, set(built.problems))
            rejects.extend(
                (buf.lines[row], reason, raws.get(row, b""), row_seqs[row].as_py()) for row, reason in built.problems.items()
            )
            accepted = pc.invert(refused_mask(buf.count, built.problems))
            row_seqs = row_seqs.filter(accepted)
        if rejects:
            self._write_rejects(stream, rejects)
            stats.rejected += len(rejects)
        table = built.table
        if table.num_rows:
            seq = row_seqs
            first, last = pc.min_max(seq).values()
            idx = [c.name for c in schema.columns].index(SEQUENCE)
            table = table.add_column(idx, pa.field(SEQUENCE, pa.int64()), seq)
            self.manifest.append_schema(schema)
            n = self.manifest.reserve_n()
            rel = f"streams/{stream_dir(stream)}/{n:09d}-{schema.schema_id[:8]}.parquet"
            final = self.layout.root / rel
            tmp = self.layout.tmp / f"segment-{n}.parquet.tmp"
            size, digest = write_segment(table, tmp, final)
            crash_point("ingest:segment-published")
            self.manifest.append(
                Segment(
                    stream=stream,
                    path=rel,
                    rows=table.num_rows,
                    bytes=size,
                    sha256=digest,
                    schema_id=schema.schema_id,
                    first_sequence=first.as_py(),
                    last_sequence=last.as_py(),
                    first_line=buf.first_line,
                    last_line=buf.last_line,
                    rejected=len(rejects),
                    created_at=utc_now_iso(),
                    run_id=self.run_id,
                    replay_of=self._replay_of(),
                )
            )
            crash_point("ingest:segment-committed")
            stats.segments += 1
            stats.rows += table.num_rows
        try:
            buf.path.unlink()
        except OSError:
            pass
        self._check_disk()

    def _reserve_sequences(self, stream: str, count: int) -> int:
        """``count`` consecutive _sdc_sequence values of ``stream``; returns the first.
        Above every earlier one, and above the clock, so a new spool's records
        still come after an old spool's in the same table."""
        base = max(self.last_sequence.get(stream, -1) + 1, time.time_ns())
        self.last_sequence[stream] = base + count - 1
        return base

    def _sequences(self, buf: _Buffer) -> tuple[pa.Array, list[int]]:
        """The _sdc_sequence of each work-file row and of each early reject, in input order."""
        base = self._reserve_sequences(buf.stream, buf.count + len(buf.python_rejects))
        if not buf.python_rejects:
            return row_numbers(buf.count, base), []
        early_lines = [r[0] for r in buf.python_rejects]  # records refused while decoding
        early = [base + bisect.bisect_left(buf.lines, line) + j for j, line in enumerate(early_lines)]
        rows = [base + i + bisect.bisect_left(early_lines, line) for i, line in enumerate(buf.lines)]
        return pa.array(rows, pa.int64()), early

    def _replay_of(self) -> str:
        """``replay_of`` of this run's segment entries: a replay names the run it replays."""
        return ""

    def _journal_run_end(self) -> None:
        """The input ended and every record of it is committed or rejected: the
        run is whole, so `load_method: overwrite` may replace a table with it."""
        self.manifest.append(RunEnd(self.run_id, utc_now_iso()))

    def _rejects_file(self, stream: str) -> Path:
        return self.layout.rejects_path(stream) / f"{self.run_id}.jsonl"

    def _write_rejects(self, stream: str, rejects: list[tuple[int, str, bytes, int]]) -> None:
        """Append rejects durably (before the segment that follows them commits)."""
        path = self._rejects_file(stream)
        at = utc_now_iso()
        lines = b"".join(
            orjson.dumps(
                {
                    "stream": stream,
                    "line": line,
                    "reason": reason,
                    "raw": raw.decode("utf-8", "replace"),
                    "run_id": self.run_id,
                    "rejected_at": at,
                    "sequence": sequence,
                }
            )
            + b"\n"
            for line, reason, raw, sequence in sorted(rejects, key=lambda r: r[3])
        )
        with DurableAppender(path) as appender:
            appender.append(lines)

    def _check_disk(self) -> None:
        if self._warned_disk or not self.opt.min_free_disk_mb:
            return
        free_mb = shutil.disk_usage(self.layout.root).free // (1024 * 1024)
        if free_mb < self.opt.min_free_disk_mb:
            self._warned_disk = True
            self.log.warning(
                f"only {free_mb} MB free on the spool's filesystem (min_free_disk_mb={self.opt.min_free_disk_mb}); "
                "run `spool-target load` and `spool-target prune` to make room",
                spool=str(self.layout.root),
            )

    # ----- the reader side ----------------------------------------------
    def _submit(self, job: object) -> None:
        while True:
            self._raise_failure()
            try:
                self._jobs.put(job, timeout=0.2)
                return
            except queue.Full:
                self._emit_ready()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _emit_ready(self) -> None:
        while self._ready_states:
            text = self._ready_states.popleft()
            if text == self._last_emitted:
                continue
            self.out(text + b"\n")
            self._last_emitted = text
            self.summary.states_emitted += 1

    def _new_buffer(self, stream: str) -> _Buffer:
        self._work_seq += 1
        path = self.layout.tmp / f"{stream_dir(stream)}.{self._work_seq}.ndjson"
        buf = _Buffer(stream, self.schemas[stream], self.decoders[stream], path)
        self.buffers[stream] = buf
        return buf

    def _spill_all(self) -> None:
        """Write pending lines out; commit the buffers that are big enough."""
        max_rows = self.opt.flush_max_rows
        max_bytes = self.opt.flush_max_bytes
        for stream, buf in list(self.buffers.items()):
            buf.spill()
            if len(buf.lines) >= max_rows or buf.bytes >= max_bytes:
                self._flush(stream)
        # Many streams each below the limits may still hold a lot together:
        # bound the whole, committing the biggest buffers first.
        while sum(b.bytes for b in self.buffers.values()) > 2 * max_bytes:
            self._flush(max(self.buffers.values(), key=lambda b: b.bytes).stream)

    def _flush(self, stream: str) -> None:
        buf = self.buffers.pop(stream, None)
        if buf is None:
            return
        if buf is self._hot:
            self._hot = None
        buf.close()
        self._submit(_FlushJob(buf))
        if not self.buffers:
            self._full_flush_point()

    def _flush_all(self) -> None:
        for stream in list(self.buffers):
            self._flush(stream)
        self._full_flush_point()
        self._last_flush = time.monotonic()

    def _full_flush_point(self) -> None:
        """Nothing is buffered: every record seen so far is committed once the
        queued jobs finish, so the parked STATE can follow them."""
        if self._have_pending_state:
            self._submit(_StateJob(self._pending_state))
            self._have_pending_state = False

    # ----- message handlers ----------------------------------------------
    def _on_schema(self, msg: dict[str, Any], line: int) -> None:
        stream = _stream_of(msg, line)
        schema = parse_schema_message(
            stream, msg.get("schema"), msg.get("key_properties"), msg.get("bookmark_properties"), line=line
        )
        old = self.schemas.get(stream)
        if old is not None and old.schema_id == schema.schema_id:
            return
        if stream in self.buffers:
            self._flush(stream)  # records so far belong to the old schema
        self.schemas[stream] = schema
        self.decoders[stream] = RecordDecoder(schema)
        self.summary.streams.setdefault(stream, StreamStats())

    def _on_activate_version(self, msg: dict[str, Any], line: int) -> None:
        stream = _stream_of(msg, line)
        version = msg.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InputError(f"ACTIVATE_VERSION for stream {stream!r} needs an integer 'version'", line=line)
        if stream not in self.schemas:
            raise InputError(
                f"ACTIVATE_VERSION for stream {stream!r} arrived before its SCHEMA",
                line=line,
                hint="the tap must send a SCHEMA message for each stream first",
            )
        self._flush(stream)
        self._submit(_ActivateJob(stream, version))

    def _on_state(self, msg: dict[str, Any], raw: bytes, line: int) -> None:
        if "value" not in msg:
            raise InputError("STATE message has no 'value'", line=line)
        self._park_state(state_value_text(raw))

    def _park_state(self, value: bytes) -> None:
        """Hold the latest STATE (its value's text as sent) until the records before it are committed."""
        self._pending_state = value
        self._have_pending_state = True
        if not self.buffers:
            self._full_flush_point()

    def _unknown_record_stream(self, msg: dict[str, Any], line: int) -> InputError:
        stream = msg.get("stream")
        if not isinstance(stream, str):
            return InputError("RECORD message has no 'stream' name", line=line)
        return InputError(
            f"RECORD for stream {stream!r} arrived before any SCHEMA for it",
            line=line,
            hint="the tap must send a SCHEMA message for each stream before its records",
        )

    def _on_batch(self, msg: dict[str, Any], line: int) -> None:
        stream = _stream_of(msg, line)
        if stream not in self.schemas:
            raise InputError(f"BATCH for stream {stream!r} arrived before its SCHEMA", line=line)
        # Each record takes exactly the path of a RECORD line of its stream.
        head = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
        for record_json in batch.iter_batch_records(msg, line):
            self._on_record(stream, head + record_json + b"}", line)

    def _on_record(self, stream: str, raw: bytes, line: int) -> None:
        """A RECORD the hot loop did not take: another stream's, or one the
        fast decoder refuses (undeclared properties, values to check)."""
        buf = self.buffers.get(stream)
        if buf is None:
            buf = self._new_buffer(stream)
        self._hot = buf
        self._hot_stream = stream
        row = buf.fast(raw)
        if row is None:
            try:
                row = buf.decoder.exact(raw)
            except Rejected as err:
                buf.python_rejects.append((line, err.reason, raw))
                return
        buf.add(row, line, raw)
        if len(buf.lines) >= self.opt.flush_max_rows:
            self._flush(stream)

    # ----- the loop -------------------------------------------------------
    def run(self, fd: int) -> IngestSummary:
        started = time.monotonic()
        self._prepare()
        _prefer_jemalloc()
        thread = threading.Thread(target=self._committer, name="spool-committer", daemon=True)
        thread.start()
        error: BaseException | None = None
        try:
            self._read_loop(fd)
        except BaseException as err:
            error = err
        # Commit what was read before the end (or before a bad line): it is
        # valid data and the STATE before it may then go out.
        try:
            if self._failure is None and not isinstance(error, (KeyboardInterrupt, SpoolError)):
                self._flush_all()
        except BaseException as err:  # noqa: BLE001
            error = error or err
        finally:
            self._jobs.put(None)
            thread.join()
            for buf in self.buffers.values():
                buf.abandon()
            self._emit_ready()
            try:
                if error is None and self._failure is None and not self._too_many_rejects():
                    self._journal_run_end()
                if self.publish is not None:
                    self.publish()  # the run's end, and committed records no STATE followed
            except BaseException as err:  # noqa: BLE001 - never hides the run's own error
                error = error or err
            finally:
                self.manifest.close()
                self.lock.release()
        self.summary.seconds = time.monotonic() - started
        self.summary.lines = self._lines
        if self._failure is not None:
            raise self._failure
        if error is not None:
            raise error
        if self._too_many_rejects():
            limit = self.opt.max_rejects
            raise TooManyRejects(
                f"{self.summary.rejected} records were rejected (max_rejects is {limit})",
                hint=f"see {self.layout.root / 'rejects'}; every accepted record and the STATE before it are committed",
            )
        return self.summary

    def _too_many_rejects(self) -> bool:
        limit = self.opt.max_rejects
        return limit is not None and self.summary.rejected > limit

    def _read_loop(self, fd: int) -> None:
        max_rows = self.opt.flush_max_rows  # bytes are checked once per block, in _spill_all
        line = 0
        self._lines = 0
        for block in self._blocks(fd):
            taken, rest = self._take_block(block, line)
            line += taken
            hot = self._hot
            for raw in split_lines(rest) if rest else ():
                line += 1
                # The hot path: a record of the stream before it, decoded and
                # typed in one C call; kept inline and free of attribute lookups.
                if hot is not None:
                    try:
                        hot.rows.append(hot.decode(raw))
                    except FAST_PATH_MISSES:
                        pass
                    else:
                        hot.lines.append(line)
                        hot.pending.append(raw)
                        if len(hot.lines) >= max_rows:
                            self._flush(hot.stream)
                            hot = self._hot
                        continue
                if not raw or raw.isspace():
                    continue
                self._lines = line
                self._on_line(raw, line)
                hot = self._hot
            self._lines = line
            self._spill_all()
            self._tick()
        self._lines = line

    def _take_block(self, block: bytes, line: int) -> tuple[int, bytes]:
        """The hot path for a whole block of input (line ``line + 1`` onwards):
        the lines that are plain RECORDs of the stream the last record went
        to, or STATEs, are typed a block at a time. Returns how many lines it
        took, and the rest of the block, which goes line by line (every other
        line gets its usual treatment there).

        The compiled path (``records.BlockPlan``) takes lines up to the first
        one it does not, and stops where a flush falls, so that the flush
        falls on the exact record; the block then carries on after it. The
        lines it leaves, and every block where it is not built, go to
        msgspec's block decoder, which takes the rest of a block or none of it.
        """
        stream = self._hot_stream
        if stream is None:
            return 0, block
        taken, start = 0, 0
        plan = self.decoders[stream].plan
        if plan is not None:
            max_rows = self.opt.flush_max_rows
            while start < len(block):
                buf = self.buffers.get(stream)
                room = max_rows - (len(buf.lines) if buf is not None else 0)
                typed = plan.decode(block, start, room)
                lines, end = typed[1:3]
                if not lines:
                    break
                buf = self._take_typed_lines(stream, block, start, line + taken, typed)
                self.summary.compiled_block_lines += lines
                taken, start = taken + lines, end
                if buf is not None and len(buf.lines) >= max_rows:
                    self._flush(stream)
            if start == len(block):
                return taken, b""
        rest = block[start:] if start else block
        more = self._take_decoded_block(rest, line + taken)
        return taken + more, b"" if more else rest

    def _take_typed_lines(
        self, stream: str, block: bytes, start: int, line: int,
        typed: tuple[int, int, int, list[Any], list[tuple[int, int, int, bytes]]],
    ) -> _Buffer | None:
        """Add the lines the compiled path typed from ``block[start:]`` (line
        ``line + 1`` onwards), in order: each run of records to the stream's
        buffer (their values as one packed ``RowBlock``, their lines for the
        work file), each STATE parked. Returns the buffer, None if there were
        only STATEs and no buffer."""
        records, lines, end, buffers, states = typed
        buf = self.buffers.get(stream)
        view = memoryview(block)
        # Record lines run between STATE lines: each run is one range of line
        # numbers and one piece of the work file, cut from the block, not copied.
        run_start, run_line, packed = start, 0, False
        for at, state_start, next_line, value in [*states, (lines, end, end, None)]:
            if at > run_line:
                if not packed:  # at the first record: a STATE before it may go out with no buffer waiting
                    if buf is None:
                        buf = self._new_buffer(stream)
                    self._hot = buf
                    if buf.rows:  # records taken line by line before these come first
                        buf.blocks.append(RowBlock(buf.decoder.shape, buf.rows))
                        buf.rows = []
                    buf.blocks.append(RowBlock.from_buffers(buf.decoder.shape, records, buffers))
                    packed = True
                assert buf is not None
                buf.lines.extend(range(line + 1 + run_line, line + 1 + at))
                piece = view[run_start:state_start]
                buf.pending.append(piece[:-1] if piece[-1] == 0x0A else piece)  # its last newline: spill adds one
            if value is None:
                break
            self._park_state(value)
            run_start, run_line = next_line, at + 1
        return buf

    def _take_decoded_block(self, block: bytes, line: int) -> int:
        """msgspec's block path (``RecordDecoder.decode_block``): if every line
        of ``block`` is a plain RECORD of the hot stream, or a STATE, one C call
        decodes them all, and ``RowBlock`` packs them later. Returns how many
        lines it took: all of them, or none."""
        stream = self._hot_stream
        if stream is None:
            return 0
        if self._blocks_skipped:
            self._blocks_skipped -= 1
            return 0
        hot = self.buffers.get(stream)
        count = block.count(b"\n") + (not block.endswith(b"\n"))
        if (len(hot.lines) if hot is not None else 0) + count > self.opt.flush_max_rows:
            return 0  # a flush falls inside the block: line by line, it falls on the exact record
        try:
            msgs = self.decoders[stream].decode_block(block)
        except FAST_PATH_MISSES:
            # A mixed stretch of input (another stream, an undeclared property):
            # decoding blocks that fail part way would cost twice, so wait a little.
            self._blocks_skipped = BLOCKS_SKIPPED_AFTER_A_MISS
            return 0
        if len(msgs) != count:
            return 0  # blank lines, which decode_block skips: line numbers must stay exact
        self.summary.block_lines += count
        first = line + 1
        if StateLine not in set(map(type, msgs)):
            self._hot = hot = hot or self._new_buffer(stream)
            hot.rows.extend(msgs)
            hot.lines.extend(range(first, first + count))
            hot.pending.append(memoryview(block)[: -1 if block.endswith(b"\n") else None])
            return count
        raws = split_lines(block)
        start = 0
        for i, msg in [*enumerate(msgs), (count, None)]:
            if msg is not None and type(msg) is not StateLine:
                continue
            if i > start:  # records before this STATE (or the end)
                self._hot = hot = hot or self._new_buffer(stream)  # not before a STATE that comes first
                hot.rows.extend(msgs[start:i])
                hot.lines.extend(range(first + start, first + i))
                hot.pending.extend(raws[start:i])
            if msg is None:
                break
            self._park_state(bytes(msg.value))
            start = i + 1
        return count

    def _on_line(self, raw: bytes, line: int) -> None:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            msg = lenient_message(raw)
            if not self._is_known_record(msg):
                raise InputError(
                    f"not valid JSON ({err}): {raw[:120]!r}",
                    line=line,
                    hint="the tap wrote a broken or truncated line; records before it are committed",
                ) from None
        if type(msg) is not dict:
            raise InputError(f"a Singer message must be a JSON object, got: {raw[:120]!r}", line=line)
        kind = msg.get("type")
        if not isinstance(kind, str):
            raise InputError(f"message has no 'type': {raw[:120]!r}", line=line)
        kind = kind.upper()
        if kind == "RECORD":
            stream = msg.get("stream")
            if stream not in self.schemas:
                raise self._unknown_record_stream(msg, line)
            self._on_record(stream, raw, line)  # type: ignore[arg-type]
        elif kind == "STATE":
            self._on_state(msg, raw, line)
        elif kind == "SCHEMA":
            self._on_schema(msg, line)
        elif kind == "ACTIVATE_VERSION":
            self._on_activate_version(msg, line)
        elif kind == "BATCH":
            self._on_batch(msg, line)
        else:
            self.log.warning(f"ignoring a message of unknown type {kind!r}", line=line)

    def _is_known_record(self, msg: Any) -> bool:
        """A RECORD of a known stream that strict JSON refuses (NaN, 1e400, a
        lone surrogate): the record goes to rejects, the run goes on."""
        return (
            type(msg) is dict
            and isinstance(msg.get("type"), str)
            and msg["type"].upper() == "RECORD"
            and msg.get("stream") in self.schemas
        )

    def _tick(self) -> None:
        self._raise_failure()
        self._emit_ready()
        if self.progress is not None:
            self.progress(self._lines, self.summary)
        if self.buffers and time.monotonic() - self._last_flush >= self.opt.flush_interval_seconds:
            self._flush_all()

    def _blocks(self, fd: int) -> Iterator[bytes]:
        # Wake up when input is idle, so the flush timer (and with it STATE)
        # keeps going on a slow tap.
        idle_wait = max(0.05, min(1.0, self.opt.flush_interval_seconds / 4))
        # Tests cut the input into small blocks, so that short inputs take the block path too.
        read_bytes = int(os.environ.get("SPOOL_TARGET_TEST_READ_BYTES") or READ_CHUNK)
        return line_blocks(fd, idle_wait, self._tick, read_bytes)


def _prefer_jemalloc() -> None:
    """Give Arrow's allocations to jemalloc, unless the user chose a pool.

    pyarrow's default pool (mimalloc) kept 320-350 MB resident while
    ingesting 1M records; jemalloc 230-240 MB for the same CPU time
    (``ARROW_DEFAULT_MEMORY_POOL`` runs of scripts/bench_ingest.py's input).
    Wheels built without jemalloc keep their default."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:
        pass


def _stream_of(msg: dict[str, Any], line: int) -> str:
    stream = msg.get("stream")
    if not isinstance(stream, str) or not stream:
        raise InputError(f"{msg.get('type')} message needs a non-empty 'stream' name", line=line)
    return stream


class _StateText(msgspec.Struct):
    value: msgspec.Raw


_state_text = msgspec.json.Decoder(_StateText)


def state_value_text(raw: bytes) -> bytes:
    """The JSON text of a STATE message's value, exactly as the tap sent it."""
    return bytes(_state_text.decode(raw).value)


def _work_file_rows(work_file: Path, wanted: set[int]) -> dict[int, bytes]:
    """The original text of some rows of a work file (for rejects)."""
    found: dict[int, bytes] = {}
    last = max(wanted, default=-1)
    with open(work_file, "rb") as fh:
        for row, text in enumerate(fh):
            if row in wanted:
                found[row] = text.rstrip(b"\n")
            if row >= last:
                break
    return found

