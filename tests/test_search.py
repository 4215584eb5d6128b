"""Search optimality: on random small mapspaces the search's best equals a naive brute force
that enumerates every factorization, every full permutation of every level and every
keep/bypass choice without any pruning."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.arch import Arch, arch_from_dict
from mapper.constraints import constraints_from_list
from mapper.ert import EnergyTable
from mapper.mapspace import ordered_factorizations
from mapper.model import evaluate_batch
from mapper.nest import MappingBatch
from mapper.search import objective_values, search
from workloads.problem import Problem, conv2d, gemm
from workloads.yamlio import InputError


def _arch(rng: np.random.Generator, levels: int) -> Arch:
    nodes: list[dict] = [{"_tag": "Container", "name": "system"},
                         {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 32}}]
    if levels == 3:
        nodes.append({"_tag": "Component", "name": "GLB", "class": "SRAM",
                      "attributes": {"datawidth": 8, "width": 8, "depth": int(rng.choice([8, 16, 64])),
                                     "read_bandwidth": int(rng.choice([1, 2, 4]))}})
    nodes.append({"_tag": "Container", "name": "PE", "spatial": {"meshX": int(rng.choice([2, 4]))}})
    nodes.append({"_tag": "Component", "name": "RF", "class": "RF", "attributes": {"datawidth": 8, "width": 8, "depth": int(rng.choice([2, 4, 8]))}})
    nodes.append({"_tag": "Component", "name": "mac", "class": "intmac"})
    return arch_from_dict({"architecture": {"version": 0.4, "nodes": nodes}})


def _ert(rng: np.random.Generator) -> EnergyTable:
    e = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    return EnergyTable({
        "system.DRAM": {"read": e(50, 200), "write": e(50, 200)},
        "system.GLB": {"read": e(5, 20), "write": e(5, 20), "update": e(5, 20)},
        "system.PE.RF": {"read": e(0.5, 2), "write": e(0.5, 2)},
        "system.PE.mac": {"mac": e(1, 3)},
    })


def _brute_force(problem: Problem, arch: Arch, ert: EnergyTable, keep_fixed: dict[int, frozenset[str]], objective: str) -> float:
    """Minimum objective over every (factorization, full permutations, keep) with no pruning."""
    L, D = len(arch.levels), len(problem.dims)
    slots = []
    for i in range(L):
        slots.append((i, "t"))
        if arch.fanout(i)[0] > 1:
            slots.append((i, "x"))
    per_dim = [ordered_factorizations(problem.bounds[d], len(slots)) for d in problem.dims]
    names = problem.dataspace_names
    keep_choices = []
    for i in range(L):
        if i == 0:
            keep_choices.append([frozenset(names)])
        elif i in keep_fixed:
            keep_choices.append([keep_fixed[i]])
        else:
            keep_choices.append([frozenset(c) for r in range(len(names) + 1) for c in itertools.combinations(names, r)])
    # Every order of the dimensions whose problem bound exceeds 1 (dims of bound 1 never carry
    # a loop), at every level independently.
    active = [k for k, d in enumerate(problem.dims) if problem.bounds[d] > 1]
    fixed = [k for k in range(D) if k not in active]
    perms = np.array([fixed + list(p) for p in itertools.permutations(active)], np.int64)
    orders = np.array([perms[list(o)] for o in itertools.product(range(len(perms)), repeat=L)], np.int64)
    best = math.inf
    for keep in itertools.product(*keep_choices):
        T, SX = [], []
        for combo in itertools.product(*per_dim):
            t = np.ones((L, D), np.int64)
            sx = np.ones((L, D), np.int64)
            for k, tup in enumerate(combo):
                for (lvl, kind), f in zip(slots, tup):
                    (t if kind == "t" else sx)[lvl, k] = f
            if all(sx[i].prod() <= arch.fanout(i)[0] for i in range(L)):
                T.append(t)
                SX.append(sx)
        if not T:
            continue
        T_, SX_ = np.repeat(np.array(T), len(orders), axis=0), np.repeat(np.array(SX), len(orders), axis=0)
        O_ = np.tile(orders, (len(T), 1, 1))
        for s in range(0, len(T_), 20000):
            batch = MappingBatch(T_[s:s + 20000], SX_[s:s + 20000], np.ones_like(SX_[s:s + 20000]), O_[s:s + 20000], keep)
            values = objective_values(evaluate_batch(problem, arch, batch, ert), objective)
            best = min(best, float(values.min()))
    return best


def _random_case(seed: int) -> tuple[Problem, Arch, EnergyTable, dict[int, frozenset[str]], list, str]:
    rng = np.random.default_rng(seed)
    levels = int(rng.choice([2, 3]))
    arch = _arch(rng, levels)
    if levels == 3 or rng.random() < 0.6:
        problem = gemm(int(rng.choice([2, 3, 4])), int(rng.choice([1, 2, 3])), int(rng.choice([2, 4])))
    else:
        problem = conv2d(1, int(rng.choice([1, 2])), 2, int(rng.choice([1, 2])), 1, int(rng.choice([2, 3])), 1, stride=int(rng.choice([1, 2])))
    objective = str(rng.choice(["energy", "delay", "edp"]))
    keep_fixed: dict[int, frozenset[str]] = {}
    constraints: list = []
    if levels == 3:
        # Fix the GLB's keep choice to keep the naive enumeration small.
        kept = [d for d in problem.dataspace_names if rng.random() < 0.7]
        keep_fixed[1] = frozenset(kept)
        constraints.append({"target": "GLB", "type": "datatype", "keep": kept,
                            "bypass": [d for d in problem.dataspace_names if d not in kept]})
    return problem, arch, _ert(rng), keep_fixed, constraints, objective


@pytest.mark.parametrize("seed", range(50))
def test_search_equals_brute_force(seed: int) -> None:
    problem, arch, ert, keep_fixed, constraints, objective = _random_case(seed)
    cons = constraints_from_list(constraints, arch, problem) if constraints else None
    result = search(problem, arch, cons, ert=ert, objective=objective, mode="auto")
    assert result.exhaustive
    expected = _brute_force(problem, arch, ert, keep_fixed, objective)
    assert result.objective == pytest.approx(expected, rel=1e-12)
    # The reported mapping really has that objective when evaluated on its own.
    ev = result.evaluation
    value = {"energy": ev.energy_pJ, "delay": ev.cycles, "edp": ev.energy_pJ * ev.cycles}[objective]
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_guided_reaches_exhaustive_optimum_on_small_spaces(seed: int) -> None:
    problem, arch, ert, _, constraints, objective = _random_case(seed)
    cons = constraints_from_list(constraints, arch, problem) if constraints else None
    exact = search(problem, arch, cons, ert=ert, objective=objective, mode="exhaustive").objective
    guided = search(problem, arch, cons, ert=ert, objective=objective, mode="guided", seed=seed, max_evaluations=60_000)
    assert guided.objective <= exact * 1.02


def test_guided_is_deterministic_for_a_seed() -> None:
    problem, arch, ert, _, _, _ = _random_case(3)
    a = search(problem, arch, ert=ert, mode="guided", seed=7, max_evaluations=5000)
    b = search(problem, arch, ert=ert, mode="guided", seed=7, max_evaluations=5000)
    assert a.objective == b.objective and a.mapping == b.mapping and a.evaluated == b.evaluated


def test_no_valid_mapping_names_level_and_smallest_tile() -> None:
    arch = arch_from_dict({"architecture": {"version": 0.4, "nodes": [
        {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8}},
        {"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": {"datawidth": 8, "width": 8, "depth": 2}},
        {"_tag": "Component", "name": "mac", "class": "intmac"},
    ]}})
    cons = constraints_from_list([{"target": "GLB", "type": "datatype", "keep": ["Weights", "Inputs", "Outputs"]}], arch, gemm(2, 2, 2))
    with pytest.raises(InputError) as exc:
        search(gemm(2, 2, 2), arch, cons, mode="exhaustive")
    msg = str(exc.value)
    # The smallest tile set GLB must keep: one weight, one input, one output, 8 bits each = 24 bits > 16.
    assert "no valid mapping" in msg and "GLB" in msg and "24 bits" in msg and "16 bits" in msg


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), k=st.integers(1, 4))
def test_ordered_factorizations_property(n: int, k: int) -> None:
    tuples = ordered_factorizations(n, k)
    assert all(math.prod(t) == n and len(t) == k for t in tuples)
    assert len(set(tuples)) == len(tuples)
    # Count = prod over prime powers p^a of C(a + k - 1, k - 1).
    expected, m, p = 1, n, 2
    while m > 1:
        a = 0
        while m % p == 0:
            m //= p
            a += 1
        expected *= math.comb(a + k - 1, k - 1)
        p += 1
    assert len(tuples) == expected


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([1, 6, 12, 16]), k=st.sampled_from([2, 8, 9]), limit=st.sampled_from([1, 2, 4]),
       split=st.booleans(), seed=st.integers(0, 1000))
def test_factor_tuples_are_the_constrained_ordered_factorizations(m: int, k: int, limit: int, split: bool, seed: int) -> None:
    from mapper.mapspace import Mapspace

    rng = np.random.default_rng(seed)
    nodes = [{"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8}},
             {"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": {"datawidth": 8, "depth": 64}},
             {"_tag": "Container", "name": "PE", "spatial": {"meshX": 4, "meshY": 2}},
             {"_tag": "Component", "name": "mac", "class": "intmac"}]
    arch = arch_from_dict({"architecture": {"version": 0.4, "nodes": nodes}})
    problem = gemm(m, 2, k)
    entries = [{"target": "GLB", "type": "temporal", "factors": f"K<={limit}"},
               {"target": "GLB", "type": "spatial", "factors": f"M<={int(rng.choice([1, 2, 4]))}"}]
    if split:
        entries[1].update({"permutation": "MK", "split": 1})
    space = Mapspace(problem, arch, constraints_from_list(entries, arch, problem))
    lc = space.constraints.levels
    for d, rows in zip(problem.dims, space.dim_tuples):
        expected = []
        for tup in ordered_factorizations(problem.bounds[d], len(space.slots)):
            f = {(s.level, s.kind): v for s, v in zip(space.slots, tup)}
            x, y = f.get((1, "x"), 1), f.get((1, "y"), 1)
            ok = (x <= 4 and y <= 2 and not (x > 1 and y > 1)
                  and all(b.allows(f[(1, "t")]) for dd, b in lc[1].temporal.items() if dd == d)
                  and all(b.allows(x * y) for dd, b in lc[1].spatial.items() if dd == d)
                  and (lc[1].x_dims is None or x == 1 or d in lc[1].x_dims)
                  and (lc[1].y_dims is None or y == 1 or d in lc[1].y_dims))
            if ok:
                expected.append(tup)
        assert [tuple(r) for r in rows.tolist()] == expected


@pytest.mark.parametrize("seed", range(3))
def test_canonical_orders_keep_every_count(seed: int) -> None:
    from mapper.mapspace import Mapspace

    problem, arch, ert, _, _, _ = _random_case(seed)
    space = Mapspace(problem, arch)
    rng = np.random.default_rng(seed)
    for keep in space.keep_patterns[:: max(1, len(space.keep_patterns) // 4)]:
        batch = space.sample(rng, 64, keep)
        matters = np.tile(np.array(space.order_matters(keep)), (batch.size, 1))
        canon = space.canonical_orders(batch.temporal, batch.permutation, matters)
        assert np.array_equal(space.canonical_orders(batch.temporal, canon, matters), canon)  # idempotent
        a = evaluate_batch(problem, arch, batch, ert)
        b = evaluate_batch(problem, arch, MappingBatch(batch.temporal, batch.spatial_x, batch.spatial_y, canon, keep), ert)
        assert np.allclose(a.energy_pJ, b.energy_pJ) and np.array_equal(a.cycles, b.cycles)


def test_search_reports_a_bound_below_its_result() -> None:
    problem, arch, ert, _, _, objective = _random_case(5)
    result = search(problem, arch, ert=ert, objective=objective, mode="guided", seed=1, max_evaluations=3000)
    assert result.bound.objective <= result.objective and result.bound.gap(result.objective) >= 0


def test_search_doc_states_the_default_budgets() -> None:
    from pathlib import Path

    from mapper.run import DEFAULT_SEARCH

    import inspect

    params = inspect.signature(search).parameters
    text = (Path(__file__).resolve().parents[1] / "docs" / "search.md").read_text()
    assert (f"`search()` defaults to {params['max_evaluations'].default} evaluations and patience "
            f"{params['patience'].default}") in text
    assert (f"use {DEFAULT_SEARCH['max_evaluations']}\nevaluations, patience {DEFAULT_SEARCH['patience']} and exhaustive search "
            f"up to {DEFAULT_SEARCH['exhaustive_limit']} points") in text
