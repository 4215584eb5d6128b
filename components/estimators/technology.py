"""Technology-node parsing and area/energy scaling between nodes.

Data: ``components/data/tech_scaling.csv`` (Stillmaker & Baas, Integration 2017; see
docs/components.md). Nodes between table entries (e.g. 28 nm, between 32 and 20 nm) are
interpolated linearly in log(node) on log(factor).
"""

from __future__ import annotations

import csv
import math
import re
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "tech_scaling.csv"
_NODE_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>nm|um)?\s*$", re.IGNORECASE)


def parse_node(value: object) -> float:
    """Return a technology node in nm from ``28nm``, ``"28"``, ``28`` or ``0.028um``.

    Raises:
        ValueError: the value is not a technology node.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a technology node: {value!r}")
    if isinstance(value, (int, float)):
        node = float(value)
    else:
        match = _NODE_RE.match(str(value))
        if not match:
            raise ValueError(f"not a technology node: {value!r} (expected e.g. 28nm)")
        node = float(match["num"]) * (1000.0 if (match["unit"] or "").lower() == "um" else 1.0)
    if node <= 0:
        raise ValueError(f"not a technology node: {value!r}")
    return node


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[float, float, float], ...]:
    """(node_nm, area factor, energy factor) rows sorted by decreasing node."""
    rows = []
    with DATA.open(encoding="utf-8") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            vdd = float(row["vdd_nominal_V"])
            energy = float(row["energy_a"]) * vdd**2 + float(row["energy_b"]) * vdd + float(row["energy_c"])
            rows.append((float(row["node_nm"]), float(row["area_rel_45nm"]), energy))
    return tuple(sorted(rows, reverse=True))


def _factors(node_nm: float) -> tuple[float, float]:
    rows = _table()
    largest, smallest = rows[0][0], rows[-1][0]
    if not smallest <= node_nm <= largest:
        raise ValueError(f"technology node {node_nm:g} nm outside the scaling table ({smallest:g}-{largest:g} nm)")
    for (n_hi, a_hi, e_hi), (n_lo, a_lo, e_lo) in zip(rows, rows[1:]):
        if n_lo <= node_nm <= n_hi:
            if n_hi == n_lo:
                return a_hi, e_hi
            t = (math.log(node_nm) - math.log(n_hi)) / (math.log(n_lo) - math.log(n_hi))
            area = math.exp(math.log(a_hi) + t * (math.log(a_lo) - math.log(a_hi)))
            energy = math.exp(math.log(e_hi) + t * (math.log(e_lo) - math.log(e_hi)))
            return area, energy
    return rows[-1][1], rows[-1][2]  # pragma: no cover


def area_scale(from_node: object, to_node: object) -> float:
    """Multiplier for an area (um^2) characterized at ``from_node`` to estimate it at ``to_node``."""
    a_from, _ = _factors(parse_node(from_node))
    a_to, _ = _factors(parse_node(to_node))
    return a_to / a_from


def energy_scale(from_node: object, to_node: object) -> float:
    """Multiplier for an energy (pJ) characterized at ``from_node`` to estimate it at ``to_node``."""
    _, e_from = _factors(parse_node(from_node))
    _, e_to = _factors(parse_node(to_node))
    return e_to / e_from
