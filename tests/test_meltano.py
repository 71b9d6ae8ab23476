"""The README's Meltano snippet and `target-spool --about`, checked against Meltano itself.

The setting kinds are checked fast against Meltano's list (below); the end-to-end
test then runs real Meltano from PyPI with the snippet exactly as the README
writes it, and also confirms that list against Meltano's own enum.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import cli_env

ROOT = Path(__file__).resolve().parent.parent

# meltano.core.setting_definition.SettingKind (Meltano 4.4.1). There is no
# `number`: Meltano stops with "'number' is not a valid SettingKind".
# test_readme_meltano_snippet_runs_in_real_meltano checks this copy against the enum.
MELTANO_SETTING_KINDS = frozenset(
    {"string", "integer", "boolean", "decimal", "date_iso8601", "email", "password",
     "oauth", "options", "file", "array", "object", "hidden"}
)

# The one part of the snippet a reader replaces (the README says so next to it).
CHECKOUT_PLACEHOLDER = "/path/to/spool-target"


def readme_meltano_snippet() -> str:
    section = (ROOT / "README.md").read_text().split("\n### Meltano\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the README's Meltano section should hold exactly one yaml block"
    return blocks[0]


def snippet_kinds(snippet: str) -> list[str]:
    return re.findall(r"^\s*kind:\s*(\S+)\s*$", snippet, re.M)


def about_kinds(target_spool: list[str]) -> dict[str, str]:
    result = subprocess.run([*target_spool, "--about", "--format", "json"], capture_output=True, env=cli_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return {s["name"]: s["kind"] for s in json.loads(result.stdout)["settings"]}


def test_readme_snippet_and_about_use_only_meltano_setting_kinds() -> None:
    snippet = readme_meltano_snippet()
    kinds = snippet_kinds(snippet)
    assert kinds, "the snippet declares no setting kinds: this test would check nothing"
    assert set(kinds) <= MELTANO_SETTING_KINDS, f"README snippet kinds not known to Meltano: {set(kinds) - MELTANO_SETTING_KINDS}"
    about = about_kinds([sys.executable, "-c", "from spool_target.cli import meltano_main; meltano_main()"])
    unknown = {name: kind for name, kind in about.items() if kind not in MELTANO_SETTING_KINDS}
    assert not unknown, f"`target-spool --about` gives kinds Meltano rejects: {unknown}"
    # The snippet and --about agree on every setting the snippet declares.
    declared = dict(re.findall(r"^\s*- name: (\w+)\n\s*kind: (\S+)$", snippet, re.M))
    assert declared and all(about[name] == kind for name, kind in declared.items()), (declared, about)
