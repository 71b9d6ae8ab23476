"""I8 "exactly as sent", end to end: random Singer input through the real CLI into DuckDB, checked
against an independent oracle of the typing rules (tests/roundtrip.py), plus one hand-picked case
per rule of the typing table and per example of the "Exactly as sent" issue.

Environment:
  ROUNDTRIP_EXAMPLES   hypothesis examples for the property test (default 16; each is one ingest
                       and one load of up to 6 streams x 80 records, about 3.5 s)
  ROUNDTRIP_RANDOM=1   draw new examples each run (default: derandomized, the same examples every
                       run, so a CI failure reproduces)
  ROUNDTRIP_ISOLATE=1  run every hand-picked case in its own ingest+load (slower; shows which
                       cases fail on their own when one of them stops a shared run)
  ROUNDTRIP_ARTIFACTS  directory for the input of a failing example (default: pytest's tmp dir)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from roundtrip import Report, check_roundtrip, expected, record_line, singer_runs

EXAMPLES = int(os.environ.get("ROUNDTRIP_EXAMPLES", "16"))
RANDOM = os.environ.get("ROUNDTRIP_RANDOM") == "1"
ISOLATE = os.environ.get("ROUNDTRIP_ISOLATE") == "1"


def save_failure(lines: list[bytes], base: Path, flush_rows: int | None) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    folder = Path(os.environ.get("ROUNDTRIP_ARTIFACTS") or base)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"roundtrip-failure-{hashlib.sha256(data).hexdigest()[:10]}.singer.jsonl"
    path.write_bytes(data)
    if flush_rows:
        path.with_suffix(".env").write_text(f"SPOOL_TARGET_FLUSH_MAX_ROWS={flush_rows}\n")
    return path


# ----- the property ------------------------------------------------------------------------------

@pytest.mark.timeout(max(300, 20 * EXAMPLES))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    # Shrinking reruns the CLI hundreds of times; the report below already names every
    # differing value with its SCHEMA and RECORD line, and the whole input is saved.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,
)
@given(run=singer_runs(max_streams=6, max_records=80))
def test_every_value_lands_exactly_as_sent(run, tmp_path_factory):
    work = tmp_path_factory.mktemp("roundtrip")
    report = check_roundtrip(run.lines, work, flush_rows=run.flush_rows)
    if report.mismatches:
        path = save_failure(run.lines, work, run.flush_rows)
        pytest.fail(f"flush_max_rows={run.flush_rows}\n" + report.explain(input_file=path), pytrace=False)


# ----- hand-picked cases ----------------------------------------------------------------------------

REJECT = "reject"
UTC = dt.timezone.utc


def instant(*args: int) -> int:
    """Microseconds since the epoch of a UTC wall time (computed with datetime, not by the oracle)."""
    return (dt.datetime(*args, tzinfo=UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


@dataclass
class Case:
    """One stream: ``properties`` (``id`` integer key added unless given), records as raw text
    ``before`` and after the record under test, and what each named property must hold."""

    name: str
    node: dict | None  # the schema of property "v" (None: ``properties`` says it all)
    raw: str  # JSON text of "v", or a whole record when ``node`` is None
    expect: Any  # {property: value} for the record under test, or REJECT
    properties: dict | None = None
    keys: list[str] = field(default_factory=lambda: ["id"])
    isolate: str | None = None  # a run of its own (cases that may stop a run on an old target)

    @property
    def stream(self) -> str:
        return self.name

    def schema(self) -> dict:
        props = self.properties if self.properties is not None else {"id": {"type": "integer"}, "v": self.node}
        return {"type": "SCHEMA", "stream": self.stream, "schema": {"type": "object", "properties": props},
                "key_properties": self.keys}

    def record(self) -> str:
        return self.raw if self.node is None else '{"id": 2, "v": ' + self.raw + "}"

    def neighbour(self, n: int) -> str:
        """A plain valid record (only its keys), sent before and after the one under test."""
        props = self.schema()["schema"]["properties"]
        keys = {k: n if props[k] == {"type": "integer"} else str(n) for k in self.keys}
        return json.dumps(keys)

    def lines(self) -> list[bytes]:
        """The record under test between two valid ones: a reject must not stop the stream."""
        return [json.dumps(self.schema()).encode(), record_line(self.stream, self.neighbour(1), 0),
                record_line(self.stream, self.record(), 0), record_line(self.stream, self.neighbour(3), 1)]


def C(name: str, node: dict, raw: str, value: Any, **kw: Any) -> Case:
    return Case(name, node, raw, REJECT if value is REJECT else {"v": value}, **kw)


I, N, S = {"type": "integer"}, {"type": "number"}, {"type": "string"}
DT, DATE, TIME = ({"type": "string", "format": f} for f in ("date-time", "date", "time"))
B = {"type": "boolean"}
D = Decimal

CASES = [
    # integer: a JSON integer in 64 bits, or a number with a zero fraction
    C("int 42", I, "42", 42),
    C("int 3.0", I, "3.0", 3),
    C("int 9007199254740993.0", I, "9007199254740993.0", 9007199254740993),
    C("int 1e2", I, "1e2", 100),
    C("int max", I, "9223372036854775807", 2**63 - 1),
    C("int min", I, "-9223372036854775808", -(2**63)),
    C("int -9223372036854775809", I, "-9223372036854775809", REJECT),
    C("int 9223372036854775808", I, "9223372036854775808", REJECT),
    C("int 1.5", I, "1.5", REJECT),
    C("int string", I, '"5"', REJECT),
    C("int boolean", I, "true", REJECT),
    # number: up to 38 significant digits in NUMBER's range, kept to the last digit
    C("num 0.1", N, "0.1", D("0.1")),
    C("num 1.10", N, "1.10", D("1.10")),
    C("num 0.30000000000000004", N, "0.30000000000000004", D("0.30000000000000004")),
    C("num 1e+100", N, "1e+100", D("1e100")),
    C("num 1E-5", N, "1E-5", D("0.00001")),
    C("num 12345678901234.5678", N, "12345678901234.5678", D("12345678901234.5678")),
    C("num -9999999999999999.9999", N, "-9999999999999999.9999", D("-9999999999999999.9999")),
    C("num 0.33333333333333333333", N, "0.33333333333333333333", D("0.33333333333333333333")),
    C("num 38 digits", N, "12345678901234567890123456789012345678", D("12345678901234567890123456789012345678")),
    C("num 39 digits", N, "123456789012345678901234567890.123456789", REJECT),
    C("num 1e126", N, "1e126", REJECT),
    C("num 9.99e125", N, "9.99e125", D("9.99e125")),
    C("num 1e-130", N, "1e-130", D("1e-130")),
    C("num 1e-131", N, "1e-131", REJECT),
    C("num -0.0", N, "-0.0", D("0")),
    C("num string", N, '"1.5"', REJECT),
    C("num boolean", N, "true", REJECT),
    C("numeric(20,4)", {"type": ["number", "null"], "multipleOf": 0.0001}, "12345678901234.5678", D("12345678901234.5678")),
    C("integer+number 2^53+1", {"type": ["integer", "number"]}, "9007199254740993", D("9007199254740993")),
    # string: exactly, and any other JSON value as its text
    C("str NUL", S, '"a\\u0000b"', "a\x00b"),
    C("str astral raw", S, '"😀"', "😀"),
    C("str astral escaped", S, '"\\ud83d\\ude00"', "😀"),
    C("str escaped e-acute", S, '"\\u00e9"', "é"),
    C("str 1.10", S, "1.10", "1.10"),
    C("str object", S, '{"a": 1}', '{"a": 1}'),
    C("str boolean", S, "true", "true"),
    C("str array", S, "[1, 2.50]", "[1, 2.50]"),
    # date-time: UTC, to the microsecond
    C("dt offset", DT, '"2024-01-01T10:00:00+02:00"', instant(2024, 1, 1, 8)),
    C("dt no offset, space", DT, '"2024-01-01 10:00:00"', instant(2024, 1, 1, 10)),
    C("dt micros", DT, '"2024-01-01T10:00:00.123456Z"', instant(2024, 1, 1, 10, 0, 0, 123456)),
    C("dt 7 digits, zero", DT, '"2024-01-01T10:00:00.1234560Z"', instant(2024, 1, 1, 10, 0, 0, 123456)),
    C("dt 7 digits", DT, '"2024-01-01T10:00:00.1234567Z"', REJECT),
    C("dt leap day", DT, '"2024-02-29T23:30:00-05:00"', instant(2024, 3, 1, 4, 30)),
    C("dt before epoch", DT, '"1969-12-31T23:59:59.999999Z"', instant(1969, 12, 31, 23, 59, 59, 999999)),
    C("dt 2023-02-29", DT, '"2023-02-29T12:00:00Z"', REJECT),
    C("dt Feb 30", DT, '"2024-02-30T00:00:00Z"', REJECT),
    C("dt epoch", DT, '"epoch"', REJECT),
    C("dt infinity", DT, '"infinity"', REJECT),
    C("dt now", DT, '"now"', REJECT),
    C("dt date alone", DT, '"2024-01-01"', REJECT),
    C("dt number", DT, "1700000000", REJECT),
    # date
    C("date", DATE, '"2024-01-01"', dt.date(2024, 1, 1)),
    C("date from date-time", DATE, '"2024-01-01T23:00:00-05:00"', dt.date(2024, 1, 2)),
    C("date leap day", DATE, '"2024-02-29"', dt.date(2024, 2, 29)),
    C("date 2023-02-29", DATE, '"2023-02-29"', REJECT),
    C("date epoch", DATE, '"epoch"', REJECT),
    # time: as sent
    C("time", TIME, '"12:34:56"', "12:34:56"),
    C("time micros", TIME, '"23:59:59.123456"', "23:59:59.123456"),
    # boolean: only true/false
    C("bool true", B, "true", True),
    C("bool false", B, "false", False),
    C("bool string", B, '"true"', REJECT),
    C("bool 1", B, "1", REJECT),
    # json: the text as sent
    C("json object numbers", {"type": "object"}, '{"amt": 12345678901234567.89}', '{"amt": 12345678901234567.89}'),
    C("jsonb member", {"type": ["object", "null"]}, '{"x": 1234567900.123456789}', '{"x": 1234567900.123456789}'),
    C("json array", {"type": "array"}, "[0.30000000000000001665]", "[0.30000000000000001665]"),
    C("json spaces and escapes", {"type": "object"}, '{ "\\u00e9" : "\\u00e9", "n" : 1E5 }', '{ "\\u00e9" : "\\u00e9", "n" : 1E5 }'),
    C("json {} string", {}, '"abc"', '"abc"'),
    C("json {} 1.10", {}, "1.10", "1.10"),
    C("json several types string", {"type": ["string", "integer"]}, '"abc"', '"abc"'),
    C("json several types integer", {"type": ["string", "integer"]}, "5", "5"),
    C("json anyOf", {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "5", "5"),
    # keys with several scalar types: text, a string without its quotes
    Case("key several types string", None, '{"k": "abc", "v": 1}', {"k": "abc"},
         properties={"k": {"type": ["string", "integer"]}, "v": I}, keys=["k"]),
    Case("key several types integer", None, '{"k": 5, "v": 1}', {"k": "5"},
         properties={"k": {"type": ["string", "integer"]}, "v": I}, keys=["k"]),
    # null, keys
    C("null", {"type": ["integer", "null"]}, "null", None),
    C("null anyOf", {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}, "null", None),
    Case("key missing", None, '{"v": 1}', REJECT, properties={"id": I, "v": I}),
    Case("key null", None, '{"id": null, "v": 1}', REJECT, properties={"id": I, "v": I}),
    # names and records
    Case("property named empty", None, '{"id": 2, "": "empty name", "a/b": 1, "~": 2}',
         {"": "empty name", "a/b": 1, "~": 2}, properties={"id": I, "": S, "a/b": I, "~": I}, isolate="empty name"),
    Case("duplicate keys", None, '{"id": 2, "v": "x", "v": 5}', {"v": 5}, properties={"id": I, "v": I}),
    Case("undeclared big integer", None,
         '{"id": 2, "amount": 12345678901234.5678, "big": 123456789012345678901234567890}',
         {"amount": D("12345678901234.5678"), "_sdc_extra": {"big": 123456789012345678901234567890}},
         properties={"id": I, "amount": N}),
    Case("undeclared decimals", None, '{"id": 2, "x": [0.30000000000000001665, 1.10]}',
         {"_sdc_extra": {"x": [D("0.30000000000000001665"), D("1.10")]}}, properties={"id": I}),
    # what is not valid JSON or cannot be stored: rejected, the run goes on
    C("NaN", N, "NaN", REJECT, isolate="poison"),
    C("Infinity", N, "Infinity", REJECT, isolate="poison"),
    C("-Infinity", N, "-Infinity", REJECT, isolate="poison"),
    C("1e400", N, "1e400", REJECT, isolate="poison"),
    C("1e400 in a string column", S, "1e400", REJECT, isolate="poison"),
    C("lone surrogate", S, '"\\ud800"', REJECT, isolate="poison"),
    Case("lone surrogate key", None, '{"id": 2, "\\udc00": 1}', REJECT, properties={"id": I}, isolate="poison"),
]


def _matches(want: Any, got: Any) -> bool:
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() <= got.keys() and all(_matches(v, got[k]) for k, v in want.items())
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(_matches(a, b) for a, b in zip(want, got))
    return type(want) is type(got) and want == got


class RegressionRuns:
    """Ingest+load the hand-picked cases in a few shared runs (one per ``isolate`` group), lazily."""

    def __init__(self, factory: pytest.TempPathFactory):
        self.factory = factory
        self.reports: dict[str, Report] = {}

    def group(self, case: Case) -> str:
        return case.name if ISOLATE else case.isolate or "shared"

    def report(self, case: Case) -> Report:
        group = self.group(case)
        if group not in self.reports:
            lines = [line for c in CASES if self.group(c) == group for line in c.lines()]
            work = self.factory.mktemp("regression")
            self.reports[group] = check_roundtrip(lines, work)
        return self.reports[group]


@pytest.fixture(scope="module")
def regression_runs(tmp_path_factory) -> RegressionRuns:
    return RegressionRuns(tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_typing_rule(case: Case, regression_runs: RegressionRuns):
    # The oracle itself must say what the rule says (written out above, by hand).
    outcome = expected(case.schema(), case.record().encode())
    if case.expect is REJECT:
        assert outcome[0] == "reject", f"oracle accepts {case.record()}: {outcome}"
    else:
        assert outcome[0] == "row" and _matches(case.expect, outcome[1]), f"oracle gives {outcome}, rule says {case.expect}"
    # And the target must store it so (or reject it, with the raw line, and keep going).
    report = regression_runs.report(case)
    problems = report.for_stream(case.stream)
    shared = "" if ISOLATE else (f"(this case ran in the shared run {regression_runs.group(case)!r}; "
                                 "ROUNDTRIP_ISOLATE=1 runs each case alone)\n")
    assert not problems, shared + "\n".join(str(m) for m in problems[:10])


def test_state_goes_out_byte_for_byte(tmp_path):
    raw = b'{"big": 123456789012345678901234567890, "dec": 0.1000000000000000000001, "e": 1E5, "s": "\\u00e9 caf\xc3\xa9"}'
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "s", "schema": {"properties": {"id": {"type": "integer"}}},
                    "key_properties": ["id"]}).encode(),
        record_line("s", '{"id": 1}', 0),
        b'{"type": "STATE", "value": ' + raw + b"}",
    ]
    report = check_roundtrip(lines, tmp_path, load=False)
    assert not report.mismatches, report.explain()


def test_integer_then_number_widens_to_decimal_and_keeps_2_53_plus_1(tmp_path):
    """integer+number -> decimal (not double), so 9007199254740993 loaded under an integer
    schema stays exact once a later schema makes the column a number."""
    schema = {"type": "SCHEMA", "stream": "w", "key_properties": ["id"],
              "schema": {"properties": {"id": {"type": "integer"}, "v": {"type": "integer"}}}}
    lines = [json.dumps(schema).encode(), record_line("w", '{"id": 1, "v": 9007199254740993}')]
    schema["schema"]["properties"]["v"] = {"type": ["number", "null"]}
    lines += [json.dumps(schema).encode(), record_line("w", '{"id": 2, "v": 0.1}'),
              record_line("w", '{"id": 3, "v": 9007199254740993}')]
    report = check_roundtrip(lines, tmp_path)
    assert not report.mismatches, report.explain()
