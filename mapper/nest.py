"""Dense nest analysis in closed form, vectorized over a batch of mappings.

Implements the semantics of docs/nest_analysis.md (checked against the brute-force walker
in tests/oracle.py). All mappings in a batch share one problem, one arch and one
keep/bypass choice; their factors and loop orders differ.

Key idea: with perfect factorization every step of an instance's walk moves its tile by
the same shift whenever the same loop increments, so fills are
``tile + sum_j (#times loop j increments) * |new tile \\ old tile|``. Sibling unions
(multicast, spatial reduction) of equal boxes translated by a product set of offsets are
computed per tensor axis from the 1-D union length ``g(len, offsets)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mapper.arch import Arch
from mapper.mapping import LevelMapping, Mapping
from workloads.problem import DataSpace, Problem
from workloads.yamlio import InputError

I64 = np.int64


@dataclass
class MappingBatch:
    """B mappings of one (problem, arch) with a shared keep/bypass choice.

    Arrays are [B, levels, dims] int64; ``permutation`` lists dimension indices of each
    level's temporal loops OUTER to inner (the reverse of Timeloop's YAML order).
    """

    temporal: np.ndarray
    spatial_x: np.ndarray
    spatial_y: np.ndarray
    permutation: np.ndarray
    keep: tuple[frozenset[str], ...]

    @property
    def size(self) -> int:
        return int(self.temporal.shape[0])

    @property
    def spatial(self) -> np.ndarray:
        return self.spatial_x * self.spatial_y

    def mapping(self, b: int, problem: Problem) -> Mapping:
        """The b-th mapping as a :class:`Mapping` (for reports and YAML output)."""
        dims = problem.dims
        levels = []
        for i, keep in enumerate(self.keep):
            perm_outer_first = [dims[k] for k in self.permutation[b, i]]
            levels.append(LevelMapping(
                temporal={d: int(self.temporal[b, i, k]) for k, d in enumerate(dims) if self.temporal[b, i, k] > 1},
                permutation=tuple(reversed(perm_outer_first)),
                spatial_x={d: int(self.spatial_x[b, i, k]) for k, d in enumerate(dims) if self.spatial_x[b, i, k] > 1},
                spatial_y={d: int(self.spatial_y[b, i, k]) for k, d in enumerate(dims) if self.spatial_y[b, i, k] > 1},
                keep=keep,
            ))
        return Mapping(tuple(levels))


def batch_from_mappings(problem: Problem, mappings: Sequence[Mapping]) -> MappingBatch:
    """Pack mappings that share one keep/bypass choice into a :class:`MappingBatch`."""
    dims = problem.dims
    keep = tuple(lm.keep for lm in mappings[0].levels)
    if any(tuple(lm.keep for lm in m.levels) != keep for m in mappings):
        raise ValueError("all mappings of a batch must share their keep/bypass choice")
    B, L, D = len(mappings), len(keep), len(dims)
    t = np.ones((B, L, D), I64)
    sx = np.ones((B, L, D), I64)
    sy = np.ones((B, L, D), I64)
    perm = np.zeros((B, L, D), I64)
    index = {d: k for k, d in enumerate(dims)}
    for b, m in enumerate(mappings):
        for i, lm in enumerate(m.levels):
            for d, f in lm.temporal.items():
                t[b, i, index[d]] = f
            for d, f in lm.spatial_x.items():
                sx[b, i, index[d]] = f
            for d, f in lm.spatial_y.items():
                sy[b, i, index[d]] = f
            perm[b, i] = [index[d] for d in reversed(lm.full_permutation(dims))]
    return MappingBatch(t, sx, sy, perm, keep)


@dataclass
class NestCounts:
    """Scalar access counts for a batch (all arrays have leading dimension B).

    ``reads``, ``fills``, ``updates``, ``tile``: [B, levels, dataspaces] totals over used
    instances (tile is per instance, in elements). ``used_instances``: [B, levels + 1]
    (last column: compute units). ``multicast`` / ``reduction``: [B, levels, dataspaces]
    average fan-out of a parent read / fan-in of a parent update (1 where not applicable).
    ``compute_steps``: [B] temporal iterations per compute unit.
    """

    dataspaces: tuple[str, ...]
    kept: np.ndarray  # [levels, dataspaces] bool
    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    tile: np.ndarray
    used_instances: np.ndarray
    multicast: np.ndarray
    reduction: np.ndarray
    compute_steps: np.ndarray
    computes: int
    lockstep_lanes: np.ndarray = field(default=None)  # type: ignore[assignment]

    def per_instance(self, counts: np.ndarray) -> np.ndarray:
        """Totals [B, levels, ds] divided by the used instances of each level."""
        return counts // self.used_instances[:, :-1, None]


# ---- 1-D union lengths --------------------------------------------------------------------

def _union_length(length: np.ndarray, progressions: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """|union over offsets o of [o, o + length)| where offsets are the sumset of progressions.

    ``length``: [B] or [B, S] (int64, >= 0). ``progressions``: (count [B], step [B]) pairs,
    each the set {k * step : 0 <= k < count}.
    """
    live = [(f, a) for f, a in progressions if np.any(f > 1)]
    if not live:
        return length
    extra = (slice(None),) + (None,) * (length.ndim - 1)
    if len(live) == 1:
        f, a = live[0]
        return length + (f - 1)[extra] * np.minimum(a[extra], length)
    # General case: enumerate the sumset on a padded grid (indices past a progression's
    # count are clamped to its last element: duplicates do not change a union).
    B = length.shape[0]
    offsets = np.zeros((B, 1), I64)
    for f, a in live:
        k = np.minimum(np.arange(int(f.max()), dtype=I64)[None, :], (f - 1)[:, None]) * a[:, None]
        offsets = (offsets[:, :, None] + k[:, None, :]).reshape(B, -1)
    offsets.sort(axis=1)
    gaps = np.diff(offsets, axis=1)  # [B, G]
    gaps = gaps.reshape((B,) + (1,) * (length.ndim - 1) + (gaps.shape[1],))
    return length + np.minimum(gaps, length[..., None]).sum(axis=-1)


def _axis_matrix(problem: Problem, ds: DataSpace) -> np.ndarray:
    """[axes, dims] coefficient matrix of a data space's projection."""
    A = np.zeros((len(ds.projection), len(problem.dims)), I64)
    index = {d: k for k, d in enumerate(problem.dims)}
    for ax, axis in enumerate(ds.projection):
        for term in axis:
            A[ax, index[term.dim]] += problem.coefficient(term)
    uses = (A != 0).sum(axis=0)
    if np.any(uses > 1):
        dim = problem.dims[int(np.argmax(uses > 1))]
        raise InputError("<problem>", f"data_spaces.{ds.name}",
                         f"dimension {dim} indexes more than one tensor axis; bitloop needs each dimension in at most one axis")
    return A


