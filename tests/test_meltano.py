"""The README's Meltano snippet and `target-spool --about`, checked against Meltano itself.

The setting kinds are checked fast against Meltano's list (below); the end-to-end
test then runs real Meltano from PyPI with the snippet exactly as the README
writes it, and also confirms that list against Meltano's own enum.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import cli_env, manifest_entries
from storagekit import MotoS3

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


def readme_deploying_fragment() -> str:
    section = (ROOT / "README.md").read_text().split("\n### Deploying: ingest in a pod, load from anywhere\n", 1)[1]
    return re.findall(r"```yaml\n(.*?)```", section.split("\n## ", 1)[0], re.S)[0]


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


# --- real Meltano from PyPI ------------------------------------------------

# Meltano lives in a venv of its own (never in the project's venv, whose pins
# could clash), cached between runs. SPOOL_TARGET_TEST_MELTANO picks another release.
MELTANO_SPEC = os.environ.get("SPOOL_TARGET_TEST_MELTANO", "meltano==4.4.1")
TAP_SPEC = "tap-jsonl==0.3.1"
PYPI_PROBE = "https://pypi.org/simple/meltano/"
STREAM = "events"
JOB_STATE_ID = "dev:tap-jsonl-to-target-spool"  # <environment>:<extractor>-to-<loader>

# Nothing but PyPI may be reached: Meltano's Hub, telemetry and update check
# are turned off or pointed at a closed loopback port, so using them fails loudly.
NO_NETWORK_BUT_PYPI = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
    "MELTANO_HUB_URL": "http://127.0.0.1:9",
    "MELTANO_SNOWPLOW_COLLECTOR_ENDPOINTS": '["http://127.0.0.1:9"]',
}

# tap-jsonl's settings, from its TapJsonl.config_jsonschema (tap_jsonl/tap.py in
# the 0.3.1 wheel); capabilities as every Meltano-SDK tap has them.
TAP_DEFINITION = f"""\
name: tap-jsonl
namespace: tap_jsonl
pip_url: {TAP_SPEC}
executable: tap-jsonl
capabilities: [catalog, discover, state, about]
settings:
  - name: path
  - name: stream_name
  - name: primary_keys
    kind: array
"""

# Values chosen to break a lossy path: integers past 2**53 and at the int64
# edges, floats that do not round-trip through decimal text naively, strings
# with quotes, escapes, NUL and non-BMP text, instants with microseconds and
# offsets, dates, nested JSON. tap-jsonl infers each field's type from the
# file; `score` mixes integers and numbers, so it becomes a float column.
# Numbers span Oracle NUMBER's range (1E-130 to below 1E126), the most a
# `number` column keeps; beyond it a record is rejected (README, Types).
INPUT_FILES = {
    "a.jsonl": [
        {"id": 1, "name": 'Zoë "quoted" 🚀', "amount": 0.1, "score": 3, "big": 9007199254740993, "active": True,
         "created_at": "2024-02-29T23:59:59.123456Z", "day": "2024-03-01",
         "tags": ["a", 1, None, {"b": 2.5}], "meta": {"x": 0.30000000000000004, "n": -17}},
        {"id": 2, "name": "tab\there\nnew line \\ back\u0000slash", "amount": -1e-7, "score": 2.5,
         "big": -9223372036854775808, "active": False, "created_at": "2024-06-30T18:30:00.000001+05:30",
         "day": "1999-12-31", "tags": [], "meta": {}},
        {"id": 3, "name": "", "amount": 9.99999999999999e125, "score": None, "big": 9223372036854775807,
         "active": None, "created_at": "1970-01-01T00:00:00Z", "day": "2024-02-29", "tags": ["x"],
         "meta": {"deep": {"list": [1, 2, 3], "s": "ü"}}},
    ],
    "b.jsonl": [
        {"id": 4, "name": "only two fields"},
        {"id": 5, "name": "日本語", "amount": 1.0000000000000001e-130, "score": -4, "big": 0, "active": True,
         "created_at": "2023-12-31T23:59:59.999999-08:00", "day": "2000-01-01", "tags": [[1], {"k": None}],
         "meta": {"k": "v"}},
    ],
}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))  # Python 3.10 reads no "Z"


def canonical_json(value: object) -> str:
    """JSON text that tells 1 from 1.0 and true, so nested values compare exactly."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# README "Types": the value a column holds for what the tap sent ...
