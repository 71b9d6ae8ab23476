"""Spools in a bucket, end to end through the real CLI, on real servers the tests start:
moto's S3 server and Azurite. Each test runs on both.

A "machine" here is a cache directory (XDG_CACHE_HOME), where the CLI keeps its
replica of a bucket spool: two machines share nothing but the bucket, as a pod
that ingests and a loader elsewhere do.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import cli_env, record_msg, run_cli, schema_msg, state_msg
from storagekit import dead_port  # the fixtures (moto_s3, azurite...) come from storagekit via conftest

AMOUNTS = ["12345678901234.5678", "-9999999999999999.9999", "0.1", "123456789012345678901234567890.12345678"]


class BucketCase:
    """One bucket spool and the commands run on it."""

    def __init__(self, url: str, options: dict[str, Any], tmp: Path, raw: Any):
        self.url = url
        self.options = options
        self.tmp = tmp
        self.raw = raw  # the server's own client, to look at objects behind our back
        self.db = tmp / "dest.duckdb"

    def config(self, **settings: Any) -> Path:
        path = self.tmp / f"config-{len(list(self.tmp.glob('config-*')))}.json"
        path.write_text(json.dumps({"spool_dir": self.url, "storage_options": self.options,
                                    "destination": f"duckdb:///{self.db}", **settings}))
        return path

    def cli(self, *args: str, input: bytes | None = None, machine: str = "a", env: dict[str, str] | None = None,
            config: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {"XDG_CACHE_HOME": str(self.tmp / f"machine-{machine}"), **(env or {})}
        return run_cli(*args, "--config", str(config or self.config()), input=input, env=env, timeout=timeout)

    def keys(self, prefix: str = "") -> list[str]:
        return self.raw.keys(prefix)

    def rows(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


class S3Raw:
    def __init__(self, moto: Any, bucket: str, prefix: str):
        self.client, self.bucket, self.prefix = moto.client, bucket, prefix

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/{prefix}")
        return sorted(o["Key"][len(self.prefix) + 1:] for page in pages for o in page.get("Contents", []))


class AzRaw:
    def __init__(self, azurite: Any, container: str, prefix: str):
        self.client = azurite.service.get_container_client(container)
        self.prefix = prefix

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(b.name[len(self.prefix) + 1:] for b in self.client.list_blobs(name_starts_with=f"{self.prefix}/{prefix}"))


@pytest.fixture(params=["s3", "az"])
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> BucketCase:
    if request.param == "s3":
        moto = request.getfixturevalue("moto_s3")
        name = moto.new_bucket()
        return BucketCase(f"s3://{name}/spools/tap-x", moto.options(), tmp_path, S3Raw(moto, name, "spools/tap-x"))
    azurite = request.getfixturevalue("azurite")
    name = azurite.new_container()
    return BucketCase(f"az://{name}/spools/tap-x", azurite.options(), tmp_path, AzRaw(azurite, name, "spools/tap-x"))


def orders(start: int, n: int, *, state_every: int = 0, bad: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [schema_msg("orders", {"id": {"type": "integer"}, "amount": {"type": ["number", "null"]},
                                                       "note": {"type": ["string", "null"]}}, ["id"])]
    for i in range(start, start + n):
        amount: Any = "not a number" if i in bad else AMOUNTS[i % len(AMOUNTS)]
        out.append(record_msg("orders", {"id": i, "amount": amount, "note": f"order {i}"}))
        if state_every and (i - start + 1) % state_every == 0:
            out.append(state_msg({"orders": i}))
    out.append(state_msg({"orders": start + n - 1}))
    return out


def exact_lines(messages: list[dict[str, Any]]) -> bytes:
    """Singer lines with each amount as the JSON number the tap sends (exact digits)."""
    out = []
    for m in messages:
        text = json.dumps(m)
        if m.get("type") == "RECORD" and m["record"]["amount"] in AMOUNTS:
            text = text.replace(json.dumps(m["record"]["amount"]), m["record"]["amount"])
        out.append(text.encode() + b"\n")
    return b"".join(out)


def states(stdout: bytes) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_ingest_then_load_anywhere_keeps_every_record_and_digit(bucket: BucketCase) -> None:
    r = bucket.cli("ingest", input=exact_lines(orders(0, 300, state_every=100)),
                   env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "100"})
    assert r.returncode == 0, r.stderr
    assert states(r.stdout)[-1] == {"orders": 299}
    keys = bucket.keys()
    assert [k for k in keys if k.startswith("manifest/")][0] == "manifest/000000000000.jsonl"
    assert len([k for k in keys if k.startswith("streams/") and k.endswith(".parquet")]) == 3
    assert any(k.startswith("runs/ingest-") for k in keys)  # the run's summary outlives the pod

    # Another machine, which never saw the ingest, loads from the bucket.
    r = bucket.cli("load", machine="b")
    assert r.returncode == 0, r.stderr
    assert f"loading spool {bucket.url} into".encode() in r.stderr  # the bucket, not the replica's path
    got = bucket.rows("SELECT id, CAST(amount AS VARCHAR), note FROM orders ORDER BY id")
    assert [g[0] for g in got] == list(range(300))
    for i, amount, note in got:
        assert Decimal(amount) == Decimal(AMOUNTS[i % len(AMOUNTS)]) and note == f"order {i}"

    # Loading again from a third machine loads nothing twice (the destination's ledger, I4).
    r = bucket.cli("load", "--resume", machine="c")
    assert r.returncode == 0, r.stderr
    assert bucket.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(300, 300)]


def test_every_reading_command_works_on_a_bucket_spool(bucket: BucketCase) -> None:
    assert bucket.cli("ingest", input=exact_lines(orders(0, 50, bad=(7,)))).returncode == 0
    r = bucket.cli("sql", "SELECT count(*) AS n FROM orders", "--format", "csv", machine="b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["n", "49"]
    r = bucket.cli("status", "--json", machine="b")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["spool"] == bucket.url  # the bucket, not this machine's replica of it
    # Its size is the bucket's (the replica fetched no segment for status), and a bucket has no free space to report.
    assert status["free_bytes"] is None and status["spool_total_bytes"] > sum(s["spool_bytes"] for s in status["streams"]) > 0
    text = bucket.cli("status", machine="b").stdout.decode()
    assert f"spool {bucket.url} " in text and " in the bucket" in text
    stream = status["streams"][0]
    assert stream["stream"] == "orders" and stream["rows"] == 49 and stream["rejects"] == 1
    r = bucket.cli("rejects", "--format", "json", machine="b")
    assert r.returncode == 0, r.stderr
    (reject,) = [json.loads(line) for line in r.stdout.splitlines()]  # JSON lines
    assert json.loads(reject["raw"])["record"]["id"] == 7  # the input line, byte for byte, from the bucket
    r = bucket.cli("verify", "--no-destination", machine="b")
    assert r.returncode == 0, r.stderr + r.stdout
    r = bucket.cli("inspect", "--offline", "--db", str(bucket.tmp / "look.duckdb"), machine="b")
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(bucket.tmp / "look.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (49,)
    con.close()


def test_prune_deletes_loaded_segments_from_the_bucket_and_records_it(bucket: BucketCase) -> None:
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "10"}
    assert bucket.cli("ingest", input=exact_lines(orders(0, 30)), env=env).returncode == 0
    assert bucket.cli("load", machine="b").returncode == 0
    assert bucket.cli("ingest", input=exact_lines(orders(30, 10)), env=env).returncode == 0  # pending: must stay
    segments = [k for k in bucket.keys("streams/")]
    assert len(segments) == 4
    r = bucket.cli("prune", machine="b")
    assert r.returncode == 0, r.stderr
    left = bucket.keys("streams/")
    assert len(left) == 1 and left[0] == sorted(segments)[-1]
    # Everyone sees the prune: the loader loads the pending segment and nothing else.
    r = bucket.cli("load", machine="c")
    assert r.returncode == 0, r.stderr
    assert bucket.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(40, 40)]
    r = bucket.cli("status", "--json", machine="d")
    stream = json.loads(r.stdout)["streams"][0]
    assert (stream["segments"], stream["loaded_rows"], stream["pending_rows"]) == (4, 40, 0)
    r = bucket.cli("verify", machine="d")  # fetches the live segment only: the manifest says the rest are pruned
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list((bucket.tmp / "machine-d").glob("spool-target/replicas/*/read/streams/*/*.parquet"))) == 1


def test_a_second_ingester_stops_at_once_while_the_first_holds_the_lease(bucket: BucketCase) -> None:
    config = bucket.config()
    first = subprocess.Popen([sys.executable, "-m", "spool_target", "ingest", "--config", str(config)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=cli_env({"XDG_CACHE_HOME": str(bucket.tmp / "machine-a")}))
    assert first.stdin is not None
    first.stdin.write(exact_lines(orders(0, 5)))
    first.stdin.flush()
    try:
        for _ in range(200):  # until the first holds the lease
            if "_lease.json" in bucket.keys("_"):
                break
            time.sleep(0.05)
        r = bucket.cli("ingest", input=exact_lines(orders(100, 5)), machine="b", config=config)
        assert r.returncode == 5, r.stderr
        assert b"another ingester holds this spool" in r.stderr
        assert states(r.stdout) == []
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert states(out)[-1] == {"orders": 4}
    assert bucket.cli("load", machine="c").returncode == 0
    assert bucket.rows("SELECT min(id), max(id), count(*) FROM orders") == [(0, 4, 5)]


@pytest.mark.parametrize("point", ["ingest:state-journaled", "publish:segments-uploaded", "ingest:published"])
def test_sigkill_while_publishing_loses_nothing_acknowledged(bucket: BucketCase, point: str) -> None:
    """Killed before the batch is stored: no STATE went out for it, the next run (on a new
    machine: the pod is gone) deletes the orphan upload and the tap's resend lands once."""
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "10", "SPOOL_TARGET_TEST_CRASH_AT": f"{point}:3",
           "SPOOL_TARGET_TEST_LEASE_SECONDS": "1"}  # the dead run's lease lapses in a second, not a minute
    r = bucket.cli("ingest", input=exact_lines(orders(0, 50, state_every=10)), env=env)
    assert r.returncode == -9, r.stderr
    acked = states(r.stdout)
    assert len(acked) <= 2  # the third STATE never went out (the first two may not have yet either)
    resume = acked[-1]["orders"] + 1 if acked else 0
    r = bucket.cli("load", machine="b")
    assert r.returncode in (0, 5), r.stderr  # 5: killed before its first batch, there is no spool yet
    if resume:
        loaded = [row[0] for row in bucket.rows("SELECT id FROM orders ORDER BY id")]
        assert loaded[:resume] == list(range(resume))  # I1: everything acknowledged is in the bucket
    # The tap resumes from its last STATE, in a new pod, once the dead run's lease has lapsed
    # (1 s plus 1 s allowed for clock skew here).
    time.sleep(2.5)
    r = bucket.cli("ingest", input=exact_lines(orders(resume, 50 - resume)), machine="c",
                   env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "10", "SPOOL_TARGET_TEST_LEASE_SECONDS": "1"})
    assert r.returncode == 0, r.stderr
    live = {k for k in bucket.keys("streams/")}
    r = bucket.cli("verify", "--no-destination", machine="d")
    assert r.returncode == 0, r.stdout + r.stderr
    assert bucket.cli("load", machine="b").returncode == 0
    # Records stored but not acknowledged are sent again by the tap: at least once, as on disk.
    assert bucket.rows("SELECT count(DISTINCT id), min(id), max(id) FROM orders") == [(50, 0, 49)]
    assert live  # every object left is named by the manifest (verify above found no orphan)


