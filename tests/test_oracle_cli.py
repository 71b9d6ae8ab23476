"""The Oracle path through the real CLI, with no server: outages, deadlines, secrets, plans.

Every `load` here runs as a user would run it (a subprocess of `python -m
spool_target`) against loopback stand-ins (tests/oraclekit.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest

from conftest import DATA, run_cli
from loadkit import ingest, users_stream
from oraclekit import RefusingListener, SilentServer, free_port

PASSWORD = "Zq7-unMistakable-Pa55word"  # grep for this everywhere
ENV = {"SPOOL_TARGET_ORACLE_PASSWORD": PASSWORD}
GOLDEN = DATA / "oracle_plan_offline.sql"


def tree_digest(root: Path, *, skip: tuple[str, ...] = ("runs", "load.lock")) -> dict[str, str]:
    """sha256 of every file of the spool but the run files and the lock a load always writes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def assert_no_password(spool: Path, *outputs: bytes) -> None:
    for out in outputs:
        assert PASSWORD.encode() not in out
    for p in spool.rglob("*"):
        if p.is_file():
            assert PASSWORD.encode() not in p.read_bytes(), p


def log_messages(stderr: bytes) -> list[str]:
    return [json.loads(line)["message"] for line in stderr.decode().splitlines() if line.startswith("{")]


@pytest.fixture
def spooled(spool: Path) -> Path:
    ingest(spool, users_stream(rows=[{"id": i, "name": f"n{i}"} for i in range(5)]), flush_rows=2)
    return spool


@pytest.mark.parametrize("server", ["closed port", "silent listener", "service not registered"])
def test_unreachable_oracle_is_retried_with_backoff_then_exit_75_and_nothing_is_lost(spooled: Path, server: str):
    before = tree_digest(spooled)
    servers = {"silent listener": SilentServer, "service not registered": RefusingListener}
    stand_in = servers[server]() if server in servers else None
    port = stand_in.port if stand_in else free_port()
    env = {**ENV, "SPOOL_TARGET_CONNECT_TIMEOUT": "0.5", "SPOOL_TARGET_TCP_CONNECT_TIMEOUT": "0.5"}
    started = time.monotonic()
    try:
        if stand_in:
            stand_in.__enter__()
        r = run_cli("load", "--spool", str(spooled), "--destination", f"oracle://scott@127.0.0.1:{port}/FREEPDB1",
                    "--max-wait", "2", "--log-format", "json", env=env, timeout=60)
    finally:
        if stand_in:
            stand_in.__exit__(None, None, None)
    elapsed = time.monotonic() - started
    assert r.returncode == 75, r.stderr.decode()
    assert elapsed < 20, elapsed  # bounded by max_wait plus one connect_timeout, not by a hung driver
    said = log_messages(r.stderr)
    retries = [m for m in said if m.startswith("destination unavailable, retrying in ")]
    assert len(retries) >= 2 and "DPY-6005" in retries[0]
    why = {"closed port": "(cannot connect", "silent listener": "(",
           "service not registered": "(the listener does not know the service: the database may still be starting, "
                                     "or the service name is misspelt"}
    assert why[server] in retries[0]
    final = json.loads(r.stderr.decode().splitlines()[-1])
    assert final["exit_code"] == 75
    assert "up to 3 segment(s) (5 rows) are pending in the spool, nothing is lost" in final["message"]
    assert "run `spool-target load --resume` later" in final["detail"]
    assert tree_digest(spooled) == before  # manifest, segments, rejects: untouched
    run_files = list((spooled / "runs").glob("load-*.json"))
    assert [json.loads(p.read_text())["state"] for p in run_files] == ["unavailable"]
    assert_no_password(spooled, r.stdout, r.stderr)


def test_password_from_a_config_file_stays_out_of_output(spooled: Path, tmp_path: Path):
    cfg = tmp_path / "oracle.json"
    cfg.write_text(json.dumps({"host": "127.0.0.1", "port": free_port(), "service_name": "FREEPDB1",
                               "user": "scott", "password": PASSWORD, "max_wait_seconds": 0.5}))
    r = run_cli("load", "--spool", str(spooled), "--config", str(cfg), "--log-format", "text")
    assert r.returncode == 75, r.stderr.decode()
    assert b"oracle://scott@127.0.0.1:" in r.stderr
    assert_no_password(spooled, r.stdout, r.stderr)


