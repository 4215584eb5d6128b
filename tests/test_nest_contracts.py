"""Contracts of mapper.nest.analyze that the per-mapping oracle tests cannot see, for both
analyses: a batch of mappings gives each mapping the counts it gets alone (no reduction runs
across the batch), counts are int64 (NestCounts), and the errors name file, key and reason.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from test_nest_oracle import arch_dict, lm, random_arch, random_mapping, random_problem
from mapper.arch import arch_from_dict
from mapper.mapping import Mapping
from mapper.nest import analyze, batch_from_mappings
from workloads.problem import DataSpace, Problem, Term, gemm
from workloads.yamlio import InputError

ANALYSES = ("timeloop", "exact")
ARRAYS = ("kept", "reads", "fills", "updates", "tile", "used_instances", "multicast", "reduction", "compute_steps",
          "link_transfers")


def _batch_case(seed: int, size: int = 6, shared_keep: bool = True):
    """``size`` random mappings of one problem and arch, sharing the first one's keep choice
    or (``shared_keep=False``) each with its own random keep choice."""
    rng = random.Random(seed)
    problem, arch = random_problem(rng), random_arch(rng)
    mappings = [random_mapping(rng, problem, arch) for _ in range(size)]
    if shared_keep:
        keep = [lv.keep for lv in mappings[0].levels]
        mappings = [Mapping(tuple(dataclasses.replace(lv, keep=k) for lv, k in zip(m.levels, keep))) for m in mappings]
    return problem, arch, mappings


@pytest.mark.parametrize("shared_keep", [True, False])
@pytest.mark.parametrize("analysis", ANALYSES)
@pytest.mark.parametrize("seed", range(12))
def test_a_batch_row_equals_the_mapping_alone(analysis: str, seed: int, shared_keep: bool) -> None:
    """Also when the mappings of one batch keep different data spaces (a search's batches)."""
    problem, arch, mappings = _batch_case(seed, size=6 if shared_keep else 10, shared_keep=shared_keep)
    arch = dataclasses.replace(arch, nest_analysis=analysis)
    together = analyze(problem, arch, batch_from_mappings(problem, mappings))
    for b, m in enumerate(mappings):
        alone = analyze(problem, arch, batch_from_mappings(problem, [m]))
        for name in ARRAYS:
            assert np.array_equal(getattr(together, name)[b], getattr(alone, name)[0]), (name, b)
        assert together.computes == alone.computes == problem.macs


@pytest.mark.parametrize("analysis", ANALYSES)
def test_counts_are_int64(analysis: str) -> None:
    problem, arch, mappings = _batch_case(3, size=2)
    counts = analyze(problem, dataclasses.replace(arch, nest_analysis=analysis), batch_from_mappings(problem, mappings))
    for name in ("reads", "fills", "updates", "tile", "used_instances", "compute_steps"):
        assert getattr(counts, name).dtype == np.int64, name


@pytest.mark.parametrize("analysis", ANALYSES)
def test_outermost_level_must_keep_everything(analysis: str) -> None:
    arch = dataclasses.replace(arch_from_dict(arch_dict()), nest_analysis=analysis)
    mapping = Mapping((lm(keep={"Weights", "Outputs"}), lm(), lm({"M": 2, "N": 2, "K": 2}, "KNM")))
    with pytest.raises(InputError) as info:
        analyze(gemm(2, 2, 2), arch, batch_from_mappings(gemm(2, 2, 2), [mapping]))
    assert (info.value.source, info.value.key, info.value.expected) == ("<mapping>", "DRAM.keep",
                                                                        "the outermost level must keep Inputs")


def _odd_outputs(coefficient: int) -> Problem:
    """Outputs[P + Q] (one axis of two dimensions) or Outputs[3 P, Q] (a coefficient), of
    Weights[P] x Inputs[Q]: the exact analysis's distinct-output count does not cover them."""
    if coefficient == 1:
        outputs = ((Term("P"), Term("Q")),)
    else:
        outputs = ((Term("P", "c"),), (Term("Q"),))
    return Problem("odd", ("P", "Q"), {"P": 2, "Q": 2}, {"c": coefficient}, (
        DataSpace("Weights", ((Term("P"),),)), DataSpace("Inputs", ((Term("Q"),),)),
        DataSpace("Outputs", outputs, read_write=True)))


@pytest.mark.parametrize("coefficient", [1, 3])
def test_exact_analysis_rejects_outputs_it_cannot_count(coefficient: int) -> None:
    problem = _odd_outputs(coefficient)
    arch = dataclasses.replace(arch_from_dict(arch_dict()), nest_analysis="exact")
    mapping = Mapping((lm(), lm(), lm({"P": 2, "Q": 2}, "QP")))
    with pytest.raises(InputError) as info:
        analyze(problem, arch, batch_from_mappings(problem, [mapping]))
    assert (info.value.source, info.value.key, info.value.expected) == (
        "<problem>", "data_spaces.Outputs", "read-write data spaces need one unit-coefficient dimension per axis")
    # the Timeloop analysis counts the same problem
    counts = analyze(problem, dataclasses.replace(arch, nest_analysis="timeloop"), batch_from_mappings(problem, [mapping]))
    assert counts.computes == 4


@pytest.mark.parametrize("seed", range(6))
def test_batch_gives_back_its_mappings(seed: int) -> None:
    """``MappingBatch.mapping(b)`` is the b-th mapping packed by ``batch_from_mappings``: same
    factors (unit factors dropped), loop order of the loops that run, spatial order, keep
    (mappings with different keep choices in one batch)."""
    problem, arch, mappings = _batch_case(100 + seed, shared_keep=seed % 2 == 0)
    batch = batch_from_mappings(problem, mappings)
    for b, m in enumerate(mappings):
        back = batch.mapping(b, problem)
        for got, want in zip(back.levels, m.levels):
            assert got.temporal == {d: f for d, f in want.temporal.items() if f > 1}
            assert got.spatial_x == {d: f for d, f in want.spatial_x.items() if f > 1}
            assert got.spatial_y == {d: f for d, f in want.spatial_y.items() if f > 1}
            assert got.full_permutation(problem.dims) == want.full_permutation(problem.dims)
            listed = [d for d in want.spatial_permutation if d in problem.dims]
            assert got.spatial_permutation == tuple(listed + [d for d in problem.dims if d not in listed])
            assert got.keep == want.keep
        # and it evaluates to the same counts
        again = analyze(problem, arch, batch_from_mappings(problem, [back]))
        alone = analyze(problem, arch, batch_from_mappings(problem, [m]))
        assert all(np.array_equal(getattr(again, k), getattr(alone, k)) for k in ARRAYS)


def test_a_batch_without_spatial_orders_uses_the_problem_order() -> None:
    problem = gemm(2, 2, 2)
    batch = batch_from_mappings(problem, [Mapping((lm(), lm(sx={"K": 2}), lm({"M": 2, "N": 2}, "NM")))])
    bare = dataclasses.replace(batch, spatial_order=None)
    assert bare.spatial_orders().tolist() == [[[0, 1, 2]] * 3]
    level = bare.mapping(0, problem).levels[1]
    assert (level.spatial_x, level.spatial_permutation, level.temporal) == ({"K": 2}, (), {})
    assert bare.mapping(0, problem).levels[2].permutation == ("N", "M", "K")   # innermost first, as given
    assert (batch.size, batch.spatial.tolist()) == (1, [[[1, 1, 1], [1, 1, 2], [1, 1, 1]]])


def test_a_dimension_in_two_axes_of_one_tensor_is_an_input_error() -> None:
    """Inputs[P, Q, Q]: Q indexes two axes (P, the first dimension, indexes one: the error names Q)."""
    problem = Problem("twice", ("P", "Q"), {"P": 2, "Q": 2}, {}, (
        DataSpace("Weights", ((Term("P"),),)), DataSpace("Inputs", ((Term("P"),), (Term("Q"),), (Term("Q"),))),
        DataSpace("Outputs", ((Term("P"),), (Term("Q"),)), read_write=True)))
    mapping = Mapping((lm(), lm(), lm({"P": 2, "Q": 2}, "QP")))
    with pytest.raises(InputError) as info:
        analyze(problem, arch_from_dict(arch_dict()), batch_from_mappings(problem, [mapping]))
    assert (info.value.source, info.value.key, info.value.expected) == (
        "<problem>", "data_spaces.Inputs",
        "dimension Q indexes more than one tensor axis; bitloop needs each dimension in at most one axis")


@pytest.mark.parametrize("analysis", ANALYSES)
def test_a_dimension_repeated_in_one_axis_adds_its_coefficients(analysis: str) -> None:
    """Inputs[K + K] is Inputs[2 K]: with K = 3 the whole tensor spans 2 (3 - 1) + 1 = 5 elements,
    and every count equals the one of the same problem written with a coefficient 2."""
    def problem(axis: tuple[Term, ...]) -> Problem:
        return Problem("rep", ("M", "K"), {"M": 2, "K": 3}, {"two": 2}, (
            DataSpace("Weights", ((Term("M"),), (Term("K"),))), DataSpace("Inputs", (axis,)),
            DataSpace("Outputs", ((Term("M"),),), read_write=True)))
    arch = dataclasses.replace(arch_from_dict(arch_dict()), nest_analysis=analysis)
    mapping = Mapping((lm(), lm({"M": 2}, "M"), lm({"K": 3}, "K")))
    summed, scaled = (problem(axis) for axis in ((Term("K"), Term("K")), (Term("K", "two"),)))
    a = analyze(summed, arch, batch_from_mappings(summed, [mapping]))
    b = analyze(scaled, arch, batch_from_mappings(scaled, [mapping]))
    assert a.tile[0, 0, summed.dataspace_names.index("Inputs")] == 5
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ARRAYS)


