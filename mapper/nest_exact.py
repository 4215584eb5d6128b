"""Exact nest analysis (``nest_analysis: exact``): point-set reuse with partial multicast.

The alternative to Timeloop's counting (docs/nest_analysis.md, "Exact analysis"), checked
against the brute-force walker in tests/oracle.py.

Key idea: with perfect factorization every step of an instance's walk moves its tile by
the same shift whenever the same loop increments, so fills are
``tile + sum_j (#times loop j increments) * |new tile \\ old tile|``. Sibling unions
(multicast, spatial reduction) of equal boxes translated by a product set of offsets are
computed per tensor axis from the 1-D union length ``g(len, offsets)``. Outputs leaving a
level for its parent are read once more there (drain reads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapper.arch import Arch
from mapper.nest import I64, union_length, MappingBatch, NestCounts, axis_matrix, LoopArrays, loop_arrays, extents, kept_matrix
from workloads.problem import DataSpace, Problem
from workloads.yamlio import InputError


def analyze_exact(problem: Problem, arch: Arch, batch: MappingBatch) -> NestCounts:
    """Access counts for every mapping of ``batch`` (docs/nest_analysis.md, exact analysis)."""
    B, L, D = batch.temporal.shape
    names = problem.dataspace_names
    loops = loop_arrays(batch)
    ext = extents(batch, loops)
    kept = kept_matrix(problem, arch, batch)   # one keep choice (nest.analyze splits by choice)
    shape = (B, L, len(names))
    counts = {k: np.zeros(shape, I64) for k in ("reads", "fills", "updates", "tile")}
    multicast, reduction = np.ones(shape), np.ones(shape)

    for di, ds in enumerate(problem.dataspaces):
        A = axis_matrix(problem, ds)
        keepers = [i for i in range(L) if kept[0, i, di]]
        e_axes = (ext - 1) @ A.T + 1  # [B, L+1, AX] tile extent per tensor axis
        counts["tile"][:, keepers, di] = e_axes[:, keepers].prod(axis=2)
        coef = A.T[loops.t_dim]  # [B, L*D, AX] coefficient of each temporal slot's dim per axis
        step = coef * loops.t_stride[:, :, None]
        reset = step * (loops.t_bound - 1)[:, :, None]
        reset_prefix = np.concatenate([np.zeros((B, 1, A.shape[0]), I64), np.cumsum(reset, axis=1)], axis=1)
        for p, c in zip(keepers, keepers[1:] + [L]):
            pair = _pair_counts(p, c, ds, A, e_axes, loops, step, reset_prefix)
            _accumulate(p, c, di, ds, pair, loops, counts, multicast, reduction)
    return NestCounts(names, kept, counts["reads"], counts["fills"], counts["updates"], counts["tile"],
                      loops.used, multicast, reduction, loops.compute_steps, problem.macs, np.zeros(shape))


@dataclass
class _Pair:
    """Per-instance results between a parent level and its children for one data space."""

    child_in: np.ndarray      # [B] points arriving at one child over the run
    parent_in: np.ndarray     # [B] sum over steps of |union over children of arrivals| (per parent instance)
    first_child: np.ndarray   # [B] distinct points ever held by one child (read-write only)
    first_union: np.ndarray   # [B] distinct points ever held by the children of one parent (read-write only)


def _pair_counts(p: int, c: int, ds: DataSpace, A: np.ndarray, e_axes: np.ndarray, loops: LoopArrays,
                 step: np.ndarray, reset_prefix: np.ndarray) -> _Pair:
    """Arrivals at the children (level ``c``, or compute when c == levels) of parent ``p``."""
    B = step.shape[0]
    L, D = loops.SP.shape[1], loops.SP.shape[2]
    n_axes = A.shape[0]
    dims_of_axis = [np.nonzero(A[ax])[0] for ax in range(n_axes)]
    # Sibling offsets per tensor axis: one progression per spatial loop between p and c.
    spatial = [[(loops.SP[:, lvl, d], loops.s_stride[:, lvl, d] * A[ax, d]) for lvl in range(p, c) for d in dims_of_axis[ax]]
               for ax in range(n_axes)]
    n = c * D  # temporal slots above the children
    if c == L:
        # Compute units hold nothing: every step needs each unit's single point anew.
        e = np.ones((B, n_axes), I64)
        child_in = loops.compute_steps
        U = np.stack([union_length(e[:, ax], spatial[ax]) for ax in range(n_axes)], axis=1)
        parent_in = child_in * U.prod(axis=1)
    else:
        e = e_axes[:, c]
        tile = e.prod(axis=1)
        # Tile shift when slot j increments: its own step minus the resets of the slots inside it.
        shift = np.abs(step[:, :n] - (reset_prefix[:, n][:, None, :] - reset_prefix[:, 1:n + 1]))
        count = loops.t_count[:, :n]
        overlap = np.maximum(e[:, None, :] - shift, 0).prod(axis=2)
        child_in = tile + (count * (tile[:, None] - overlap)).sum(axis=1)
        U = np.stack([union_length(e[:, ax], spatial[ax]) for ax in range(n_axes)], axis=1)
        new_len = np.minimum(shift, e[:, None, :])
        V = np.stack([union_length(new_len[:, :, ax], spatial[ax]) for ax in range(n_axes)], axis=2)
        U_all = U.prod(axis=1)
        parent_in = U_all + (count * (U_all[:, None] - (U[:, None, :] - V).prod(axis=2))).sum(axis=1)
    first_child = first_union = np.zeros(B, I64)
    if ds.read_write:
        # Unit-coefficient single-dimension axes: the boxes of distinct loop indices are disjoint,
        # so distinct points = tile extent x number of distinct offsets per axis.
        t_count = np.ones((B, n_axes), I64)
        s_count = np.ones((B, n_axes), I64)
        for ax in range(n_axes):
            if len(dims_of_axis[ax]) != 1 or A[ax, dims_of_axis[ax][0]] != 1:
                raise InputError("<problem>", f"data_spaces.{ds.name}",
                                 "read-write data spaces need one unit-coefficient dimension per axis")
            d = dims_of_axis[ax][0]
            t_count[:, ax] = np.where(loops.t_dim[:, :n] == d, loops.t_bound[:, :n], 1).prod(axis=1)
            for f, _ in spatial[ax]:
                s_count[:, ax] *= f
        first_child = (e * t_count).prod(axis=1)
        first_union = (e * t_count * s_count).prod(axis=1)
    return _Pair(child_in, parent_in, first_child, first_union)


def _accumulate(p: int, c: int, di: int, ds: DataSpace, pair: _Pair, loops: LoopArrays,
                counts: dict[str, np.ndarray], multicast: np.ndarray, reduction: np.ndarray) -> None:
    """Add one parent/children pair's counts to the level totals (docs/nest_analysis.md rules)."""
    L = loops.SP.shape[1]
    used_p, used_c = loops.used[:, p], loops.used[:, c]
    fan = (pair.child_in * (used_c // used_p)) / np.maximum(pair.parent_in, 1)
    if ds.read_write:
        counts["updates"][:, p, di] += pair.parent_in * used_p
        counts["reads"][:, p, di] += (pair.parent_in - pair.first_union) * used_p
        reduction[:, p, di] = fan
        if c < L:
            counts["fills"][:, c, di] += (pair.child_in - pair.first_child) * used_c
            counts["reads"][:, c, di] += pair.child_in * used_c  # drain: each outgoing point is read to go up
    else:
        counts["reads"][:, p, di] += pair.parent_in * used_p
        multicast[:, p, di] = fan
        if c < L:
            counts["fills"][:, c, di] += pair.child_in * used_c
