"""Exact numbers: what a JSON number in a ``number`` column may be, and how it is kept.

The rule (invariant I8, also in the README):

- A value of a ``number`` column is a JSON number with at most 38
  significant digits (Oracle ``NUMBER``'s precision) and, unless it is
  zero, an absolute value in [1e-130, 1e126) (Oracle ``NUMBER``'s range).
  Anything else is rejected with a reason: never rounded.
- Most numbers a tap sends are *double-exact*: the decimal it sent is the
  decimal of the shortest round-trip representation of the nearest double
  (``0.1``, ``1.10``, ``0.30000000000000004``, ``1e+100``). A segment whose
  values are all double-exact stores the column as float64 (fast, and
  what every reader expects). If one value is not, that segment stores the
  whole column as the JSON number text exactly as sent (logical type
  ``decimal``), so every digit survives.

Significant digits are counted without leading and trailing zeros
(``1000`` and ``0.001`` have one), as ``NUMBER`` stores them.

The column functions are vectorised with pyarrow; Python looks at single
values only where a spelling is unusual (exponents, very long texts).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

MAX_DIGITS = 38
MIN_ABS = Decimal("1e-130")
MAX_ABS = Decimal("1e126")

_JSON_NUMBER = "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_JSON_NUMBER_RE = re.compile(_JSON_NUMBER)

# A text this short without an exponent lies well inside a double's normal
# range, so 15 significant digits or fewer always round-trip (DBL_DIG).
_SHORT = 300


def significant_digits(text: str) -> int:
    mantissa = text.split("e")[0].split("E")[0]
    return len(mantissa.replace("-", "").replace(".", "").strip("0"))


def number_problem(text: str) -> str | None:
    """Why ``text`` (a JSON value's text) cannot be a ``number``, or None."""
    if not _JSON_NUMBER_RE.match(text):
        return "expected a number"
    digits = significant_digits(text)
    if digits > MAX_DIGITS:
        return (
            f"a number with {digits} significant digits (Oracle NUMBER holds {MAX_DIGITS}); "
            "declare the property as a string to keep its text"
        )
    value = abs(Decimal(text))
    if value and not (MIN_ABS <= value < MAX_ABS):
        return "a number outside Oracle NUMBER's range (1E-130 to 1E126); declare the property as a string to keep its text"
    return None


def is_double_exact(text: str) -> bool:
    """Whether the double nearest to ``text`` has ``text``'s own value as its shortest repr."""
    try:
        as_float = float(text)
        return Decimal(repr(as_float)) == Decimal(text)
    except (ValueError, InvalidOperation, OverflowError):
        return False


def integer_from_text(text: str) -> int | None:
    """The exact integer a JSON number denotes (``3.0``, ``1e2``), or None if it has a fraction."""
    if not _JSON_NUMBER_RE.match(text):
        return None
    if len(text) > 400:  # no int64 needs this much text; don't let 1e999999999 build a huge int
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if value != value.to_integral_value() or abs(value.adjusted()) > 40:
        return None
    return int(value)


def _normalised(texts: pa.Array) -> pa.Array:
    """Plain decimals without needless trailing zeros (``1.10`` -> ``1.1``, ``2.0`` -> ``2``),
    which is how a shortest repr spells them; texts with exponents are left alone."""
    plain = pc.invert(pc.match_substring(texts, "e", ignore_case=True))
    has_point = pc.and_(plain, pc.match_substring(texts, "."))
    trimmed = pc.utf8_rtrim(pc.utf8_rtrim(texts, "0"), ".")
    trimmed = pc.if_else(pc.equal(trimmed, "-0"), "-0", trimmed)
    return pc.if_else(has_point, trimmed, texts)


class NumberColumn:
    """A ``number`` column typed: float64 or exact text, plus the rows refused."""

    __slots__ = ("array", "logical", "problems")

    def __init__(self, array: pa.Array, logical: str, problems: dict[int, str]):
        self.array = array
        self.logical = logical  # "number" (float64) or "decimal" (text as sent)
        self.problems = problems  # row -> reason


def type_number_column(texts: pa.Array) -> NumberColumn:
    """Type the JSON texts of one ``number`` column (nulls stay null).

    The texts are JSON values (the line was valid JSON), so a text that
    starts with ``-`` or a digit is a number: no grammar check is needed.
    The common cases are cheap. A column of short plain texts (``1234.5678``)
    with an inexact value among its first ones is ``decimal`` at once. Else
    two casts and a comparison settle most texts: a text equal to the
    shortest repr of its own double is double-exact and well within range.
    Only the rest is looked at closely, and only they may cost Python.
    """
    problems: dict[int, str] = {}
    if len(texts) == 0 or texts.null_count == len(texts):
        return NumberColumn(pa.nulls(len(texts), pa.float64()), "number", problems)
    first = pc.utf8_slice_codeunits(texts, 0, 1)
    numeric = pc.or_(pc.is_null(texts), pc.is_in(first, _NUMBER_STARTS))
    if not pc.all(numeric).as_py():
        for i in pc.indices_nonzero(pc.invert(numeric)).to_pylist():
            problems[i] = "expected a number, got " + texts[i].as_py()[:200]
        texts = pc.if_else(numeric, texts, None)
    if _has_inexact_value(texts) and _all_short_and_plain(texts):
        return NumberColumn(texts, "decimal", problems)
    as_float = pc.cast(texts, pa.float64())
    magnitude = pc.abs(as_float)
    in_range = pc.or_(pc.equal(magnitude, 0.0), pc.and_(pc.greater_equal(magnitude, 1e-130), pc.less(magnitude, 1e126)))
    for i in pc.indices_nonzero(pc.invert(pc.fill_null(in_range, True))).to_pylist():
        reason = number_problem(texts[i].as_py())  # near the limits the double may mislead: decide exactly
        if reason:
            problems[i] = reason
    settled = pc.fill_null(pc.and_(pc.equal(pc.cast(as_float, pa.string()), texts), in_range), True)
    if pc.all(settled).as_py() and not problems:
        return NumberColumn(as_float, "number", problems)
    rest = pc.indices_nonzero(pc.invert(settled))
    exact = _look_closer(pc.take(texts, rest), rest, problems)
    if exact:
        return NumberColumn(_floats(texts, problems), "number", problems)
    return NumberColumn(texts, "decimal", problems)


_NUMBER_STARTS = pa.array(list("-0123456789"))
# A JSON number of at most this many characters without an exponent has at
# most 38 significant digits and, unless zero, an absolute value in
# [1e-36, 1e38): nothing about it can be refused.
_ALWAYS_STORABLE_LENGTH = MAX_DIGITS
# How many leading values to try as witnesses of a decimal column.
_WITNESSES = 64


def _all_short_and_plain(texts: pa.Array) -> bool:
    short = pc.less_equal(pc.binary_length(texts), _ALWAYS_STORABLE_LENGTH)
    return bool(pc.all(short).as_py()) and not pc.any(pc.match_substring(texts, "e", ignore_case=True)).as_py()


def _has_inexact_value(texts: pa.Array) -> bool:
    """Whether one of the first values is not double-exact: then the column
    is ``decimal`` whatever the rest hold (the common case of a tap sending
    ``numeric`` columns, decided without parsing every value)."""
    return any(t is not None and not is_double_exact(t) for t in texts.slice(0, _WITNESSES).to_pylist())


def _look_closer(texts: pa.Array, rows: pa.Array, problems: dict[int, str]) -> bool:
    """Check the texts whose spelling is not their double's shortest repr
    (``1.10``, ``1e-07``, ``12345678901234.5678``): record the refused ones
    in ``problems`` (by row) and say whether all the others are double-exact."""
    # The most common case: needless zeros (1.10, 2.0), then the repr matches.
    shortest = pc.cast(pc.cast(texts, pa.float64()), pa.string())
    same = pc.fill_null(pc.equal(_normalised(texts), shortest), False)
    if pc.all(same).as_py():
        return True
    rest = pc.indices_nonzero(pc.invert(same))
    texts, rows = pc.take(texts, rest), pc.take(rows, rest)
    mantissa = pc.replace_substring_regex(texts, "[eE].*$", "")
    digits = pc.utf8_length(pc.utf8_trim(pc.replace_substring_regex(mantissa, "[-.]", ""), "0"))
    unusual = pc.or_(pc.match_substring(texts, "e", ignore_case=True), pc.greater(pc.utf8_length(texts), _SHORT))
    look = pc.fill_null(pc.or_(unusual, pc.greater(digits, MAX_DIGITS)), False)
    for i in pc.indices_nonzero(look).to_pylist():
        reason = number_problem(texts[i].as_py())
        if reason:
            problems[rows[i].as_py()] = reason
    # Plain texts of 15 significant digits or fewer are always double-exact.
    exact = pc.and_(pc.fill_null(pc.less_equal(digits, 15), True), pc.invert(pc.fill_null(unusual, False)))
    # Different spelling, but perhaps the same value (1e-07 vs 1e-7, 1.0E2): only a
    # text of 17 significant digits or fewer can be a shortest repr.
    maybe = pc.fill_null(pc.and_(pc.invert(exact), pc.less_equal(digits, 17)), False)
    for i in pc.indices_nonzero(maybe).to_pylist():
        if rows[i].as_py() not in problems and not is_double_exact(texts[i].as_py()):
            return False
    inexact = pc.indices_nonzero(pc.invert(pc.or_(exact, maybe))).to_pylist()
    return all(rows[i].as_py() in problems for i in inexact)


def _floats(texts: pa.Array, problems: dict[int, str]) -> pa.Array:
    """Parse as doubles, refused rows (which may not parse) as null."""
    if problems:
        texts = pa.array([None if i in problems else t for i, t in enumerate(texts.to_pylist())], pa.string())
    return pc.cast(texts, pa.float64())
