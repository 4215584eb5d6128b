"""Search quality over seeds: guided search vs the exhaustive optimum and the lower bound.

    python benchmarks/bench_search.py [--seeds 10] [--cases gemm conv 3level] [--no-exhaustive]
    python benchmarks/bench_search.py --budgets [--seeds 3]

Cases: six medium mapspaces (0.4M - 4.6M points after pruning, exhaustive search feasible)
and the 3-level GEMM 768x768x256 of ../shared/mapper_cases (873M points: no exhaustive
optimum; its lower bound is printed instead). Per case: the exhaustive optimum (EDP,
pJ x cycles), the guided search's best over seeds 0..N-1 (min, max), the seed spread
(max / min - 1), the worst seed's gap to the exhaustive optimum, the gap of the best to
the lower bound (mapper.bounds), mean evaluations, mappings pruned by their own bound
(docs/search.md) and seconds per seed, and evaluations per second inside the search.
Targets (issue 15): spread <= 1 %, worst gap <= 2 %.

``--budgets``: the whole-model default budget (mapper.run.DEFAULT_SEARCH) against 60,000
evaluations on every unique layer of GPT-2 on Panacea and ResNet-18 on BitVert, per seed:
the objectives and how many differ. ``--batches``: on the same layers, the default budget with
descent steps of at least 128 or 256 new candidates (``search(min_batch=...)``): CPU seconds
and the gap to the best objective found.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from cases import CASES_DIR, load_case  # noqa: E402

from mapper.arch import arch_from_dict  # noqa: E402
from mapper.ert import EnergyTable  # noqa: E402
from mapper.mapspace import Mapspace  # noqa: E402
from mapper.search import search  # noqa: E402
from workloads.problem import conv2d, gemm  # noqa: E402

try:
    from mapper.bounds import lower_bound  # noqa: E402
except ImportError:  # before mapper.bounds existed (for before/after runs)
    lower_bound = None


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


def cases() -> list[tuple[str, object, object, object, EnergyTable]]:
    out = [
        ("GEMM 8x8x8, 4 PEs", gemm(8, 8, 8), arch(4, 64, 8), None, ERT),
        ("GEMM 8x16x8, 4 PEs", gemm(8, 16, 8), arch(4, 64, 8), None, ERT),
        ("GEMM 12x8x16, 4 PEs", gemm(12, 8, 16), arch(4, 128, 16), None, ERT),
        ("GEMM 16x8x8, 8 PEs", gemm(16, 8, 8), arch(8, 128, 16), None, ERT),
        ("conv C4 M4 R3 P4, 4 PEs", conv2d(1, 4, 4, 3, 1, 4, 1), arch(4, 64, 16), None, ERT),
        ("conv C2 M4 R3 P6 s2, 4 PEs", conv2d(1, 2, 4, 3, 1, 6, 1, stride=2), arch(4, 128, 8), None, ERT),
    ]
    folder = CASES_DIR / "3level_gemm_768x768x256"
    if folder.exists():
        problem, a, constraints, ert = load_case(folder)
        out.append(("3-level GEMM 768x768x256", problem, a, constraints, ert))
    return out


def whole_model_layers() -> list[tuple[str, str, Any, Any, Any]]:
    """(spec name, model, spec, its synthetic-statistics models, problem) for every unique layer
    of GPT-2 on Panacea and ResNet-18 on BitVert (prefill, 256 tokens)."""
    from mapper.bitlevel import layer_models
    from mapper.spec import load_spec
    from workloads.zoo import build_graph

    out = []
    for spec_name, model in (("panacea", "gpt2"), ("bitvert", "resnet18")):
        spec = load_spec(spec_name)
        models = layer_models(spec, None)
        out += [(spec_name, model, spec, models, problem)
                for problem, _ in build_graph(model, phase="prefill", seq_len=256).unique_problems()]
    return out


def search_layer(layer: tuple[str, str, Any, Any, Any], **options: Any) -> Any:
    """The whole-model search (mapper.run.DEFAULT_SEARCH, changed by ``options``) of one layer."""
    from mapper.run import DEFAULT_SEARCH

    _, _, spec, models, problem = layer
    return search(problem, spec.arch, spec.constraints_for(problem), ert=spec.ert, models=models,
                  clock_MHz=spec.clock_MHz, **{**DEFAULT_SEARCH, **options})


def budgets(seeds: int) -> None:
    from mapper.run import DEFAULT_SEARCH

    differ = total = 0
    for layer in whole_model_layers():
        row = []
        for seed in range(seeds):
            runs = [search_layer(layer, seed=seed), search_layer(layer, seed=seed, max_evaluations=60_000)]
            differ += runs[0].objective != runs[1].objective
            total += 1
            row.append(f"{runs[0].objective:.5g}/{runs[1].objective:.5g}")
        spec_name, model, _, _, problem = layer
        print(f"{spec_name:<8} {model:<9} {str(problem.bounds):<62} default/60k per seed: {'  '.join(row)}", flush=True)
    print(f"default budget ({DEFAULT_SEARCH['max_evaluations']} evaluations) differs from 60,000 in {differ} of {total} searches")


def batches(seeds: int) -> None:
    """The whole-model default budget with descent steps of at least 128 or 256 new candidates,
    on every unique layer of GPT-2/Panacea and ResNet-18/BitVert: CPU seconds and the gap to the
    best objective any run found (the default budget or 60,000 evaluations, seeds 0..N-1)."""
    from mapper.run import DEFAULT_SEARCH
    from mapper.search import default_min_batch

    floors = (128, 256)
    layers = whole_model_layers()

    def run(seed: int, **options: Any) -> tuple[np.ndarray, float]:
        start = time.process_time()
        values = [search_layer(layer, seed=seed, **options).objective for layer in layers]
        return np.array(values), time.process_time() - start

    found: dict[int, list[np.ndarray]] = {f: [] for f in floors}
    cpu = dict.fromkeys(floors, 0.0)
    best = np.full(len(layers), np.inf)
    for seed in range(seeds):
        best = np.minimum(best, run(seed, max_evaluations=60_000)[0])
        for floor in floors:
            values, seconds = run(seed, min_batch=default_min_batch(DEFAULT_SEARCH["max_evaluations"], floor))
            found[floor].append(values)
            cpu[floor] += seconds
    for floor in floors:
        best = np.minimum(best, np.min(found[floor], axis=0))
    for floor in floors:
        gap = np.array(found[floor]) / best - 1
        print(f"steps of >= {floor} candidates: {cpu[floor]:.1f} CPU-s; gap to the best found: mean {100 * gap.mean():.2f} %, "
              f"max {100 * gap.max():.2f} %; at the best in {100 * np.mean(gap < 1e-9):.0f} % of {gap.size} (layer, seed)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--cases", nargs="*", help="substrings of case names to run (default: all)")
    ap.add_argument("--no-exhaustive", action="store_true", help="skip the exhaustive optima")
    ap.add_argument("--exhaustive-limit", type=int, default=10_000_000, help="largest mapspace searched exhaustively")
    ap.add_argument("--budgets", action="store_true", help="compare the whole-model default budget with 60,000 evaluations")
    ap.add_argument("--batches", action="store_true", help="compare descent steps of >= 128 and >= 256 candidates")
    args = ap.parse_args()
    if args.budgets:
        budgets(args.seeds)
        return
    if args.batches:
        batches(args.seeds)
        return
    print(f"{'case':<27} {'points':>10} {'exhaustive':>11} {'best':>11} {'worst':>11} {'spread%':>7} {'gap%':>6} "
          f"{'bound gap%':>10} {'evals':>7} {'pruned':>7} {'s/seed':>6} {'evals/s':>8}", flush=True)
    worst_spread = worst_gap = 0.0
    for name, problem, a, constraints, ert in cases():
        if args.cases and not any(c.lower() in name.lower() for c in args.cases):
            continue
        points = Mapspace(problem, a, constraints).count(10**10)
        exact = None
        if not args.no_exhaustive and points <= args.exhaustive_limit:
            exact = search(problem, a, constraints, ert=ert, objective="edp", mode="exhaustive").objective
        values, evals, pruned, seconds = [], 0, 0, 0.0
        for seed in range(args.seeds):
            t = time.perf_counter()
            r = search(problem, a, constraints, ert=ert, objective="edp", mode="guided", seed=seed)
            seconds += time.perf_counter() - t
            values.append(r.objective)
            evals += r.evaluated
            pruned += r.pruned
        best, worst = min(values), max(values)
        spread = 100 * (worst / best - 1)
        gap = 100 * (worst / exact - 1) if exact else float("nan")
        bound_gap = float("nan")
        if lower_bound is not None:
            lb = lower_bound(problem, a, constraints, ert=ert, objective="edp").objective
            bound_gap = 100 * (best / lb - 1) if lb > 0 else float("inf")
        worst_spread = max(worst_spread, spread)
        if exact:
            worst_gap = max(worst_gap, gap)
        print(f"{name:<27} {points:>10} {exact or float('nan'):>11.5g} {best:>11.5g} {worst:>11.5g} {spread:>7.2f} {gap:>6.2f} "
              f"{bound_gap:>10.1f} {evals / args.seeds:>7.0f} {pruned / args.seeds:>7.0f} {seconds / args.seeds:>6.2f} "
              f"{evals / seconds:>8,.0f}", flush=True)
    print(f"worst seed spread: {worst_spread:.2f}% (target <= 1%); worst gap to exhaustive: {worst_gap:.2f}% (target <= 2%)")


if __name__ == "__main__":
    main()