def test_check_uses_the_same_retry_policy_and_says_what_is_missing(spooled: Path):
    url = f"oracle://scott@127.0.0.1:{free_port()}/FREEPDB1"
    r = run_cli("check", "--spool", str(spooled), "--destination", url, "--max-wait", "1", "--log-format", "json", env=ENV)
    assert r.returncode == 75, r.stderr.decode()
    assert any(m.startswith("destination unavailable, retrying in ") for m in log_messages(r.stderr))
    assert "is still unavailable after" in log_messages(r.stderr)[-1]
    assert_no_password(spooled, r.stdout, r.stderr)
    r = run_cli("check", "--spool", str(spooled), "--destination", url, "--log-format", "json")
    assert r.returncode == 2 and "no password for oracle://scott@127.0.0.1" in log_messages(r.stderr)[-1]
    assert "SPOOL_TARGET_ORACLE_PASSWORD" in r.stderr.decode()


def test_oracle_needs_a_service_and_a_user(spooled: Path):
    r = run_cli("load", "--spool", str(spooled), "--destination", "oracle://127.0.0.1:1521", env=ENV)
    assert r.returncode == 2 and b"names no service" in r.stderr
    r = run_cli("load", "--spool", str(spooled), "--destination", "oracle://127.0.0.1:1521/FREEPDB1", env=ENV)
    assert r.returncode == 2 and b"no Oracle user" in r.stderr


def _normalise(script: str, spool: Path) -> str:
    script = script.replace(str(spool), "<spool>")
    script = re.sub(r"SPOOL_STAGE_[0-9A-F]{8}_[0-9A-F]{8}", "SPOOL_STAGE_<spool>_<item>", script)
    script = re.sub(r"/(\d{9})-[0-9a-f]{8}\.parquet", r"/\1-<file>.parquet", script)
    script = re.sub(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'", "'<spool id>'", script)
    script = re.sub(r"'[0-9a-f]{64}'", "'<sha256>'", script)
    return re.sub(r"'\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}'", "'<run id>'", script)


def test_plan_offline_prints_the_whole_load_as_a_reviewable_script(spool: Path):
    """Golden: every statement of an upsert with schema evolution (a DATE widened to
    TIMESTAMP WITH TIME ZONE, an integer to NUMBER, a VARCHAR2 to CLOB), reserved
    words, a 128-byte name, an ACTIVATE_VERSION. Update with SPOOL_TARGET_UPDATE_GOLDEN=1."""
    r = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "oracle_schema_evolution.singer"), "--log-format", "json")
    assert r.returncode == 0, r.stderr.decode()
    r = run_cli("plan", "--spool", str(spool), "--offline", "--load-method", "upsert", "--quiet",
                env={"SPOOL_TARGET_TRANSACTION_ROWS": "1"})
    assert r.returncode == 0, r.stderr.decode()
    script = _normalise(r.stdout.decode(), spool)
    if os.environ.get("SPOOL_TARGET_UPDATE_GOLDEN"):
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text()
    # shape: every statement ends with ; and every PL/SQL block with / on its own line
    for chunk in script.split("\n\n"):
        code = [line for line in chunk.splitlines() if not line.startswith("--")]
        if code:
            assert code[-1] == "/" if code[0] == "BEGIN" else code[-1].endswith(";"), chunk


def test_plan_offline_direct_path_and_appends(spool: Path):
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 2}]))
    r = run_cli("plan", "--spool", str(spool), "--offline", "--quiet", env={"SPOOL_TARGET_LOAD_STRATEGY": "direct-path"})
    assert r.returncode == 0, r.stderr.decode()
    text = r.stdout.decode()
    assert "-- direct path load (Connection.direct_path_load; it commits by itself) of 2 row(s)" in text
    assert 'INSERT INTO "USERS" ("ID", "NAME",' in text and '\nSELECT s."ID", s."NAME",' in text
    assert '"SDC_EXTRA" VARCHAR2(4000 BYTE)' in text  # direct path cannot bind text into a CLOB
    r = run_cli("plan", "--spool", str(spool), "--offline", "--quiet", "--load-method", "overwrite")
    text = r.stdout.decode()
    assert text.index('DELETE FROM "USERS";') < text.index('INSERT INTO "USERS" (') < text.index("COMMIT;")
    assert "VALUES (:1, :2, FROM_TZ(:3, 'UTC'), FROM_TZ(:4, 'UTC'), :5, :6, FROM_TZ(:7, 'UTC'), :8);" in text


