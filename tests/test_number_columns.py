"""A ``number`` column typed a column at a time agrees with the rule typed value by value.

``numbers.type_number_column`` takes vectorised shortcuts (a column of
short plain texts with an inexact value among its first is ``decimal`` at
once; texts equal to their double's shortest repr are settled by two casts).
The reference here applies the rule of I8 to each value on its own, in
Python: a value is refused iff ``number_problem`` says so, and the column is
float64 iff every value not refused is double-exact. Hypothesis mixes short
decimals, long ones, exponents, needless zeros and values near the limits,
in every order, so that each shortcut meets texts it must not settle.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from spool_target.numbers import is_double_exact, number_problem, type_number_column
from spool_target.spool.columns import _json_problems

_digits = st.text("0123456789", min_size=1, max_size=45)


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    """A JSON number's text, spelt any way JSON allows."""
    kind = draw(st.sampled_from(["double", "plain", "exponent", "zeros", "edge"]))
    if kind == "double":
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == "edge":
        return draw(st.sampled_from([
            "0", "-0", "-0.0", "1e126", "9.99e125", "1e-130", "1e-131", "1E+2", "1.10",
            "0.30000000000000004", "0.1000000000000000000001", "12345678901234.5678",
            "9" * 38, "9" * 39, "0." + "0" * 36 + "1", "-" + "9" * 37 + ".5",
        ]))
    whole = draw(_digits).lstrip("0") or "0"
    sign = draw(st.sampled_from(["", "-"]))
    fraction = draw(st.one_of(st.just(""), _digits.map(lambda d: "." + d)))
    text = sign + whole + fraction
    if kind == "zeros":
        text += ("" if fraction else ".") + "0" * draw(st.integers(1, 5))
    if kind == "exponent":
        text += draw(st.sampled_from(["e", "E"])) + draw(st.sampled_from(["", "+", "-"])) + str(draw(st.integers(0, 140)))
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), number_texts(), st.just('"not a number"')), max_size=80))
def test_a_number_column_is_typed_as_each_of_its_values_would_be(texts: list[str | None]) -> None:
    column = type_number_column(pa.array(texts, pa.string()))
    expected_problems = {
        i for i, t in enumerate(texts) if t is not None and (t.startswith('"') or number_problem(t))
    }
    assert set(column.problems) == expected_problems
    kept = [t for i, t in enumerate(texts) if t is not None and i not in expected_problems]
    expected = "number" if all(is_double_exact(t) for t in kept) else "decimal"
    assert column.logical == expected, kept
    values = column.array.to_pylist()
    for i, text in enumerate(texts):
        if text is None or i in expected_problems:
            continue
        stored = values[i]
        # Exact either way: the double equals the decimal sent, or the text is kept as sent.
        assert (Decimal(repr(stored)) if expected == "number" else Decimal(stored)) == Decimal(text)


def test_json_text_with_a_number_no_double_holds_is_refused_in_its_own_row_only() -> None:
    """``columns._json_problems`` first searches a column's whole text buffer at
    once; a sliced column shares its buffer with rows outside it, and two
    values side by side may look like one big number: neither may refuse a row."""
    texts = pa.array(['{"a": 1}', None, '[1e400]', '{"b": "x"}', '[' + "1" * 200, "1" * 200 + "]"], pa.string())
    assert _json_problems(texts) == {2: "the number 1e400 is beyond any storable range"}
    assert _json_problems(texts.slice(3)) == {}  # 1e400 is in the buffer, not in these rows
    assert _json_problems(pa.array([None, None], pa.string())) == {}
