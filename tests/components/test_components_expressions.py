"""Restricted expression evaluator: arithmetic, whitelisted calls, and rejection of the rest."""

from __future__ import annotations

import keyword
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.expressions import ExpressionError, evaluate, evaluate_value, parse


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 * 3", 7),
    ("2 ** 10", 1024),
    ("7 // 2 + 7 % 2", 4),
    ("width / 4", 4.0),
    ("log2(width)", 4.0),
    ("ceil(log2(depth))", 10),
    ("floor(2.7) + round(2.4) + abs(-3)", 7),
    ("max(width, depth) - min(width, depth)", 984),
    ("sqrt(width)", 4.0),
    ("3 if width > 8 else 5", 3),
    ("width >= 16 and depth < 2000", True),
    ("not (width == 16) or 0", 0),
    ("1 < width < depth", True),
    ("-width + +2", -14),
])
def test_evaluates(text, expected):
    assert evaluate(text, {"width": 16, "depth": 1000}) == expected


@pytest.mark.parametrize("text", [
    "width.bit_length()",        # attribute access
    "__import__('os')",          # call outside the whitelist
    "open('x')",
    "(lambda: 1)()",
    "[i for i in range(3)]",
    "{1: 2}",
    "x[0]",
    "print(1)",
    "f'{width}'",
    "width := 3",
    "log2(width, base=2)",
    "max(*[1, 2])",
    "math.log2(8)",
])
def test_rejects_forbidden_constructs(text):
    with pytest.raises(ExpressionError):
        evaluate(text, {"width": 8, "x": 1})


def test_errors_are_clear():
    with pytest.raises(ExpressionError, match="unknown name 'widht'"):
        evaluate("widht * 2", {"width": 8})
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate("1 / (width - 8)", {"width": 8})
    with pytest.raises(ExpressionError, match="log2"):
        evaluate("log2(0)", {})
    with pytest.raises(ExpressionError, match="too large"):
        evaluate("2 ** 100000", {})
    with pytest.raises(ExpressionError, match="too large"):
        evaluate("(10 ** 4000) ** 4000", {})


def test_plain_strings_pass_through():
    names = {"width": 8}
    assert evaluate_value("28nm", names) == "28nm"
    assert evaluate_value("LPDDR4", names) == "LPDDR4"
    assert evaluate_value("width * 2", names) == 16
    assert evaluate_value(3.5, names) == 3.5
    with pytest.raises(ExpressionError):
        evaluate_value("width.real", names)


# ---- properties ----------------------------------------------------------------------------

_leaf = st.one_of(
    st.integers(min_value=-50, max_value=50).map(lambda v: (str(v) if v >= 0 else f"({v})", v)),
    st.just(("a", 7)),
    st.just(("b", 3)),
)


def _combine(children):
    ops = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
           "max": max, "min": min}
    return st.tuples(st.sampled_from(sorted(ops)), children, children).map(
        lambda t: (f"{t[0]}({t[1][0]}, {t[2][0]})" if t[0] in ("max", "min") else f"({t[1][0]} {t[0]} {t[2][0]})",
                   ops[t[0]](t[1][1], t[2][1])))


@settings(max_examples=200, deadline=None)
@given(st.recursive(_leaf, _combine, max_leaves=12))
def test_integer_arithmetic_matches_python(expr):
    text, expected = expr
    assert evaluate(text, {"a": 7, "b": 3}) == expected


_ident = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))


@settings(max_examples=150, deadline=None)
@given(_ident, _ident)
def test_attribute_access_and_unlisted_calls_rejected(obj, name):
    with pytest.raises(ExpressionError):
        parse(f"{obj}.{name}")
    if name not in ("log2", "ceil", "floor", "min", "max", "abs", "round", "sqrt"):
        with pytest.raises(ExpressionError, match="not allowed"):
            parse(f"{name}(1)")


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False))
def test_log2_matches_math(x):
    assert evaluate("log2(v)", {"v": x}) == pytest.approx(math.log2(x))
