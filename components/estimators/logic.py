"""Width-parametric 28 nm logic: each primitive is a count of standard cells.

A primitive's area is the sum of its cells' areas (um^2); its energy per active action is
the sum of the cells' energies per active cycle (pJ, typical switching activity included);
``idle`` costs the clock energy of its flip-flops; ``leak`` is the cells' leakage per cycle
at ``clock_MHz``. Cell costs live in ``components/data/logic_cells_28nm.csv`` (see
docs/components.md for which numbers are calibrated to which paper table).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .base import Estimator, PrimitiveQuery
from .technology import area_scale, energy_scale

CELLS_CSV = Path(__file__).resolve().parent.parent / "data" / "logic_cells_28nm.csv"
FACTORS_CSV = Path(__file__).resolve().parent.parent / "data" / "logic_factors_28nm.csv"
NATIVE_NODE = "28nm"
IDLE_ACTIONS = ("idle",)
ACTIVE_ACTIONS = (
    "compute", "add", "subtract", "multiply", "mac", "read", "write", "update", "shift", "select",
    "compare", "encode", "detect", "accumulate", "push", "pop", "access", "decode", "convert", "count",
)

Cells = Counter


@lru_cache(maxsize=4)
def load_cells(path: str = str(CELLS_CSV)) -> dict[str, dict[str, float]]:
    """Cell name -> {area_um2, energy_pJ, idle_pJ, leak_nW}."""
    with open(path, encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["cell"]: {k: float(r[k]) for k in ("area_um2", "energy_pJ", "idle_pJ", "leak_nW")} for r in rows}


@lru_cache(maxsize=4)
def load_factors(path: str = str(FACTORS_CSV)) -> dict[str, float]:
    """Named model factors (clock sizing exponents, FP implementation factors)."""
    with open(path, encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["name"]: float(r["value"]) for r in rows}


def _clog2(n: float) -> int:
    return max(0, math.ceil(math.log2(max(n, 1))))


def adder_cells(width: float) -> Cells:
    """Ripple-equivalent integer adder/subtractor: one full adder per bit."""
    return Cells(FA=width)


def adder_tree_cells(n_inputs: float, width: float) -> Cells:
    """Binary tree summing ``n_inputs`` words of ``width`` bits (width grows one bit per level)."""
    fa, m, w = 0.0, int(n_inputs), width
    while m > 1:
        pairs = m // 2
        fa += pairs * w
        m -= pairs
        w += 1
    return Cells(FA=fa)


def multiplier_cells(width_a: float, width_b: float) -> Cells:
    """Array multiplier a x b bits: a*b partial-product ANDs and (a-1)*b full adders."""
    a, b = max(width_a, width_b), min(width_a, width_b)
    return Cells(AND2=a * b, FA=(b - 1) * a + (a if b > 1 else 0))


def mux_cells(n_inputs: float, width: float, encoding: str = "binary") -> Cells:
    """N:1 multiplexer of ``width`` bits.

    ``binary`` select (an index): a tree of N-1 2:1 muxes per bit plus a select-distribution
    term growing as (N-1)^1.5 per bit (``MUXW``: select decoding, buffering and wiring, which
    dominate wide muxes).
    ``onehot`` select (straight from a priority encoder): one AND-OR input cell (AO) per
    input and bit.
    """
    if n_inputs <= 1:
        return Cells()
    if str(encoding).lower() in ("onehot", "one_hot"):
        return Cells(AO=n_inputs * width)
    return Cells(MUX2=(n_inputs - 1) * width, MUXW=(n_inputs - 1) ** 1.5 * width)


def shifter_cells(width: float, max_shift: float) -> Cells:
    """Logarithmic barrel shifter: ceil(log2(max_shift+1)) stages of (width+max_shift) 2:1 muxes."""
    return Cells(MUX2=_clog2(max_shift + 1) * (width + max_shift))


def register_cells(width: float) -> Cells:
    return Cells(DFF=width)


def fifo_cells(width: float, depth: float) -> Cells:
    """Register FIFO: depth x width flip-flops, a depth:1 read mux and two pointers."""
    ptr = _clog2(depth)
    return Cells(DFF=depth * width + 2 * ptr, MUX2=max(depth - 1, 0) * width, HA=2 * ptr, XOR2=ptr)


def regfile_cells(width: float, depth: float) -> Cells:
    """Flip-flop register file with a depth:1 read mux and a write decoder."""
    return Cells(DFF=depth * width, MUX2=max(depth - 1, 0) * width, GE=depth * max(_clog2(depth), 1))


def comparator_cells(width: float) -> Cells:
    """Magnitude/equality comparator: one XOR and a two-gate carry chain per bit."""
    return Cells(XOR2=width, GE=2 * width)


def priority_encoder_cells(n_inputs: float) -> Cells:
    """Priority chain (2 gates per input) plus an OR-tree binary encoder."""
    return Cells(GE=2 * n_inputs + 0.5 * n_inputs * _clog2(n_inputs))


def counter_cells(width: float) -> Cells:
    return Cells(DFF=width, HA=width)


def fp_multiplier_cells(exponent: float, mantissa: float) -> Cells:
    """FP multiplier: mantissa array multiplier, exponent adder, normalize mux, round incrementer."""
    c = multiplier_cells(mantissa, mantissa)
    c.update(Cells(FA=exponent + 1, MUX2=mantissa, HA=mantissa, XOR2=1))
    return c


def fp_adder_cells(exponent: float, mantissa: float) -> Cells:
    """FP adder: exponent compare, swap, align shift, add, leading-zero count, normalize, round."""
    m = mantissa + 3  # guard, round, sticky
    c = Cells(FA=exponent + 1 + m + exponent, MUX2=2 * (mantissa + exponent), XOR2=m, HA=mantissa)
    c.update(shifter_cells(m, m))
    c.update(shifter_cells(m, m))
    c.update(priority_encoder_cells(m))
    return c


FP_FORMATS = {16: (5, 11), 32: (8, 24), 8: (4, 4)}   # bits -> (exponent bits, mantissa bits incl. hidden)


def _fp_format(q: PrimitiveQuery) -> tuple[float, float]:
    if q.attr("exponent") is not None:
        return q.number("exponent"), q.number("mantissa")
    bits = int(q.number("precision", "width", default=16))
    if bits not in FP_FORMATS:
        raise ValueError(f"{q.class_name}: unsupported FP precision {bits} (supported: {sorted(FP_FORMATS)})")
    return FP_FORMATS[bits]


def _w(q: PrimitiveQuery, default: float | None = None) -> float:
    # n_bits / precision: the spellings Accelergy's aladdin_comparator and intadder use.
    return q.number("width", "datawidth", "n_bits", "precision", default=default)


# primitive class names (Accelergy-style, aliases grouped) -> cell-count builder; the aladdin_*
# names are the classes of Accelergy's library plug-in that Timeloop's example components use.
PRIMITIVES: dict[tuple[str, ...], Callable[[PrimitiveQuery], Cells]] = {
    ("intadder", "adder", "int_adder", "intsubtractor", "subtractor", "accumulator_adder", "aladdin_adder"):
        lambda q: adder_cells(_w(q)),
    ("adder_tree", "intadder_tree"): lambda q: adder_tree_cells(q.number("n_inputs"), _w(q)),
    ("intmultiplier", "multiplier", "intmac_multiplier", "aladdin_multiplier"):
        lambda q: multiplier_cells(q.number("width_a", "width", "datawidth"), q.number("width_b", "width", "datawidth")),
    # Accelergy's aladdin_register is one bit by default; as a storage level it holds width x depth bits.
    ("aladdin_register",): lambda q: register_cells(_w(q, 1) * q.number("depth", default=1)),
    ("aladdin_counter",): lambda q: counter_cells(_w(q)),
    ("aladdin_comparator",): lambda q: comparator_cells(_w(q)),
    ("bit_serial_multiplier", "and_array"): lambda q: Cells(AND2=_w(q)),
    ("fpmultiplier", "fp_multiplier"): lambda q: fp_multiplier_cells(*_fp_format(q)),
    ("fpadder", "fp_adder"): lambda q: fp_adder_cells(*_fp_format(q)),
    ("mux", "multiplexer"): lambda q: mux_cells(q.number("n_inputs"), _w(q), q.attr("encoding", default="binary")),
    ("incrementer", "half_adder_chain"): lambda q: Cells(HA=_w(q)),
    ("barrel_shifter", "shifter"): lambda q: shifter_cells(_w(q), q.number("max_shift", default=_w(q) - 1)),
    ("reg", "register", "flipflop"): lambda q: register_cells(_w(q)),
    ("fifo", "register_fifo"): lambda q: fifo_cells(_w(q), q.number("depth")),
    ("regfile", "register_file"): lambda q: regfile_cells(_w(q), q.number("depth")),
    ("comparator",): lambda q: comparator_cells(_w(q)),
    ("priority_encoder",): lambda q: priority_encoder_cells(q.number("n_inputs", "width")),
    ("leading_one_detector", "lod", "leading_zero_counter"): lambda q: priority_encoder_cells(_w(q)),
    ("counter",): lambda q: counter_cells(_w(q)),
    ("xor_array", "inverter_array", "conditional_negator"): lambda q: Cells(XOR2=_w(q)),
    ("random_logic", "control_logic"): lambda q: Cells(GE=q.number("gates", "gate_equivalents")),
    ("wire_bus", "broadcast_bus"): lambda q: Cells(WIRE=_w(q) * q.number("fanout", default=1)),
}


FP_CLASSES = ("fpmultiplier", "fp_multiplier", "fpadder", "fp_adder")


def cells_for(query: PrimitiveQuery) -> Cells | None:
    """Cell counts of a supported primitive, else None."""
    for names, build in PRIMITIVES.items():
        if query.is_class(*names):
            return build(query)
    return None


class LogicEstimator(Estimator):
    """28 nm standard-cell model of the width-parametric logic primitives."""

    name = "logic_28nm_cells"
    accuracy = 60.0

    def __init__(self, cells_csv: str | Path = CELLS_CSV, factors_csv: str | Path = FACTORS_CSV):
        self.cells = load_cells(str(cells_csv))
        self.factors = load_factors(str(factors_csv))

    def _total(self, cells: Cells, field: str) -> float:
        total = 0.0
        for cell, count in cells.items():
            if cell not in self.cells:
                raise ValueError(f"cell {cell!r} missing from the logic cell table")
            total += count * self.cells[cell][field]
        return total

    def sizing(self, query: PrimitiveQuery, kind: str) -> float:
        """Model factor for ``kind`` (``area`` or ``energy``): FP units carry ``fp_<kind>_factor``;
        a ``design_family`` attribute selects ``<family>_<kind>_factor`` (synthesis setup of a
        paper: clock target, cell sizing, activity), 1 when the family has no entry."""
        f = self.factors
        factor = 1.0
        if query.is_class(*FP_CLASSES):
            factor *= f.get(f"fp_{kind}_factor", 1.0)
        family = query.attr("design_family")
        if family:
            factor *= f.get(f"{family}_{kind}_factor", 1.0)
        return factor

    def energy(self, query: PrimitiveQuery) -> float | None:
        cells = cells_for(query)
        if cells is None:
            return None
        action = (query.action or "").lower()
        tech = query.attr("technology", default=NATIVE_NODE)
        scale = energy_scale(NATIVE_NODE, tech)
        if action in IDLE_ACTIONS:
            return self._total(cells, "idle_pJ") * scale * self.sizing(query, "energy")
        if action == "leak":
            clock = query.number("clock_MHz", default=1000.0)
            return self._total(cells, "leak_nW") * 1e-3 / clock * scale * self.sizing(query, "area")
        if action in ACTIVE_ACTIONS:
            activity = query.number("activity", default=1.0)
            return self._total(cells, "energy_pJ") * activity * scale * self.sizing(query, "energy")
        return None

    def area(self, query: PrimitiveQuery) -> float | None:
        cells = cells_for(query)
        if cells is None:
            return None
        tech = query.attr("technology", default=NATIVE_NODE)
        return self._total(cells, "area_um2") * self.sizing(query, "area") * area_scale(NATIVE_NODE, tech)
