"""DRAM estimator: energy per access = width (bits) x pJ per bit of the DRAM type.

Attributes: ``type`` (LPDDR4, LPDDR, DDR3, DDR4, GDDR5, HBM2; default LPDDR4), ``width``
(bits per access), optional ``energy_per_bit_pJ`` to override the table. Area is 0 (off chip).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from .base import Estimator, PrimitiveQuery

DATA = Path(__file__).resolve().parent.parent / "data" / "dram_energy.csv"
DRAM_CLASSES = ("DRAM", "dram", "offchip_DRAM")


@lru_cache(maxsize=1)
def dram_table() -> dict[str, tuple[float, str]]:
    """DRAM type (upper case) -> (pJ per bit, source)."""
    with DATA.open(encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["type"].upper(): (float(r["pJ_per_bit"]), r["source"]) for r in rows}


def pj_per_bit(dram_type: str) -> float:
    """pJ per bit for a DRAM type; raises ValueError for an unknown type."""
    table = dram_table()
    key = str(dram_type).upper()
    if key not in table:
        raise ValueError(f"unknown DRAM type {dram_type!r} (known: {', '.join(sorted(table))})")
    return table[key][0]


class DRAMEstimator(Estimator):
    """Off-chip DRAM (actions read, write, update; leak and idle are 0)."""

    name = "dram_table"
    accuracy = 70.0

    def energy(self, query: PrimitiveQuery) -> float | None:
        if not query.is_class(*DRAM_CLASSES):
            return None
        action = (query.action or "").lower()
        if action in ("leak", "idle"):
            return 0.0
        if action not in ("read", "write", "update", "fill"):
            return None
        width = query.number("width", "datawidth", default=64)
        override = query.attr("energy_per_bit_pJ")
        per_bit = float(override) if override is not None else pj_per_bit(query.attr("type", default="LPDDR4"))
        return width * per_bit

    def area(self, query: PrimitiveQuery) -> float | None:
        return 0.0 if query.is_class(*DRAM_CLASSES) else None
