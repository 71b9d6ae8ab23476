"""Fault injection for ingest: SIGKILL at commit boundaries and at random
instants, a full disk, a read-only spool. After each, the invariants hold:

- I1: every record before the last STATE written to stdout is in a
  committed segment;
- I2: every committed segment's file exists and matches its entry; files
  without an entry are quarantined by the next run, never lost silently;
- the spool stays readable and a new ingest into it works.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import cli_env, manifest_entries, record_msg, run_cli, schema_msg, singer_lines, state_msg
from spool_target.spool.layout import SpoolLayout
from spool_target.spool.manifest import read_manifest
from spool_target.spool.segment import check_segment


def tap(n: int, state_every: int = 50) -> bytes:
    msgs = [
        schema_msg("users", {"id": {"type": "integer"}, "name": {"type": "string"}}, ["id"]),
        schema_msg("orders", {"id": {"type": "integer"}}, ["id"]),
    ]
    for i in range(n):
        msgs.append(record_msg("users", {"id": i, "name": f"u{i}"}))
        if i % 3 == 0:
            msgs.append(record_msg("orders", {"id": i}))
        if (i + 1) % state_every == 0:
            msgs.append(state_msg({"upto": i}))
    return singer_lines(msgs)


def committed_ids(spool: Path) -> dict[str, list[int]]:
    manifest = read_manifest(SpoolLayout(spool))
    out: dict[str, list[int]] = {}
    for seg in manifest.segments():
        check_segment(spool / seg.path, seg.rows, seg.sha256, label=seg.path)  # I2
        out.setdefault(seg.stream, []).extend(pq.read_table(spool / seg.path, columns=["id"]).column("id").to_pylist())
    return out


def check_invariants(spool: Path, stdout: bytes) -> None:
    ids = committed_ids(spool)
    states = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    if states:
        upto = states[-1]["upto"]
        users = set(ids.get("users", []))
        orders = set(ids.get("orders", []))
        assert set(range(upto + 1)) <= users, "a STATE went out before its records were committed"
        assert {i for i in range(upto + 1) if i % 3 == 0} <= orders
    for stream_ids in ids.values():
        assert len(stream_ids) == len(set(stream_ids)), "a record was committed twice in one run"


def rerun_completes(spool: Path) -> None:
    """The tap resends from its bookmark: a fresh ingest must work on the crashed spool."""
    result = run_cli("ingest", "--spool", str(spool), "--log-format", "json", input=tap(30, state_every=10))
    assert result.returncode == 0, result.stderr
    assert not list((spool / "tmp").iterdir())
    manifest_paths = {e["path"] for e in manifest_entries(spool) if e["kind"] == "segment"}
    on_disk = {p.relative_to(spool).as_posix() for p in (spool / "streams").glob("*/*.parquet")}
    assert on_disk == manifest_paths
    return result.stderr


SMALL_SEGMENTS = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "40"}


@pytest.mark.parametrize(
    "point",
    [
        "ingest:segment-written:2",  # parquet in tmp/, not yet renamed
        "ingest:segment-published:3",  # renamed into streams/, no manifest entry
        "manifest:torn-append:5",  # half a manifest line on disk
        "ingest:segment-committed:4",  # committed, STATE not yet journaled
        "ingest:state-journaled:2",  # STATE journaled, not yet on stdout
    ],
)
def test_sigkill_at_commit_boundaries(spool: Path, point: str) -> None:
    result = run_cli(
        "ingest", "--spool", str(spool), input=tap(400), env={"SPOOL_TARGET_TEST_CRASH_AT": point, **SMALL_SEGMENTS}
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    check_invariants(spool, result.stdout)
    stderr = rerun_completes(spool)
    if point.startswith("ingest:segment-published"):
        assert b"quarantining a segment file with no manifest entry" in stderr
        assert list((spool / "quarantine").iterdir())
    if point.startswith("ingest:segment-written"):
        assert b"removing a work file left by an interrupted ingest" in stderr
    if point.startswith("manifest:torn"):
        assert b"torn last line" in stderr


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_instants(spool: Path, seed: int) -> None:
    """A tap that writes steadily; the target is killed at a random moment."""
    rng = random.Random(seed)
    data = tap(3000, state_every=25)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=cli_env({"SPOOL_TARGET_FLUSH_MAX_ROWS": "200", "SPOOL_TARGET_FLUSH_INTERVAL_SECONDS": "0.05"}),
    )
    assert proc.stdin and proc.stdout
    os.set_blocking(proc.stdout.fileno(), False)
    out = bytearray()
    kill_at = time.monotonic() + rng.uniform(0.8, 2.0)
    pos = 0
    try:
        while time.monotonic() < kill_at and pos < len(data):
            proc.stdin.write(data[pos : pos + 4096])
            proc.stdin.flush()
            pos += 4096
            time.sleep(0.002)
            chunk = proc.stdout.read()
            if chunk:
                out += chunk
    except BrokenPipeError:
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    os.set_blocking(proc.stdout.fileno(), True)
    out += proc.stdout.read() or b""
    # Only whole lines were acknowledged.
    complete = bytes(out[: out.rfind(b"\n") + 1])
    check_invariants(spool, complete)
    rerun_completes(spool)


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_disk_full_stops_with_a_clear_error_and_a_consistent_spool(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "size=3m"):
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        spool = mnt / "spool"
        rng = random.Random(7)  # incompressible text, so the segments really fill the disk
        msgs = [schema_msg("blobs", {"id": {"type": "integer"}, "b": {"type": "string"}}, ["id"])]
        for i in range(3000):
            msgs.append(record_msg("blobs", {"id": i, "b": rng.randbytes(1500).hex()}))
            if (i + 1) % 100 == 0:
                msgs.append(state_msg({"upto": i}))
        result = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs), env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "100", "SPOOL_TARGET_MIN_FREE_DISK_MB": "0"})
        assert result.returncode == 5, result.stderr
        assert b"disk full" in result.stderr and b"free space" in result.stderr
        manifest = read_manifest(SpoolLayout(spool))
        ids: set[int] = set()
        for seg in manifest.segments():
            check_segment(spool / seg.path, seg.rows, seg.sha256, label=seg.path)
            ids |= set(pq.read_table(spool / seg.path, columns=["id"]).column("id").to_pylist())
        states = [json.loads(s) for s in result.stdout.splitlines()]
        if states:
            assert set(range(states[-1]["upto"] + 1)) <= ids
        assert len(ids) < 3000
    finally:
        _umount(mnt)


def blob_tap(n: int, size: int | tuple[int, ...], streams: int = 1, state_every: int = 50, seed: int = 7) -> bytes:
    """Incompressible records of about ``size`` bytes (one size per stream if a tuple),
    so what is written really takes space. Record i goes to stream s(i % streams)."""
    rng = random.Random(seed)
    sizes = size if isinstance(size, tuple) else (size,) * streams
    streams = len(sizes)
    msgs = [schema_msg(f"s{k}", {"id": {"type": "integer"}, "b": {"type": "string"}}, ["id"]) for k in range(streams)]
    for i in range(n):
        msgs.append(record_msg(f"s{i % streams}", {"id": i, "b": rng.randbytes(sizes[i % streams] // 2).hex()}))
        if (i + 1) % state_every == 0:
            msgs.append(state_msg({"upto": i}))
    return singer_lines(msgs)


def _leave_free(mnt: Path, free: int) -> Path:
    """Fill the filesystem at ``mnt`` until about ``free`` bytes are left."""
    filler = mnt / "filler"
    stat = os.statvfs(mnt)
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free))
    return filler


def _check_disk_full_run(spool: Path, result: subprocess.CompletedProcess, n: int, streams: int) -> str:
    """Exit 5 with the disk error (never an internal error); I1 and I2 hold. Returns what was being written."""
    err = result.stderr.decode()
    assert result.returncode == 5, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert "disk full while " in err and "free space on the spool's filesystem" in err, err
    ids: dict[str, set[int]] = {}
    if (spool / "manifest.jsonl").exists():
        for seg in read_manifest(SpoolLayout(spool)).segments():
            check_segment(spool / seg.path, seg.rows, seg.sha256, label=seg.path)  # I2
            ids.setdefault(seg.stream, set()).update(pq.read_table(spool / seg.path, columns=["id"]).column("id").to_pylist())
    states = [json.loads(s) for s in result.stdout.splitlines()]
    if states:  # I1: what was acknowledged is committed
        upto = states[-1]["upto"]
        for k in range(streams):
            assert {i for i in range(upto + 1) if i % streams == k} <= ids.get(f"s{k}", set())
    line = [l for l in err.splitlines() if "disk full while " in l][-1]  # the run's error, after any warning
    return line.split("disk full while ", 1)[1].split(" /", 1)[0]


def _after_freeing_space_ingest_works(spool: Path, filler: Path) -> None:
    filler.unlink()
    again = run_cli("ingest", "--spool", str(spool), input=blob_tap(20, 200), env={"SPOOL_TARGET_MIN_FREE_DISK_MB": "0"})
    assert again.returncode == 0, again.stderr.decode()
    assert not list((spool / "tmp").iterdir())


NO_SIZE_FLUSH = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "1000000", "SPOOL_TARGET_FLUSH_MAX_BYTES": "1000000000",
                 "SPOOL_TARGET_FLUSH_INTERVAL_SECONDS": "3600", "SPOOL_TARGET_MIN_FREE_DISK_MB": "0"}


@pytest.mark.parametrize(
    ("case", "free", "n", "size", "where"),
    [
        # s0's small records go to its work file's buffer first, then s1's spill
        # fails; the failing run closes s0's work file, whose flush fails too (that
        # close was an internal error).
        ("work file write, then another's close", 256 * 1024, 400, (100, 2000), "writing work file"),
        # Everything fits in the work file's buffer: the close at the end of input
        # is the first write to reach the disk.
        ("work file close", 24 * 1024, 20, 2000, "writing work file"),
    ],
)
def test_disk_full_at_a_work_file_is_the_clear_disk_error(
    tmp_path: Path, case: str, free: int, n: int, size: int | tuple[int, ...], where: str
) -> None:
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "size=2m"):
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        spool = mnt / "spool"
        assert run_cli("ingest", "--spool", str(spool), input=blob_tap(1, 10)).returncode == 0  # the spool exists
        filler = _leave_free(mnt, free)
        result = run_cli("ingest", "--spool", str(spool), input=blob_tap(n, size), env=NO_SIZE_FLUSH)
        assert _check_disk_full_run(spool, result, n, len(size) if isinstance(size, tuple) else 1) == where, case
        _after_freeing_space_ingest_works(spool, filler)
    finally:
        _umount(mnt)


def test_disk_full_at_every_point_of_a_run_is_the_clear_disk_error(tmp_path: Path) -> None:
    """The same input with less and less room: the disk fills in the work files,
    the segments, the manifest, the rejects, the run file... Every time: exit 5,
    the disk error, I1 and I2, and a working spool once there is room again."""
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "size=2m"):
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    hit: set[str] = set()
    try:
        # The run needs about 590 KB: every size below stops it somewhere else.
        for i, free in enumerate(k * 1024 for k in (4, 12, 24, 40, 64, 96, 140, 200, 280, 380, 480)):
            spool = mnt / f"spool{i}"
            assert run_cli("ingest", "--spool", str(spool), input=blob_tap(1, 10)).returncode == 0
            filler = _leave_free(mnt, free)
            result = run_cli("ingest", "--spool", str(spool), input=blob_tap(600, 1400, streams=3, seed=i),
                             env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "60", "SPOOL_TARGET_MIN_FREE_DISK_MB": "0"})
            hit.add(_check_disk_full_run(spool, result, 600, 3))
            _after_freeing_space_ingest_works(spool, filler)
            subprocess.run(["rm", "-rf", str(spool)], check=True)
    finally:
        _umount(mnt)
    assert len(hit) >= 2, hit  # the sweep really filled the disk at different writes


def test_read_only_spool_is_a_clear_error(tmp_path: Path) -> None:
    mnt = tmp_path / "ro"
    if not _mount_tmpfs(mnt, "size=1m,ro"):
        pytest.skip("cannot mount a read-only tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        result = run_cli("ingest", "--spool", str(mnt / "spool"), input=tap(5))
        assert result.returncode == 5
        assert b"read-only file system while creating" in result.stderr and b"mounted read-only" in result.stderr
        assert result.stdout == b""
    finally:
        _umount(mnt)


def test_spool_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("ingest", "--spool", str(blocker / "spool"), input=tap(5))
    assert result.returncode == 5
    assert b"Not a directory" in result.stderr and b"check the --spool path" in result.stderr


def test_huge_record_is_spooled_intact(spool: Path) -> None:
    blob = "é" * (20 * 1024 * 1024)  # a 40 MB string: beyond DuckDB's default 16 MB object size
    msgs = [schema_msg("big", {"id": {"type": "integer"}, "blob": {"type": "string"}}, ["id"]), record_msg("big", {"id": 1, "blob": blob}), state_msg("ok")]
    result = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs), timeout=180)
    assert result.returncode == 0, result.stderr
    seg = next(e for e in manifest_entries(spool) if e["kind"] == "segment")
    assert pq.read_table(spool / seg["path"], columns=["blob"]).column("blob")[0].as_py() == blob
