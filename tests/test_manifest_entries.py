"""The manifest's typed entries (spool/entries.py) against the bytes on disk.

The manifest is the contract between ingest and load and what people read
with DuckDB, so typing its entries must not change a byte of it. The fixture
``data/manifest_entries_main.jsonl`` was written by the code before the
entries were typed (commit ca4bc55, its real CLI): ``ingest`` of
``data/manifest_entries.singer``, ``rejects replay --stream users --schema
data/manifest_entries_fixed_schema.json``, ``load``, then ``prune``. It holds
every kind of entry.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import DATA, run_cli
from spool_target.spool import entries as entries_module
from spool_target.spool.entries import (
    FORMAT_VERSION,
    KINDS,
    ActivateVersion,
    ManifestEntry,
    Pruned,
    RunEnd,
    SchemaEntry,
    Segment,
    SpoolHeader,
    StateEntry,
    UnknownEntry,
    entry_from_json,
)
from spool_target.spool.layout import SpoolLayout
from spool_target.spool.manifest import read_manifest
from spool_target.schema import Column

MAIN_MANIFEST = DATA / "manifest_entries_main.jsonl"

SAMPLES: list[ManifestEntry] = [
    SpoolHeader(FORMAT_VERSION, "sp-1", "2026-01-01T00:00:00Z", n=0),
    SchemaEntry("s", "abc", (Column("id", "integer", False), Column("t", "string", True, 10)), ("id",), ("t",), '{"type":"object"}', n=1),
    Segment("s", "streams/s/1.parquet", 3, 100, "f" * 64, "abc", 5, 7, 1, 4, 1, "2026-01-01T00:00:01Z", "R1", n=2),
    Segment("s", "streams/s/3.parquet", 1, 90, "e" * 64, "abc", 6, 6, None, None, 0, "2026-01-01T00:00:02Z", "R2", "R1", n=3),
    ActivateVersion("s", 7, "R1", n=4),
    StateEntry('{"bookmarks": {"s": 1}}', "R1", n=5),
    RunEnd("R1", "2026-01-01T00:00:03Z", n=6),
    Pruned("s", "streams/s/1.parquet", 3, 100, "2026-01-01T00:00:04Z", n=7),
    UnknownEntry({"n": 8, "kind": "from_the_future", "stream": "s", "x": [1, {"y": None}]}, n=8),
]


def test_every_kind_round_trips_through_its_json():
    assert {type(e) for e in SAMPLES} == set(KINDS.values()) | {UnknownEntry}
    for entry in SAMPLES:
        d = entry.to_json()
        assert list(d)[:2] == ["n", "kind"] and d["kind"] == entry.kind
        back = entry_from_json(orjson.loads(orjson.dumps(d)))
        assert back == entry and type(back) is type(entry)
        assert orjson.dumps(back.to_json()) == orjson.dumps(d)


def test_every_entry_class_is_a_known_kind():
    """A new entry class that is not registered in KINDS would read back as UnknownEntry."""
    classes = {
        c for c in vars(entries_module).values()
        if isinstance(c, type) and issubclass(c, ManifestEntry) and c not in (ManifestEntry, UnknownEntry)
    }
    assert classes == set(KINDS.values())
    assert all(kind == cls.KIND for kind, cls in KINDS.items())


def _spool_with(tmp_path: Path, manifest: bytes) -> SpoolLayout:
    root = tmp_path / "spool"
    root.mkdir()
    (root / "manifest.jsonl").write_bytes(manifest)
    return SpoolLayout(root)


def test_a_manifest_the_untyped_code_wrote_reads_back_and_reserialises_byte_for_byte(tmp_path: Path):
    data = MAIN_MANIFEST.read_bytes()
    manifest = read_manifest(_spool_with(tmp_path, data))
    assert [type(e) for e in manifest.entries] == [
        SpoolHeader, SchemaEntry, Segment, StateEntry, ActivateVersion, SchemaEntry, Segment, StateEntry, RunEnd,
        SchemaEntry, Segment, Pruned, Pruned, Pruned,
    ]
    lines = data.split(b"\n")[:-1]
    assert [orjson.dumps(e.to_json()) for e in manifest.entries] == lines
    assert [entry_from_json(orjson.loads(line)) for line in lines] == manifest.entries
    header, first_run = manifest.entries[0], manifest.entries[8]
    assert isinstance(header, SpoolHeader) and manifest.spool_id == header.spool_id
    assert isinstance(first_run, RunEnd)
    replayed = manifest.segments("users")[-1]
    assert replayed.replay_of == first_run.run_id and replayed.source_run == first_run.run_id
    assert [w.item for w in manifest.stream_work("users")] == [
        "streams/users-7dfb4cf6/000000002-4a27571d.parquet", "activate_version/4",
        "streams/users-7dfb4cf6/000000010-6bc40c05.parquet",
    ]
    assert manifest.pruned == {s.path for s in manifest.segments()}
    assert manifest.streams() == ["users", "events"]
    assert manifest.latest_schema("users") == manifest.schemas[("users", "6bc40c05d72a1c50")]


def test_an_entry_of_an_unknown_kind_is_kept_and_skipped(tmp_path: Path):
    future = b'{"n":14,"kind":"from_the_future","stream":"elsewhere","path":"x"}\n'
    manifest = read_manifest(_spool_with(tmp_path, MAIN_MANIFEST.read_bytes() + future))
    assert isinstance(manifest.entries[-1], UnknownEntry) and orjson.dumps(manifest.entries[-1].to_json()) + b"\n" == future
    assert manifest.next_n == 15 and manifest.streams() == ["users", "events"] and len(manifest.segments()) == 3


def test_a_line_missing_a_key_of_its_kind_is_reported_as_corrupt(tmp_path: Path):
    from spool_target.errors import SpoolError

    bad = b'{"n":14,"kind":"segment","stream":"users"}\n'
    with pytest.raises(SpoolError, match="line 15 is corrupt"):
        read_manifest(_spool_with(tmp_path, MAIN_MANIFEST.read_bytes() + bad))


@pytest.mark.parametrize(
    "line, said",
    [
        (b'{"n":14,"kind":"segment","stream":"users","path":"p","rows":"ten","bytes":1,"sha256":"s","schema_id":"i"}',
         "segment entry's 'rows' should be an integer, got 'ten'"),
        (b'{"n":14,"kind":"segment","stream":"users","path":"p","rows":true,"bytes":1,"sha256":"s","schema_id":"i"}',
         "segment entry's 'rows' should be an integer, got True"),
        (b'{"n":14,"kind":"segment","stream":"users","path":"p","rows":1,"bytes":1,"sha256":"s","schema_id":"i","first_line":"x"}',
         "segment entry's 'first_line' should be an integer, got 'x'"),
        (b'{"n":14,"kind":"activate_version","stream":["users"],"version":2}', "activate_version entry's 'stream' should be a string"),
        (b'{"n":14,"kind":"state","value":{"bookmark":1}}', "state entry's 'value' should be a string"),
        (b'{"n":"14","kind":"run_end","run_id":"r"}', "run_end entry's 'n' should be an integer"),
        (b'{"n":14,"kind":"schema","stream":"users","schema_id":"i","columns":[],"key_properties":[1]}',
         "schema entry's 'key_properties' should be a list of strings, got (1,)"),
        (b'{"n":14,"kind":"segment","stream":"users"}', "an entry without 'path'"),
        (b'{"n":14,"kind":"segment","stream":', "(not JSON)"),
        (b'["n", 14]', "(not a manifest entry)"),
    ],
)
def test_a_line_whose_value_has_the_wrong_type_is_reported_as_corrupt_with_the_field_named(
    tmp_path: Path, line: bytes, said: str
):
    """A damaged manifest stops every command with the line and the field named (exit 5),
    not with an internal error where the value is first used."""
    spool = _spool_with(tmp_path, MAIN_MANIFEST.read_bytes() + line + b"\n").root
    for command in ("status", "load"):
        result = run_cli(command, "--spool", str(spool), "--destination", f"duckdb:///{tmp_path / 'db.duckdb'}")
        assert result.returncode == 5, result.stderr
        assert b"line 15 is corrupt" in result.stderr and said.encode() in result.stderr
        assert b"internal error" not in result.stderr


# Values that differ from run to run (ids, clocks, the Parquet bytes that hold them).
VOLATILE = {"spool_id", "created_at", "run_id", "ended_at", "pruned_at", "replay_of", "sha256", "bytes",
            "first_sequence", "last_sequence"}


def _comparable(line: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, None if k in VOLATILE else v) for k, v in line.items()]


def test_this_version_writes_the_entries_the_untyped_code_wrote(tmp_path: Path):
    """The same commands give a manifest with the same keys in the same order and the same values."""
    spool = str(tmp_path / "spool")
    steps = [
        ("ingest", "--spool", spool, "--input", str(DATA / "manifest_entries.singer")),
        ("rejects", "replay", "--spool", spool, "--stream", "users", "--schema", str(DATA / "manifest_entries_fixed_schema.json")),
        ("load", "--spool", spool),
        ("prune", "--spool", spool),
    ]
    for args in steps:
        done = run_cli(*args, "--log-format", "json")
        assert done.returncode == 0, (args, done.stderr.decode())
    ours = [orjson.loads(line) for line in (tmp_path / "spool" / "manifest.jsonl").read_bytes().split(b"\n")[:-1]]
    theirs = [orjson.loads(line) for line in MAIN_MANIFEST.read_bytes().split(b"\n")[:-1]]
    assert [_comparable(d) for d in ours] == [_comparable(d) for d in theirs]
    run_ids = {d["run_id"] for d in ours if d["kind"] == "run_end"}
    assert [d["replay_of"] for d in ours if "replay_of" in d] == sorted(run_ids)


# --- no code outside entries.py matches on the "kind" string ------------------------
PACKAGE = Path(__file__).resolve().parent.parent / "spool_target"
ENTRIES = PACKAGE / "spool" / "entries.py"


def _is_kind_lookup(node: ast.AST) -> bool:
    """``x["kind"]`` or ``x.get("kind")``."""
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
        and bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "kind"
    )


def _kind_matches(sources: dict[str, str]) -> list[str]:
    """Places that compare an entry's "kind" string, spell an entry as a dict
    literal with a known kind, or look for the kind in the manifest's bytes."""
    found = []
    for name, source in sorted(sources.items()):
        for node in ast.walk(ast.parse(source)):
            what = None
            if isinstance(node, ast.Compare) and any(_is_kind_lookup(n) for n in [node.left, *node.comparators]):
                what = "compares a kind string"
            elif isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "kind" and isinstance(v, ast.Constant) and v.value in KINDS
                for k, v in zip(node.keys, node.values)
            ):
                what = "writes an entry as a dict"
            elif isinstance(node, ast.Constant) and isinstance(node.value, bytes) and b'"kind"' in node.value:
                what = "matches a kind in the manifest's bytes"
            if what:
                found.append(f"{name}:{getattr(node, 'lineno', '?')} {what}")
    return found


def _package_sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in sorted(PACKAGE.rglob("*.py")) if p != ENTRIES}


def test_no_code_outside_entries_matches_on_the_kind_string():
    found = _kind_matches(_package_sources())
    assert found == [], "use the entry classes of spool/entries.py (isinstance, Manifest helpers):\n" + "\n".join(found)


def test_the_kind_check_sees_each_planted_spelling():
    """The test above can fail: every way the untyped code matched on kinds is found."""
    planted = {
        "a.py": 'if e["kind"] == "segment":\n    pass\n',
        "b.py": 'ok = "pruned" != e.get("kind")\n',
        "c.py": 'w.append({"n": 1, "kind": "run_end", "run_id": r})\n',
        "d.py": "WORK = (b'\"kind\":\"segment\"',)\n",
        "e.py": 'settings = {"kind": s.kind}\nfields = ("item", "kind")\n',  # not an entry: not found
    }
    assert _kind_matches(planted) == [
        "a.py:1 compares a kind string",
        "b.py:1 compares a kind string",
        "c.py:1 writes an entry as a dict",
        "d.py:1 matches a kind in the manifest's bytes",
    ]
