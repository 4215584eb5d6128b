"""Smooth fit of SRAM energy, leakage and area to the CACTI 28 nm data set.

Model (per port type and CACTI bank count, see docs/components.md)::

    y(C, W) = sum_ij c_ij * (W / 64)^p_i * (C / 8 KiB)^q_j,   c_ij >= 0

with ``C`` the capacity in bits and ``W`` the access width in bits. Non-negative
coefficients on non-decreasing basis terms make every fitted quantity non-decreasing in
capacity and width. Coefficients minimize the sum of absolute relative errors (a linear
program), which targets the median error and keeps the fit smooth through CACTI's
layout quirks.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

WIDTH_EXPONENTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
CAPACITY_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
WIDTH_REF_BITS = 64.0
CAPACITY_REF_BITS = 8192.0 * 8
QUANTITIES = ("read_pJ", "write_pJ", "leakage_mW", "area_mm2")
PORT_TYPES = ("rw", "r_w")   # one read/write port; one read + one write port

COEFFICIENTS_CSV = Path(__file__).resolve().parent.parent / "data" / "sram_28nm_fit.csv"


def basis(capacity_bits: np.ndarray, width_bits: np.ndarray) -> np.ndarray:
    """Basis matrix (rows: points, columns: (width exponent, capacity exponent) pairs)."""
    w = np.asarray(width_bits, dtype=float)[:, None] / WIDTH_REF_BITS
    c = np.asarray(capacity_bits, dtype=float)[:, None] / CAPACITY_REF_BITS
    cols = [w[:, 0] ** p * c[:, 0] ** q for p in WIDTH_EXPONENTS for q in CAPACITY_EXPONENTS]
    return np.stack(cols, axis=1)


def port_type(read_ports: int, write_ports: int, rw_ports: int) -> str:
    """``rw`` for a single read/write port, ``r_w`` for separate read and write ports."""
    return "rw" if read_ports + write_ports == 0 else "r_w"


def l1_relative_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimizing sum |x c / y - 1| (linear program)."""
    from scipy.optimize import linprog

    a = x / y[:, None]
    n, m = a.shape
    cost = np.concatenate([np.zeros(m), np.ones(n)])
    eye = np.eye(n)
    a_ub = np.block([[a, -eye], [-a, -eye]])
    b_ub = np.concatenate([np.ones(n), -np.ones(n)])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(0, None)] * (m + n), method="highs")
    if not res.success:  # pragma: no cover - highs solves this bounded LP
        raise RuntimeError(f"SRAM fit failed: {res.message}")
    coef = res.x[:m]
    coef[coef < 1e-12] = 0.0
    return coef


@dataclass(frozen=True)
class CactiRow:
    """One CACTI configuration (capacity in bits)."""

    capacity_bits: float
    width_bits: float
    banks: int
    ports: str
    values: dict[str, float]


def read_cacti(path: str | os.PathLike) -> list[CactiRow]:
    """Read ``sram_28nm_cacti.csv`` (columns as in its README)."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append(CactiRow(
                capacity_bits=float(r["capacity_bytes"]) * 8,
                width_bits=float(r["width_bits"]),
                banks=int(r["banks"]),
                ports=port_type(int(r["read_ports"]), int(r["write_ports"]), int(r["rw_ports"])),
                values={q: float(r[q]) for q in QUANTITIES},
            ))
    return rows


def fit(rows: Iterable[CactiRow]) -> dict[tuple[str, int, str], np.ndarray]:
    """Fit coefficients for every (port type, banks, quantity) present in ``rows``."""
    rows = list(rows)
    out: dict[tuple[str, int, str], np.ndarray] = {}
    for key in sorted({(r.ports, r.banks) for r in rows}):
        sub = [r for r in rows if (r.ports, r.banks) == key]
        x = basis(np.array([r.capacity_bits for r in sub]), np.array([r.width_bits for r in sub]))
        for q in QUANTITIES:
            out[(key[0], key[1], q)] = l1_relative_fit(x, np.array([r.values[q] for r in sub]))
    return out


def write_coefficients(coefs: dict[tuple[str, int, str], np.ndarray], path: str | os.PathLike = COEFFICIENTS_CSV) -> None:
    """Store fitted coefficients as CSV (one row per port type, banks, quantity)."""
    from workloads.yamlio import write_atomic

    header = ["ports", "banks", "quantity"] + [f"w{p:g}_c{q:g}" for p in WIDTH_EXPONENTS for q in CAPACITY_EXPONENTS]
    lines = [
        "# SRAM 28nm fit coefficients (components/estimators/sram_fit.py); term wP_cQ = (W/64)^P * (C/64Kibit)^Q",
        ",".join(header),
    ]
    for (ports, banks, q), c in sorted(coefs.items()):
        lines.append(",".join([ports, str(banks), q] + [f"{v:.9g}" for v in c]))
    write_atomic(path, "\n".join(lines) + "\n")


def read_coefficients(path: str | os.PathLike = COEFFICIENTS_CSV) -> dict[tuple[str, int, str], np.ndarray]:
    """Load coefficients written by :func:`write_coefficients`."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for r in csv.reader(line for line in fh if not line.startswith("#")):
            if r[0] == "ports":
                continue
            out[(r[0], int(r[1]), r[2])] = np.array([float(v) for v in r[3:]])
    return out


def relative_errors(coefs: dict[tuple[str, int, str], np.ndarray], rows: Iterable[CactiRow], quantity: str) -> np.ndarray:
    """|fit / CACTI - 1| for every row (fit evaluated at the row's own configuration)."""
    errs = []
    for r in rows:
        c = coefs[(r.ports, r.banks, quantity)]
        pred = float(basis(np.array([r.capacity_bits]), np.array([r.width_bits]))[0] @ c)
        errs.append(abs(pred / r.values[quantity] - 1.0))
    return np.array(errs)


def default_cacti_path() -> Path | None:
    """The shared CACTI data file if present (``$BITLOOP_SHARED``, or ``shared/`` beside the checkout or
    beside one of its parent folders); only the maintenance refit and the tests read it."""
    candidates = []
    if os.environ.get("BITLOOP_SHARED"):
        candidates.append(Path(os.environ["BITLOOP_SHARED"]) / "data" / "sram_28nm_cacti.csv")
    repo = Path(__file__).resolve().parents[2]     # a source checkout: ../shared (or a parent's shared/)
    candidates += [parent / "shared" / "data" / "sram_28nm_cacti.csv" for parent in repo.parents]
    return next((p for p in candidates if p.is_file()), None)


def main() -> None:  # pragma: no cover - maintenance entry point
    """Refit from the CACTI data and rewrite ``components/data/sram_28nm_fit.csv``."""
    path = default_cacti_path()
    if path is None:
        raise SystemExit("CACTI data not found (set BITLOOP_SHARED)")
    rows = read_cacti(path)
    coefs = fit(rows)
    write_coefficients(coefs)
    for q in QUANTITIES:
        e = relative_errors(coefs, rows, q)
        print(f"{q:12s} median {np.median(e):.3f} worst {e.max():.3f}")


if __name__ == "__main__":  # pragma: no cover
    main()
