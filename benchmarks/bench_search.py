"""Guided search vs the exhaustive optimum on medium mapspaces, and search throughput.

    python benchmarks/bench_search.py

For each case the exhaustive search (provably optimal over the pruned mapspace) and the
guided search (default budget) run on the same problem; printed: both EDPs, the gap in %,
evaluations, seconds and mappings per second.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mapper.arch import arch_from_dict  # noqa: E402
from mapper.ert import EnergyTable  # noqa: E402
from mapper.mapspace import Mapspace  # noqa: E402
from mapper.search import search  # noqa: E402
from workloads.problem import conv2d, gemm  # noqa: E402


def arch(mesh: int, glb_depth: int, rf_depth: int):
    return arch_from_dict({"architecture": {"version": 0.4, "nodes": [
        {"_tag": "Container", "name": "system"},
        {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 64, "shared_bandwidth": 8}},
        {"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": {"datawidth": 8, "width": 64, "depth": glb_depth, "read_bandwidth": 8}},
        {"_tag": "Container", "name": "PE", "spatial": {"meshX": mesh}},
        {"_tag": "Component", "name": "RF", "class": "regfile", "attributes": {"datawidth": 8, "width": 8, "depth": rf_depth}},
        {"_tag": "Component", "name": "mac", "class": "intmac"},
    ]}})


ERT = EnergyTable({"DRAM": {"read": 512.0, "write": 512.0}, "GLB": {"read": 20.0, "write": 22.0},
                   "RF": {"read": 0.3, "write": 0.35}, "mac": {"mac": 0.3}})
CASES = [  # 0.4M - 4.6M points each after pruning
    ("GEMM 8x8x8, 4 PEs", gemm(8, 8, 8), arch(4, 64, 8)),
    ("GEMM 8x16x8, 4 PEs", gemm(8, 16, 8), arch(4, 64, 8)),
    ("GEMM 12x8x16, 4 PEs", gemm(12, 8, 16), arch(4, 128, 16)),
    ("GEMM 16x8x8, 8 PEs", gemm(16, 8, 8), arch(8, 128, 16)),
    ("conv C4 M4 R3 P4, 4 PEs", conv2d(1, 4, 4, 3, 1, 4, 1), arch(4, 64, 16)),
    ("conv C2 M4 R3 P6 s2, 4 PEs", conv2d(1, 2, 4, 3, 1, 6, 1, stride=2), arch(4, 128, 8)),
]


def main() -> None:
    print(f"{'case':<30} {'points':>9} {'exhaustive EDP':>15} {'guided EDP':>13} {'gap %':>6} {'ex s':>6} {'gd s':>6} {'gd evals':>9} {'maps/s':>9}")
    worst = 0.0
    for name, problem, a in CASES:
        points = Mapspace(problem, a).count(10**9)
        t = time.perf_counter()
        ex = search(problem, a, ert=ERT, objective="edp", mode="exhaustive")
        t_ex = time.perf_counter() - t
        gd = search(problem, a, ert=ERT, objective="edp", mode="guided", seed=0)
        gap = 100 * (gd.objective / ex.objective - 1)
        worst = max(worst, gap)
        print(f"{name:<30} {points:>9} {ex.objective:>15.6g} {gd.objective:>13.6g} {gap:>6.2f} {t_ex:>6.1f} "
              f"{gd.seconds:>6.1f} {gd.evaluated:>9} {ex.evaluated / t_ex:>9,.0f}")
    print(f"worst guided gap: {worst:.2f}% (target <= 2%)")


if __name__ == "__main__":
    main()
