"""Shared helpers: run the real CLI in a subprocess, build Singer input, read spools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import pytest

DATA = Path(__file__).parent / "data"

pytest_plugins = ["storagekit"]  # moto's S3 server and Azurite, for the bucket spool tests


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOOL_TARGET_") or k.startswith("SPOOL_TARGET_TEST_")}
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def run_cli(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``spool-target ARGS`` as a user would, capturing bytes."""
    if isinstance(input, str):
        input = input.encode()
    return subprocess.run(
        [sys.executable, "-m", "spool_target", *args],
        input=input,
        capture_output=True,
        env=cli_env(env),
        timeout=timeout,
        cwd=cwd,
    )


def singer_lines(messages: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def schema_msg(stream: str, properties: dict[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": keys or [],
    }


def record_msg(stream: str, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": record, **extra}


def state_msg(value: Any) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


# -- the same tests on a spool in a bucket --------------------------------------
#
# A test module that sets ``BUCKET_SPOOLS = True`` runs its ``dest`` tests once more with the
# spool in a bucket (moto's S3 server; the ``duckdb-s3`` harness in destinations.py), except
# tests marked ``local_spool`` (they damage files of a local spool on purpose). Such a test still
# names its spool by a Path, ``dest.spool``: the bucket spool's read replica, which every command
# brings up to the bucket. ``spool_args`` turns that Path into the arguments that name the bucket.
_BUCKET_SPOOLS: dict[Path, list[str]] = {}


def spool_args(spool: Path) -> list[str]:
    """``--spool`` and its value (plus the bucket's config) for the spool a test names by ``spool``."""
    return _BUCKET_SPOOLS.get(Path(spool), ["--spool", str(spool)])


def register_bucket_spool(replica: Path, args: list[str]) -> None:
    _BUCKET_SPOOLS[Path(replica)] = args


def forget_bucket_spool(replica: Path) -> None:
    _BUCKET_SPOOLS.pop(Path(replica), None)


def committed_segments(spool: Path) -> int:
    """Segments committed so far; for a bucket spool, as the bucket has them (``status`` syncs the replica)."""
    if Path(spool) in _BUCKET_SPOOLS:
        r = run_cli("status", *spool_args(spool), "--json")
        if r.returncode != 0:
            return 0  # no batch yet: no spool yet
    if not (spool / "manifest.jsonl").exists():
        return 0
    return sum(e["kind"] == "segment" for e in manifest_entries(spool))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dest" not in metafunc.fixturenames:
        return
    from destinations import BUCKET_PARAMS, DEST_PARAMS

    params = list(DEST_PARAMS)
    if getattr(metafunc.module, "BUCKET_SPOOLS", False) and metafunc.definition.get_closest_marker("local_spool") is None:
        params += BUCKET_PARAMS
    metafunc.parametrize("dest", params, indirect=True)


def manifest_entries(spool: Path) -> list[dict[str, Any]]:
    text = (spool / "manifest.jsonl").read_bytes().split(b"\n")
    return [json.loads(line) for line in text[:-1]]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def dest(request: pytest.FixtureRequest, tmp_path: Path):
    """The destination a test loads into: DuckDB here, a live Oracle where one is configured, DuckDB
    with the spool in a bucket where the module asks for it (tests/destinations.py, pytest_generate_tests)."""
    from destinations import make_destination

    moto = request.getfixturevalue("moto_s3") if request.param.endswith("-s3") else None
    harness = make_destination(request.param, tmp_path, moto)
    try:
        yield harness
    finally:
        harness.close()
