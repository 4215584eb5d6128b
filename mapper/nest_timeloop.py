"""timeloop-model's access counting in closed form (``nest_analysis: timeloop``, the default).

docs/nest_analysis.md ("Timeloop semantics") states the rules and the Timeloop functions
they follow; tests/timeloop_oracle.py walks them on explicit point sets and
tests/test_timeloop_conformance.py checks real Timeloop outputs. In short, per pair of a
level ``s`` and its next inner level ``c`` (every level, kept or not, as Timeloop's nest
analysis does before bypass is applied):

* Timeloop evaluates each temporal loop at its iterations 0 and 1 only and weighs the second
  by ``bound - 1`` (``NestAnalysis::ComputeTemporalWorkingSet``). The calls to ``c``'s tile
  therefore follow a binary counter over the temporal loops above ``c``: a call that
  increments loop ``k`` (inner loops back to 0) moves the tile by
  ``T_k = A (step_k - sum of the steps of the loops inside k)`` and stands for
  ``N_k = (bound_k - 1) * prod(outer bounds)`` real increments.
* A tile's delta is a set difference only while the translation repeats
  (``OperationSpace::SaveAndSubtractIfSameStride``); a zero translation is not recorded.
  On a binary counter this gives, with ``k*`` the innermost loop whose ``T`` is non-zero and
  ``ref = T_k*``: the first call brings the whole tile; increments of ``k*`` and of any loop
  with ``T_k == ref`` bring ``tile - overlap(ref)``; loops with ``T_k == 0`` bring nothing;
  every other increment (a wrap) brings the whole tile.
* Only the first child of a spatial fan-out is evaluated; its siblings get its delta
  translated by their offset (``NestAnalysis::FillSpatialDeltas``). Siblings with identical
  deltas share one parent access (``ComputeAccurateMulticastedAccesses``): the parent reads
  ``delta x (number of distinct sibling offsets)``. A child whose delta equals a mesh
  neighbour's previous delta takes it over the link when that lowers the parent's accesses
  (``ComputeNetworkLinkTransfers``); see :func:`mesh_table`.
* The level counts are then collapsed as ``tiling.cpp`` ``CollapseDataMovementNest`` does:
  partition sizes, parent access share, bypass masking (``MaskTiles``), peer accesses from link
  transfers and first-read elision (``ComputeReadUpdateReductionAccesses_Legacy``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from mapper.arch import Arch
from mapper.nest import I64, LoopArrays, MappingBatch, NestCounts, axis_matrix, extents, kept_matrix, loop_arrays
from workloads.problem import Problem

# ---- spatial fan-out: multicast groups and neighbour links ------------------------------

@dataclass(frozen=True)
class MeshTable:
    """Multicast and link facts of one spatial fan-out for one data space.

    Attributes:
        distinct: number of distinct child offsets (parent accesses per delta point, no links).
        deltas: [M, axes] neighbour offset differences that occur in the mesh.
        linked: [M] children with a mesh neighbour at that difference (they can take the delta
            over the link when the tile moved by exactly that difference).
        remaining: [M] distinct offsets among the other children (parent accesses with links).
    """

    distinct: int
    deltas: np.ndarray
    linked: np.ndarray
    remaining: np.ndarray


def _count_rows(rows: np.ndarray) -> int:
    """Number of distinct rows of an int64 matrix."""
    if rows.shape[0] == 0:
        return 0
    return int(np.unique(rows, axis=0).shape[0])


def mesh_table(ends: tuple[int, ...], steps: np.ndarray, mesh_x: int, mesh_y: int) -> MeshTable:
    """Children of a fan-out laid out as Timeloop does, and their neighbour relations.

    ``ends``: bounds of the fan-out's spatial loops, innermost first; ``steps``: [loops, axes]
    data-space offset of one iteration of each. A child's linear id is the mixed-radix number
    of its loop indices (innermost least significant); its mesh position is
    ``(id % mesh_x, id // mesh_x)`` with ``mesh_x = max(physical, mapped)`` X fan-out, and its
    neighbours are the ids one step left/right/up/down (no wrap-around), as in
    ``NestAnalysis::ComputeNetworkLinkTransfers``.
    """
    F = int(np.prod(ends)) if ends else 1
    lin = np.arange(F, dtype=I64)
    radix = np.cumprod([1, *ends[:-1]]).astype(I64) if ends else np.ones(0, I64)
    digits = (lin[:, None] // radix[None, :]) % np.asarray(ends, I64)[None, :]
    offsets = digits @ steps if ends else np.zeros((1, steps.shape[1]), I64)
    h, v = lin % mesh_x, lin // mesh_x
    pairs = []
    for neighbour, ok in (
        (lin - mesh_x, v >= 1), (lin + mesh_x, (v + 1 < mesh_y) & (lin + mesh_x < F)),
        (lin - 1, h >= 1), (lin + 1, (h + 1 < mesh_x) & (lin + 1 < F)),
    ):
        pairs.append(np.stack([lin[ok], neighbour[ok]], axis=1))
    pair = np.concatenate(pairs) if pairs else np.zeros((0, 2), I64)
    distinct = _count_rows(offsets)
    if pair.shape[0] == 0:
        return MeshTable(distinct, np.zeros((0, steps.shape[1]), I64), np.zeros(0, I64), np.zeros(0, I64))
    diffs = offsets[pair[:, 1]] - offsets[pair[:, 0]]
    deltas, which = np.unique(diffs, axis=0, return_inverse=True)
    which = which.reshape(-1)
    linked = np.zeros(len(deltas), I64)
    remaining = np.zeros(len(deltas), I64)
    for m in range(len(deltas)):
        marked = np.zeros(F, bool)
        marked[pair[which == m, 0]] = True
        linked[m] = int(marked.sum())
        remaining[m] = _count_rows(offsets[~marked])
    return MeshTable(distinct, deltas, linked, remaining)


_TABLES: OrderedDict[bytes, MeshTable] = OrderedDict()
_TABLES_MAX = 4096


def _cached_table(key: np.ndarray, ends: np.ndarray, steps: np.ndarray, mesh_x: int, mesh_y: int) -> MeshTable:
    raw = key.tobytes()
    table = _TABLES.get(raw)
    if table is None:
        live = ends > 1
        table = mesh_table(tuple(int(e) for e in ends[live]), steps[live], mesh_x, mesh_y)
        _TABLES[raw] = table
        if len(_TABLES) > _TABLES_MAX:
            _TABLES.popitem(last=False)
    else:
        _TABLES.move_to_end(raw)
    return table


class _Mesh:
    """The spatial fan-out of every level of a batch: loop bounds, dimensions, mesh shape."""

    def __init__(self, arch: Arch, batch: MappingBatch) -> None:
        orders = batch.spatial_orders()
        sx = np.take_along_axis(batch.spatial_x, orders, axis=2)
        sy = np.take_along_axis(batch.spatial_y, orders, axis=2)
        self.ends = np.concatenate([sx, sy], axis=2)          # [B, L, 2D] innermost first: X then Y
        self.dims = np.concatenate([orders, orders], axis=2)  # [B, L, 2D]
        phys = np.array([arch.fanout(i) for i in range(len(arch.levels))], I64).reshape(-1, 2)
        self.mesh_x = np.maximum(phys[None, :, 0], sx.prod(axis=2))
        self.mesh_y = np.maximum(phys[None, :, 1], sy.prod(axis=2))

    def lookup(self, s: int, rows: np.ndarray, A: np.ndarray, child_ext: np.ndarray,
               queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distinct [r], linked [r, q], remaining [r, q]) of level ``s``'s fan-out for ``rows``.

        ``child_ext``: [r, dims] problem-space tile extent of one child (the spatial loops'
        steps); ``queries``: [r, q, axes] tile translations to look up (no match: 0 linked).
        """
        r, q, AX = queries.shape
        ends = self.ends[rows, s]
        dims = self.dims[rows, s]
        # A spatial loop steps over one child tile, times the X loop of the same dim for a Y loop.
        span = np.take_along_axis(child_ext, dims, axis=1)
        D = span.shape[1] // 2
        span[:, D:] *= ends[:, :D]
        steps = A.T[dims] * span[:, :, None]                                 # [r, 2D, AX]
        order = np.argsort(ends == 1, axis=1, kind="stable")
        ends = np.take_along_axis(ends, order, axis=1)
        steps = np.take_along_axis(steps, order[:, :, None], axis=1)
        steps = np.where(ends[:, :, None] > 1, steps, 0)
        key = np.concatenate([ends, steps.reshape(r, -1), self.mesh_x[rows, s, None], self.mesh_y[rows, s, None]], axis=1)
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        distinct = np.ones(r, I64)
        linked = np.zeros((r, q), I64)
        remaining = np.zeros((r, q), I64)
        for u in range(len(uniq)):
            sel = np.nonzero(inverse == u)[0]
            first = sel[0]
            table = _cached_table(uniq[u], ends[first], steps[first], int(self.mesh_x[rows[first], s]),
                                  int(self.mesh_y[rows[first], s]))
            distinct[sel] = table.distinct
            remaining[sel] = table.distinct
            if len(table.deltas):
                hit = np.all(queries[sel][:, :, None, :] == table.deltas[None, None], axis=3)  # [n, q, M]
                found = hit.any(axis=2)
                m = hit.argmax(axis=2)
                linked[sel] = np.where(found, table.linked[m], 0)
                remaining[sel] = np.where(found, table.remaining[m], table.distinct)
        return distinct, linked, remaining


# ---- accesses of one level by its children ---------------------------------------------

@dataclass
class _LevelAccesses:
    """Per parent instance: distinct accesses, accesses x multicast, link transfers (floats)."""

    content: np.ndarray
    weighted: np.ndarray
    links: np.ndarray


def _translations(loops: LoopArrays, A: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the temporal slots above a child: present mask, T_k [B, n, axes], N_k [B, n]."""
    present = loops.t_bound[:, :n] > 1
    ps = A.T[loops.t_dim[:, :n]] * np.where(present, loops.t_stride[:, :n], 0)[:, :, None]
    inner_sum = np.flip(np.cumsum(np.flip(ps, 1), axis=1), 1) - ps
    return present, ps - inner_sum, loops.t_count[:, :n].astype(float)


def _with_links(mesh: _Mesh, s: int, A: np.ndarray, child_ext: np.ndarray, fan: np.ndarray, plain: np.ndarray,
                queries: np.ndarray, weights: np.ndarray) -> _LevelAccesses:
    """Parent accesses with multicast and, where a query's weight > 0, link transfers.

    ``plain``: [B] delta points over all calls (one child); ``queries``/``weights``: [B, q, axes]
    tile translations of the link-eligible calls and their weighted delta points.
    """
    B = plain.shape[0]
    content, weighted, links = plain.copy(), plain.copy(), np.zeros(B)
    rows = np.nonzero(fan > 1)[0]
    if len(rows) == 0:
        return _LevelAccesses(content, weighted, links)
    distinct, linked, remaining = mesh.lookup(s, rows, A, child_ext[rows], queries[rows])
    use = (weights[rows] > 0) & (remaining < distinct[:, None]) & (linked > 0)
    w = np.where(use, weights[rows], 0.0)
    F = fan[rows].astype(float)
    content[rows] = plain[rows] * distinct - (w * (distinct[:, None] - remaining)).sum(axis=1)
    weighted[rows] = plain[rows] * F - (w * linked).sum(axis=1)
    links[rows] = (w * linked).sum(axis=1)
    return _LevelAccesses(content, weighted, links)


def _storage_child(mesh: _Mesh, s: int, A: np.ndarray, loops: LoopArrays, e_child: np.ndarray,
                   child_ext: np.ndarray, fan: np.ndarray) -> _LevelAccesses:
    """Accesses to level ``s`` by the tiles of level ``s + 1`` (one data space)."""
    D = loops.SP.shape[2]
    n = (s + 1) * D
    present, T, N = _translations(loops, A, n)
    B = T.shape[0]
    tile = e_child.prod(axis=1).astype(float)
    moving = present & np.any(T != 0, axis=2)
    any_moving = moving.any(axis=1)
    k_star = n - 1 - np.argmax(moving[:, ::-1], axis=1)
    ref = T[np.arange(B), k_star]                                      # [B, AX]
    overlap = np.maximum(e_child - np.abs(ref), 0).prod(axis=1).astype(float)
    partial = np.where(any_moving, tile - overlap, 0.0)
    same = moving & np.all(T == ref[:, None, :], axis=2)
    out = np.where(same, partial[:, None], np.where(moving, tile[:, None], 0.0))
    plain = tile + (N * out).sum(axis=1)
    # Link-eligible calls need a moving innermost loop (k* is the innermost present loop).
    j0 = n - 1 - np.argmax(present[:, ::-1], axis=1)
    linkable = any_moving & (k_star == j0) & present.any(axis=1)
    no_overlap = overlap == 0
    others = present & (np.arange(n)[None, :] != j0[:, None])
    full = others & moving & ~same
    eligible = others & (same | (full & no_overlap[:, None]))
    n_j0 = loops.t_bound[np.arange(B), j0].astype(float)
    w_ref = partial * ((n_j0 - 1) * (no_overlap + (N * eligible).sum(axis=1)) + (N * (others & same)).sum(axis=1))
    w_full = np.where(full & no_overlap[:, None], N * tile[:, None], 0.0)
    queries = np.concatenate([ref[:, None, :], T], axis=1)
    weights = np.concatenate([w_ref[:, None], w_full], axis=1) * linkable[:, None]
    return _with_links(mesh, s, A, child_ext, fan, plain, queries, weights)


def _compute_child(mesh: _Mesh, s: int, A: np.ndarray, loops: LoopArrays, fan: np.ndarray) -> _LevelAccesses:
    """Accesses to the innermost level by the compute units (one operand point per step)."""
    B, L, D = loops.SP.shape
    present, T, N = _translations(loops, A, L * D)
    plain = loops.compute_steps.astype(float)
    weights = np.where(present, N, 0.0)
    return _with_links(mesh, s, A, np.ones((B, D), I64), fan, plain, T, weights)


# ---- collapse into per-level counts (tiling.cpp) -----------------------------------------

def _round(x: np.ndarray) -> np.ndarray:
    """C's round() for the non-negative counts Timeloop stores as integers."""
    return np.floor(x + 0.5)


def analyze_timeloop(problem: Problem, arch: Arch, batch: MappingBatch) -> NestCounts:
    """Access counts for every mapping of ``batch`` as timeloop-model computes them."""
    B, L, D = batch.temporal.shape
    names = problem.dataspace_names
    loops = loop_arrays(batch)
    ext = extents(batch, loops)
    kept = kept_matrix(problem, arch, batch)
    used = loops.used
    fan = used[:, 1:] // used[:, :-1]                                 # [B, L] children per instance
    mesh = _Mesh(arch, batch)
    shape = (B, L, len(names))
    counts = {k: np.zeros(shape, I64) for k in ("reads", "fills", "updates", "tile")}
    link_total = np.zeros(shape)
    multicast, reduction = np.ones(shape), np.ones(shape)
    for di, ds in enumerate(problem.dataspaces):
        A = axis_matrix(problem, ds)
        e_axes = (ext - 1) @ A.T + 1                                   # [B, L+1, AX]
        size = e_axes[:, :L].prod(axis=2)
        union = ((ext[:, 1:] * loops.SP - 1) @ A.T + 1).prod(axis=2)  # box of a level's children
        acc = [
            _storage_child(mesh, s, A, loops, e_axes[:, s + 1], ext[:, s + 1], fan[:, s]) if s + 1 < L
            else _compute_child(mesh, s, A, loops, fan[:, s])
            for s in range(L)
        ]
        content = np.stack([a.content for a in acc], axis=1)
        weighted = np.stack([a.weighted for a in acc], axis=1)
        links = np.stack([a.links for a in acc], axis=1)
        # ComputePartitionSizes: the share of the outer partition one instance holds.
        partition = np.zeros((B, L), I64)
        partition[:, 0] = size[:, 0]
        for c in range(1, L):
            denom = np.where(fan[:, c - 1] > 1, union[:, c - 1], size[:, c])
            partition[:, c] = partition[:, c - 1] * size[:, c] // denom
        # ComputeParentAccessShare: what one child receives from its parent.
        share = np.zeros((B, L))
        share[:, 1:] = weighted[:, :-1] / fan[:, :-1]
        # MaskTiles: a bypassed level's accesses are served by the next outer level.
        live = np.ones((B, L), bool)
        for c in range(L - 1, 0, -1):
            if kept[c, di]:
                continue
            factor = np.divide(content[:, c] * fan[:, c - 1], weighted[:, c - 1],
                               out=np.zeros(B), where=weighted[:, c - 1] > 0)
            links[:, c - 1] = np.where(content[:, c - 1] > 0, 0.0, links[:, c - 1])
            content[:, c - 1] *= factor
            weighted[:, c - 1] *= factor
            live[:, c] = False
            content[:, c] = share[:, c] = 0.0
            partition[:, c] = 0
        # ComputePeerAccesses: link transfers become reads and fills of the receiving level.
        peer = np.zeros((B, L))
        peer[:, 1:] = links[:, :-1] / used[:, 1:L]
        # ComputeReadUpdateReductionAccesses_Legacy (first-read elision on).
        if ds.read_write:
            updates = _round(content)
            reads = _round(content + peer - partition)
            fills = _round(share + peer - partition)
            fills[:, 0] = _round(share[:, 0] + peer[:, 0])
        else:
            updates = np.zeros((B, L))
            reads = _round(content + peer)
            fills = np.floor(share + peer)
        for name, per_instance in (("reads", reads), ("fills", fills), ("updates", updates)):
            counts[name][:, :, di] = np.where(live, per_instance, 0).astype(I64) * used[:, :L]
        counts["tile"][:, :, di] = np.where(live, size, 0)
        link_total[:, :, di] = links * used[:, :L]
        factor = np.divide(weighted, content, out=np.ones((B, L)), where=content > 0)
        (reduction if ds.read_write else multicast)[:, :, di] = factor
    return NestCounts(names, kept, counts["reads"], counts["fills"], counts["updates"], counts["tile"],
                      used, multicast, reduction, loops.compute_steps, problem.macs, link_total)
