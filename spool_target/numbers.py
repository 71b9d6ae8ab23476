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
    """Type the JSON texts of one ``number`` column (nulls stay null)."""
    problems: dict[int, str] = {}
    if len(texts) == 0 or texts.null_count == len(texts):
        return NumberColumn(pa.nulls(len(texts), pa.float64()), "number", problems)
    valid = pc.fill_null(pc.match_substring_regex(texts, _JSON_NUMBER), True)
    if not pc.all(valid).as_py():
        for i in pc.indices_nonzero(pc.invert(valid)).to_pylist():
            problems[i] = "expected a number, got " + texts[i].as_py()[:200]
    # Count significant digits and flag spellings that need a closer look.
    mantissa = pc.replace_substring_regex(texts, "[eE].*$", "")
    digits = pc.utf8_length(pc.utf8_trim(pc.replace_substring_regex(mantissa, "[-.]", ""), "0"))
    unusual = pc.or_(pc.match_substring(texts, "e", ignore_case=True), pc.greater(pc.utf8_length(texts), _SHORT))
    look = pc.fill_null(pc.and_(valid, pc.or_(unusual, pc.greater(digits, MAX_DIGITS))), False)
    for i in pc.indices_nonzero(look).to_pylist():
        reason = number_problem(texts[i].as_py())
        if reason:
            problems[i] = reason
    # Exact as a double? Compare with the shortest repr of the parsed double.
    exact = pc.fill_null(pc.less_equal(digits, 15), True)
    exact = pc.and_(exact, pc.invert(pc.fill_null(unusual, False)))
    if not pc.all(exact).as_py():
        as_float = _floats(texts, problems)
        same = pc.fill_null(pc.equal(_normalised(texts), pc.cast(as_float, pa.string())), True)
        exact = pc.or_(exact, same)
        # Different spelling, but perhaps the same value (1e-07 vs 1e-7, 1.0E2):
        # only a text of 17 significant digits or fewer can be a shortest repr.
        maybe = pc.fill_null(pc.and_(pc.invert(exact), pc.less_equal(digits, 17)), False)
        if pc.any(maybe).as_py():
            fixed = exact.to_pylist()
            for i in pc.indices_nonzero(maybe).to_pylist():
                fixed[i] = i not in problems and is_double_exact(texts[i].as_py())
            exact = pa.array(fixed, pa.bool_())
    inexact = set(pc.indices_nonzero(pc.invert(pc.fill_null(exact, True))).to_pylist()) - set(problems)
    if not inexact:
        return NumberColumn(_floats(texts, problems), "number", problems)
    return NumberColumn(texts, "decimal", problems)


def _floats(texts: pa.Array, problems: dict[int, str]) -> pa.Array:
    """Parse as doubles, refused rows (which may not parse) as null."""
    if problems:
        texts = pa.array([None if i in problems else t for i, t in enumerate(texts.to_pylist())], pa.string())
    return pc.cast(texts, pa.float64())


def decimal_text(array: pa.Array) -> pa.Array:
    """Exact decimal text of a ``number`` (float64) or ``decimal`` (text) column,
    for destinations that must not take a float step (Oracle NUMBER)."""
    if pa.types.is_floating(array.type):
        return pc.cast(array, pa.string())  # the shortest repr: the value a float64 stands for
    if pa.types.is_integer(array.type):
        return pc.cast(array, pa.string())
    return array