def test_an_unreachable_store_is_exit_75_and_no_state_goes_out(tmp_path: Path) -> None:
    case = BucketCase("s3://nowhere/p", {"endpoint": f"http://127.0.0.1:{dead_port()}", "access_key_id": "k",
                                         "secret_access_key": "s3cr3t-value", "region": "us-east-1",
                                         "max_retries": 1, "retry_timeout_seconds": 2}, tmp_path, None)
    r = case.cli("ingest", input=exact_lines(orders(0, 5)))
    assert r.returncode == 75, r.stderr
    assert r.stdout == b""
    assert b"s3://nowhere/p" in r.stderr and b"s3cr3t-value" not in r.stderr
    r = case.cli("load")
    assert r.returncode == 75, r.stderr


def test_wrong_credentials_are_a_permanent_error_that_says_so(moto_s3_auth: str, tmp_path: Path) -> None:
    case = BucketCase("s3://some-bucket/p", {"endpoint": moto_s3_auth, "access_key_id": "AKIAWRONG",
                                             "secret_access_key": "wrong-secret-xyz", "region": "us-east-1"}, tmp_path, None)
    r = case.cli("ingest", input=exact_lines(orders(0, 5)))
    assert r.returncode == 5, r.stderr  # permanent: running again does not help (README, Exit codes)
    assert r.stdout == b"" and b"wrong-secret-xyz" not in r.stderr
    assert b"credential" in r.stderr.lower() or b"denied" in r.stderr.lower()