# ---- the analysis -------------------------------------------------------------------------

def analyze(problem: Problem, arch: Arch, batch: MappingBatch) -> NestCounts:
    """Access counts for every mapping of ``batch`` (docs/nest_analysis.md semantics)."""
    B, L, D = batch.temporal.shape
    T, SP = batch.temporal, batch.spatial
    names = problem.dataspace_names

    # Loop slots, outer to inner: level i temporal (its permutation), then level i spatial (dim order).
    t_dim = batch.permutation
    t_bound = np.take_along_axis(T, t_dim, axis=2)
    s_dim = np.broadcast_to(np.arange(D, dtype=I64), (B, L, D))
    slot_dim = np.concatenate([t_dim, s_dim], axis=2).reshape(B, 2 * L * D)
    slot_bound = np.concatenate([t_bound, SP], axis=2).reshape(B, 2 * L * D)
    slot_level = np.repeat(np.arange(L), 2 * D)
    slot_spatial = np.tile(np.r_[np.zeros(D, bool), np.ones(D, bool)], L)
    onehot = slot_dim[:, :, None] == np.arange(D)[None, None, :]  # [B, S, D]

    # Stride of a slot = product of the bounds of inner slots over the same dimension.
    per_dim = np.where(onehot, slot_bound[:, :, None], 1)
    suffix = np.flip(np.cumprod(np.flip(per_dim, 1), axis=1), 1)
    inner = np.concatenate([suffix[:, 1:], np.ones((B, 1, D), I64)], axis=1)
    stride = np.take_along_axis(inner, slot_dim[:, :, None], axis=2)[:, :, 0]  # [B, S]

    # Problem extents of each level's tile: product of factors at that level and inside it.
    per_level = T * SP
    ext = np.ones((B, L + 1, D), I64)
    ext[:, :L] = np.flip(np.cumprod(np.flip(per_level, 1), axis=1), 1)

    used = np.ones((B, L + 1), I64)
    used[:, 1:] = np.cumprod(SP.prod(axis=2), axis=1)
    compute_steps = T.prod(axis=(1, 2))

    kept = np.array([[ds in batch.keep[i] for ds in names] for i in range(L)], bool)
    shape = (B, L, len(names))
    reads, fills, updates = np.zeros(shape, I64), np.zeros(shape, I64), np.zeros(shape, I64)
    tile = np.zeros(shape, I64)
    multicast, reduction = np.ones(shape), np.ones(shape)

    for di, ds in enumerate(problem.dataspaces):
        A = _axis_matrix(problem, ds)
        e_axes = (ext - 1) @ A.T + 1  # [B, L+1, AX]
        keepers = [i for i in range(L) if kept[i, di]]
        if not keepers or keepers[0] != 0:
            raise InputError("<mapping>", f"{arch.levels[0].name}.keep", f"the outermost level must keep {ds.name}")
        for i in keepers:
            tile[:, i, di] = e_axes[:, i].prod(axis=1)
        for p, c in zip(keepers, keepers[1:] + [L]):
            _analyze_pair(
                p, c, di, ds, A, e_axes, slot_dim, slot_bound, slot_level, slot_spatial, onehot, stride,
                SP, used, compute_steps, reads, fills, updates, multicast, reduction,
            )
    return NestCounts(names, kept, reads, fills, updates, tile, used, multicast, reduction, compute_steps, problem.macs)


