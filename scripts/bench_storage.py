#!/usr/bin/env python
"""Benchmark the storage layer: put/get of 64 MiB segment-like objects on a
local moto S3 server against a local directory, in the same run.

Three ways to write each object, and one to read it:
- ``put``: one request with the whole object (what a finished segment file
  costs when it fits in memory);
- ``upload``: the streaming multipart upload (``--part-mib`` parts, sent
  concurrently), as a segment writer would stream;
- ``put_if_absent``: one conditional create (``If-None-Match: *``);
- ``get``: the whole object back, bytes compared.

Each figure is the median of --runs runs (fresh keys each time). Bytes per
request is object size / requests the operation makes (a multipart upload
makes one create, one request per part and one complete). moto runs as a
separate process (``python -m moto.server``) on loopback so that its Python
does not share this process's interpreter lock. Needs the test extra
(moto[server]).

    python scripts/bench_storage.py [--runs 3] [--mib 64] [--part-mib 16]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from storagekit import S3_KEY_ID, S3_SECRET, free_port, stop, wait_for_port  # noqa: E402

from spool_target.storage import Storage, open_storage  # noqa: E402

MiB = 1024 * 1024


def timed(runs: int, fn: Callable[[int], None]) -> float:
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(store: Storage, data: bytes, runs: int, part: int, tag: str) -> dict[str, float]:
    def upload(i: int) -> None:
        with store.upload(f"{tag}/upload-{i}.parquet", part_size=part) as up:
            view = memoryview(data)
            for off in range(0, len(data), 4 * MiB):  # a writer hands over 4 MiB at a time
                up.write(view[off:off + 4 * MiB])
            up.complete()

    def get(i: int) -> None:
        assert store.get(f"{tag}/put-{i}.parquet")[0] == data

    return {
        "put": timed(runs, lambda i: store.put(f"{tag}/put-{i}.parquet", data)),
        "upload": timed(runs, upload),
        "put_if_absent": timed(runs, lambda i: store.put_if_absent(f"{tag}/create-{i}.parquet", data)),
        "get": timed(runs, get),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--part-mib", type=int, default=16)
    args = ap.parse_args()
    size, part = args.mib * MiB, args.part_mib * MiB
    data = os.urandom(size)
    requests = {"put": 1, "upload": math.ceil(size / part) + 2, "put_if_absent": 1, "get": 1}

    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, moto)
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                     region_name="us-east-1").create_bucket(Bucket="bench")
        s3 = open_storage("s3://bench/spool", {"endpoint": endpoint, "access_key_id": S3_KEY_ID,
                                              "secret_access_key": S3_SECRET}, env={})
        with tempfile.TemporaryDirectory() as tmp:
            local = bench(open_storage(str(Path(tmp) / "spool")), data, args.runs, part, "local")
        remote = bench(s3, data, args.runs, part, "s3")
    finally:
        stop(moto)

    print(f"{args.mib} MiB objects, median of {args.runs} runs, parts of {args.part_mib} MiB\n")
    print("| operation | local directory | moto S3 on loopback | S3 / local | bytes per S3 request |")
    print("| --- | --- | --- | --- | --- |")
    for op in ("put", "upload", "put_if_absent", "get"):
        lm, rm = size / MiB / local[op], size / MiB / remote[op]
        print(f"| {op} | {lm:,.0f} MiB/s ({local[op]:.3f} s) | {rm:,.0f} MiB/s ({remote[op]:.3f} s) "
              f"| {rm / lm:.2f} | {size // requests[op]:,} ({requests[op]} requests) |")


if __name__ == "__main__":
    main()