def test_load_follow_picks_up_batches_as_ingest_publishes_them(bucket: BucketCase) -> None:
    assert bucket.cli("ingest", input=exact_lines(orders(0, 20))).returncode == 0
    config = bucket.config()

    follower = subprocess.Popen([sys.executable, "-m", "spool_target", "load", "--follow", "--until-idle", "6", "--config",
                                 str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=cli_env({"XDG_CACHE_HOME": str(bucket.tmp / "machine-b")}))
    try:
        r = bucket.cli("ingest", input=exact_lines(orders(20, 20)), config=config)
        assert r.returncode == 0, r.stderr
    finally:
        out, err = follower.communicate(timeout=90)
    assert follower.returncode == 0, err
    assert bucket.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(40, 40)]


def test_ingest_load_in_background_drains_a_bucket_spool(bucket: BucketCase) -> None:
    r = bucket.cli("ingest", "--load-in-background", input=exact_lines(orders(0, 30, state_every=10)),
                   env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "10"})
    assert r.returncode == 0, r.stderr
    assert bucket.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(30, 30)]


def replay_fix(bucket: BucketCase) -> Path:
    """A corrected schema: amount may also be a string (the tap's bad values are words)."""
    fix = bucket.tmp / "fix.json"
    fix.write_text(json.dumps({"type": "SCHEMA", "stream": "orders", "key_properties": ["id"], "schema": {"properties": {
        "id": {"type": "integer"}, "amount": {"type": ["number", "string", "null"]}, "note": {"type": ["string", "null"]}}}}))
    return fix