def _analyze_pair(
    p: int, c: int, di: int, ds: DataSpace, A: np.ndarray, e_axes: np.ndarray,
    slot_dim: np.ndarray, slot_bound: np.ndarray, slot_level: np.ndarray, slot_spatial: np.ndarray,
    onehot: np.ndarray, stride: np.ndarray, SP: np.ndarray, used: np.ndarray, compute_steps: np.ndarray,
    reads: np.ndarray, fills: np.ndarray, updates: np.ndarray, multicast: np.ndarray, reduction: np.ndarray,
) -> None:
    """Accumulate the counts between parent level ``p`` and its children at ``c`` (c == levels: compute)."""
    B = slot_dim.shape[0]
    L, D = SP.shape[1], SP.shape[2]
    n_axes = A.shape[0]
    is_compute = c == L
    dims_of_axis = [np.nonzero(A[ax])[0] for ax in range(n_axes)]

    # Spatial offsets between p and c, per tensor axis: one progression per (level, dim).
    spatial_prog: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for ax in range(n_axes):
        progs = []
        for lvl in range(p, c):
            for d in dims_of_axis[ax]:
                s = lvl * 2 * D + D + d
                progs.append((SP[:, lvl, d], stride[:, s] * A[ax, d]))
        spatial_prog.append(progs)

    # Temporal slots above c: the steps every child instance walks through.
    tmask = (~slot_spatial) & (slot_level < c)
    t_bounds = np.where(tmask[None, :], slot_bound, 1)  # [B, S]

    if is_compute:
        # Compute units hold nothing: each step needs the unit's single point anew.
        e = np.ones((B, n_axes), I64)
        per_child_in = compute_steps
        U = np.stack([_union_length(e[:, ax], spatial_prog[ax]) for ax in range(n_axes)], axis=1)
        parent_in = compute_steps * U.prod(axis=1)
    else:
        e = e_axes[:, c]
        tile_c = e.prod(axis=1)
        outer = np.concatenate([np.ones((B, 1), I64), np.cumprod(t_bounds, axis=1)[:, :-1]], axis=1)
        count = outer * (t_bounds - 1)  # times each slot's loop increments
        reset = np.where(tmask[None, :, None] & onehot, ((slot_bound - 1) * stride)[:, :, None], 0)
        after = np.flip(np.cumsum(np.flip(reset, 1), axis=1), 1)
        after = np.concatenate([after[:, 1:], np.zeros((B, 1, D), I64)], axis=1)
        shift = onehot * stride[:, :, None] - after  # [B, S, D] problem-space shift
        shift_ax = np.abs(shift @ A.T)  # [B, S, AX]
        overlap = np.clip(e[:, None, :] - shift_ax, 0, None).prod(axis=2)
        per_child_in = tile_c + (count * (tile_c[:, None] - overlap)).sum(axis=1)
        U = np.stack([_union_length(e[:, ax], spatial_prog[ax]) for ax in range(n_axes)], axis=1)
        newlen = np.minimum(shift_ax, e[:, None, :])
        V = np.stack([_union_length(newlen[:, :, ax], spatial_prog[ax]) for ax in range(n_axes)], axis=2)
        U_all = U.prod(axis=1)
        per_step_union = U_all[:, None] - (U[:, None, :] - V).prod(axis=2)
        parent_in = U_all + (count * per_step_union).sum(axis=1)

    children_per_parent = used[:, c] // used[:, p]
    if ds.read_write:
        # Distinct points ever held: by one child (its first arrivals), and by all children of a parent.
        t_count_ax = np.ones((B, n_axes), I64)
        for ax in range(n_axes):
            if len(dims_of_axis[ax]) != 1 or A[ax, dims_of_axis[ax][0]] != 1:
                raise InputError("<problem>", f"data_spaces.{ds.name}",
                                 "read-write data spaces need one unit-coefficient dimension per axis")
            d = dims_of_axis[ax][0]
            t_count_ax[:, ax] = np.where(tmask[None, :] & (slot_dim == d), slot_bound, 1).prod(axis=1)
        s_count_ax = np.stack(
            [np.prod([f for f, _ in spatial_prog[ax]], axis=0) if spatial_prog[ax] else np.ones(B, I64) for ax in range(n_axes)],
            axis=1,
        )
        first_child = (e * t_count_ax).prod(axis=1)
        first_union = (e * t_count_ax * s_count_ax).prod(axis=1)
        updates[:, p, di] += parent_in * used[:, p]
        reads[:, p, di] += (parent_in - first_union) * used[:, p]
        reduction[:, p, di] = (per_child_in * children_per_parent) / np.maximum(parent_in, 1)
        if not is_compute:
            fills[:, c, di] += (per_child_in - first_child) * used[:, c]
            reads[:, c, di] += per_child_in * used[:, c]  # drain: every outgoing point is read to go up
    else:
        reads[:, p, di] += parent_in * used[:, p]
        multicast[:, p, di] = (per_child_in * children_per_parent) / np.maximum(parent_in, 1)
        if not is_compute:
            fills[:, c, di] += per_child_in * used[:, c]
