"""The storage contract, the same tests over a local directory, S3 (moto) and
Azure Blob (Azurite), plus faults against real loopback servers.

Issue 11, step one: ingest and load do not use this layer yet.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from storagekit import S3_SECRET, AZ_KEY, FaultProxy, dead_port  # fixtures moto_s3, azurite...: conftest loads storagekit

from spool_target.errors import ExitCode, SpoolLocked
from spool_target.storage import (
    Lease,
    LeaseLost,
    ObjectChanged,
    ObjectExists,
    ObjectMissing,
    Storage,
    StorageAccessDenied,
    StorageConfigError,
    StorageNotFound,
    StorageUnavailable,
    open_storage,
    parse_location,
)

MiB = 1024 * 1024
FAST_FAIL = {"max_retries": 2, "init_backoff_seconds": 0.01, "retry_timeout_seconds": 10}


class Backend:
    """One storage under test, and how to look behind it."""

    def __init__(self, kind: str, url: str, options: dict | None, server: object = None, bucket: str = ""):
        self.kind, self.url, self.options, self.server, self.bucket = kind, url, options, server, bucket

    def open(self) -> Storage:
        return open_storage(self.url, self.options, env={})


@pytest.fixture(params=["local", "s3", "az"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return Backend("local", str(tmp_path / "spool"), None)
    if request.param == "s3":
        s3 = request.getfixturevalue("moto_s3")
        bucket = s3.new_bucket()
        return Backend("s3", f"s3://{bucket}/spools/tap-x", s3.options(), s3, bucket)
    az = request.getfixturevalue("azurite")
    container = az.new_container()
    return Backend("az", f"az://{container}/spools/tap-x", az.options(), az, container)


@pytest.fixture
def store(backend: Backend) -> Storage:
    return backend.open()


# -- the contract --------------------------------------------------------------


def test_put_get_head_delete_round_trip(store: Storage) -> None:
    data = os.urandom(1000)
    info = store.put("manifest/000001.json", data)
    body, got = store.get("manifest/000001.json")
    assert body == data
    assert got.size == 1000 and got.etag == info.etag == store.head("manifest/000001.json").etag
    store.delete("manifest/000001.json")
    store.delete("manifest/000001.json")  # deletes are retried, so a second one is fine
    with pytest.raises(ObjectMissing, match="manifest/000001.json does not exist"):
        store.get("manifest/000001.json")
    assert not store.exists("manifest/000001.json")


def test_byte_ranges(store: Storage) -> None:
    data = bytes(range(256)) * 4
    store.put("seg.parquet", data)
    assert store.get_range("seg.parquet", 10, 20) == data[10:30]
    assert store.get_range("seg.parquet", 1014, 50) == data[1014:]  # Parquet reads its footer this way
    assert store.get_range("seg.parquet", 0, 1024) == data
    assert store.get_range("seg.parquet", 2000, 10) == b""


def test_listing_is_sorted_by_key_and_filtered_by_prefix(store: Storage) -> None:
    keys = ["manifest/000000000010.json", "manifest/000000000002.json", "manifest/000000000001.json",
            "streams/orders/b.parquet", "streams/orders/a.parquet", "streams/orders-x/a.parquet", "_lease.json"]
    for k in random.Random(7).sample(keys, len(keys)):
        store.put(k, k.encode())
    assert [o.key for o in store.list()] == sorted(keys)
    assert [o.key for o in store.list("manifest/")] == sorted(k for k in keys if k.startswith("manifest/"))
    assert [o.key for o in store.list("streams/orders/")] == ["streams/orders/a.parquet", "streams/orders/b.parquet"]
    assert [o.size for o in store.list("_lease")] == [len(b"_lease.json")]


def test_conditional_create_race_has_exactly_one_winner(store: Storage) -> None:
    for round_ in range(8):
        key = f"manifest/{round_:012d}.json"
        barrier = threading.Barrier(2)
        won: list[int] = []
        lost: list[int] = []

        def write(writer: int) -> None:
            barrier.wait()
            try:
                store.put_if_absent(key, json.dumps({"writer": writer, "round": round_}).encode())
                won.append(writer)
            except ObjectExists:
                lost.append(writer)

        threads = [threading.Thread(target=write, args=(w,)) for w in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == 1, (won, lost)
        assert json.loads(store.get(key)[0]) == {"writer": won[0], "round": round_}  # the winner's bytes, whole


def test_conditional_create_is_idempotent_for_the_same_bytes_only(store: Storage) -> None:
    store.put_if_absent("manifest/1.json", b'{"writer": "a"}')
    # A retried create whose first attempt was stored finds its own bytes: success.
    store.put_if_absent("manifest/1.json", b'{"writer": "a"}')
    with pytest.raises(ObjectExists, match="manifest/1.json already exists"):
        store.put_if_absent("manifest/1.json", b'{"writer": "b"}')
    assert store.get("manifest/1.json")[0] == b'{"writer": "a"}'


def test_conditional_replace_needs_the_current_etag(store: Storage) -> None:
    first = store.put_if_absent("_lease.json", b"v1")
    second = store.replace_if("_lease.json", b"v2", first.etag)
    assert second.etag != first.etag
    with pytest.raises(ObjectChanged, match="_lease.json was replaced"):
        store.replace_if("_lease.json", b"v3", first.etag)
    assert store.get("_lease.json")[0] == b"v2"
    store.delete("_lease.json")
    with pytest.raises(ObjectChanged):
        store.replace_if("_lease.json", b"v4", second.etag)


def test_streaming_upload_is_invisible_until_complete(backend: Backend, store: Storage) -> None:
    chunk = os.urandom(MiB)
    with store.upload("streams/orders/seg-1.parquet", part_size=5 * MiB) as up:
        for _ in range(12):
            up.write(chunk)
        assert store.list("streams/") == []
        assert not store.exists("streams/orders/seg-1.parquet")
        info = up.complete()
    assert info.size == 12 * MiB
    assert [o.key for o in store.list("streams/")] == ["streams/orders/seg-1.parquet"]
    assert store.get_range("streams/orders/seg-1.parquet", 11 * MiB, MiB) == chunk
    if backend.kind == "s3":
        assert backend.server.pending_uploads(backend.bucket) == []


def test_a_failed_upload_is_aborted_and_leaves_nothing(backend: Backend, store: Storage) -> None:
    with pytest.raises(RuntimeError, match="tap died"):
        with store.upload("streams/orders/seg-2.parquet", part_size=5 * MiB) as up:
            up.write(os.urandom(11 * MiB))  # two parts already sent on S3
            raise RuntimeError("tap died")
    assert store.list() == []
    if backend.kind == "s3":
        assert backend.server.pending_uploads(backend.bucket) == []  # aborted, not just hidden
    if backend.kind == "local":
        assert list((Path(backend.url) / ".uploads").glob("*.part")) == []


KILLED_UPLOADER = """
import sys, os
from spool_target.storage import open_storage
store = open_storage(sys.argv[1], __import__("json").loads(sys.argv[2]) or None, env={})
up = store.upload("streams/orders/seg-3.parquet", part_size=5 * 1024 * 1024)
up.write(os.urandom(11 * 1024 * 1024))
print("parts sent", flush=True)
sys.stdin.read()
"""


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _parts_on_server(backend: Backend) -> int:
    if backend.kind == "s3":
        return len(backend.server.pending_uploads(backend.bucket))
    if backend.kind == "az":
        return backend.server.uncommitted_blocks(backend.bucket, "spools/tap-x/streams/orders/seg-3.parquet")
    return len(list((Path(backend.url) / ".uploads").glob("*.part")))


def test_an_upload_killed_with_its_process_is_never_listed(backend: Backend, store: Storage) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_UPLOADER, backend.url, json.dumps(backend.options)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"parts sent\n"
    wait_until(lambda: _parts_on_server(backend) > 0)  # writes are asynchronous: kill once parts are stored
    proc.kill()
    proc.wait()
    assert store.list() == []
    assert not store.exists("streams/orders/seg-3.parquet")
    report = store.cleanup_abandoned_uploads(older_than_seconds=0)
    if backend.kind == "local":
        assert len(report.removed) == 1
        assert list((Path(backend.url) / ".uploads").glob("*.part")) == []
    elif backend.kind == "s3":
        # What the library cannot do: list and abort another process's upload.
        assert backend.server.pending_uploads(backend.bucket) == ["spools/tap-x/streams/orders/seg-3.parquet"]
        assert "AbortIncompleteMultipartUpload" in report.note
    else:
        assert _parts_on_server(backend) >= 1  # staged blocks, invisible; Azure drops them after 7 days
        assert "7 days" in report.note


# -- the lease -----------------------------------------------------------------


def test_lease_acquire_renew_release_and_steal_after_expiry(store: Storage) -> None:
    t0 = 1_000_000.0
    a = Lease.acquire(store, ttl_seconds=30, owner="ingester-a", now=t0)
    with pytest.raises(SpoolLocked, match="another ingester holds this spool .*expires in 29 s"):
        Lease.acquire(store, ttl_seconds=30, owner="ingester-b", now=t0 + 1)
    a.renew(now=t0 + 20)  # now valid until t0 + 50
    with pytest.raises(SpoolLocked):
        Lease.acquire(store, ttl_seconds=30, owner="ingester-b", now=t0 + 45)
    b = Lease.acquire(store, ttl_seconds=30, owner="ingester-b", now=t0 + 56)  # expired + 5 s skew
    with pytest.raises(LeaseLost, match="took the spool over"):
        a.renew(now=t0 + 57)
    a.release()  # not ours any more: a no-op, never removes b's lease
    with pytest.raises(SpoolLocked):
        Lease.acquire(store, ttl_seconds=30, owner="ingester-c", now=t0 + 58)
    b.release()
    c = Lease.acquire(store, ttl_seconds=30, owner="ingester-c", now=t0 + 59)
    assert json.loads(store.get("_lease.json")[0])["owner"] == "ingester-c"
    assert c.etag == store.head("_lease.json").etag


def test_two_machines_stealing_an_expired_lease_at_once_one_wins(store: Storage) -> None:
    Lease.acquire(store, ttl_seconds=10, owner="dead", now=0.0)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def steal(owner: str) -> None:
        barrier.wait()
        try:
            Lease.acquire(store, ttl_seconds=10, owner=owner, now=100.0)
            results[owner] = "won"
        except SpoolLocked:
            results[owner] = "locked"

    threads = [threading.Thread(target=steal, args=(o,)) for o in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["locked", "won"]
    winner = next(o for o, r in results.items() if r == "won")
    assert json.loads(store.get("_lease.json")[0])["owner"] == winner


# -- faults against real loopback servers ----------------------------------------


def test_connection_refused_is_retried_a_bounded_number_of_times_then_explained() -> None:
    port = dead_port()
    store = open_storage("s3://bucket/spool", {"endpoint": f"http://127.0.0.1:{port}", **FAST_FAIL,
                                               "access_key_id": "AKIA", "secret_access_key": S3_SECRET}, env={})
    t0 = time.monotonic()
    with pytest.raises(StorageUnavailable) as exc:
        store.put_if_absent("manifest/1.json", b"{}")
    assert time.monotonic() - t0 < 10
    msg = str(exc.value)
    assert "s3://bucket/spool is unavailable while creating s3://bucket/spool/manifest/1.json" in msg
    assert "connection refused or dropped after 2 retries" in msg
    assert "run again when the store answers" in msg
    assert exc.value.exit_code == ExitCode.UNAVAILABLE
    assert S3_SECRET not in msg


def test_throttling_503_slowdown_is_retried_then_succeeds(moto_s3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()
    with FaultProxy(moto_s3.endpoint, throttle=2) as proxy:
        store = open_storage(f"s3://{bucket}/spool", moto_s3.options(endpoint=proxy.endpoint, **FAST_FAIL), env={})
        store.put("manifest/1.json", b"{}")
        assert proxy.requests == 3  # two 503s, then the write
    assert moto_s3.client.get_object(Bucket=bucket, Key="spool/manifest/1.json")["Body"].read() == b"{}"


def test_throttling_that_never_stops_ends_in_a_clear_transient_error(moto_s3) -> None:  # noqa: F811
    with FaultProxy(moto_s3.endpoint, throttle=10_000) as proxy:
        store = open_storage("s3://bucket/spool", moto_s3.options(endpoint=proxy.endpoint, **FAST_FAIL), env={})
        with pytest.raises(StorageUnavailable) as exc:
            store.get("manifest/1.json")
        assert proxy.requests == 3  # bounded: 1 + max_retries
    msg = str(exc.value)
    assert "while reading s3://bucket/spool/manifest/1.json: 503 Service Unavailable (SlowDown) after 2 retries" in msg
    assert S3_SECRET not in msg


def test_wrong_s3_credentials_are_permanent_and_say_so(moto_s3_auth: str) -> None:
    store = open_storage("s3://bucket/spool", {"endpoint": moto_s3_auth, **FAST_FAIL}, env={
        "AWS_ACCESS_KEY_ID": "AKIAWRONGKEY", "AWS_SECRET_ACCESS_KEY": "wrong-secret-do-not-print"})
    with pytest.raises(StorageAccessDenied) as exc:
        store.put_if_absent("manifest/1.json", b"{}")
    msg = str(exc.value)
    assert "the store refused the credentials while creating s3://bucket/spool/manifest/1.json" in msg
    assert "InvalidAccessKeyId" in msg and "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" in msg
    assert "wrong-secret-do-not-print" not in msg and exc.value.exit_code == ExitCode.SPOOL


def test_wrong_azure_key_is_permanent_and_says_so(azurite) -> None:  # noqa: F811
    container = azurite.new_container()
    wrong = "d3Jvbmcta2V5LWRvLW5vdC1wcmludA=="
    store = open_storage(f"az://{container}/spool", azurite.options(account_key=wrong, **FAST_FAIL), env={})
    with pytest.raises(StorageAccessDenied) as exc:
        store.list()
    msg = str(exc.value)
    assert "refused the credentials" in msg and "AuthorizationFailure" in msg and wrong not in msg
    assert AZ_KEY not in msg


def test_missing_bucket_is_permanent_and_says_what_to_do(moto_s3, azurite) -> None:  # noqa: F811
    s3 = open_storage("s3://no-such-bucket/spool", moto_s3.options(**FAST_FAIL), env={})
    with pytest.raises(StorageNotFound, match="bucket 'no-such-bucket' does not exist \\(NoSuchBucket\\)"):
        s3.put_if_absent("manifest/1.json", b"{}")
    az = open_storage("az://no-such-container/spool", azurite.options(**FAST_FAIL), env={})
    with pytest.raises(StorageNotFound, match="container 'no-such-container' does not exist") as exc:
        az.get("manifest/1.json")
    assert "create the container" in str(exc.value)


# -- locations and options -------------------------------------------------------


def test_urls_parse_into_scheme_bucket_and_prefix() -> None:
    loc = parse_location("s3://acme/spools/tap-x/", env={})
    assert (loc.scheme, loc.bucket, loc.prefix, loc.url) == ("s3", "acme", "spools/tap-x", "s3://acme/spools/tap-x")
    assert parse_location("az://container/p", env={}).scheme == "az"
    assert parse_location("gs://b", env={}).prefix == ""
    assert parse_location("/var/spool/x", env={}).path == "/var/spool/x"
    for bad, why in [("ftp://h/x", "unsupported spool URL scheme"), ("s3:///x", "no bucket"),
                     ("s3://KEY:SECRET@bucket/x", "no query, fragment or credentials")]:
        with pytest.raises(StorageConfigError, match=why) as exc:
            parse_location(bad, env={})
        assert "SECRET" not in str(exc.value)
    with pytest.raises(StorageConfigError, match="unknown storage_options for s3://: endpont"):
        parse_location("s3://b/p", {"endpont": "http://x"}, env={})


def test_aws_environment_variables_work_as_for_the_aws_cli() -> None:
    env = {"AWS_ENDPOINT_URL": "http://generic:1", "AWS_ENDPOINT_URL_S3": "http://s3-specific:2",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-central-1",
           "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    loc = parse_location("s3://b/p", env=env)
    assert loc.options["endpoint"] == "http://s3-specific:2" and loc.options["region"] == "eu-central-1"
    assert loc.options["access_key_id"] == "AKIAENV" and "env-secret" in loc.secrets
    del env["AWS_ENDPOINT_URL_S3"], env["AWS_REGION"]
    loc = parse_location("s3://b/p", env=env)
    assert loc.options["endpoint"] == "http://generic:1" and loc.options["region"] == "eu-west-1"
    loc = parse_location("s3://b/p", {"endpoint": "http://explicit:3", "region": "us-west-2"}, env=env)
    assert loc.options["endpoint"] == "http://explicit:3" and loc.options["region"] == "us-west-2"


def test_a_spool_on_moto_reached_through_the_environment_alone(moto_s3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()
    env = {"AWS_ENDPOINT_URL": moto_s3.endpoint, "AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "s"}
    store = open_storage(f"s3://{bucket}/spool", env=env)
    store.put_if_absent("manifest/1.json", b"{}")
    assert [o.key for o in store.list()] == ["manifest/1.json"]