def open_rejects(bucket: BucketCase, machine: str, *args: str) -> list[int]:
    r = bucket.cli("rejects", "--format", "json", *args, machine=machine)
    assert r.returncode == 0, r.stderr
    return sorted(json.loads(json.loads(line)["raw"])["record"]["id"] for line in r.stdout.splitlines())


def test_rejects_replay_on_a_bucket_spool_commits_the_fixed_records_for_every_machine(bucket: BucketCase) -> None:
    assert bucket.cli("ingest", input=exact_lines(orders(0, 10, bad=(3, 7)))).returncode == 0
    assert open_rejects(bucket, "b") == [3, 7]
    r = bucket.cli("rejects", "replay", "--stream", "orders", "--schema", str(replay_fix(bucket)), machine="b")
    assert r.returncode == 0, r.stderr
    assert b"stream 'orders': 2 of 2 replayed" in r.stdout
    # Another machine sees the outcome: no open rejects, both listed as replayed, the rows loadable.
    assert open_rejects(bucket, "c") == [] and open_rejects(bucket, "c", "--all") == [3, 7]
    assert bucket.cli("load", machine="c").returncode == 0
    assert bucket.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(10, 10)]
    assert bucket.rows("SELECT note FROM orders WHERE id = 7") == [("order 7",)]


