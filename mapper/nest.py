"""Dense nest analysis in closed form, vectorized over a batch of mappings: shared types.

All mappings in a batch share one problem and one arch; their factors, loop orders and
(with ``keep_choices``) keep/bypass choices differ. ``analyze`` dispatches on
``arch.nest_analysis``:

* ``"timeloop"`` (default): timeloop-model's counts (mapper/nest_timeloop.py; checked
  against the explicit walker tests/timeloop_oracle.py and real Timeloop outputs);
* ``"exact"``: exact point-set reuse with partial multicast (mapper/nest_exact.py; checked
  against the brute-force walker tests/oracle.py).

docs/nest_analysis.md states both rule sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from mapper.arch import Arch
from mapper.mapping import LevelMapping, Mapping
from workloads.problem import DataSpace, Problem
from workloads.yamlio import InputError

I64 = np.int64


@dataclass
class MappingBatch:
    """B mappings of one (problem, arch).

    Arrays are [B, levels, dims] int64; ``permutation`` lists dimension indices of each
    level's temporal loops OUTER to inner (the reverse of Timeloop's YAML order). Every
    mapping keeps what ``keep`` says (per level, the data spaces it keeps) unless
    ``keep_choices`` is given: then mapping b keeps ``keep_choices[keep_index[b]]`` (a search
    evaluates neighbours with different keep choices in one batch).
    """

    temporal: np.ndarray
    spatial_x: np.ndarray
    spatial_y: np.ndarray
    permutation: np.ndarray
    keep: tuple[frozenset[str], ...]   # with keep_choices: the first of them
    spatial_order: np.ndarray | None = None
    keep_choices: tuple[tuple[frozenset[str], ...], ...] = ()
    keep_index: np.ndarray | None = None  # [B] index into keep_choices

    def keep_of(self, b: int) -> tuple[frozenset[str], ...]:
        """The keep/bypass choice of mapping b (per level, the data spaces it keeps)."""
        return self.keep_choices[int(self.keep_index[b])] if self.keep_index is not None else self.keep

    def kept(self, names: Sequence[str]) -> np.ndarray:
        """[B, levels, dataspaces] keep flags of every mapping (``names``: data-space order)."""
        choices = self.keep_choices if self.keep_index is not None else (self.keep,)
        table = _kept_table(tuple(map(tuple, choices)), tuple(names))
        if self.keep_index is None:
            return np.broadcast_to(table[0], (self.size,) + table.shape[1:])
        return table[self.keep_index]

    def take(self, rows: np.ndarray) -> "MappingBatch":
        """The mappings at ``rows`` as a batch (keep choices kept)."""
        pick = (lambda a: a[rows] if a is not None else None)
        return MappingBatch(self.temporal[rows], self.spatial_x[rows], self.spatial_y[rows], self.permutation[rows],
                            self.keep, pick(self.spatial_order), self.keep_choices, pick(self.keep_index))

    def spatial_orders(self) -> np.ndarray:
        """[B, levels, dims] dimension indices of each level's spatial loops, innermost first
        (X loops, then Y loops, each in this order); default: the problem's dimension order."""
        if self.spatial_order is not None:
            return self.spatial_order
        B, L, D = self.temporal.shape
        return np.broadcast_to(np.arange(D, dtype=I64), (B, L, D))

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
        orders = self.spatial_orders()
        for i, keep in enumerate(self.keep_of(b)):
            perm_outer_first = [dims[k] for k in self.permutation[b, i]]
            spatial_perm = tuple(dims[k] for k in orders[b, i]) if self.spatial_order is not None else ()
            levels.append(LevelMapping(
                temporal={d: int(self.temporal[b, i, k]) for k, d in enumerate(dims) if self.temporal[b, i, k] > 1},
                permutation=tuple(reversed(perm_outer_first)),
                spatial_x={d: int(self.spatial_x[b, i, k]) for k, d in enumerate(dims) if self.spatial_x[b, i, k] > 1},
                spatial_y={d: int(self.spatial_y[b, i, k]) for k, d in enumerate(dims) if self.spatial_y[b, i, k] > 1},
                spatial_permutation=spatial_perm,
                keep=keep,
            ))
        return Mapping(tuple(levels))


@lru_cache(maxsize=64)
def _kept_table(choices: tuple[tuple[frozenset[str], ...], ...], names: tuple[str, ...]) -> np.ndarray:
    """[choices, levels, dataspaces] keep flags of each keep choice (read-only)."""
    table = np.array([[[ds in level for ds in names] for level in choice] for choice in choices], bool)
    table.flags.writeable = False
    return table


def batch_from_mappings(problem: Problem, mappings: Sequence[Mapping]) -> MappingBatch:
    """Pack mappings into a :class:`MappingBatch` (``keep_choices`` when their keep choices differ)."""
    dims = problem.dims
    keeps = [tuple(lm.keep for lm in m.levels) for m in mappings]
    choices = tuple(dict.fromkeys(keeps))
    keep = choices[0]
    B, L, D = len(mappings), len(keep), len(dims)
    t = np.ones((B, L, D), I64)
    sx = np.ones((B, L, D), I64)
    sy = np.ones((B, L, D), I64)
    perm = np.zeros((B, L, D), I64)
    sorder = np.zeros((B, L, D), I64)
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
            listed = [d for d in lm.spatial_permutation if d in index]
            sorder[b, i] = [index[d] for d in listed + [d for d in dims if d not in listed]]
    if len(choices) == 1:
        return MappingBatch(t, sx, sy, perm, keep, sorder)
    choice_of = {k: i for i, k in enumerate(choices)}
    return MappingBatch(t, sx, sy, perm, keep, sorder, choices, np.array([choice_of[k] for k in keeps], I64))


