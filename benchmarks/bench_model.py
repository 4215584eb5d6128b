"""Evaluation throughput: mappings per CPU second for a conv layer on a 4-level arch (one core).

    python benchmarks/bench_model.py [--batch 4096] [--repeats 5] [--seed 0]

Random valid-by-construction mappings from the mapspace sampler, evaluated in vectorized
batches (nest analysis + energy + cycles + capacity check). The figure depends on the keep
pattern (which levels keep which data space: more keepers, more parent/child pairs to count),
so three figures are printed, each labelled:

* single pattern: ``keep_patterns[0]``, where GLB, SPAD and RF keep nothing (the nest is
  effectively one level; the easiest case);
* all keep: every level keeps every data space (the hardest case);
* realistic mix: the keep patterns in the proportions a guided search of this layer
  evaluated them (each pattern timed in full batches, weighted by its share).

Then the search itself: evaluations per CPU second of a whole guided search of this layer
(mapspace construction, neighbourhoods, bookkeeping, its own batch sizes and the mesh tables
it builds included; the fastest of ``--repeats // 2`` runs, each from an empty table cache), and
its ratio to the realistic-mix figure (issue 15 target: >= 80 %); the same for the mappings
it decided, evaluated or pruned by their lower bound (docs/search.md), the share of the search's
CPU time spent in the model itself (the rest is the search's own work), and the searched
mappings themselves evaluated again in full batches (searched mappings use more of the PE
array than sampled ones, so their links cost more: this figure separates that from the
search's overhead). CPU seconds
(``time.process_time``) keep the figures comparable on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import mapper.nest_mesh as nest_mesh  # noqa: E402
import mapper.search as search_module  # noqa: E402
from mapper.arch import arch_from_dict  # noqa: E402
from mapper.ert import EnergyTable  # noqa: E402
from mapper.mapspace import Mapspace  # noqa: E402
from mapper.nest import MappingBatch  # noqa: E402
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


def per_mapping_seconds(problem, arch, space: Mapspace, keep, batch: int, repeats: int, rng: np.random.Generator) -> float:
    """CPU seconds per mapping for full batches of one keep pattern."""
    mappings = space.sample(rng, batch, keep)
    evaluate_batch(problem, arch, mappings, ERT)  # warm-up
    start = time.process_time()
    for _ in range(repeats):
        evaluate_batch(problem, arch, mappings, ERT)
    return (time.process_time() - start) / (repeats * mappings.size)


def searched_patterns(problem, arch, seed: int, repeats: int) -> tuple[Counter, int, int, float, float, list[MappingBatch]]:
    """Keep patterns (as tuples of kept sets) of every mapping a guided search evaluates, its
    evaluation and pruning counts, the CPU seconds of the whole search and of its evaluate_batch calls (the
    fastest of ``repeats`` runs, each starting with an empty mesh-table cache), and its batches."""
    original = search_module.evaluate_batch
    runs = []
    for _ in range(repeats):
        seen: Counter = Counter()
        in_model = [0.0]
        batches: list[MappingBatch] = []

        def counting(problem_, arch_, batch, *args, **kwargs):
            batches.append(batch)
            if batch.keep_index is None:
                seen[batch.keep] += batch.size
            else:
                seen.update({batch.keep_choices[k]: int(n) for k, n in zip(*np.unique(batch.keep_index, return_counts=True))})
            start = time.process_time()
            out = original(problem_, arch_, batch, *args, **kwargs)
            in_model[0] += time.process_time() - start
            return out

        search_module.evaluate_batch = counting
        nest_mesh.clear_tables()
        try:
            start = time.process_time()
            result = search_module.search(problem, arch, ert=ERT, objective="edp", mode="guided", seed=seed)
            runs.append((time.process_time() - start, in_model[0], seen, result.evaluated, result.pruned, batches))
        finally:
            search_module.evaluate_batch = original
    seconds, model_seconds, seen, evaluated, pruned, batches = min(runs, key=lambda r: r[0])
    return seen, evaluated, pruned, seconds, model_seconds, batches


def full_batches_seconds(problem, arch, batches: list[MappingBatch], size: int) -> float:
    """CPU seconds to evaluate the mappings of ``batches`` again in batches of ``size`` (from an
    empty mesh-table cache, as the search started): the same mappings without the search."""
    cat = lambda name: np.concatenate([getattr(b, name) for b in batches])  # noqa: E731
    everything = MappingBatch(cat("temporal"), cat("spatial_x"), cat("spatial_y"), cat("permutation"), batches[0].keep,
                              keep_choices=batches[0].keep_choices, keep_index=cat("keep_index"))
    nest_mesh.clear_tables()
    start = time.process_time()
    for first in range(0, everything.size, size):
        evaluate_batch(problem, arch, everything.take(np.arange(first, min(first + size, everything.size))), ERT)
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    arch = arch_from_dict(ARCH)
    problem = conv2d(1, 64, 64, 3, 3, 56, 56)
    space = Mapspace(problem, arch)
    rng = np.random.default_rng(args.seed)
    label = f"conv 3x3 C=64 M=64 P=Q=56 on DRAM/GLB/SPAD/RF + 256 MACs, batch {args.batch}, one core"
    print(label)
    single = per_mapping_seconds(problem, arch, space, space.keep_patterns[0], args.batch, args.repeats, rng)
    every = max(space.keep_patterns, key=lambda k: sum(len(s) for s in k))
    full = per_mapping_seconds(problem, arch, space, every, args.batch, args.repeats, rng)
    print(f"  single pattern (GLB/SPAD/RF keep nothing): {1 / single:>10,.0f} mappings/CPU-s")
    print(f"  all keep (every level keeps everything):   {1 / full:>10,.0f} mappings/CPU-s")

    patterns, evaluated, pruned, search_seconds, model_seconds, batches = searched_patterns(
        problem, arch, args.seed, max(1, args.repeats // 2))
    total = sum(patterns.values())
    # The most frequent patterns (95 % of the evaluations) timed in full batches, weighted by share.
    mix_seconds, covered = 0.0, 0
    for keep, count in patterns.most_common():
        if covered >= 0.95 * total:
            break
        mix_seconds += count * per_mapping_seconds(problem, arch, space, keep, args.batch, max(1, args.repeats // 2), rng)
        covered += count
    mix = covered / mix_seconds
    print(f"  realistic mix (the keep patterns a guided search evaluated, {len(patterns)} patterns, "
          f"weighted by share): {mix:>10,.0f} mappings/CPU-s")
    inside = evaluated / search_seconds
    print(f"  inside the guided search (seed {args.seed}, {evaluated} evaluations in {search_seconds:.2f} CPU-s): "
          f"{inside:>10,.0f} mappings/CPU-s = {100 * inside / mix:.0f}% of the realistic mix, "
          f"{100 * inside * single:.0f}% of the single-pattern figure")
    decided = (evaluated + pruned) / search_seconds
    print(f"  mappings the search decided ({evaluated} evaluated + {pruned} pruned by their lower bound): "
          f"{decided:>10,.0f} mappings/CPU-s = {100 * decided / mix:.0f}% of the realistic mix")
    print(f"  of the search's CPU time, evaluating its mappings (evaluate_batch): {100 * model_seconds / search_seconds:.0f}% "
          f"({evaluated / model_seconds:,.0f} mappings/CPU-s there: the searched mappings, not sampled ones)")
    again = evaluated / full_batches_seconds(problem, arch, batches, args.batch)
    print(f"  the searched mappings again, in batches of {args.batch}: {again:>10,.0f} mappings/CPU-s; the search "
          f"reaches {100 * inside / again:.0f}% of it (what batching and the search's own work cost)")


if __name__ == "__main__":
    main()