@pytest.mark.parametrize("point", ["publish:segments-uploaded", "ingest:published"])
def test_a_replay_killed_while_publishing_loses_nothing_and_commits_nothing_twice(bucket: BucketCase, point: str) -> None:
    """The bucket gets a replay's plan before its segments and its journal after them, so the next
    replay, on another machine, settles what the killed one committed and replays the rest."""
    assert bucket.cli("ingest", input=exact_lines(orders(0, 10, bad=(1, 2, 3, 4, 5)))).returncode == 0
    replay = ("rejects", "replay", "--stream", "orders", "--schema", str(replay_fix(bucket)))
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "2", "SPOOL_TARGET_TEST_LEASE_SECONDS": "1"}
    killed = bucket.cli(*replay, machine="b", env={**env, "SPOOL_TARGET_TEST_CRASH_AT": f"{point}:2"})
    assert killed.returncode == -9, killed.stderr
    time.sleep(2.5)  # the killed replay's lease lapses
    done = bucket.cli(*replay, machine="c", env=env)
    assert done.returncode == 0, done.stderr
    assert open_rejects(bucket, "d") == [] and open_rejects(bucket, "d", "--all") == [1, 2, 3, 4, 5]
    assert bucket.cli("load", machine="d").returncode == 0
    assert bucket.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(10, 10)]


def test_a_missing_spool_in_a_bucket_says_to_ingest_first(bucket: BucketCase) -> None:
    r = bucket.cli("load")
    assert r.returncode == 5, r.stderr
    assert b"no spool at" in r.stderr and bucket.url.encode() in r.stderr


def test_an_object_storage_load_reads_the_segments_where_ingest_put_them(bucket: BucketCase) -> None:
    """load_strategy object-storage on a bucket spool: plan --offline names the bucket's
    objects in COPY_DATA's file_uri_list, never the local replica's files."""
    assert bucket.cli("ingest", input=exact_lines(orders(0, 5))).returncode == 0
    config = bucket.config(load_strategy="object-storage", cloud_credential="SPOOL_CRED",
                           destination="oracle://app@db.example.com:1521/FREEPDB1")
    r = bucket.cli("plan", "--offline", config=config, machine="b")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert f"-- spool-target plan for spool {bucket.url}" in text
    assert "DBMS_CLOUD.COPY_DATA" in text
    (segment,) = bucket.keys("streams/")
    assert segment in text
    assert "machine-b" not in text.split("COPY_DATA", 1)[1]


def readme_deploying_blocks() -> list[str]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n### Deploying: ingest in a pod, load from anywhere\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the Deploying section should hold the Meltano fragment and the Kubernetes YAML"
    return blocks