def test_ingest_and_plan_offline_never_import_the_driver(spool: Path, tmp_path: Path):
    """I3: a fake `oracledb` that refuses to be imported proves nothing reaches for it."""
    shim = tmp_path / "shim" / "oracledb"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('oracledb must not be imported here')\n")
    env = {"PYTHONPATH": str(shim.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    messages = users_stream(rows=[{"id": 1}])
    from conftest import singer_lines

    r = run_cli("ingest", "--spool", str(spool), "--log-format", "json", input=singer_lines(messages), env=env)
    assert r.returncode == 0, r.stderr.decode()
    r = run_cli("plan", "--spool", str(spool), "--offline", "--quiet", env=env)
    assert r.returncode == 0 and b'CREATE TABLE "USERS"' in r.stdout, r.stderr.decode()
    # ...and the shim works: a real load does import it
    r = run_cli("load", "--spool", str(spool), "--destination", "oracle://u@127.0.0.1:1/S", env={**env, **ENV})
    assert r.returncode == 1 and b"oracledb must not be imported here" in r.stderr


def test_the_oracle_benchmark_says_what_it_needs_when_no_database_is_set():
    import subprocess
    import sys

    from conftest import cli_env

    env = {k: v for k, v in cli_env().items() if not k.startswith("SPOOL_TARGET_TEST_ORACLE_")}
    r = subprocess.run([sys.executable, str(DATA.parent.parent / "scripts" / "bench_oracle.py")], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 2
    assert b"bench_oracle: no database to measure. Set SPOOL_TARGET_TEST_ORACLE_DSN" in r.stderr


# A password that JSON and repr both escape: scrubbing the encoded text would miss it.
HARD_PASSWORD = 'pa"ss\\word'
HARD_FORMS = [HARD_PASSWORD, 'pa\\"ss\\\\word', 'pa"ss\\\\word']  # as is, JSON-escaped, inside a repr


def assert_no_hard_password(spool: Path, *outputs: bytes) -> None:
    for form in HARD_FORMS:
        for out in outputs:
            assert form.encode() not in out, (form, out.decode(errors="replace")[-2000:])
        for p in spool.rglob("*"):
            if p.is_file():
                assert form.encode() not in p.read_bytes(), (form, p)


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize("where", ["url", "dsn with credentials"])
def test_a_password_with_quotes_and_backslashes_stays_out_of_every_output(spooled: Path, fmt: str, where: str):
    """I7 for a password JSON and repr would escape. "dsn with credentials" is an
    old-style `user/password@host/svc` DSN: the driver quotes it back in its error."""
    port = free_port()
    env = {"SPOOL_TARGET_ORACLE_PASSWORD": HARD_PASSWORD, "SPOOL_TARGET_CONNECT_TIMEOUT": "0.5",
           "SPOOL_TARGET_TCP_CONNECT_TIMEOUT": "0.5"}
    if where == "url":
        target = ["--destination", f"oracle://scott@127.0.0.1:{port}/FREEPDB1"]
    else:
        env |= {"SPOOL_TARGET_USER": "scott", "SPOOL_TARGET_DSN": f"scott/{HARD_PASSWORD}@127.0.0.1:{port}/FREEPDB1"}
        target = []
    common = ["--spool", str(spooled), *target, "--log-format", fmt]
    outputs: list[bytes] = []
    r = run_cli("load", *common, "--max-wait", "1", env=env, timeout=60)
    assert r.returncode in (6, 75), r.stderr.decode()  # the DSN does not parse (6); the closed port is an outage (75)
    assert b"scott" in r.stderr  # the error names the destination...
    outputs += [r.stdout, r.stderr]
    for extra in ([], ["--json"]):
        r = run_cli("status", *common, *extra, env={**env, "SPOOL_TARGET_MAX_WAIT_SECONDS": "1"}, timeout=60)
        assert r.returncode == 0 and b"scott@" in r.stdout, r.stderr.decode()  # ...and so does status
        outputs += [r.stdout, r.stderr]
    r = run_cli("check", *common, "--max-wait", "1", "--json", env=env, timeout=60)
    assert r.returncode in (6, 75), r.stderr.decode()
    outputs += [r.stdout, r.stderr]
    runs = list((spooled / "runs").glob("load-*.json"))
    assert runs and json.loads(runs[-1].read_text())["error"]  # the run file says why
    assert_no_hard_password(spooled, *outputs)  # ...without the password, in any form (I7)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_scrub_a_secret_before_encoding_it(fmt: str):
    """Every place a secret can ride in a log line: the message, a field, a nested
    field, a field that is not a string, a message that quotes its repr."""
    import io

    from spool_target.logs import Log

    out = io.StringIO()
    log = Log(fmt, stream=out)
    log.redact(HARD_PASSWORD)
    log.error(f"connect string {HARD_PASSWORD} refused", dsn=f"scott/{HARD_PASSWORD}@db")
    log.warning("nested", detail={"dsn": [HARD_PASSWORD], HARD_PASSWORD: 1}, err=ValueError(HARD_PASSWORD))
    log.info(f"settings {({'password': HARD_PASSWORD})!r}")
    text = out.getvalue()
    for form in HARD_FORMS:
        assert form not in text, (form, text)
    assert text.count("***") >= 6
    if fmt == "json":
        first = json.loads(text.splitlines()[0])
        assert first["message"] == "connect string *** refused" and first["dsn"] == "scott/***@db"
