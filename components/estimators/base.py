"""The primitive-estimator interface (Accelergy plug-in style).

An estimator prices primitive components (``SRAM``, ``intadder``, ...). For each primitive
the resolver asks every estimator; among those that support the query, the one with the
highest ``accuracy`` (0-100, as in Accelergy) wins, ties going to the estimator listed first
(user plug-ins are listed before the built-ins).

A user estimator is any class with these members (subclassing :class:`Estimator` is optional)::

    class MyEstimator:
        name = "my_adders"
        accuracy = 90
        def energy(self, query: PrimitiveQuery) -> float | None: ...   # pJ, None = unsupported
        def area(self, query: PrimitiveQuery) -> float | None: ...     # um^2, None = unsupported
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable


MAX_ATTRIBUTE = 2.0**40   # bound on any numeric primitive attribute (bits, words, counts, MHz)


@dataclass(frozen=True)
class PrimitiveQuery:
    """One primitive to price.

    Attributes:
        class_name: primitive class (case as written, compare with :meth:`is_class`).
        attributes: evaluated attributes (numbers or strings), including ``technology``.
        action: action name for energy queries (``read``, ``add``, ``leak``, ...); None for area.
        arguments: evaluated action arguments (empty when the action has none).
    """

    class_name: str
    attributes: Mapping[str, Any]
    action: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def is_class(self, *names: str) -> bool:
        """True if the class name matches one of ``names`` (case- and ``-``/``_``-insensitive)."""
        own = _norm(self.class_name)
        return any(own == _norm(n) for n in names)

    def attr(self, *names: str, default: Any = None) -> Any:
        """First attribute found among ``names`` (``None`` values skipped), else ``default``."""
        for name in names:
            value = self.attributes.get(name)
            if value is not None:
                return value
        return default

    def number(self, *names: str, default: float | None = None, minimum: float = 0.0, maximum: float = MAX_ATTRIBUTE) -> float:
        """First attribute among ``names`` as a float in [``minimum``, ``maximum``] (widths, depths,
        counts, clocks and scales are never negative, and none is near 2^40); raises ValueError
        if absent without a default, not a number, or out of range."""
        value = self.attr(*names)
        if value is None:
            if default is None:
                raise ValueError(f"{self.class_name}: missing attribute {' or '.join(names)}")
            return float(default)
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{self.class_name}: attribute {names[0]} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number) or not minimum <= number <= maximum:
            raise ValueError(f"{self.class_name}: attribute {names[0]} must be a number in [{minimum:g}, {maximum:.0f}], "
                             f"got {value!r}")
        return number


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


@runtime_checkable
class EstimatorLike(Protocol):
    """Structural type of an estimator (built-in or user plug-in)."""

    name: str
    accuracy: float

    def energy(self, query: PrimitiveQuery) -> float | None: ...

    def area(self, query: PrimitiveQuery) -> float | None: ...


class Estimator:
    """Convenience base class: subclasses override :meth:`energy` and :meth:`area`."""

    name: str = "estimator"
    accuracy: float = 50.0

    def energy(self, query: PrimitiveQuery) -> float | None:  # pragma: no cover - interface
        """Energy in pJ for ``query.action`` on one instance, or None if unsupported."""
        return None

    def area(self, query: PrimitiveQuery) -> float | None:  # pragma: no cover - interface
        """Area in um^2 of one instance, or None if unsupported."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} accuracy={self.accuracy}>"
