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


# Runs the real CLI with a passive recorder: every mkdir, rename and fsync (with
# the path of the fsynced descriptor), in order, from every thread.
_TRACER = r"""
import os, sys
trace = open(sys.argv[1], "a", buffering=1)
def hook(event, args):
    if event == "os.mkdir":
        trace.write("mkdir\t" + os.path.abspath(os.fsdecode(args[0])) + "\n")
    elif event == "os.rename":
        trace.write("rename\t" + os.path.abspath(os.fsdecode(args[1])) + "\n")
sys.addaudithook(hook)
real_fsync = os.fsync
def fsync(fd):
    fd = fd if isinstance(fd, int) else fd.fileno()
    path = os.readlink(f"/proc/self/fd/{fd}")
    real_fsync(fd)
    trace.write("fsync\t" + path + "\n")
os.fsync = fsync
sys.argv = ["spool-target", *sys.argv[2:]]
from spool_target.cli import main
main()
"""


def _traced_cli(trace: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _TRACER, str(trace), *args], input=input, capture_output=True,
                          env=cli_env(), timeout=120)


def test_every_new_spool_directory_is_fsynced_in_its_parent_before_it_is_used(tmp_path: Path) -> None:
    """A directory's own entry lives in its parent: until the parent is fsynced,
    a power cut can lose the directory and every fsynced file in it. For each
    directory a run creates, its parent must be fsynced before anything in it is
    fsynced or renamed into it (the moment something relies on it)."""
    spool = tmp_path / "spool"
    trace = tmp_path / "trace.tsv"
    props = {"id": {"type": "integer"}, "age": {"type": "integer"}}
    first = singer_lines([schema_msg("users", props, ["id"]), schema_msg("orders", {"id": {"type": "integer"}}, ["id"]),
                          record_msg("users", {"id": 1, "age": 30}), record_msg("users", {"id": 2, "age": "x"}),
                          record_msg("orders", {"id": 7}), state_msg(1)])
    r = _traced_cli(trace, "ingest", "--spool", str(spool), input=first)
    assert r.returncode == 0, r.stderr.decode()
    # A segment file without a manifest entry (a crash before its commit): the next run quarantines it.
    orphan = next((spool / "streams").glob("users-*/*.parquet"))
    (orphan.parent / "000999999-deadbeef.parquet").write_bytes(orphan.read_bytes())
    r = _traced_cli(trace, "ingest", "--spool", str(spool), input=first)
    assert r.returncode == 0, r.stderr.decode()
    r = _traced_cli(trace, "rejects", "replay", "--spool", str(spool))
    assert r.returncode == 0, r.stderr.decode()
    r = _traced_cli(trace, "load", "--spool", str(spool))
    assert r.returncode == 0, r.stderr.decode()

    events = [tuple(line.split("\t", 1)) for line in trace.read_text().splitlines()]
    root = str(spool.resolve())
    first_mkdir: dict[str, int] = {}  # the first attempt is the one that created it (later ones find it there)
    for i, (kind, path) in enumerate(events):
        if kind == "mkdir" and path.startswith(root):
            first_mkdir.setdefault(path, i)
    created = [(i, path) for path, i in first_mkdir.items()]
    names = {Path(p).relative_to(root).parts[0] if p != root else "." for _, p in created}
    assert {".", "streams", "rejects", "tmp", "runs", "quarantine", "replays"} <= names, names
    assert sum(1 for _, p in created if Path(p).parent.name == "streams") == 2  # one per stream
    assert any(Path(p).parent.name == "rejects" for _, p in created)
    assert any(Path(p).parent.name == "replays" for _, p in created)
    for i, path in created:
        parent = str(Path(path).parent)
        inside = path + "/"
        synced = next((j for j in range(i + 1, len(events)) if events[j] == ("fsync", parent)), None)
        used = next((j for j in range(i + 1, len(events))
                     if events[j][0] in ("fsync", "rename") and events[j][1].startswith(inside)), None)
        assert synced is not None, f"{path} was created but its parent was never fsynced"
        assert used is None or synced < used, f"{events[used]} relied on {path} before its parent was fsynced"


def test_spool_directories_are_only_created_by_the_durable_helper() -> None:
    """One way to create a directory (durable.make_dirs), so none is created without its parent fsync."""
    package = Path(__file__).resolve().parent.parent / "spool_target"
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "durable.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if any(call in line for call in (".mkdir(", "os.makedirs(", "os.mkdir(")):
                offenders.append(f"{path.relative_to(package)}:{n}: {line.strip()}")
    assert not offenders, "create directories with durable.make_dirs:\n" + "\n".join(offenders)
