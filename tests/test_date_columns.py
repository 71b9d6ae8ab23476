"""Date-time and date columns typed a column at a time agree with the value-by-value parse.

``columns._instants`` and ``columns._dates`` cast a whole column in Arrow;
when the cast refuses, they halve it until pieces of 256 values are parsed
one by one. The reference here parses every value on its own
(``parse_instant``, ``_date_of``): the column must hold the same instants
and dates and refuse exactly the same rows, each with its own value in its
reason. Columns are longer than 256 values so that the casts and the
halving, not only the one-by-one path, decide.
"""

from __future__ import annotations

from typing import Any, Callable

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spool_target.spool.columns import _date_of, _dates, _instants, parse_instant

# Values Arrow casts together (all with an offset, or all dates), by column kind.
VALID = {
    "date-time": ["2024-02-29T23:59:59Z", "2024-01-01T10:00:00.123456+05:30", "1999-12-31 23:59:59-08:00"],
    "date": ["2024-02-29", "1999-12-31", "0001-01-01"],
}
UNSHAPED = ["bad", "epoch", "infinity", "", "20240101T000000Z", " 2024-01-01T00:00:00Z"]
ODD = UNSHAPED + [
    "2024-01-01", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01T25:00:00Z", "2024-01-01Tnoon",
    "2024-03-01T00:00:00", "2024-02-30", "2024-01-01T00:00:00Z",
]


@st.composite
def columns(draw: st.DrawFn, kind: str) -> list[str | None]:
    """Mostly valid values, with a few odd ones: only some that look nothing like
    a date, or any (some look like one: a bad month, a missing offset)."""
    texts: list[str | None] = draw(st.lists(st.one_of(st.sampled_from(VALID[kind]), st.none()), min_size=257, max_size=600))
    odd = draw(st.sampled_from([UNSHAPED, ODD]))
    for at, text in draw(st.lists(st.tuples(st.integers(0, len(texts)), st.sampled_from(odd)), max_size=6)):
        texts.insert(at, text)
    return texts


def _reference(texts: list[str | None], parse: Callable[[str], Any]) -> tuple[list[Any], set[int]]:
    out: list[Any] = []
    bad: set[int] = set()
    for i, text in enumerate(texts):
        try:
            out.append(None if text is None else parse(text))
        except ValueError:
            out.append(None)
            bad.add(i)
    return out, bad


@pytest.mark.parametrize(
    "kind, typed, parse", [("date-time", _instants, parse_instant), ("date", _dates, _date_of)], ids=["date-time", "date"]
)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_column_refuses_and_keeps_what_each_value_would(
    kind: str, typed: Callable[[pa.Array], tuple[pa.Array, dict[int, str]]], parse: Callable[[str], Any], data: st.DataObject
) -> None:
    texts = data.draw(columns(kind))
    column, problems = typed(pa.array(texts, pa.string()))
    expected, bad = _reference(texts, parse)
    assert set(problems) == bad
    assert all(problems[i].endswith(f"got {texts[i]}") for i in bad)  # each reason names its own value
    assert column.to_pylist() == expected
