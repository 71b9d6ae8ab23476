"""Docs that cannot drift: every command has help, the README's tables match the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer

from conftest import run_cli
from spool_target.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def all_commands() -> list[list[str]]:
    from spool_target.cli import app

    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(cmd, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            found.append(path + [name])
            walk(sub, path + [name])

    walk(root, [])
    return found


def test_every_command_has_help_that_explains_it() -> None:
    commands = all_commands()
    assert ["ingest"] in commands and ["load"] in commands
    for path in commands:
        result = run_cli(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        text = result.stdout.decode()
        summary = text.split("Options:")[0]
        assert len(summary.split()) > 8, f"`spool-target {' '.join(path)} --help` explains too little"


def test_every_command_is_in_the_readme() -> None:
    for path in all_commands():
        assert f"spool-target {' '.join(path)}" in README, f"README never shows `spool-target {' '.join(path)}`"


def test_readme_settings_table_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"])
    assert result.returncode == 0, "README settings table is stale: run `python scripts/update_readme.py`"


def test_readme_exit_codes_match_the_code() -> None:
    section = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert documented == {int(c) for c in ExitCode}


def test_readme_quick_start_gives_two_commands_and_the_ci_runs_the_same_tests() -> None:
    quick = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in quick.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "scripts/demo.py" in commands[0] and (ROOT / "scripts" / "demo.py").exists()
    test_command = commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci


def test_readme_raw_duckdb_queries_run_as_written(tmp_path) -> None:
    """The spool-format section's queries, run by DuckDB from the folder that holds spool/."""
    import duckdb

    from conftest import DATA

    result = run_cli("ingest", "--spool", "spool", "--input", str(DATA / "typing_rules.singer"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    section = README.split("### Looking inside with DuckDB", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```sql\n(.*?)```", section, re.S)[0]
    statements = [q.strip() for q in block.split(";") if q.strip()]
    assert len(statements) == 4
    con = duckdb.connect()
    import os

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        results = []
        for statement in statements:
            code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
            if code.lstrip().upper().startswith("SET"):
                con.execute(code)
            else:
                results.append(con.sql(code).fetchall())
        committed, records, rejected = results
    finally:
        os.chdir(old)
    assert committed == [("t", 1, 3)]
    assert len(records) == 3
    assert sum(r[2] for r in rejected) == 8 and {r[0] for r in rejected} == {"t"}


def test_readme_demo_runs(tmp_path) -> None:
    """The quick start's demo, smaller: ingest, load into the embedded DuckDB, status, a query."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--records", "3000", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"users: 3,000 rows, 3,000 distinct ids" in result.stdout
    assert b"demo done" in result.stdout