EXPECTED_FROM_SENT = {"created_at": instant, "day": date.fromisoformat, "score": float, "tags": canonical_json, "meta": canonical_json}
# ... and, for JSON-text columns, how to read the column back.
READ_BACK = {"tags": lambda text: canonical_json(json.loads(text)), "meta": lambda text: canonical_json(json.loads(text))}
FIELDS = ("name", "amount", "score", "big", "active", "created_at", "day", "tags", "meta")


def pypi_unreachable() -> str | None:
    try:
        urllib.request.urlopen(PYPI_PROBE, timeout=15).close()
    except OSError as exc:
        return f"PyPI cannot be reached ({PYPI_PROBE}: {exc}); this test installs Meltano and a tap from PyPI"
    return None


def meltano_venv_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = re.sub(r"[^A-Za-z0-9.]+", "-", MELTANO_SPEC)
    return cache / "spool-target-tests" / f"{name}-py{sys.version_info[0]}.{sys.version_info[1]}"


def build_meltano_venv() -> Path:
    """`meltano` in a cached venv made with `python -m venv` and pip from PyPI."""
    venv = meltano_venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        return _build_meltano_venv(venv)


def _build_meltano_venv(venv: Path) -> Path:
    meltano = venv / "bin" / "meltano"
    done = venv / "installed.txt"  # written last: a half-built venv is rebuilt
    if done.exists() and done.read_text() == MELTANO_SPEC and meltano.exists():
        return meltano
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", MELTANO_SPEC],
        capture_output=True, text=True, timeout=900,
    )
    assert pip.returncode == 0, f"pip could not install {MELTANO_SPEC} into {venv}:\n{pip.stderr[-4000:]}"
    done.write_text(MELTANO_SPEC)
    return meltano


@pytest.fixture(scope="module")
def meltano_bin() -> Path:
    reason = pypi_unreachable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must reach PyPI: its own setup installs from there)")
        pytest.skip(reason)
    return build_meltano_venv()


