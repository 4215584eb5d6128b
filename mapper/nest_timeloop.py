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

from dataclasses import dataclass

import numpy as np

from mapper.arch import Arch
from mapper.nest import I64, LoopArrays, MappingBatch, NestCounts, axis_matrix, extents, kept_matrix, loop_arrays
from mapper.nest_mesh import Mesh
from workloads.problem import Problem
from workloads.yamlio import InputError

# ---- accesses of one level by its children ---------------------------------------------

@dataclass
class _LevelAccesses:
    """Per parent instance: distinct accesses, accesses x multicast, link transfers (floats)."""

    content: np.ndarray
    weighted: np.ndarray
    links: np.ndarray


@dataclass
class _Slots:
    """Temporal slots of the whole nest for one data space (outer to inner, level-major).

    A tile translation is a data-space vector; it is kept packed into one int64 (a balanced
    mixed radix: exact, and linear, so sums of packed steps are packed sums). ``T_code(n)``
    is the translation of a tile below the first ``n`` slots when slot k increments and the
    present slots inside it (above the tile) go back to index 0.
    """

    present: np.ndarray      # [B, L*D] bound > 1
    ps_code: np.ndarray      # [B, L*D] packed data-space step of one iteration (0 if absent)
    suffix_code: np.ndarray  # [B, L*D + 1] packed sum of ps from slot j inwards
    count: np.ndarray        # [B, L*D] N_k: real increments of the slot's loop
    radix: np.ndarray        # [axes] radix of each packed component
    weights: np.ndarray      # [axes] weight of each packed component (product of the radices before it)

    @classmethod
    def build(cls, loops: LoopArrays, A: np.ndarray, tensor_extent: np.ndarray, source: str) -> "_Slots":
        present = loops.t_bound > 1
        radix, weights = _code_radix(tensor_extent, source)
        dim_code = A.T @ weights                                               # [D] packed unit step per dim
        ps_code = dim_code[loops.t_dim] * np.where(present, loops.t_stride, 0)
        suffix_code = np.zeros((ps_code.shape[0], ps_code.shape[1] + 1), I64)
        suffix_code[:, :-1] = np.flip(np.cumsum(np.flip(ps_code, 1), axis=1), 1)
        return cls(present, ps_code, suffix_code, loops.t_count.astype(float), radix, weights)

    def T_code(self, n: int, rows: np.ndarray) -> np.ndarray:
        return self.ps_code[rows, :n] - (self.suffix_code[rows, 1:n + 1] - self.suffix_code[rows, n:n + 1])

    def unpack(self, code: np.ndarray) -> np.ndarray:
        """[..., axes] the vectors of packed translations.

        Adding ``sum(radix // 2 * weight)`` turns balanced digits in [-r//2, r//2] into
        ordinary mixed-radix digits in [0, r): one division per axis, all axes at once."""
        half = self.radix // 2
        return (code[..., None] + int(half @ self.weights)) // self.weights % self.radix - half


