"""A level's spatial fan-out as Timeloop sees it: multicast groups and neighbour links.

Timeloop evaluates the first child of a fan-out and gives every other child that delta
translated by the child's offset (``NestAnalysis::FillSpatialDeltas``). So, per data space:

* children with the same offset get identical deltas and share one parent access
  (``ComputeAccurateMulticastedAccesses``): a parent access per *distinct* offset;
* a child whose delta equals a mesh neighbour's delta of the previous call takes it over the
  link (``ComputeNetworkLinkTransfers``). When the tile moved by ``T`` between the two calls
  and both deltas have the same shape, that is a neighbour whose offset is the child's plus
  ``T``. The link is used only when it lowers the parent's accesses, i.e. when some offset
  loses all of its children to links.

Children are numbered by the mixed-radix value of their spatial loop indices (innermost loop
least significant; X loops inside Y loops) and laid out row-major on a mesh ``mesh_x``
wide, ``mesh_x = max(physical X fan-out, mapped X fan-out)``; neighbours are one step left,
right, up or down, without wrap-around.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from mapper.arch import Arch
from mapper.nest import I64, MappingBatch, union_length


NO_DIFFERENCE = np.iinfo(I64).min // 4  # marks an impossible neighbour difference


@dataclass(frozen=True)
class MeshTable:
    """Link facts of one fan-out for one data space.

    Attributes:
        deltas: [M, axes] offset differences between mesh neighbours.
        linked: [M] children that have a neighbour at that difference.
        remaining: [M] distinct offsets among the other children.
    """

    deltas: np.ndarray
    linked: np.ndarray
    remaining: np.ndarray


def _codes(rows: np.ndarray) -> np.ndarray:
    """One int64 per row of a small int64 matrix, equal iff the rows are equal."""
    low = rows.min(axis=0)
    span = rows.max(axis=0) - low + 1
    weights = np.concatenate([[1], np.cumprod(span[:-1])]).astype(I64)
    return (rows - low) @ weights


def mesh_table(ends: tuple[int, ...], steps: np.ndarray, mesh_x: int, mesh_y: int) -> MeshTable:
    """Enumerate the children of one fan-out (``ends``: loop bounds innermost first; ``steps``:
    [loops, axes] data-space offset of one iteration of each loop) and their neighbour links."""
    F = int(np.prod(ends))
    lin = np.arange(F, dtype=I64)
    radix = np.cumprod([1, *ends[:-1]]).astype(I64)
    offsets = ((lin[:, None] // radix[None, :]) % np.asarray(ends, I64)[None, :]) @ steps
    h, v = lin % mesh_x, lin // mesh_x
    sides = (
        (lin - mesh_x, v >= 1), (lin + mesh_x, (v + 1 < mesh_y) & (lin + mesh_x < F)),
        (lin - 1, h >= 1), (lin + 1, (h + 1 < mesh_x) & (lin + 1 < F)),
    )
    child = np.concatenate([lin[ok] for _, ok in sides])
    neighbour = np.concatenate([n[ok] for n, ok in sides])
    empty = MeshTable(np.zeros((0, steps.shape[1]), I64), np.zeros(0, I64), np.zeros(0, I64))
    if child.size == 0:
        return empty
    code = _codes(offsets)
    all_counts = np.bincount(code)                                  # children per distinct offset
    diffs = offsets[neighbour] - offsets[child]
    _, first, which = np.unique(_codes(diffs), return_index=True, return_inverse=True)
    deltas = diffs[first]
    # Children marked for each difference m (a child counts once per m) ...
    pair = np.unique(which * F + child)
    m, marked = pair // F, pair % F
    linked = np.bincount(m, minlength=len(deltas)).astype(I64)
    # ... and the offsets all of whose children are marked: the others remain.
    per_code, taken = np.unique(m * all_counts.size + code[marked], return_counts=True)
    emptied = taken == all_counts[per_code % all_counts.size]
    remaining = np.count_nonzero(all_counts) - np.bincount(per_code[emptied] // all_counts.size, minlength=len(deltas))
    return MeshTable(deltas, linked, remaining)


_TABLES: OrderedDict[bytes, MeshTable] = OrderedDict()
_TABLES_MAX = 4096


def clear_tables() -> None:
    """Empty the mesh-table cache (benchmarks time a search from a cold cache)."""
    _TABLES.clear()


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


@dataclass
class _Layout:
    """One level's spatial loops per mapping, those with bound > 1 first (innermost first)."""

    ends: np.ndarray     # [B, G]
    dims: np.ndarray     # [B, G] problem dimension of each loop
    x_span: np.ndarray   # [B, G] X factor of a Y loop's dimension (a Y loop steps over it), else 1


