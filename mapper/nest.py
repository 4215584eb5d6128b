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

from dataclasses import dataclass
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

@dataclass
class _Loops:
    """Loop-nest arrays shared by every data space of a batch.

    Temporal slots are level-major, outer to inner within a level: slot ``j`` of level ``j // D``.
    """

    t_dim: np.ndarray       # [B, L*D] problem dimension of each temporal slot
    t_bound: np.ndarray     # [B, L*D]
    t_stride: np.ndarray    # [B, L*D] problem-space step of one iteration of the slot's loop
    t_count: np.ndarray     # [B, L*D] times the slot's loop increments over the whole nest
    s_stride: np.ndarray    # [B, L, D] step of each spatial loop
    SP: np.ndarray          # [B, L, D] spatial factors
    used: np.ndarray        # [B, L+1] used instances per level (last: compute units)
    compute_steps: np.ndarray  # [B]


def _loops(batch: MappingBatch) -> _Loops:
    B, L, D = batch.temporal.shape
    T, SP = batch.temporal, batch.spatial
    t_dim = batch.permutation
    t_bound = np.take_along_axis(T, t_dim, axis=2)
    # Nest order: level i temporal slots then level i spatial slots (one per dim).
    slot_dim = np.concatenate([t_dim, np.broadcast_to(np.arange(D, dtype=I64), (B, L, D))], axis=2).reshape(B, -1)
    slot_bound = np.concatenate([t_bound, SP], axis=2).reshape(B, -1)
    onehot = slot_dim[:, :, None] == np.arange(D)[None, None, :]
    per_dim = np.where(onehot, slot_bound[:, :, None], 1)
    suffix = np.flip(np.cumprod(np.flip(per_dim, 1), axis=1), 1)
    inner = np.concatenate([suffix[:, 1:], np.ones((B, 1, D), I64)], axis=1)
    stride = np.take_along_axis(inner, slot_dim[:, :, None], axis=2)[:, :, 0].reshape(B, L, 2 * D)
    t_bound = t_bound.reshape(B, L * D)
    outer = np.concatenate([np.ones((B, 1), I64), np.cumprod(t_bound, axis=1)[:, :-1]], axis=1)
    used = np.ones((B, L + 1), I64)
    used[:, 1:] = np.cumprod(SP.prod(axis=2), axis=1)
    return _Loops(
        t_dim=t_dim.reshape(B, L * D), t_bound=t_bound, t_stride=stride[:, :, :D].reshape(B, L * D),
        t_count=outer * (t_bound - 1), s_stride=stride[:, :, D:], SP=SP, used=used,
        compute_steps=T.prod(axis=(1, 2)),
    )


def analyze(problem: Problem, arch: Arch, batch: MappingBatch) -> NestCounts:
    """Access counts for every mapping of ``batch`` (docs/nest_analysis.md semantics)."""
    B, L, D = batch.temporal.shape
    names = problem.dataspace_names
    loops = _loops(batch)
    per_level = batch.temporal * loops.SP
    ext = np.ones((B, L + 1, D), I64)
    ext[:, :L] = np.flip(np.cumprod(np.flip(per_level, 1), axis=1), 1)

    kept = np.array([[ds in batch.keep[i] for ds in names] for i in range(L)], bool)
    shape = (B, L, len(names))
    counts = {k: np.zeros(shape, I64) for k in ("reads", "fills", "updates", "tile")}
    multicast, reduction = np.ones(shape), np.ones(shape)

    for di, ds in enumerate(problem.dataspaces):
        A = _axis_matrix(problem, ds)
        keepers = [i for i in range(L) if kept[i, di]]
        if not keepers or keepers[0] != 0:
            raise InputError("<mapping>", f"{arch.levels[0].name}.keep", f"the outermost level must keep {ds.name}")
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
                      loops.used, multicast, reduction, loops.compute_steps, problem.macs)


@dataclass
class _Pair:
    """Per-instance results between a parent level and its children for one data space."""

    child_in: np.ndarray      # [B] points arriving at one child over the run
    parent_in: np.ndarray     # [B] sum over steps of |union over children of arrivals| (per parent instance)
    first_child: np.ndarray   # [B] distinct points ever held by one child (read-write only)
    first_union: np.ndarray   # [B] distinct points ever held by the children of one parent (read-write only)


def _pair_counts(p: int, c: int, ds: DataSpace, A: np.ndarray, e_axes: np.ndarray, loops: _Loops,
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
        U = np.stack([_union_length(e[:, ax], spatial[ax]) for ax in range(n_axes)], axis=1)
        parent_in = child_in * U.prod(axis=1)
    else:
        e = e_axes[:, c]
        tile = e.prod(axis=1)
        # Tile shift when slot j increments: its own step minus the resets of the slots inside it.
        shift = np.abs(step[:, :n] - (reset_prefix[:, n][:, None, :] - reset_prefix[:, 1:n + 1]))
        count = loops.t_count[:, :n]
        overlap = np.maximum(e[:, None, :] - shift, 0).prod(axis=2)
        child_in = tile + (count * (tile[:, None] - overlap)).sum(axis=1)
        U = np.stack([_union_length(e[:, ax], spatial[ax]) for ax in range(n_axes)], axis=1)
        new_len = np.minimum(shift, e[:, None, :])
        V = np.stack([_union_length(new_len[:, :, ax], spatial[ax]) for ax in range(n_axes)], axis=2)
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


def _accumulate(p: int, c: int, di: int, ds: DataSpace, pair: _Pair, loops: _Loops,
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
