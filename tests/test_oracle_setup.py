"""The live Oracle suite's plumbing, checked without a server or Docker.

- ``pytest -m oracle`` selects exactly the tests that need a live server, and
  ``-m "not oracle"`` the rest (a collection, read through tests/markerkit.py);
- compose.oracle.yml, scripts/oracle_live.sh and .github/workflows/oracle.yml
  agree on services, images, ports, service names, user and password;
- scripts/oracle_wait.py against loopback stand-ins (tests/oraclekit.py) with
  the real driver;
- scripts/oracle_live.sh's control flow (wait, run, clean up, exit status)
  with a stand-in for the docker CLI, since no Docker engine runs here. What
  the real Docker and Oracle do is checked only by running the script where
  they exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from oraclekit import RefusingListener, free_port

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
COMPOSE = ROOT / "compose.oracle.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "oracle.yml"
LIVE = ROOT / "scripts" / "oracle_live.sh"
WAIT = ROOT / "scripts" / "oracle_wait.py"
DSN, USER, PASSWORD = (f"SPOOL_TARGET_TEST_ORACLE_{k}" for k in ("DSN", "USER", "PASSWORD"))
ORACLE_DESTS = {"oracle", "oracle-direct-path"}
# The default pluggable database of each image, where APP_USER is created (the images' READMEs).
PDB_OF_IMAGE = {"gvenzl/oracle-free": "FREEPDB1", "gvenzl/oracle-xe": "XEPDB1"}


def env_without_oracle(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOOL_TARGET_TEST_ORACLE_")}
    return {**env, **extra}


# ---- marker selection ------------------------------------------------------------------

def collect(tmp_path: Path, *marker: str) -> list[dict[str, Any]]:
    out = tmp_path / f"items-{len(list(tmp_path.iterdir()))}.json"
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "markerkit", "-p", "no:cacheprovider",
                        *(["-m", marker[0]] if marker else [])],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=env_without_oracle(MARKERKIT_OUT=str(out), PYTHONPATH=str(TESTS)))
    assert r.returncode in (0, 5), r.stdout + r.stderr  # 5: nothing selected
    return json.loads(out.read_text())


def live_modules() -> set[str]:
    """Test modules that skip themselves without a server: all of their tests are live."""
    return {p.name for p in TESTS.glob("test_*.py") if "ORACLE_CONFIGURED" in p.read_text() and p != Path(__file__)}


def needs_live_oracle(item: dict[str, Any], modules: set[str]) -> bool:
    return item["dest"] in ORACLE_DESTS or item["module"] in modules


@pytest.fixture(scope="module")
def every(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """All tests of the suite, as collected with no -m."""
    return collect(tmp_path_factory.mktemp("collect"))


def test_the_oracle_marker_selects_exactly_the_tests_that_need_a_live_server(every: list[dict[str, Any]], tmp_path: Path):
    modules = live_modules()
    assert "test_oracle_live.py" in modules
    live = {i["nodeid"] for i in every if needs_live_oracle(i, modules)}
    unmarked = sorted(i["nodeid"] for i in every if needs_live_oracle(i, modules) and not i["oracle"])
    stray = sorted(i["nodeid"] for i in every if i["oracle"] and not needs_live_oracle(i, modules))
    assert not unmarked, f"these need a live Oracle but lack the oracle marker: {unmarked}"
    assert not stray, f"these carry the oracle marker but need no server: {stray}"

    selected = {i["nodeid"] for i in collect(tmp_path, "oracle")}
    rest = {i["nodeid"] for i in collect(tmp_path, "not oracle")}
    assert selected == live
    assert rest == {i["nodeid"] for i in every} - live

    # What the selection must hold: the engine's e2e and crash tests on both strategies, and the live module.
    by_module: dict[str, set[str]] = {}
    for i in every:
        if i["nodeid"] in live:
            by_module.setdefault(i["module"], set()).add(i["dest"])
    assert by_module["test_load_e2e.py"] == ORACLE_DESTS
    assert by_module["test_load_faults.py"] == ORACLE_DESTS
    assert "test_oracle_live.py" in by_module


def test_every_test_on_a_destination_runs_on_duckdb_and_both_oracle_strategies(every: list[dict[str, Any]]):
    dests: dict[str, set[str]] = {}
    for i in every:
        if i["dest"] is not None:
            dests.setdefault(i["nodeid"].split("[")[0], set()).add(i["dest"])
    assert dests
    # duckdb-s3 (the spool in a bucket) is extra, in the modules that ask for it (conftest.py).
    odd = {test: sorted(d) for test, d in dests.items() if d - {"duckdb-s3"} != {"duckdb"} | ORACLE_DESTS}
    assert not odd, odd
    on_bucket = {test.split("::")[0] for test, d in dests.items() if "duckdb-s3" in d}
    assert on_bucket == {"tests/test_load_e2e.py", "tests/test_load_faults.py"}


# ---- compose file, script and workflow agree -------------------------------------------

def compose_services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def dry_run(*args: str) -> dict[str, str]:
    r = subprocess.run(["bash", str(LIVE), "--dry-run", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines())


def image_repo(image: str) -> str:
    return image.rsplit(":", 1)[0]


def test_the_compose_file_publishes_each_database_on_loopback_with_a_test_user_and_a_healthcheck():
    services = compose_services()
    assert set(services) == {"oracle-free", "oracle-xe"}
    host_ports = []
    for name, service in services.items():
        repo, tag = service["image"].rsplit(":", 1)
        assert repo in PDB_OF_IMAGE and tag != "latest", service["image"]
        for published in service["ports"]:
            host, host_port, container_port = published.split(":")
            assert (host, container_port) == ("127.0.0.1", "1521"), f"{name} publishes {published}"
            host_ports.append(host_port)
        assert set(service["environment"]) >= {"ORACLE_PASSWORD", "APP_USER", "APP_USER_PASSWORD"}
        assert service["healthcheck"]["test"] == ["CMD", "healthcheck.sh"]
    assert len(set(host_ports)) == len(host_ports) == 2  # both can run at once


@pytest.mark.parametrize("db, repo, tag", [("free", "gvenzl/oracle-free", "23"), ("xe", "gvenzl/oracle-xe", "21")])
def test_the_script_uses_the_compose_service_port_user_and_password(db: str, repo: str, tag: str):
    plan = dry_run("--db", db)
    service = compose_services()[plan["service"]]
    assert image_repo(service["image"]) == repo and service["image"].split(":")[1].startswith(tag)
    host_port, pdb = plan[DSN].removeprefix("127.0.0.1:").split("/")
    assert f"127.0.0.1:{host_port}:1521" in service["ports"]
    assert pdb == PDB_OF_IMAGE[repo]
    assert plan[USER] == service["environment"]["APP_USER"]
    assert plan[PASSWORD] == service["environment"]["APP_USER_PASSWORD"]
    assert plan["start"] == f"docker compose -f {COMPOSE} up -d {plan['service']}"
    assert plan["remove"] == f"docker compose -f {COMPOSE} rm -s -f -v {plan['service']}"
    assert plan["wait"].endswith(f"{WAIT} --timeout 300")
    assert plan["run"].endswith("-m pytest -m oracle -rs")


def test_the_workflow_tests_the_compose_images_with_the_same_user_and_service_names():
    services = compose_services()
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["live"]
    matrix = job["strategy"]["matrix"]["include"]
    assert sorted(m["image"] for m in matrix) == sorted(s["image"] for s in services.values())
    assert all(m["pdb"] == PDB_OF_IMAGE[image_repo(m["image"])] for m in matrix)
    container = job["services"]["oracle"]
    assert container["image"] == "${{ matrix.image }}" and container["ports"] == ["1521:1521"]
    assert "--health-cmd healthcheck.sh" in container["options"]
    for service in services.values():
        assert container["env"]["APP_USER"] == job["env"][USER] == service["environment"]["APP_USER"]
        assert container["env"]["APP_USER_PASSWORD"] == job["env"][PASSWORD] == service["environment"]["APP_USER_PASSWORD"]
    assert job["env"][DSN] == "127.0.0.1:1521/${{ matrix.pdb }}"
    runs = [step.get("run", "") for step in job["steps"]]
    install = runs.index("python -m pip install -e '.[test]'")
    wait = runs.index("python scripts/oracle_wait.py --timeout 300")
    tests = runs.index("python -m pytest -m oracle -rs")
    assert install < wait < tests


def test_the_readme_gives_the_one_command_and_names_files_that_exist():
    section = (ROOT / "README.md").read_text().split("### Running the Oracle tests", 1)[1].split("\n## ", 1)[0]
    assert "scripts/oracle_live.sh" in section and "--db xe" in section
    for path in ("compose.oracle.yml", ".github/workflows/oracle.yml", "scripts/oracle_live.sh",
                 "scripts/oracle_wait.py", "scripts/bench_oracle.py"):
        assert path in section and (ROOT / path).exists(), path
    assert "not measured" in section  # the Oracle throughput is still to be measured


# ---- scripts/oracle_wait.py, real driver, loopback --------------------------------------

def run_wait(dsn: str, *args: str, password: str = "Wait-pw-4711") -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    r = subprocess.run([sys.executable, str(WAIT), "--timeout", "2", "--interval", "0.3", *args], capture_output=True,
                       text=True, timeout=60, env=env_without_oracle(**{DSN: dsn, USER: "spool", PASSWORD: password}))
    return r, time.monotonic() - start


def test_wait_gives_up_on_a_closed_port_after_its_timeout_and_says_what_to_check():
    r, elapsed = run_wait(f"127.0.0.1:{free_port()}/FREEPDB1")
    assert r.returncode == 1 and 2 <= elapsed < 30
    assert "could not log in to spool@127.0.0.1:" in r.stderr and "within 2 s" in r.stderr
    assert "DPY-6005" in r.stderr and "Connection refused" in r.stderr
    assert "docker logs" in r.stderr
    assert r.stderr.count("not ready yet") == 1  # a repeated error is reported once
    assert "Wait-pw-4711" not in r.stdout + r.stderr


def test_wait_keeps_trying_while_the_listener_does_not_know_the_service_yet():
    with RefusingListener() as listener:  # what a starting database's listener answers
        r, _ = run_wait(f"127.0.0.1:{listener.port}/FREEPDB1")
        assert len(listener.accepted) >= 2  # it tried again
    assert r.returncode == 1 and "ORA-12514" in r.stderr


def test_wait_names_the_variables_that_are_not_set():
    r = subprocess.run([sys.executable, str(WAIT)], capture_output=True, text=True, timeout=60,
                       env=env_without_oracle(**{DSN: "127.0.0.1:1521/FREEPDB1"}))
    assert r.returncode == 2
    assert f"(unset: {USER}, {PASSWORD})" in r.stderr and "scripts/oracle_live.sh --" in r.stderr


# ---- scripts/oracle_live.sh with a stand-in for the docker CLI --------------------------

FAKE_DOCKER = '''#!{python}
"""Stand-in for the docker CLI: logs each call; `inspect` answers the next line of ./states."""
import os, sys
from pathlib import Path
d = Path(os.environ["FAKE_DOCKER_DIR"])
args = sys.argv[1:]
with open(d / "calls", "a") as f:
    f.write(" ".join(args) + "\\n")
if args[:1] == ["inspect"]:
    states = (d / "states").read_text().splitlines()
    n = len((d / "inspected").read_text()) if (d / "inspected").exists() else 0
    (d / "inspected").write_text("x" * (n + 1))
    print(states[min(n, len(states) - 1)])
elif args[:1] == ["compose"]:
    verb = args[3] if args[1] == "-f" else args[1]
    if verb == "ps":
        print("c0ffee")
    elif verb == "logs":
        print("fake-log: CONTAINER: starting up...")
'''

FAKE_PYTHON = '''#!/bin/sh
echo "$@" >> "$FAKE_DOCKER_DIR/python-calls"
exit "${FAKE_WAIT_STATUS:-0}"
'''


@pytest.fixture
def fake_docker(tmp_path: Path) -> Path:
    d = tmp_path / "docker"
    d.mkdir()
    (d / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (d / "python").write_text(FAKE_PYTHON)  # stands in for the interpreter that runs oracle_wait.py
    (d / "docker").chmod(0o755)
    (d / "python").chmod(0o755)
    return d


def run_live(d: Path, states: list[str], *args: str, wait_status: int = 0) -> subprocess.CompletedProcess:
    (d / "states").write_text("\n".join(states) + "\n")
    report = d / "report"
    command = ["bash", "-c", f'printf "%s\\n" "${DSN}" "${USER}" "$PWD" > {report}; exit 7']
    env = env_without_oracle(FAKE_DOCKER_DIR=str(d), PYTHON=str(d / "python"), FAKE_WAIT_STATUS=str(wait_status),
                             PATH=f"{d}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", str(LIVE), *args, "--", *command], capture_output=True, text=True, timeout=120, env=env)


def calls(d: Path) -> list[str]:
    return (d / "calls").read_text().splitlines()


def test_live_waits_for_healthy_runs_the_command_with_the_env_then_removes_the_container(fake_docker: Path):
    r = run_live(fake_docker, ["running starting", "running healthy"], "--db", "xe")
    assert r.returncode == 7, r.stderr  # the command's status
    assert (fake_docker / "report").read_text().splitlines() == ["127.0.0.1:1522/XEPDB1", "spool", str(ROOT)]
    assert (fake_docker / "python-calls").read_text().split() == [str(WAIT), "--timeout", "300"]
    assert calls(fake_docker)[-1] == f"compose -f {COMPOSE} rm -s -f -v oracle-xe"
    assert f"compose -f {COMPOSE} up -d oracle-xe" in calls(fake_docker)
    assert len([c for c in calls(fake_docker) if c.startswith("inspect")]) == 2


def test_live_keep_leaves_the_container_and_says_how_to_remove_it(fake_docker: Path):
    r = run_live(fake_docker, ["running healthy"], "--keep")
    assert r.returncode == 7, r.stderr
    assert not [c for c in calls(fake_docker) if " rm " in c]
    assert f"docker compose -f {COMPOSE} rm -s -f -v oracle-free" in r.stderr


@pytest.mark.parametrize("state", ["running unhealthy", "exited none"])
def test_live_stops_with_4_and_the_log_when_the_database_does_not_come_up(fake_docker: Path, state: str):
    r = run_live(fake_docker, ["running starting", state])
    assert r.returncode == 4
    assert f"oracle-free is '{state}'" in r.stderr and "fake-log: CONTAINER: starting up..." in r.stderr
    assert not (fake_docker / "report").exists()  # the command never ran
    assert calls(fake_docker)[-1] == f"compose -f {COMPOSE} rm -s -f -v oracle-free"


def test_live_stops_with_4_when_the_user_cannot_log_in(fake_docker: Path):
    r = run_live(fake_docker, ["running healthy"], wait_status=1)
    assert r.returncode == 4 and "spool cannot log in to 127.0.0.1:1521/FREEPDB1" in r.stderr
    assert not (fake_docker / "report").exists()
    assert calls(fake_docker)[-1] == f"compose -f {COMPOSE} rm -s -f -v oracle-free"


def test_live_says_so_when_docker_is_not_there(tmp_path: Path):
    """The real docker CLI (if installed) against a socket that does not exist."""
    r = subprocess.run(["bash", str(LIVE)], capture_output=True, text=True, timeout=60,
                       env=env_without_oracle(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock"))
    assert r.returncode == 3
    assert "Docker is not installed" in r.stderr or "cannot reach the Docker daemon" in r.stderr