class Mesh:
    """The spatial fan-out of every level of a batch: loop bounds, dimensions, mesh shape."""

    def __init__(self, arch: Arch, batch: MappingBatch) -> None:
        orders = batch.spatial_orders()
        sx = np.take_along_axis(batch.spatial_x, orders, axis=2)
        sy = np.take_along_axis(batch.spatial_y, orders, axis=2)
        self.sp = batch.spatial_x * batch.spatial_y                 # [B, L, D] by dimension
        self.sx = batch.spatial_x
        self.ends = np.concatenate([sx, sy], axis=2)               # [B, L, 2D] innermost first: X then Y
        self.dims = np.concatenate([orders, orders], axis=2)       # [B, L, 2D]
        phys = np.array([arch.fanout(i) for i in range(len(arch.levels))], I64).reshape(-1, 2)
        self.mesh_x = np.maximum(phys[None, :, 0], sx.prod(axis=2))
        self.mesh_y = np.maximum(phys[None, :, 1], sy.prod(axis=2))
        self._layouts: dict[int, _Layout] = {}

    def distinct(self, s: int, rows: np.ndarray, A: np.ndarray, child_ext: np.ndarray) -> np.ndarray:
        """[r] distinct child offsets of level ``s``'s fan-out (parent accesses per delta point).

        Each data-space axis is a sum of terms on distinct dimensions, so offsets are a product
        over axes of 1-D sumsets; a sumset's size is the union length of unit intervals.
        """
        B = child_ext.shape[0]
        count = np.ones(B, I64)
        for ax in range(A.shape[0]):
            progressions = [(self.sp[rows, s, d], A[ax, d] * child_ext[:, d]) for d in np.nonzero(A[ax])[0]]
            count *= union_length(np.ones(B, I64), progressions)
        return count

    def layout(self, s: int) -> _Layout:
        if s not in self._layouts:
            ends = self.ends[:, s]
            D2 = ends.shape[1]
            order = np.argsort(ends == 1, axis=1, kind="stable")
            G = max(int((ends > 1).sum(axis=1).max()), 1)
            order = order[:, :G]
            ends = np.take_along_axis(ends, order, axis=1)
            dims = np.take_along_axis(self.dims[:, s], order, axis=1)
            x_span = np.where(order >= D2 // 2, np.take_along_axis(self.sx[:, s], dims, axis=1), 1)
            self._layouts[s] = _Layout(ends, dims, x_span)
        return self._layouts[s]

    def links(self, s: int, rows: np.ndarray, A: np.ndarray, child_ext: np.ndarray, queries: np.ndarray,
              active: np.ndarray, code_weights: np.ndarray, unpack: Callable[[np.ndarray], np.ndarray],
              ) -> tuple[np.ndarray, np.ndarray]:
        """(linked [r, q], remaining [r, q]) of level ``s``'s fan-out for ``rows`` when the tile
        moved by ``queries`` [r, q] (only where ``active``); remaining is -1 where no neighbour
        matches. A query is a translation packed as ``sum(component x code_weights)`` with
        balanced digits; ``unpack`` gives its [.., axes] components."""
        r, q = queries.shape
        AX = A.shape[0]
        linked = np.zeros((r, q), I64)
        remaining = np.full((r, q), -1, I64)
        pr, pq = np.nonzero(active)
        if len(pr) == 0:
            return linked, remaining
        # The fan-out's loops are the same for every query of a row: per-row arrays over the
        # rows with a query (``live``), indexed per query through ``li``.
        live = np.nonzero(active.any(axis=1))[0]
        li = np.searchsorted(live, pr)
        lay = self.layout(s)
        ends, dims = lay.ends[rows[live]], lay.dims[rows[live]]                  # [R, G]
        axis_of = np.where(A.any(axis=0), A.argmax(axis=0), AX)               # [D] (AX: none)
        span = np.take_along_axis(child_ext[live], dims, axis=1) * lay.x_span[rows[live]]
        scalar = np.where(ends > 1, A.sum(axis=0)[dims] * span, 0)             # [R, G]
        # Quick test: per axis, a neighbour difference is no larger than the children's spread
        # (each dimension indexes one axis: scalar steps, summed per axis with bincount).
        slot = np.arange(len(live))[:, None] * (AX + 1) + axis_of[dims]
        spread = np.bincount(slot.ravel(), weights=((ends - 1) * np.abs(scalar)).ravel(),
                             minlength=len(live) * (AX + 1)).reshape(len(live), AX + 1)[:, :AX]
        # On packed codes first: |code| <= sum(spread x weight) whenever every component is
        # within the spread (unpacking only what passes).
        code = queries[pr, pq]
        keep = np.nonzero(np.abs(code) <= (spread.astype(I64) @ code_weights)[li])[0]
        wanted = unpack(code[keep])
        pr, pq, li = pr[keep], pq[keep], li[keep]
        keep = np.nonzero(np.all(np.abs(wanted) <= spread[li], axis=1))[0]
        if len(keep) == 0:
            return linked, remaining
        pr, pq, li, wanted = pr[keep], pq[keep], li[keep], wanted[keep]
        steps = np.where(axis_of[dims][:, :, None] == np.arange(AX)[None, None, :], scalar[:, :, None], 0)  # [R, G, AX]
        unit = np.gcd.reduce(np.abs(steps), axis=1)[li]                     # [P, AX]
        divisible = np.all(np.where(unit > 0, wanted % np.maximum(unit, 1) == 0, wanted == 0), axis=1)
        keep = np.nonzero(divisible)[0]
        if len(keep) == 0:
            return linked, remaining
        pr, pq, li, wanted, unit = pr[keep], pq[keep], li[keep], wanted[keep], unit[keep]
        at, ends, steps = rows[pr], ends[li], steps[li]
        mesh_x, mesh_y = self.mesh_x[at, s], self.mesh_y[at, s]
        # The fan-out's neighbour differences (mesh_table, cached), in units of the steps' gcd.
        unit = np.maximum(unit, 1)
        norm_steps = steps // unit[:, None, :]
        wanted = wanted // unit
        key = np.concatenate([ends, norm_steps.reshape(len(pr), -1), mesh_x[:, None], mesh_y[:, None]], axis=1)
        first, inverse = _group_rows(key)
        tables = [_cached_table(key[i], ends[i], norm_steps[i], int(mesh_x[i]), int(mesh_y[i])) for i in first]
        M = max(max(len(t.deltas) for t in tables), 1)
        deltas = np.full((len(tables), M, AX), NO_DIFFERENCE, I64)
        t_linked = np.zeros((len(tables), M), I64)
        t_remaining = np.full((len(tables), M), -1, I64)
        for u, t in enumerate(tables):
            n = len(t.deltas)
            deltas[u, :n], t_linked[u, :n], t_remaining[u, :n] = t.deltas, t.linked, t.remaining
        match = np.all(wanted[:, None, :] == deltas[inverse], axis=2)                      # [P, M]
        m = match.argmax(axis=1)
        found = match[np.arange(len(pr)), m]
        linked[pr, pq] = np.where(found, t_linked[inverse, m], 0)
        remaining[pr, pq] = np.where(found, t_remaining[inverse, m], -1)
        return linked, remaining


@lru_cache(maxsize=None)
def _hash_weights(width: int) -> np.ndarray:
    """Fixed odd random weights that hash a row of ``width`` int64 values into one."""
    weights = np.random.default_rng(12345).integers(1, 2**62, size=width, dtype=np.int64) | 1
    weights.flags.writeable = False
    return weights


def _group_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first row of each group, group of each row) for equal rows of ``key``."""
    weights = _hash_weights(key.shape[1])
    with np.errstate(over="ignore"):
        h = (key * weights).sum(axis=1)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not np.array_equal(key, key[first[inverse]]):  # a hash collision: exact grouping instead
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    return first, inverse
