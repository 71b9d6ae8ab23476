#!/usr/bin/env python3
"""How fast ingest's reader could decode records: today's per-line loop against
msgspec's ``Decoder.decode_lines`` over whole chunks.

Tried inside ingest, the block path cut the reader's time by about 0.3 s per
1M records but not the wall time: the committer thread then set the pace
(README, "Speed"). The script stays to measure the reader's side alone.

    python scripts/bench_decode.py                    # 1,000,000 records, 3 runs
    python scripts/bench_decode.py --records 200000

Both sides decode the RECORD lines of scripts/bench_ingest.py's input, in 1 MiB
chunks of complete lines, with the fast-path decoder ingest builds for the
stream (spool/records.py). The per-line side does what the hot loop does per
record (split, decode, append the row, its line number and its raw bytes, join
the raw lines for the work file); the other decodes each chunk in one call.
STATE lines are left out: a chunk holding one would make ``decode_lines`` fail,
which is the part a real change has to solve.
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
from spool_target.spool.records import RecordDecoder  # noqa: E402

CHUNK = 1 << 20


def record_chunks(source: Path) -> tuple[RecordDecoder, list[bytes]]:
    first, _, rest = source.read_bytes().partition(b"\n")
    schema = orjson.loads(first)
    decoder = RecordDecoder(parse_schema_message(schema["stream"], schema["schema"], schema.get("key_properties", [])))
    records = b"".join(line + b"\n" for line in rest.split(b"\n") if line.startswith(b'{"type":"RECORD"'))
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
            rows.append(decode(raw))
            lines.append(n)
            pending.append(raw)
            n += 1
        b"\n".join(pending)
    return n


def whole_chunks(decode_lines, chunks: list[bytes]) -> int:
    n = 0
    for chunk in chunks:
        rows: list = []
        lines: list[int] = []
        decoded = decode_lines(chunk)
        rows.extend(decoded)
        lines.extend(range(n, n + len(decoded)))
        n += len(decoded)
    return n


def main() -> None:
    args, work = records_args(__doc__, "bench-decode-")
    decoder, chunks = record_chunks(plain_input(work, args.records))
    first = chunks[0][: chunks[0].index(b"\n")]
    decode_lines = msgspec.json.Decoder(type(decoder.decode(first))).decode_lines
    times: dict[str, list[float]] = {"per line": [], "decode_lines": []}
    for run in range(1, args.runs + 1):
        for name, fn in (("per line", lambda: per_line(decoder.decode, chunks)),
                         ("decode_lines", lambda: whole_chunks(decode_lines, chunks))):
            start = time.perf_counter()
            n = fn()
            times[name].append(time.perf_counter() - start)
            print(f"run {run} {name}: {times[name][-1]:.2f} s for {n:,} records", flush=True)
    for name, values in times.items():
        print(f"median {name}: {statistics.median(values):.2f} s")


if __name__ == "__main__":
    main()