def _code_radix(tensor_extent: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(radix, weights) of a balanced mixed radix for translations (|component| < 2 x extent + 2)."""
    radix = [4 * (int(e) + 1) + 1 for e in np.asarray(tensor_extent).max(axis=0)]
    weights = [1]
    for r in radix[:-1]:
        weights.append(weights[-1] * int(r))
    if weights[-1] * int(radix[-1]) >= 2**62:
        raise InputError(source, "problem", "tensor too large for the Timeloop analysis' exact translation codes "
                         "(use nest_analysis: exact)")
    return np.array(radix, I64), np.array(weights, I64)


def _with_links(mesh: Mesh, s: int, A: np.ndarray, child_ext: np.ndarray, fan: np.ndarray, plain: np.ndarray,
                queries: np.ndarray, weights: np.ndarray, rows: np.ndarray, slots: _Slots) -> _LevelAccesses:
    """Parent accesses with multicast and, where a query's weight > 0, link transfers.

    Arrays are over ``rows`` (batch indices): ``plain`` [r] delta points over all calls (one
    child); ``queries``/``weights``: [r, q] packed tile translations (``slots``' code) of the
    link-eligible calls and their weighted delta points.
    """
    content, weighted, links = plain.copy(), plain.copy(), np.zeros(len(rows))
    sub = np.nonzero(fan > 1)[0]
    if len(sub) == 0:
        return _LevelAccesses(content, weighted, links)
    distinct = mesh.distinct(s, rows[sub], A, child_ext[sub])
    linked, remaining = mesh.links(s, rows[sub], A, child_ext[sub], queries[sub], weights[sub] > 0,
                                   slots.weights, slots.unpack)
    use = (weights[sub] > 0) & (remaining >= 0) & (remaining < distinct[:, None])
    w = np.where(use, weights[sub], 0.0)
    F = fan[sub].astype(float)
    content[sub] = plain[sub] * distinct - (w * (distinct[:, None] - remaining)).sum(axis=1)
    weighted[sub] = plain[sub] * F - (w * linked).sum(axis=1)
    links[sub] = (w * linked).sum(axis=1)
    return _LevelAccesses(content, weighted, links)


def _storage_child(mesh: Mesh, s: int, A: np.ndarray, loops: LoopArrays, slots: _Slots, e_child: np.ndarray,
                   child_ext: np.ndarray, fan: np.ndarray, rows: np.ndarray) -> _LevelAccesses:
    """Accesses to level ``s`` by the tiles of level ``s + 1`` (one data space), for ``rows``."""
    D = loops.SP.shape[2]
    n = (s + 1) * D
    present, T, N = slots.present[rows, :n], slots.T_code(n, rows), slots.count[rows, :n]
    e_child, child_ext, fan = e_child[rows], child_ext[rows], fan[rows]
    B = len(rows)
    tile = e_child.prod(axis=1).astype(float)
    moving = present & (T != 0)
    any_moving = moving.any(axis=1)
    k_star = n - 1 - np.argmax(moving[:, ::-1], axis=1)
    ref = slots.unpack(T[np.arange(len(rows)), k_star])                  # [B, AX]
    overlap = np.maximum(e_child - np.abs(ref), 0).prod(axis=1).astype(float)
    partial = np.where(any_moving, tile - overlap, 0.0)
    here = np.arange(B)
    same = moving & (T == T[here, k_star][:, None])
    out = np.where(same, partial[:, None], np.where(moving, tile[:, None], 0.0))
    plain = tile + (N * out).sum(axis=1)
    if not np.any(fan > 1):
        return _LevelAccesses(plain, plain.copy(), np.zeros(B))
    # Link-eligible calls need a moving innermost loop (k* is the innermost present loop).
    j0 = n - 1 - np.argmax(present[:, ::-1], axis=1)
    linkable = any_moving & (k_star == j0) & (fan > 1)
    no_overlap = overlap == 0
    others = present & (np.arange(n)[None, :] != j0[:, None])
    full = others & moving & ~same
    eligible = others & (same | (full & no_overlap[:, None]))
    n_j0 = loops.t_bound[rows, j0].astype(float)
    w_ref = partial * ((n_j0 - 1) * (no_overlap + (N * eligible).sum(axis=1)) + (N * (others & same)).sum(axis=1))
    w_full = np.where(full & (no_overlap & linkable)[:, None], N * tile[:, None], 0.0)
    queries, weights = T[here, k_star][:, None], (w_ref * linkable)[:, None]
    if np.any(w_full > 0):
        queries = np.concatenate([queries, T], axis=1)
        weights = np.concatenate([weights, w_full], axis=1)
    return _with_links(mesh, s, A, child_ext, fan, plain, queries, weights, rows, slots)


def _compute_child(mesh: Mesh, s: int, A: np.ndarray, loops: LoopArrays, slots: _Slots, fan: np.ndarray) -> _LevelAccesses:
    """Accesses to the innermost level by the compute units (one operand point per step)."""
    B, L, D = loops.SP.shape
    plain = loops.compute_steps.astype(float)
    if not np.any(fan > 1):
        return _LevelAccesses(plain, plain.copy(), np.zeros(B))
    rows = np.arange(B)
    weights = np.where(slots.present, slots.count, 0.0)
    return _with_links(mesh, s, A, np.ones((B, D), I64), fan, plain, slots.T_code(L * D, rows), weights, rows, slots)


# ---- collapse into per-level counts (tiling.cpp) -----------------------------------------

def _times_over(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b // c`` exactly, also where ``a * b`` would overflow int64 (huge tensors)."""
    big = a.astype(float) * b >= 2**62
    out = np.where(big, 0, a * np.where(big, 0, b)) // c
    for i in np.nonzero(big)[0]:
        out[i] = int(a[i]) * int(b[i]) // int(c[i])
    return out


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
    mesh = Mesh(arch, batch)
    shape = (B, L, len(names))
    counts = {k: np.zeros(shape, I64) for k in ("reads", "fills", "updates", "tile")}
    link_total = np.zeros(shape)
    multicast, reduction = np.ones(shape), np.ones(shape)
    for di, ds in enumerate(problem.dataspaces):
        A = axis_matrix(problem, ds)
        e_axes = (ext - 1) @ A.T + 1                                   # [B, L+1, AX]
        size = e_axes[:, :L].prod(axis=2)
        union = ((ext[:, 1:] * loops.SP - 1) @ A.T + 1).prod(axis=2)  # box of a level's children
        slots = _Slots.build(loops, A, e_axes[:, 0], arch.source)
        content, weighted, links = np.ones((B, L)), np.ones((B, L)), np.zeros((B, L))
        for s in range(L):
            if s == L - 1:
                acc = _compute_child(mesh, s, A, loops, slots, fan[:, s])
                rows = slice(None)
            else:
                # Below a bypassed level only the multicast ratio weighted/content survives the
                # masking (MaskTiles rescales it), and it is 1 without a fan-out.
                rows = np.nonzero(kept[:, s + 1, di] | (fan[:, s] > 1))[0]
                if not len(rows):
                    continue
                acc = _storage_child(mesh, s, A, loops, slots, e_axes[:, s + 1], ext[:, s + 1], fan[:, s], rows)
            content[rows, s], weighted[rows, s], links[rows, s] = acc.content, acc.weighted, acc.links
        # ComputePartitionSizes: the share of the outer partition one instance holds.
        partition = np.zeros((B, L), I64)
        partition[:, 0] = size[:, 0]
        for c in range(1, L):
            denom = np.where(fan[:, c - 1] > 1, union[:, c - 1], size[:, c])
            partition[:, c] = _times_over(partition[:, c - 1], size[:, c], denom)
        # ComputeParentAccessShare: what one child receives from its parent.
        share = np.zeros((B, L))
        share[:, 1:] = weighted[:, :-1] / fan[:, :-1]
        # MaskTiles: a bypassed level's accesses are served by the next outer level.
        live = np.ones((B, L), bool)
        for c in range(L - 1, 0, -1):
            by = np.nonzero(~kept[:, c, di])[0]
            if not len(by):
                continue
            factor = np.divide(content[by, c] * fan[by, c - 1], weighted[by, c - 1],
                               out=np.zeros(len(by)), where=weighted[by, c - 1] > 0)
            links[by, c - 1] = np.where(content[by, c - 1] > 0, 0.0, links[by, c - 1])
            content[by, c - 1] *= factor
            weighted[by, c - 1] *= factor
            live[by, c] = False
            content[by, c] = share[by, c] = 0.0
            partition[by, c] = 0
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
