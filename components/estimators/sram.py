"""SRAM estimator: read/write/leak energy and area from the CACTI 28 nm fit.

Attributes (Accelergy ``SRAM`` names): ``width`` (bits per access), ``depth`` (rows),
``n_banks`` (default 1), ``n_rd_ports``/``n_wr_ports``/``n_rdwr_ports`` (default one
read/write port), ``technology`` (default 28nm), ``clock_MHz`` (for leak per cycle,
default 1000), ``leak_scale`` (default 1: CACTI itrs-hp cells at 360 K, which leak a lot),
``banking``: ``cacti`` (default; CACTI's banks, one access reads one bank of the full
width) or ``split`` (the rule several accelerator simulators use: N independent one-bank
arrays of capacity/N and width/N accessed together, so energy and area are N x one array). Banks follow CACTI's meaning: one access reads one bank of the full width.
Bank counts between the fitted ones (1, 4, 16) are interpolated geometrically in log2(banks);
counts beyond them are clamped. More than two ports scale area and leakage linearly.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .base import Estimator, PrimitiveQuery
from .sram_fit import COEFFICIENTS_CSV, basis, read_coefficients
from .technology import area_scale, energy_scale

SRAM_CLASSES = ("SRAM", "sram", "smartbuffer_SRAM_primitive", "cacti_SRAM")
NATIVE_NODE = "28nm"


@lru_cache(maxsize=1)
def _coefs() -> dict[tuple[str, int, str], np.ndarray]:
    return read_coefficients(COEFFICIENTS_CSV)


def _value(ports: str, banks: float, quantity: str, capacity_bits: float, width_bits: float) -> float:
    coefs = _coefs()
    grid = sorted(b for (p, b, q) in coefs if p == ports and q == quantity)
    x = basis(np.array([capacity_bits]), np.array([width_bits]))[0]

    def at(b: int) -> float:
        return max(float(x @ coefs[(ports, b, quantity)]), 1e-12)

    b = min(max(banks, grid[0]), grid[-1])
    for lo, hi in zip(grid, grid[1:]):
        if lo <= b <= hi:
            t = (math.log2(b) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
            return at(lo) ** (1 - t) * at(hi) ** t
    return at(int(b))


def sram_quantity(quantity: str, capacity_bits: float, width_bits: float, banks: float = 1,
                  read_ports: int = 0, write_ports: int = 0, rw_ports: int = 1) -> float:
    """One fitted CACTI quantity (``read_pJ``, ``write_pJ``, ``leakage_mW``, ``area_mm2``) at 28 nm.

    Non-decreasing in capacity: the value is the largest of the fit at ``capacity_bits`` and at
    every power-of-two capacity from 64 bits up to it (the bank-trend ratio of two fits used
    beyond 4 banks can otherwise dip as capacity grows).
    """
    if capacity_bits <= 0 or width_bits <= 0:
        raise ValueError("SRAM capacity and width must be positive")
    value = _fitted(quantity, capacity_bits, width_bits, banks, read_ports, write_ports, rw_ports)
    smaller = 64.0
    while smaller < capacity_bits:
        value = max(value, _fitted(quantity, smaller, width_bits, banks, read_ports, write_ports, rw_ports))
        smaller *= 2
    return value


def _fitted(quantity: str, capacity_bits: float, width_bits: float, banks: float,
            read_ports: int, write_ports: int, rw_ports: int) -> float:
    n_ports = read_ports + write_ports + rw_ports
    if n_ports <= 1:
        return _value("rw", banks, quantity, capacity_bits, width_bits)
    two_port = _value("r_w", min(banks, 4), quantity, capacity_bits, width_bits)
    if banks > 4:  # no 1R+1W data above 4 banks: carry the 1RW bank trend
        two_port *= _value("rw", banks, quantity, capacity_bits, width_bits) / _value("rw", 4, quantity, capacity_bits, width_bits)
    if n_ports > 2 and quantity in ("leakage_mW", "area_mm2"):
        two_port *= n_ports / 2
    return two_port


class SRAMEstimator(Estimator):
    """CACTI-fitted SRAM (actions: read, write, update, leak, idle)."""

    name = "sram_cacti28_fit"
    accuracy = 80.0

    def _quantity(self, q: PrimitiveQuery, quantity: str) -> float:
        cap, width, banks, rd, wr, rdwr = self._shape(q)
        banking = str(q.attr("banking", default="cacti")).lower()
        if banking == "split" and banks > 1:
            return banks * sram_quantity(quantity, cap / banks, width / banks, 1, rd, wr, rdwr)
        if banking not in ("cacti", "split"):
            raise ValueError(f"SRAM banking must be 'cacti' or 'split', got {banking!r}")
        return sram_quantity(quantity, cap, width, banks, rd, wr, rdwr)

    def _shape(self, q: PrimitiveQuery) -> tuple[float, float, float, int, int, int]:
        width = q.number("width", "datawidth", minimum=1)
        depth = q.number("depth", "entries", minimum=1)
        banks = q.number("n_banks", "banks", default=1, minimum=1)
        rd = int(q.number("n_rd_ports", default=0))
        wr = int(q.number("n_wr_ports", default=0))
        rdwr = int(q.number("n_rdwr_ports", "n_rw_ports", default=0 if rd + wr else 1))  # n_rw_ports: Accelergy's spelling
        return width * depth, width, banks, rd, wr, rdwr

    def energy(self, query: PrimitiveQuery) -> float | None:
        if not query.is_class(*SRAM_CLASSES):
            return None
        tech = query.attr("technology", default=NATIVE_NODE)
        action = (query.action or "").lower()
        if action in ("read",):
            value = self._quantity(query, "read_pJ")
        elif action in ("write", "update", "fill"):
            value = self._quantity(query, "write_pJ")
        elif action == "leak":
            clock = query.number("clock_MHz", default=1000.0)
            leak_scale = query.number("leak_scale", default=1.0)   # e.g. < 1 for low-leakage cells
            mw = self._quantity(query, "leakage_mW") * leak_scale
            return mw * 1000.0 / clock * energy_scale(NATIVE_NODE, tech)
        elif action == "idle":
            return 0.0
        else:
            return None
        return value * energy_scale(NATIVE_NODE, tech)

    def area(self, query: PrimitiveQuery) -> float | None:
        if not query.is_class(*SRAM_CLASSES):
            return None
        tech = query.attr("technology", default=NATIVE_NODE)
        return self._quantity(query, "area_mm2") * 1e6 * area_scale(NATIVE_NODE, tech)