def test_readme_kubernetes_example_is_valid_and_its_loader_runs_as_written(moto_s3: Any, tmp_path: Path) -> None:
    """The README's Kubernetes YAML: the structure Kubernetes requires of a CronJob and a
    Deployment, and the loader container's command run with its own environment against
    moto (the bucket is the reader's own, so a fresh one stands in for acme-pipelines;
    DuckDB stands in for the Oracle destination; no Kubernetes runs here)."""
    import yaml

    fragment, manifests = readme_deploying_blocks()
    spool_url = yaml.safe_load(fragment)["config"]["spool_dir"]
    cron, deployment = list(yaml.safe_load_all(manifests))
    assert (cron["apiVersion"], cron["kind"]) == ("batch/v1", "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")  # what Kubernetes requires of a Job's pods
    assert pod["containers"][0]["command"] == ["meltano", "run", "tap-github", "target-spool"]
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    template = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (loader,) = template["spec"]["containers"]
    assert spool_url in loader["command"]

    bucket = moto_s3.new_bucket()
    swap = lambda text: text.replace("acme-pipelines", bucket)  # noqa: E731
    aws = {"AWS_ENDPOINT_URL": moto_s3.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env = {**aws, "XDG_CACHE_HOME": str(tmp_path / "pod")}
    for var in loader["env"]:
        value = var.get("value", "not-used-by-duckdb")  # secretKeyRef: the Oracle password
        env[var["name"]] = swap(str(value))
    db = tmp_path / "dest.duckdb"
    env["SPOOL_TARGET_DESTINATION"] = f"duckdb:///{db}"
    r = run_cli("ingest", "--spool", swap(spool_url), input=exact_lines(orders(0, 20)),
                env={**aws, "AWS_REGION": "eu-west-1", "XDG_CACHE_HOME": str(tmp_path / "ingest-pod")})
    assert r.returncode == 0, r.stderr
    command = [swap(part) for part in loader["command"]]
    assert command[:2] == ["spool-target", "load"]
    r = run_cli(*command[1:], "--until-idle", "3", env=env, timeout=120)  # --until-idle: so the test ends
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone() == (20, 20)
    con.close()


def test_a_throttling_store_is_retried_through_and_one_that_never_stops_is_exit_75(moto_s3: Any, tmp_path: Path) -> None:
    """S3 answering 503 SlowDown: a few are retried through with every record and STATE intact;
    endless throttling ends in exit 75 with no STATE written for what was never stored."""
    from storagekit import FaultProxy

    fast = {"max_retries": 3, "retry_timeout_seconds": 10, "init_backoff_seconds": 0.05}
    bucket = moto_s3.new_bucket()
    with FaultProxy(moto_s3.endpoint, throttle=3) as proxy:
        case = BucketCase(f"s3://{bucket}/spool", moto_s3.options(endpoint=proxy.endpoint, **fast), tmp_path,
                          S3Raw(moto_s3, bucket, "spool"))
        r = case.cli("ingest", input=exact_lines(orders(0, 30, state_every=10)), env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "10"})
        assert r.returncode == 0, r.stderr
        assert proxy.requests > 3
    assert states(r.stdout)[-1] == {"orders": 29}
    case.options = moto_s3.options()
    assert case.cli("load", machine="b").returncode == 0
    assert case.rows("SELECT count(*), count(DISTINCT id) FROM orders") == [(30, 30)]

    with FaultProxy(moto_s3.endpoint, throttle=10_000) as never:
        case = BucketCase(f"s3://{moto_s3.new_bucket()}/spool", moto_s3.options(endpoint=never.endpoint, **fast),
                          tmp_path / "never", None)
        case.tmp.mkdir()
        r = case.cli("ingest", input=exact_lines(orders(0, 30, state_every=10)))
    assert r.returncode == 75, r.stderr
    assert r.stdout == b""
    assert b"SlowDown" in r.stderr and b"after 3 retries" in r.stderr


def test_a_reader_on_the_same_machine_waits_while_a_writer_holds_the_replica(bucket: BucketCase, monkeypatch) -> None:
    """prune and replay append to the read replica's manifest before they publish; a reader's
    sync on the same machine (load --follow, status) would cut those lines, so it waits."""
    from spool_target.spool.remote import BucketSpool, replica_root
    from spool_target.storage import open_storage

    assert bucket.cli("ingest", input=exact_lines(orders(0, 5))).returncode == 0
    cache = bucket.tmp / "machine-a"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    storage = open_storage(bucket.url, bucket.options)
    spool = BucketSpool(storage, replica_root(storage.url, "", "read"))
    config = bucket.config()
    with spool.writing():
        spool.sync()
        manifest = spool.layout.manifest
        published = manifest.read_bytes()
        manifest.write_bytes(published + b'{"n":999,"kind":"pruned","path":"not/yet/published"}\n')
        reader = subprocess.Popen([sys.executable, "-m", "spool_target", "status", "--json", "--config", str(config)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env({"XDG_CACHE_HOME": str(cache)}))
        time.sleep(2)
        assert reader.poll() is None, "the reader did not wait for the writer"
        assert manifest.read_bytes().endswith(b'"not/yet/published"}\n')  # not cut under the writer
        manifest.write_bytes(published)  # the writer's own business: here, it gives up its line
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert json.loads(out)["streams"][0]["rows"] == 5


def test_a_missing_bucket_is_a_permanent_error_that_names_it(moto_s3: Any, tmp_path: Path) -> None:
    case = BucketCase("s3://no-such-bucket-here/spools/x", moto_s3.options(), tmp_path, None)
    r = case.cli("ingest", input=exact_lines(orders(0, 5)))
    assert r.returncode == 5, r.stderr
    assert r.stdout == b""  # nothing acknowledged
    assert b"no-such-bucket-here" in r.stderr and b"bucket" in r.stderr.lower()
