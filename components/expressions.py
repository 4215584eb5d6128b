"""Restricted arithmetic expressions over component attributes (never Python ``eval``).

An expression is parsed with :mod:`ast` and only these nodes are walked: numbers
(and string/bool constants), names bound to attributes, ``+ - * / // % **``, unary
``+ - not``, comparisons, ``and``/``or``, conditional expressions ``a if c else b``
and calls of the whitelisted functions in :data:`FUNCTIONS`. Anything else (attribute
access, subscripts, lambdas, comprehensions, other calls) raises :class:`ExpressionError`.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable, Mapping

MAX_EXPONENT = 4096          # refuse huge powers (a spec must not hang the tool)
MAX_LENGTH = 2000            # characters per expression
MAX_RESULT_BITS = 1 << 16    # refuse integer powers with more bits than this


class ExpressionError(ValueError):
    """An expression that is malformed, uses a forbidden construct or an unknown name."""


def _log2(x: float) -> float:
    if x <= 0:
        raise ExpressionError(f"log2 of non-positive value {x!r}")
    return math.log2(x)


def _sqrt(x: float) -> float:
    if x < 0:
        raise ExpressionError(f"sqrt of negative value {x!r}")
    return math.sqrt(x)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log2": _log2,
    "ceil": math.ceil,
    "floor": math.floor,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "sqrt": _sqrt,
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def parse(text: str) -> ast.expr:
    """Parse ``text`` and check every node against the whitelist; return the expression node."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid expression {text!r}: {exc.msg}") from None
    _check(tree.body)
    return tree.body


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)) or node.value is None:
            raise ExpressionError(f"constant {node.value!r} is not allowed")
    elif isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            raise ExpressionError(f"assignment to {node.id!r} is not allowed")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub, ast.Not)):
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _CMPOPS:
                raise ExpressionError(f"comparison {type(op).__name__} is not allowed")
        _check(node.left)
        for comp in node.comparators:
            _check(comp)
    elif isinstance(node, ast.IfExp):
        _check(node.test)
        _check(node.body)
        _check(node.orelse)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(
                f"call of {shown!r} is not allowed (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed in calls")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise ExpressionError("starred arguments are not allowed")
            _check(arg)
    else:
        raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")


def _eval(node: ast.expr, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise ExpressionError(f"unknown name {node.id!r}")
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)):
            base_bits = abs(left).bit_length() if isinstance(left, int) else 64
            if abs(right) > MAX_EXPONENT or base_bits * abs(right) > MAX_RESULT_BITS:
                raise ExpressionError(f"exponent {right!r} is too large")
        try:
            return _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExpressionError("division by zero") from None
        except (TypeError, OverflowError) as exc:
            raise ExpressionError(str(exc)) from None
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not value
        try:
            return -value if isinstance(node.op, ast.USub) else +value
        except TypeError as exc:
            raise ExpressionError(str(exc)) from None
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, names)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = _eval(value, names)
            if result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, names)
            try:
                ok = _CMPOPS[type(op)](left, right)
            except TypeError as exc:
                raise ExpressionError(str(exc)) from None
            if not ok:
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, names) if _eval(node.test, names) else _eval(node.orelse, names)
    if isinstance(node, ast.Call):
        args = [_eval(a, names) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)  # type: ignore[union-attr]
        except ExpressionError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExpressionError(f"{node.func.id}(): {exc}") from None  # type: ignore[union-attr]
    raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")  # pragma: no cover


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """Evaluate one restricted expression with ``names`` bound (attribute name -> value)."""
    return _eval(parse(text), names)


def evaluate_value(value: Any, names: Mapping[str, Any]) -> Any:
    """Evaluate an attribute value: numbers/bools pass through; strings are tried as expressions.

    A string that does not parse as an expression, or that is a bare name not in ``names``,
    is kept as a string (Accelergy attributes such as ``technology: 28nm`` or
    ``type: LPDDR4`` are plain strings). A string that parses but fails to evaluate for
    another reason (a bad call, division by zero) raises :class:`ExpressionError`.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        node = parse(text)
    except ExpressionError as exc:
        if "not allowed" in str(exc):
            raise
        return value
    if isinstance(node, ast.Name) and node.id not in names:
        return value
    return _eval(node, names)
