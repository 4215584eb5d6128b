"""Search optimality: on random small mapspaces the search's best equals a naive brute force
that enumerates every factorization, every order of every level's loops and every keep/bypass
choice without any pruning, and evaluates each mapping independently of the production model:
counts from the Timeloop walker (tests/timeloop_oracle.py), energy and cycles priced by hand."""

from __future__ import annotations

import itertools
import math
from typing import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.arch import Arch, arch_from_dict
from mapper.constraints import constraints_from_list
from mapper.ert import EnergyTable
from mapper.mapping import LevelMapping, Mapping
from mapper.model import evaluate_batch
from mapper.nest import MappingBatch
from mapper.mapspace import ordered_factorizations
from mapper.search import search
from workloads.problem import Problem, conv2d, gemm
from workloads.yamlio import InputError

from timeloop_oracle import timeloop_walk


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


def _factorizations(n: int, k: int) -> list[tuple[int, ...]]:
    """Every k-tuple of positive integers whose product is n (written out here, independently
    of mapper.mapspace)."""
    if k == 1:
        return [(n,)]
    return [(f, *rest) for f in range(1, n + 1) if n % f == 0 for rest in _factorizations(n // f, k - 1)]


def _mapspace(problem: Problem, arch: Arch, keep_fixed: dict[int, frozenset[str]]) -> Iterator[Mapping]:
    """Every mapping: each dimension's bound split over every level's temporal slot and, where
    the level fans out, its spatial X slot; every order of each level's loops; every keep choice.
    Orders only differ in the loops of bound > 1 (a loop of one iteration is no loop: Timeloop's
    ``Mapping::ParseMapping`` drops it, as the walker does), so those are the ones permuted."""
    L = len(arch.levels)
    slots = [(i, kind) for i in range(L) for kind in ("t", "x") if kind == "t" or arch.fanout(i)[0] > 1]
    names = problem.dataspace_names
    every = [frozenset(c) for r in range(len(names) + 1) for c in itertools.combinations(names, r)]
    keeps = [[frozenset(names)] if i == 0 else [keep_fixed[i]] if i in keep_fixed else every for i in range(L)]
    for combo in itertools.product(*(_factorizations(problem.bounds[d], len(slots)) for d in problem.dims)):
        t: list[dict[str, int]] = [{} for _ in range(L)]
        sx: list[dict[str, int]] = [{} for _ in range(L)]
        for d, split in zip(problem.dims, combo):
            for (i, kind), f in zip(slots, split):
                if f > 1:
                    (t if kind == "t" else sx)[i][d] = f
        if any(math.prod(sx[i].values()) > arch.fanout(i)[0] for i in range(L)):
            continue
        for orders in itertools.product(*(itertools.permutations(sorted(t[i])) for i in range(L))):
            for keep in itertools.product(*keeps):
                yield Mapping(tuple(LevelMapping(t[i], orders[i], sx[i], {}, (), keep[i]) for i in range(L)))


# Words per vector access: DRAM 32 bits wide, GLB and RF one 8-bit word (see _arch).
BLOCK = {"DRAM": 4, "GLB": 1, "RF": 1}


def _hand_cost(problem: Problem, arch: Arch, ert: EnergyTable, mapping: Mapping) -> tuple[float, int] | None:
    """(energy pJ, cycles) of one mapping from the Timeloop walker's per-instance counts, priced
    by hand: per used instance, ceil(count / block) vector accesses of each kind times the ERT
    entry (a fill, and an update without its own entry, is priced as a write), plus one ``mac``
    per compute. Cycles: one per compute step, or the GLB's reads over its read bandwidth if
    more. None when a kept tile set does not fit its level (8 bits per element)."""
    walk = timeloop_walk(problem, arch, mapping)
    energy = walk["computes"] * ert.energy_pJ["system.PE.mac"]["mac"]
    cycles = walk["cycles"]
    for lvl in arch.levels:
        out = walk["levels"][lvl.name]
        table = ert.energy_pJ[lvl.path]
        if lvl.name != "DRAM" and sum(v["tile_size"] for v in out["dataspaces"].values()) * 8 > lvl.attributes["depth"] * 8:
            return None
        for v in out["dataspaces"].values():
            for count, action in (("reads", "read"), ("fills", "write"), ("updates", "update")):
                accesses = math.ceil(v[f"{count}_per_instance"] / BLOCK[lvl.name])
                energy += out["used_instances"] * accesses * table.get(action, table["write"])
        if lvl.name == "GLB":
            reads = sum(v["reads_per_instance"] for v in out["dataspaces"].values())
            cycles = max(cycles, reads / lvl.attributes["read_bandwidth"])
    return energy, math.ceil(cycles)


def _brute_force(problem: Problem, arch: Arch, ert: EnergyTable, keep_fixed: dict[int, frozenset[str]], objective: str) -> float:
    """Minimum objective over the whole mapspace, evaluated by the walker and priced by hand."""
    best = math.inf
    for mapping in _mapspace(problem, arch, keep_fixed):
        cost = _hand_cost(problem, arch, ert, mapping)
        if cost is not None:
            energy, cycles = cost
            best = min(best, {"energy": energy, "delay": cycles, "edp": energy * cycles}[objective])
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


SPACE_LIMIT = 700   # mappings per brute force (the walker takes about a millisecond each)


def _tiny_case(seed: int) -> tuple[Problem, Arch, EnergyTable, dict[int, frozenset[str]], list, str]:
    """The first random case from seed, seed + 1000, ... whose mapspace has <= SPACE_LIMIT mappings."""
    for attempt in itertools.count():
        case = _random_case(seed + 1000 * attempt)
        if sum(1 for _ in itertools.islice(_mapspace(case[0], case[1], case[3]), SPACE_LIMIT + 1)) <= SPACE_LIMIT:
            return case
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(30))
def test_search_equals_brute_force(seed: int) -> None:
    """The search's best (exhaustive over its pruned mapspace) equals the brute force over the whole
    mapspace, evaluated by the Timeloop walker (tests/timeloop_oracle.py) and priced by hand."""
    problem, arch, ert, keep_fixed, constraints, objective = _tiny_case(seed)
    assert arch.nest_analysis == "timeloop"
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
