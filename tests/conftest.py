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


def manifest_entries(spool: Path) -> list[dict[str, Any]]:
    text = (spool / "manifest.jsonl").read_bytes().split(b"\n")
    return [json.loads(line) for line in text[:-1]]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture(params=__import__("destinations").DEST_PARAMS)
def dest(request: pytest.FixtureRequest, tmp_path: Path):
    """The destination a test loads into: DuckDB here, a live Oracle where one is configured (tests/destinations.py)."""
    from destinations import make_destination

    harness = make_destination(request.param, tmp_path)
    try:
        yield harness
    finally:
        harness.close()
