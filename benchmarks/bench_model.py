"""Evaluation throughput: mappings per second for a conv layer on a 4-level arch (one core).

    python benchmarks/bench_model.py [--batch 4096] [--repeats 5]

Random valid-by-construction mappings from the mapspace sampler, evaluated in vectorized
batches (nest analysis + energy + cycles + capacity check).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mapper.arch import arch_from_dict  # noqa: E402
from mapper.ert import EnergyTable  # noqa: E402
from mapper.mapspace import Mapspace  # noqa: E402
from mapper.model import evaluate_batch  # noqa: E402
from workloads.problem import conv2d  # noqa: E402

ARCH = {"architecture": {"version": 0.4, "nodes": [
    {"_tag": "Container", "name": "system"},
    {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 64}},
    {"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": {"datawidth": 8, "width": 64, "depth": 16384, "read_bandwidth": 16}},
    {"_tag": "Container", "name": "PE", "spatial": {"meshX": 16, "meshY": 16}},
    {"_tag": "Component", "name": "SPAD", "class": "regfile", "attributes": {"datawidth": 8, "width": 8, "depth": 256}},
    {"_tag": "Component", "name": "RF", "class": "regfile", "attributes": {"datawidth": 8, "width": 8, "depth": 16}},
    {"_tag": "Component", "name": "mac", "class": "intmac"},
]}}
ERT = EnergyTable({
    "DRAM": {"read": 512.0, "write": 512.0}, "GLB": {"read": 20.0, "write": 22.0},
    "SPAD": {"read": 1.0, "write": 1.1}, "RF": {"read": 0.2, "write": 0.25}, "mac": {"mac": 0.3},
})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    arch = arch_from_dict(ARCH)
    problem = conv2d(1, 64, 64, 3, 3, 56, 56)
    space = Mapspace(problem, arch)
    rng = np.random.default_rng(0)
    keep = space.keep_patterns[0]
    batch = space.sample(rng, args.batch, keep)
    evaluate_batch(problem, arch, batch, ERT)  # warm-up
    start = time.perf_counter()
    for _ in range(args.repeats):
        evaluate_batch(problem, arch, batch, ERT)
    dt = time.perf_counter() - start
    n = args.repeats * batch.size
    print(f"conv 3x3 C=64 M=64 P=Q=56 on DRAM/GLB/SPAD/RF + 256 MACs: {n} mappings in {dt:.3f} s "
          f"= {n / dt:,.0f} mappings/s (one core, batch {batch.size})")


if __name__ == "__main__":
    main()
