"""Pruning by a mapping's own lower bound (mapper.bounds.MappingBound, mapper.search): the
bound never exceeds a mapping's objective and is exact on hand cases, and a pruned guided
search takes exactly the steps of an unpruned one, with fewer model evaluations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from mapper.bitlevel import layer_models
from mapper.bounds import MappingBound
from mapper.mapspace import Mapspace
from mapper.model import BitLevelModels, evaluate_batch
from mapper.nest import MappingBatch
from mapper.search import _Candidates, _Guided, objective_values, search
from mapper.spec import load_spec
from test_bounds import HAND_ERT, HalfWeights, SlowWideLanes, _arch, _ert, _one_mac_arch, cases
from workloads.problem import conv2d, gemm
from workloads.yamlio import InputError

SPECS = Path(__file__).resolve().parents[1] / "specs"
OBJECTIVES = ("energy", "delay", "edp", {"energy": 1.0, "delay": 5.0e3})


def _sampled_batch(space: Mapspace, rng: np.random.Generator, n: int) -> tuple[tuple, np.ndarray, MappingBatch]:
    """(factors, keep patterns, batch) of up to n random valid mappings, as the search builds them."""
    idx = space.sample_indices(rng, n)
    idx = idx[space.valid(idx)]
    keep = rng.integers(len(space.keep_patterns), size=len(idx))
    T, SX, SY = space.assemble(idx)
    batch = MappingBatch(T, SX, SY, space.random_orders(rng, T), space.keep_patterns[0],
                         keep_choices=tuple(space.keep_patterns), keep_index=keep)
    return (T, SX, SY), keep, batch


def _random_arch(case: dict) -> tuple[np.random.Generator, object, BitLevelModels, object]:
    """(rng, arch, models, ERT) of a ``test_bounds.cases`` example."""
    rng = np.random.default_rng(case["seed"])
    arch = _arch(case["levels"], case["mesh"], case["glb_depth"], case["rf_depth"], case["rf_width"], case["dram_bw"],
                 case["glb_bw"], case["cluster"])
    models = BitLevelModels(SlowWideLanes() if case["work"] else BitLevelModels().work,
                            HalfWeights() if case["formats"] else None, frozenset({"DRAM", "RF"}) if case["formats"] else None)
    return rng, arch, models, _ert(rng)


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_mapping_bound_never_exceeds_the_mappings_objective(case: dict) -> None:
    rng, arch, models, ert = _random_arch(case)
    shape = case["problem"]
    problem = conv2d(1, shape[1], 2, shape[2], 1, 3, 1, stride=shape[3]) if shape[0] == "conv" else gemm(*shape)
    space = Mapspace(problem, arch)
    factors, keep, batch = _sampled_batch(space, rng, 200)
    ev = evaluate_batch(problem, arch, batch, ert, models)
    for objective in OBJECTIVES:
        bound = MappingBound(space, ert, models, objective)(*factors, keep)
        value = objective_values(ev, objective)
        finite = np.isfinite(value)
        assert np.all(bound[finite] < value[finite]), objective
        assert np.all(np.isinf(bound) <= np.isinf(value)), "an infinite bound means no valid mapping"


def test_mapping_bound_is_exact_on_a_dram_only_arch() -> None:
    """One MAC under DRAM: every mapping moves the compulsory traffic and takes MACs cycles."""
    arch, problem = _one_mac_arch(rf=False), gemm(4, 3, 2)
    space = Mapspace(problem, arch)
    factors, keep, batch = _sampled_batch(space, np.random.default_rng(0), 50)
    ev = evaluate_batch(problem, arch, batch, HAND_ERT)
    assert len(keep) > 0 and ev.valid.all()
    for objective in OBJECTIVES:
        bound = MappingBound(space, HAND_ERT, BitLevelModels(), objective)(*factors, keep)
        assert bound == pytest.approx(objective_values(ev, objective), rel=1e-8)


def test_mapping_bound_has_each_mappings_compute_cycles() -> None:
    """Without bandwidth limits a mapping's cycles are its compute cycles: the delay bound is exact."""
    arch = _arch(3, 4, 64, 16, 16, None, None, False)
    problem = gemm(8, 4, 6)
    space = Mapspace(problem, arch)
    factors, keep, batch = _sampled_batch(space, np.random.default_rng(1), 300)
    models = BitLevelModels(SlowWideLanes())
    ev = evaluate_batch(problem, arch, batch, None, models)
    bound = MappingBound(space, None, models, "delay")(*factors, keep)
    assert len(set(ev.cycles[ev.valid].tolist())) > 3   # mappings that differ in their cycles
    assert bound[ev.valid] == pytest.approx(ev.cycles[ev.valid], rel=1e-8)


def test_objectives_without_a_monotone_bound_are_not_pruned() -> None:
    space = Mapspace(gemm(4, 3, 2), _one_mac_arch(rf=True))
    for objective in (["delay", "energy"], {"energy": 1.0, "delay": -1.0}):
        assert not MappingBound(space, HAND_ERT, BitLevelModels(), objective).prunes
    assert all(MappingBound(space, HAND_ERT, BitLevelModels(), objective).prunes for objective in OBJECTIVES)