@dataclass
class NestCounts:
    """Scalar access counts for a batch (all arrays have leading dimension B).

    ``kept``: [B, levels, dataspaces] keep flags.
    ``reads``, ``fills``, ``updates``, ``tile``: [B, levels, dataspaces] int64 totals over used
    instances (tile is per instance, in elements). ``used_instances``: [B, levels + 1]
    (last column: compute units). ``multicast`` / ``reduction``: [B, levels, dataspaces]
    average fan-out of a parent read / fan-in of a parent update (1 where not applicable).
    ``link_transfers``: [B, levels, dataspaces] float totals of words passed between
    neighbouring children of a level over its inter-child links (0 in the exact analysis).
    ``compute_steps``: [B] temporal iterations per compute unit.
    """

    dataspaces: tuple[str, ...]
    kept: np.ndarray
    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    tile: np.ndarray
    used_instances: np.ndarray
    multicast: np.ndarray
    reduction: np.ndarray
    compute_steps: np.ndarray
    computes: int
    link_transfers: np.ndarray

    @staticmethod
    def gather(size: int, parts: list[tuple[np.ndarray, "NestCounts"]]) -> "NestCounts":
        """One batch's counts from the counts of its parts (``rows``: where each part's mappings sit)."""
        first = parts[0][1]
        fields = {}
        for name in ("kept", "reads", "fills", "updates", "tile", "used_instances", "multicast", "reduction",
                     "compute_steps", "link_transfers"):
            like = getattr(first, name)
            out = np.empty((size,) + like.shape[1:], like.dtype)
            for rows, part in parts:
                out[rows] = getattr(part, name)
            fields[name] = out
        return NestCounts(first.dataspaces, computes=first.computes, **fields)

    def per_instance(self, counts: np.ndarray) -> np.ndarray:
        """Totals [B, levels, ds] divided by the used instances of each level."""
        return counts // self.used_instances[:, :-1, None]


def union_length(length: np.ndarray, progressions: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
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


def axis_matrix(problem: Problem, ds: DataSpace) -> np.ndarray:
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



# ---- loop-nest arrays ----------------------------------------------------------------------

@dataclass
class LoopArrays:
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


def loop_arrays(batch: MappingBatch) -> LoopArrays:
    B, L, D = batch.temporal.shape
    T, SP = batch.temporal, batch.spatial
    ext = np.ones((B, L + 1, D), I64)      # tile extent below each level's loops (last: one point)
    ext[:, :L] = np.flip(np.cumprod(np.flip(T * SP, 1), axis=1), 1)
    # A level has one temporal and one spatial loop per dimension; the spatial loops sit inside
    # the temporal ones, so a temporal loop steps over the level's spatial span of the child tile.
    t_dim = batch.permutation
    t_bound = np.take_along_axis(T, t_dim, axis=2).reshape(B, L * D)
    t_stride = np.take_along_axis(SP * ext[:, 1:], t_dim, axis=2).reshape(B, L * D)
    outer = np.ones((B, L * D), I64)
    outer[:, 1:] = np.cumprod(t_bound, axis=1)[:, :-1]
    used = np.ones((B, L + 1), I64)
    used[:, 1:] = np.cumprod(SP.prod(axis=2), axis=1)
    return LoopArrays(
        t_dim=t_dim.reshape(B, L * D), t_bound=t_bound, t_stride=t_stride, t_count=outer * (t_bound - 1),
        s_stride=ext[:, 1:], SP=SP, used=used, compute_steps=T.prod(axis=(1, 2)),
    )


def extents(batch: MappingBatch, loops: LoopArrays) -> np.ndarray:
    """[B, levels + 1, dims] problem-space extent of each level's tile (last row: one compute point)."""
    B, L, D = batch.temporal.shape
    ext = np.ones((B, L + 1, D), I64)
    ext[:, :L] = np.flip(np.cumprod(np.flip(batch.temporal * loops.SP, 1), axis=1), 1)
    return ext


def kept_matrix(problem: Problem, arch: Arch, batch: MappingBatch) -> np.ndarray:
    """[B, levels, dataspaces] keep flags; the outermost level must keep every data space."""
    names = problem.dataspace_names
    kept = batch.kept(names)
    for di, ds in enumerate(names):
        if not kept[:, 0, di].all():
            raise InputError("<mapping>", f"{arch.levels[0].name}.keep", f"the outermost level must keep {ds}")
    return kept


def analyze(problem: Problem, arch: Arch, batch: MappingBatch) -> NestCounts:
    """Access counts for every mapping of ``batch`` under ``arch.nest_analysis``."""
    if arch.nest_analysis == "exact":
        from mapper.nest_exact import analyze_exact

        if batch.keep_index is None:
            return analyze_exact(problem, arch, batch)
        # The exact analysis pairs each level with its next keeper: one keep choice at a time.
        parts = [(rows, analyze_exact(problem, arch, batch.take(rows)))
                 for rows in (np.nonzero(batch.keep_index == k)[0] for k in np.unique(batch.keep_index))]
        return NestCounts.gather(batch.size, parts)
    from mapper.nest_timeloop import analyze_timeloop

    return analyze_timeloop(problem, arch, batch)