class Meltano:
    """Runs `meltano` in one project as a user would, timing each command."""

    def __init__(self, exe: Path, project: Path, env: dict[str, str]) -> None:
        self.exe, self.project, self.env = exe, project, env
        self.seconds: dict[str, float] = {}

    def __call__(self, *args: str, cwd: Path | None = None, timeout: float = 600) -> str:
        started = time.monotonic()
        result = subprocess.run([str(self.exe), *args], cwd=cwd or self.project, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        self.seconds[" ".join(args[:2])] = round(time.monotonic() - started, 1)
        assert result.returncode == 0, f"`meltano {' '.join(args)}` exited {result.returncode}:\n{result.stderr[-6000:]}"
        return result.stdout


def write_input(folder: Path) -> Path:
    folder.mkdir()
    for name, records in INPUT_FILES.items():
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return folder


def new_project(exe: Path, tmp_path: Path, input_dir: Path) -> Meltano:
    """`meltano init`, the README's snippet pasted into meltano.yml, tap-jsonl added."""
    env = cli_env({
        **NO_NETWORK_BUT_PYPI,
        "TAP_JSONL_PATH": str(input_dir / "*.jsonl"),
        "TAP_JSONL_STREAM_NAME": STREAM,
        "TAP_JSONL_PRIMARY_KEYS": '["id"]',
    })
    project = Meltano(exe, tmp_path / "project", env)
    project("init", project.project.name, "--no_usage_stats", cwd=tmp_path)
    snippet = readme_meltano_snippet()
    assert snippet.count(CHECKOUT_PLACEHOLDER) == 1
    with open(project.project / "meltano.yml", "a", encoding="utf-8") as fh:
        fh.write(snippet.replace(CHECKOUT_PLACEHOLDER, str(ROOT)))
    (tmp_path / "tap-jsonl.yml").write_text(TAP_DEFINITION)
    project("add", "--plugin-type", "extractor", "tap-jsonl", "--from-ref", str(tmp_path / "tap-jsonl.yml"), "--no-install")
    return project


def tap_output(project: Meltano) -> tuple[list[dict], object]:
    """The tap's own RECORDs and its last STATE, from `meltano invoke` (no state passed in)."""
    messages = [json.loads(line) for line in project("invoke", "tap-jsonl").splitlines() if line.startswith("{")]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert records and states, "tap-jsonl sent no RECORD or no STATE: the checks below would prove nothing"
    return records, states[-1]


def spooled_rows(spool: Path) -> list[dict]:
    rows: list[dict] = []
    for entry in manifest_entries(spool):
        if entry["kind"] == "segment":
            assert entry["stream"] == STREAM
            rows.extend(pq.read_table(spool / entry["path"]).to_pylist())
    return sorted(rows, key=lambda r: r["_sdc_sequence"])


def assert_spool_holds_the_input(spool: Path, input_dir: Path) -> None:
    rows = spooled_rows(spool)
    expected = [(input_dir / name, r) for name in sorted(INPUT_FILES) for r in INPUT_FILES[name]]
    assert [r["id"] for r in rows] == [r["id"] for _, r in expected], "records missing, duplicated or out of order"
    for row, (path, record) in zip(rows, expected):
        for field in FIELDS:
            sent, held = record.get(field), row[field]
            if sent is None:
                assert held is None, (record["id"], field, held)
                continue
            want = EXPECTED_FROM_SENT.get(field, lambda v: v)(sent)
            got = READ_BACK.get(field, lambda v: v)(held)
            assert got == want and type(got) is type(want), (record["id"], field, sent, held)
        # tap-jsonl's own columns: which file, which stream, the file's mtime to the second.
        mtime = datetime.fromtimestamp(int(path.stat().st_mtime), timezone.utc)
        assert (row["_sdc_filename"], row["_sdc_stream"], row["_sdc_last_modified"]) == (str(path), STREAM, mtime)
    assert not list((spool / "rejects").glob("*/*.jsonl")), "a record was rejected"


def assert_meltano_stored(project: Meltano, state: object) -> None:
    assert project("state", "list").split() == [JOB_STATE_ID]
    stored = json.loads(project("state", "get", JOB_STATE_ID))
    assert stored == {"singer_state": state}


@pytest.mark.timeout(1200)
def test_readme_meltano_snippet_runs_in_real_meltano(meltano_bin: Path, moto_s3: MotoS3, tmp_path: Path) -> None:
    """The README's snippet as written: meltano install, meltano run tap-jsonl target-spool, state kept.
    Then the README's Deploying variant: the same plugin with spool_dir in a bucket (moto's S3)."""
    started = time.monotonic()
    input_dir = write_input(tmp_path / "input")
    project = new_project(meltano_bin, tmp_path, input_dir)
    project("install")

    python = meltano_bin.parent / "python"
    real_kinds = subprocess.run(
        [str(python), "-c", "import json; from meltano.core.setting_definition import SettingKind as K; print(json.dumps([k.value for k in K]))"],
        capture_output=True, text=True, check=True,
    )
    assert set(json.loads(real_kinds.stdout)) == MELTANO_SETTING_KINDS, "update MELTANO_SETTING_KINDS from Meltano's enum"
    # The executable Meltano runs, from the plugin venv that pip_url built.
    plugin_exe = project.project / ".meltano" / "loaders" / "target-spool" / "venv" / "bin" / "target-spool"
    assert set(about_kinds([str(plugin_exe)]).values()) <= MELTANO_SETTING_KINDS

    tap_records, tap_state = tap_output(project)
    assert len(tap_records) == sum(len(r) for r in INPUT_FILES.values())
    project("run", "tap-jsonl", "target-spool")
    spool = project.project / ".spool"  # the snippet's spool_dir: $MELTANO_PROJECT_ROOT/.spool
    assert_spool_holds_the_input(spool, input_dir)
    assert_meltano_stored(project, tap_state)

    # Deploying: the README's config fragment for a bucket spool, pasted over the local one.
    import yaml

    fragment = readme_deploying_fragment()
    bucket = moto_s3.new_bucket()
    url = yaml.safe_load(fragment)["config"]["spool_dir"].replace("acme-pipelines", bucket)  # the reader's own bucket
    meltano_yml = project.project / "meltano.yml"
    text = meltano_yml.read_text()
    assert text.count("spool_dir: $MELTANO_PROJECT_ROOT/.spool") == 1
    meltano_yml.write_text(text.replace("spool_dir: $MELTANO_PROJECT_ROOT/.spool", f"spool_dir: {url}"))
    cache = tmp_path / "cache"
    project.env.update({"AWS_ENDPOINT_URL": moto_s3.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "XDG_CACHE_HOME": str(cache)})
    project("run", "--full-refresh", "tap-jsonl", "target-spool")
    objects = moto_s3.client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert any(o["Key"].endswith(".parquet") for o in objects), "no segment reached the bucket"
    # Another machine reads it back from the bucket: verify fetches every segment into its replica.
    verify = subprocess.run([sys.executable, "-m", "spool_target", "verify", "--no-destination", "--spool", url],
                            env={**project.env, "XDG_CACHE_HOME": str(tmp_path / "reader")}, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    (replica,) = (tmp_path / "reader").glob("spool-target/replicas/*/read")
    assert_spool_holds_the_input(replica, input_dir)

    print(f"meltano steps (s): {project.seconds}; whole test {time.monotonic() - started:.1f}s")
