#!/usr/bin/env python3
"""How fast ingest's reader types records: line by line, a block at a time, or compiled.

Ingest types a block of input in one call when every line in it is a plain
RECORD of one stream or a STATE. Where the compiled path is built
(``records.BlockPlan``, ``_blockdecode.c``) it types the block straight
into the Arrow buffers of a ``RowBlock``; else, or when it gives up,
msgspec decodes the block (``RecordDecoder.decode_block``: ``decode_lines``
over a tagged union) and ``RowBlock`` packs the decoded values. Any other
line sends the block line by line (``RecordDecoder.decode`` per line). This
script measures these on the reader's side alone, without typing columns or
writing anything.

    python scripts/bench_decode.py                    # 1,000,000 records, 3 runs
    python scripts/bench_decode.py --records 200000

All sides take the lines of scripts/bench_ingest.py's input after its
SCHEMA (records, and a STATE every 10,000), in 1 MiB chunks of complete
lines. The per-line side does what the line-by-line loop does per record
(split, decode, append the row, its line number and its raw bytes, join the
raw lines for the work file), skipping STATE lines; the msgspec block side
decodes each chunk in one call and counts its rows; the two "packed" sides
also pack the rows into Arrow arrays, as ingest does before it commits.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import plain_input, records_args  # noqa: E402

from spool_target.schema import parse_schema_message  # noqa: E402
from spool_target.spool.columns import RowBlock  # noqa: E402
from spool_target.spool.records import RecordDecoder, StateLine  # noqa: E402

CHUNK = 1 << 20


def record_chunks(source: Path) -> tuple[RecordDecoder, list[bytes]]:
    first, _, rest = source.read_bytes().partition(b"\n")
    schema = orjson.loads(first)
    decoder = RecordDecoder(parse_schema_message(schema["stream"], schema["schema"], schema.get("key_properties", [])))
    records = rest
    chunks, i = [], 0
    while i < len(records):
        j = records.rfind(b"\n", i, i + CHUNK) + 1
        chunks.append(records[i:j])
        i = j
    return decoder, chunks


def per_line(decode, chunks: list[bytes]) -> int:
    n = 0
    for chunk in chunks:
        rows, lines, pending = [], [], []
        for raw in chunk.split(b"\n")[:-1]:
            try:
                rows.append(decode(raw))
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # a STATE: ingest hands it to the message handlers
            lines.append(n)
            pending.append(raw)
            n += 1
        b"\n".join(pending)
    return n


def whole_chunks(decode_block, chunks: list[bytes]) -> int:
    n = 0
    for chunk in chunks:
        rows: list = []
        lines: list[int] = []
        decoded = decode_block(chunk)
        if StateLine in set(map(type, decoded)):
            decoded = [m for m in decoded if type(m) is not StateLine]
        rows.extend(decoded)
        lines.extend(range(n, n + len(rows)))
        n += len(rows)
    return n


def msgspec_packed(decoder: RecordDecoder, chunks: list[bytes]) -> int:
    n = 0
    for chunk in chunks:
        rows = [m for m in decoder.decode_block(chunk) if type(m) is not StateLine]
        n += RowBlock(decoder.shape, rows).rows
    return n


def compiled_packed(decoder: RecordDecoder, chunks: list[bytes]) -> int:
    assert decoder.plan is not None
    n = 0
    for chunk in chunks:
        records, _, end, buffers, _ = decoder.plan.decode(chunk)
        assert end == len(chunk), "the compiled path stopped short on the benchmark's plain records"
        n += RowBlock.from_buffers(decoder.shape, records, buffers).rows
    return n


def main() -> None:
    args, work = records_args(__doc__, "bench-decode-")
    decoder, chunks = record_chunks(plain_input(work, args.records))
    sides = [
        ("per line", lambda: per_line(decoder.decode, chunks)),
        ("a block at a time", lambda: whole_chunks(decoder.decode_block, chunks)),
        ("a block at a time, packed", lambda: msgspec_packed(decoder, chunks)),
    ]
    if decoder.plan is not None:
        sides.append(("compiled, packed", lambda: compiled_packed(decoder, chunks)))
    else:
        print("the compiled path is not built here: timing the pure-Python paths only")
    times: dict[str, list[float]] = {name: [] for name, _ in sides}
    for run in range(1, args.runs + 1):
        for name, fn in sides:
            start = time.perf_counter()
            n = fn()
            times[name].append(time.perf_counter() - start)
            print(f"run {run} {name}: {times[name][-1]:.2f} s for {n:,} records", flush=True)
    for name, values in times.items():
        print(f"median {name}: {statistics.median(values):.2f} s")


if __name__ == "__main__":
    main()