def _spec_case(name: str):
    spec = load_spec(SPECS / f"{name}.yaml")
    problem = {"panacea": gemm(768, 128, 256), "bitvert": conv2d(1, 64, 64, 3, 3, 14, 14), "bitmod": gemm(512, 64, 512),
               "sbq": gemm(256, 32, 384)}[name]
    return spec, problem, layer_models(spec, None)


@pytest.mark.parametrize("name,objective,seed", [
    ("panacea", "edp", 0), ("panacea", "energy", 1), ("bitvert", "edp", 2), ("bitvert", "delay", 3),
    ("bitmod", "edp", 4), ("sbq", {"energy": 1.0, "delay": 2.0e4}, 5),
])
def test_pruned_search_takes_the_steps_of_the_unpruned_one(name: str, objective, seed: int) -> None:
    spec, problem, models = _spec_case(name)
    runs = [search(problem, spec.arch, spec.constraints_for(problem), ert=spec.ert, models=models, objective=objective,
                   mode="guided", seed=seed, max_evaluations=4000, patience=4, prune=prune) for prune in (False, True)]
    plain, pruned = runs
    assert pruned.mapping == plain.mapping and pruned.objectives == plain.objectives
    assert pruned.history == plain.history                       # same improvements at the same budget use
    assert pruned.evaluated + pruned.pruned == plain.evaluated   # the same budget, partly spent without evaluating
    assert plain.pruned == 0
    # Energy bounds hardly differ between the mappings of a pattern (only leakage does): the
    # cycle terms are what prunes.
    assert pruned.pruned > 0 or objective == "energy"


def test_a_bound_above_some_values_changes_the_search(monkeypatch) -> None:
    """The comparison above can fail: a bound made 30 % too high prunes improving moves."""
    spec, problem, models = _spec_case("bitvert")
    monkeypatch.setattr(MappingBound, "SAFETY", -0.3)
    runs = [search(problem, spec.arch, spec.constraints_for(problem), ert=spec.ert, models=models, objective="edp",
                   mode="guided", seed=2, max_evaluations=4000, patience=4, prune=prune) for prune in (False, True)]
    assert runs[1].history != runs[0].history


@settings(max_examples=15, deadline=None)
@given(case=cases)
def test_pruned_search_takes_the_steps_of_the_unpruned_one_on_random_spaces(case: dict) -> None:
    _, arch, models, ert = _random_arch(case)
    shape = case["problem"]   # four times larger: a guided search, not an exhaustive one
    problem = conv2d(1, 2 * shape[1], 4, shape[2], 3, 6, 2, stride=shape[3]) if shape[0] == "conv" else gemm(*(4 * s for s in shape))
    for objective in ("edp", "delay"):
        runs = []
        for prune in (False, True):
            try:
                runs.append(search(problem, arch, ert=ert, models=models, objective=objective, mode="guided",
                                   seed=case["seed"] % 7, max_evaluations=1500, patience=3, prune=prune))
            except InputError as exc:
                runs.append(str(exc))
        plain, pruned = runs
        if isinstance(plain, str):
            assert pruned == plain
            continue
        assert (pruned.mapping, pruned.objectives, pruned.history) == (plain.mapping, plain.objectives, plain.history)
        assert pruned.evaluated + pruned.pruned == plain.evaluated


def test_settle_makes_the_k_smallest_values_exact() -> None:
    """Keep moves rank neighbours by value: ``settle`` evaluates exactly the pruned ones that
    could rank among the k smallest, so the ranking equals the unpruned one."""
    spec, problem, models = _spec_case("panacea")
    space = Mapspace(problem, spec.arch, spec.constraints_for(problem))

    def guided(prune: bool) -> _Guided:
        stats = {"evaluated": 0, "valid": 0, "pruned": 0}

        def run(batch: MappingBatch, keys=None) -> np.ndarray:
            stats["evaluated"] += batch.size
            return objective_values(evaluate_batch(problem, spec.arch, batch, spec.ert, models), "edp")

        bound = MappingBound(space, spec.ert, models, "edp") if prune else None
        return _Guided(space, run, np.random.default_rng(0), stats, 10**6, None, 0.0, 4, 48, 256,
                       np.zeros(len(space.keep_patterns)), 128, bound)

    idx = space.sample_indices(np.random.default_rng(3), 600)
    idx = idx[space.valid(idx)]
    order = space.random_orders(np.random.default_rng(4), space.temporal(idx))
    keep = np.random.default_rng(5).integers(len(space.keep_patterns), size=len(idx))

    def cands() -> _Candidates:
        return _Candidates(idx.copy(), order.copy(), keep.copy())

    exact = guided(False).evaluate(cands())
    pruned = guided(True)
    threshold = np.full(len(idx), np.quantile(exact[np.isfinite(exact)], 0.1))   # prunes most, not all
    pruned.evaluate(cands(), threshold)
    assert pruned.stats["pruned"] > 0
    for k in (1, 40, 200):
        c = cands()
        pruned.settle([(c, k)])
        values = pruned.values_of(c)
        rank = np.argsort(values, kind="stable")[:k]
        assert rank.tolist() == np.argsort(exact, kind="stable")[:k].tolist()
        assert values[rank].tolist() == exact[rank].tolist()
    assert pruned.stats["pruned"] > 0, "settling evaluates only what can rank, not every pruned mapping"