def test_a_batch_with_two_keep_choices_indexes_them() -> None:
    """Two keep choices: the first mapping's is choice 0, the other choice 1; kept flags per row."""
    problem = gemm(2, 2, 2)
    shared = Mapping((lm(), lm(), lm({"M": 2, "N": 2, "K": 2}, "KNM")))
    other = Mapping((lm(), lm(keep={"Weights"}), lm({"M": 2, "N": 2, "K": 2}, "KNM")))
    batch = batch_from_mappings(problem, [shared, other, shared])
    assert batch.keep_index.tolist() == [0, 1, 0]
    assert [batch.keep_of(b)[1] for b in range(3)] == [shared.levels[1].keep, frozenset({"Weights"}), shared.levels[1].keep]
    kept = batch.kept(problem.dataspace_names)
    assert kept[1, 1].tolist() == [name == "Weights" for name in problem.dataspace_names]
    assert np.array_equal(kept[0], kept[2]) and kept[0, 1].all()


def test_a_spatial_order_is_packed_and_given_back() -> None:
    """spatial_permutation (K, M) of gemm (M, N, K) packs as indices [2, 0, 1] (the unlisted N last)."""
    problem = gemm(2, 2, 2)
    buffer = dataclasses.replace(lm(sx={"M": 2, "K": 2}), spatial_permutation=("K", "M"))
    batch = batch_from_mappings(problem, [Mapping((lm(), buffer, lm({"N": 2}, "N")))])
    assert batch.spatial_orders()[0, 1].tolist() == [2, 0, 1]
    assert batch.mapping(0, problem).levels[1].spatial_permutation == ("K", "M", "N")
