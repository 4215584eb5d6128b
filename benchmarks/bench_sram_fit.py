"""Fit error of the SRAM estimator against the CACTI 28 nm data.

Usage: python benchmarks/bench_sram_fit.py [path/to/sram_28nm_cacti.csv] [--refit]

Prints the median and worst relative error (|model / CACTI - 1|) of read energy, write
energy, leakage and area over every CACTI configuration, for the shipped coefficients
(components/data/sram_28nm_fit.csv) or, with --refit, for a fresh fit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.estimators.sram_fit import (QUANTITIES, default_cacti_path, fit, read_cacti,  # noqa: E402
                                            read_coefficients, relative_errors)


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    path = Path(args[0]) if args else default_cacti_path()
    if path is None or not Path(path).is_file():
        print("CACTI data not found: pass the path to sram_28nm_cacti.csv (or set BITLOOP_SHARED)")
        return 2
    rows = read_cacti(path)
    start = time.perf_counter()
    coefs = fit(rows) if "--refit" in argv else read_coefficients()
    elapsed = time.perf_counter() - start
    print(f"SRAM fit vs CACTI 28 nm ({len(rows)} configurations, {path})")
    print(f"coefficients: {'refit in %.2f s' % elapsed if '--refit' in argv else 'shipped'}")
    print(f"{'quantity':12s} {'median':>8s} {'p90':>8s} {'worst':>8s}")
    for q in QUANTITIES:
        e = relative_errors(coefs, rows, q)
        print(f"{q:12s} {np.median(e):8.1%} {np.quantile(e, 0.9):8.1%} {e.max():8.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
