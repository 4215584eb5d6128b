"""Mapping search: exhaustive (provably optimal) for small mapspaces, guided for large ones.

Both evaluate candidates in vectorized batches (``evaluate_batch``), so the work model's
lock-step cycles and the format model's compressed sizes enter every candidate. Ties are
broken deterministically (first in enumeration order; in the guided search, by the
candidate's encoding), and a seed makes guided runs repeatable.

An objective is one metric, a weighted sum, or a list of metrics compared lexicographically
(Timeloop's ``optimization_metrics``: the first decides, the next breaks exact ties).

The guided search is an elitist local search: a population of the best distinct mappings
is mutated (move a prime factor between two slots of a dimension, swap two loops of a
level, keep or bypass a data space at a level), mixed with fresh random samples, until
the best has not improved for ``patience`` rounds (victory condition), or an evaluation or
time budget runs out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping as TMapping, Sequence

import numpy as np

from mapper.arch import Arch
from mapper.constraints import Constraints
from mapper.ert import EnergyTable
from mapper.mapping import Mapping
from mapper.mapspace import Mapspace
from mapper.model import BatchEvaluation, BitLevelModels, Evaluation, bits_table, evaluate_batch
from mapper.nest import MappingBatch
from workloads.problem import Problem
from workloads.yamlio import InputError

Objective = str | TMapping[str, float] | Sequence[str]


def objective_values(ev: BatchEvaluation, objective: Objective) -> np.ndarray:
    """Objective per candidate (lower is better); invalid candidates get +inf.

    ``objective``: ``energy`` (pJ), ``delay`` (cycles), ``edp`` (pJ x cycles), a mapping of
    those names to weights for a weighted sum ([B] values), or a list/tuple of names compared
    lexicographically ([B, k] values, one column per metric).
    """
    metrics = {"energy": ev.energy_pJ, "delay": ev.cycles.astype(float), "edp": ev.energy_pJ * ev.cycles}
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise InputError("<search>", "objective", "expected at least one metric")
        return np.stack([objective_values(ev, name) for name in objective], axis=1)
    if isinstance(objective, str):
        if objective not in metrics:
            raise InputError("<search>", "objective", f"expected energy, delay, edp or a weighted mapping, got {objective!r}")
        value = metrics[objective]
    else:
        unknown = [k for k in objective if k not in metrics]
        if unknown:
            raise InputError("<search>", "objective", f"unknown metric {unknown[0]!r} (expected energy, delay, edp)")
        value = sum(float(w) * metrics[k] for k, w in objective.items())
    return np.where(ev.valid, value, np.inf)


@dataclass
class SearchResult:
    """Best mapping found and how the search went."""

    mapping: Mapping
    evaluation: Evaluation
    problem: Problem  # the problem the mapping is for: padded up to its factors when imperfect
    objective: float  # the (first) metric's value
    evaluated: int
    valid: int
    exhaustive: bool
    seconds: float
    history: list[tuple[int, float]] = field(default_factory=list)  # (evaluations so far, best objective)
    objectives: tuple[float, ...] = ()  # every metric of a lexicographic objective, in order


def _columns(values: np.ndarray) -> np.ndarray:
    """Objective values as [n, k] (k = 1 for a single metric)."""
    return values[:, None] if values.ndim == 1 else values


def _lex_order(values: np.ndarray) -> np.ndarray:
    """Indices of [n, k] rows sorted lexicographically; equal rows keep their order (stable)."""
    return np.lexsort(values.T[::-1])


class _Best:
    """Running best candidate with deterministic tie-breaking."""

    def __init__(self) -> None:
        self.values: tuple[float, ...] = (np.inf,)
        self.key: bytes = b""
        self.batch: MappingBatch | None = None
        self.index = -1

    @property
    def value(self) -> float:
        return self.values[0]

    def offer(self, values: np.ndarray, batch: MappingBatch, keys: list[bytes] | None = None) -> bool:
        """``values``: [n, k] objective rows; the lexicographically smallest (first in batch order) wins."""
        if not len(values):
            return False
        i = int(np.argmin(values[:, 0])) if values.shape[1] == 1 else int(_lex_order(values)[0])  # first minimum
        v = tuple(float(x) for x in values[i])
        if keys is not None:
            ties = np.nonzero(np.all(values == values[i], axis=1))[0]
            i = int(min(ties, key=lambda t: keys[t]))
        key = keys[i] if keys is not None else b""
        if v < self.values or (keys is not None and v == self.values and v[0] < np.inf and key < self.key):
            self.values, self.key, self.batch, self.index = v, key, batch, i
            return True
        return False


def _min_capacity_use(arch: Arch) -> np.ndarray | None:
    """Per level, the fraction of its capacity a mapping must use (Timeloop's buffer attribute
    ``min_utilization``, ``buffer.cpp`` ``PreEvaluationCheck``); None when no level sets one."""
    mins = np.array([float(l.attributes.get("min_utilization") or 0.0) if l.capacity_bits is not None else 0.0
                     for l in arch.levels])
    return mins - 1e-12 if mins.any() else None


def _no_valid_mapping(arch: Arch, min_bits: np.ndarray) -> InputError:
    """Name the level whose smallest seen tile set does not fit."""
    for i, lvl in enumerate(arch.levels):
        cap = lvl.capacity_bits
        if cap is not None and min_bits[i] > cap:
            return InputError(
                "<spec>", lvl.name,
                f"no valid mapping: the smallest tiles {lvl.name} must keep need {min_bits[i]:g} bits per instance, "
                f"but it holds {cap} bits (depth {lvl.depth} x {lvl.block_size * lvl.word_bits} bits)",
            )
    return InputError("<spec>", "constraints", "no valid mapping satisfies the constraints")


def _minimal_tile_bits(problem: Problem, arch: Arch, models: BitLevelModels, keep: tuple[frozenset[str], ...]) -> np.ndarray:
    """Bits per level when every factor sits at the outermost level (the smallest tiles)."""
    bits = bits_table(arch, problem, models)
    names = problem.dataspace_names
    return np.array([sum(bits[i, j] for j, d in enumerate(names) if d in keep[i]) for i in range(len(arch.levels))])


def search(
    problem: Problem, arch: Arch, constraints: Constraints | None = None, ert: EnergyTable | None = None,
    models: BitLevelModels | None = None, objective: Objective = "edp", mode: str = "auto", seed: int = 0,
    max_evaluations: int = 200_000, time_limit_s: float | None = None, exhaustive_limit: int = 300_000,
    patience: int = 40, population: int = 48, mutants: int = 2048, imperfect: bool = False,
    progress: Callable[[int, float], None] | None = None, clock_MHz: float | None = None,
) -> SearchResult:
    """Find the best mapping of ``problem`` on ``arch``.

    ``mode``: ``exhaustive``, ``guided`` or ``auto`` (exhaustive when the pruned mapspace has at
    most ``exhaustive_limit`` points). ``progress(evaluated, best)`` is called after each batch.
    """
    models = models or BitLevelModels()
    space = Mapspace(problem, arch, constraints, imperfect=imperfect)
    start = time.perf_counter()
    if mode not in ("auto", "exhaustive", "guided"):
        raise InputError("<search>", "mode", f"expected auto, exhaustive or guided, got {mode!r}")
    exhaustive = mode == "exhaustive" or (mode == "auto" and space.count(exhaustive_limit) <= exhaustive_limit)
    best = _Best()
    stats = {"evaluated": 0, "valid": 0}
    history: list[tuple[int, float]] = []

    min_use = _min_capacity_use(arch)

    def run(batch: MappingBatch, keys: list[bytes] | None = None) -> np.ndarray:
        ev = evaluate_batch(problem, arch, batch, ert, models)
        values = _columns(objective_values(ev, objective))
        if min_use is not None:
            values[~np.all(ev.capacity_use >= min_use, axis=1)] = np.inf
        stats["evaluated"] += batch.size
        stats["valid"] += int(np.isfinite(values[:, 0]).sum())
        if best.offer(values, batch, keys):
            history.append((stats["evaluated"], best.value))
        if progress:
            progress(stats["evaluated"], best.value)
        return values

    if exhaustive:
        for batch in space.enumerate():
            run(batch)
    else:
        _guided(space, run, np.random.default_rng(seed), max_evaluations, time_limit_s, start, patience, population, mutants, stats)

    if best.batch is None or not np.isfinite(best.value):
        # keep_patterns[0] keeps only what the constraints require: the least each level must hold.
        raise _no_valid_mapping(arch, _minimal_tile_bits(problem, arch, models, space.keep_patterns[0]))
    mapping = best.batch.mapping(best.index, problem)
    # Imperfect factors pad dimensions: the mapping is exact for the padded problem.
    padded = problem.with_bounds(**{d: mapping.factor_product(d) for d in problem.dims})
    from mapper.model import evaluate  # local: evaluate re-validates the winner end to end

    evaluation = evaluate(padded, arch, mapping, ert, models, clock_MHz=clock_MHz)
    return SearchResult(mapping, evaluation, padded, best.value, stats["evaluated"], stats["valid"], exhaustive,
                        time.perf_counter() - start, history, best.values)


# ---- guided search -------------------------------------------------------------------------

def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One opaque sortable key per row (byte view), for exact row lookups."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


class _RowIndex:
    """Maps factor tuples of one dimension back to their row index in the mapspace (-1: not allowed)."""

    def __init__(self, rows: np.ndarray):
        keys = _row_keys(rows)
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]

    def find(self, rows: np.ndarray) -> np.ndarray:
        keys = _row_keys(rows)
        pos = np.minimum(np.searchsorted(self.sorted, keys), len(self.sorted) - 1)
        return np.where(self.sorted[pos] == keys, self.order[pos], -1)


def _smallest_prime_factor(values: np.ndarray) -> np.ndarray:
    """Smallest prime factor of each value (values >= 2)."""
    spf = values.copy()
    f = 2
    remaining = values > 3
    while remaining.any() and f * f <= int(values.max()):
        hit = remaining & (values % f == 0)
        spf[hit] = f
        remaining &= ~hit
        f += 1
    return spf


@dataclass
class _Population:
    """Candidates as arrays: factor-tuple index per dim, outer-to-inner orders, keep-pattern index."""

    idx: np.ndarray    # [n, D]
    order: np.ndarray  # [n, L, D]
    keep: np.ndarray   # [n]

    def keys(self) -> list[bytes]:
        flat = np.concatenate([self.idx, self.order.reshape(len(self.idx), -1), self.keep[:, None]], axis=1)
        return [row.tobytes() for row in np.ascontiguousarray(flat)]

    def take(self, sel: np.ndarray) -> "_Population":
        return _Population(self.idx[sel], self.order[sel], self.keep[sel])

    @staticmethod
    def concat(parts: list["_Population"]) -> "_Population":
        return _Population(np.concatenate([p.idx for p in parts]), np.concatenate([p.order for p in parts]),
                           np.concatenate([p.keep for p in parts]))


def _guided(space: Mapspace, run: Callable[..., np.ndarray], rng: np.random.Generator, max_evaluations: int,
            time_limit_s: float | None, start: float, patience: int, population: int, mutants: int,
            stats: dict[str, int]) -> None:
    index = [_RowIndex(t) for t in space.dim_tuples]
    keep_masks = np.array([_keep_mask(space, k) for k in space.keep_patterns], np.int64)
    mask_to_keep = {int(m): i for i, m in enumerate(keep_masks)}
    seen: set[bytes] = set()
    elite_vals = np.zeros((0, 1))
    elite_keys: list[bytes] = []
    elites = _Population(np.zeros((0, space.D), np.int64), np.zeros((0, space.L, space.D), np.int64), np.zeros(0, np.int64))

    def out_of_budget() -> bool:
        if stats["evaluated"] >= max_evaluations:
            return True
        return time_limit_s is not None and time.perf_counter() - start > time_limit_s

    def evaluate(cands: _Population) -> None:
        nonlocal elites, elite_vals, elite_keys
        keys = cands.keys()
        fresh = [i for i, k in enumerate(keys) if not (k in seen or seen.add(k))]  # type: ignore[func-returns-value]
        if not fresh:
            return
        cands = cands.take(np.array(fresh))
        keys = [keys[i] for i in fresh]
        T, SX, SY = space._assemble(cands.idx)
        ok = space._combination_ok(SX, SY)
        parts, vals, pkeys = [elites], [elite_vals], list(elite_keys)
        for keep_i in np.unique(cands.keep[ok]):
            sel = np.nonzero(ok & (cands.keep == keep_i))[0]
            group_keys = [keys[i] for i in sel]
            batch = MappingBatch(T[sel], SX[sel], SY[sel], cands.order[sel], space.keep_patterns[int(keep_i)])
            values = run(batch, group_keys)
            finite = np.isfinite(values[:, 0])
            parts.append(cands.take(sel[finite]))
            vals.append(values[finite])
            pkeys += [k for k, f in zip(group_keys, finite) if f]
        nonempty = [v for v in vals if len(v)]
        merged, merged_vals = _Population.concat(parts), (np.concatenate(nonempty) if nonempty else np.zeros((0, 1)))
        rank = sorted(range(len(merged_vals)), key=lambda i: (tuple(merged_vals[i]), pkeys[i]))[:population]
        elites, elite_vals, elite_keys = merged.take(np.array(rank, np.int64)), merged_vals[rank], [pkeys[i] for i in rank]

    def random_candidates(n: int) -> _Population:
        keep_i = int(rng.integers(len(space.keep_patterns)))
        batch = space.sample(rng, n, space.keep_patterns[keep_i])
        idx = np.stack([index[k].find(_dim_rows(space, batch, k)) for k in range(space.D)], axis=1)
        return _Population(idx, batch.permutation, np.full(batch.size, keep_i, np.int64))

    # Seed: the smallest-tile mapping (all factors outermost) under every keep pattern, plus random points.
    outer = np.array([index[k].find(np.array([[space.problem.bounds[d] if s == 0 else 1 for s in range(len(space.slots))]]))[0]
                      for k, d in enumerate(space.problem.dims)], np.int64)
    seeds = []
    if np.all(outer >= 0):
        n_keep = min(len(space.keep_patterns), 256)
        seeds.append(_Population(np.tile(outer, (n_keep, 1)), np.tile(np.arange(space.D), (n_keep, space.L, 1)),
                                 np.arange(n_keep, dtype=np.int64)))
    evaluate(_Population.concat(seeds + [random_candidates(256) for _ in range(max(1, mutants // 256))]))
    stale, best_so_far = 0, (np.inf,)
    while not out_of_budget() and stale < patience:
        parts = []
        if len(elite_vals):
            n_mut = mutants - mutants // 8
            children = elites.take(np.arange(n_mut) % len(elite_vals))
            for _ in range(3):
                active = rng.random(n_mut) < 0.6
                _mutate(space, children, active, rng, index, keep_masks, mask_to_keep)
            parts.append(children)
        parts += [random_candidates(256) for _ in range(max(1, mutants // 8 // 256))]
        evaluate(_Population.concat(parts))
        current = tuple(float(x) for x in elite_vals[0]) if len(elite_vals) else (np.inf,)
        if _improved(current, best_so_far):
            best_so_far, stale = current, 0
        else:
            stale += 1


def _improved(new: tuple[float, ...], old: tuple[float, ...]) -> bool:
    """Is ``new`` lexicographically better than ``old`` by more than a relative 1e-9 on some metric?"""
    for a, b in zip(new, old):
        if a < b * (1 - 1e-9):
            return True
        if not math.isclose(a, b, rel_tol=1e-9):
            return False
    return False


def _dim_rows(space: Mapspace, batch: MappingBatch, k: int) -> np.ndarray:
    """[n, slots] factor tuple of dimension k for every mapping of a batch."""
    cols = []
    for slot in space.slots:
        arr = batch.temporal if slot.kind == "t" else batch.spatial_x if slot.kind == "x" else batch.spatial_y
        cols.append(arr[:, slot.level, k])
    return np.stack(cols, axis=1)


def _keep_mask(space: Mapspace, keep: tuple[frozenset[str], ...]) -> int:
    names = space.problem.dataspace_names
    mask = 0
    for i in range(1, space.L):
        for j, d in enumerate(names):
            if d in keep[i]:
                mask |= 1 << ((i - 1) * len(names) + j)
    return mask


def _mutate(space: Mapspace, pop: _Population, active: np.ndarray, rng: np.random.Generator, index: list[_RowIndex],
            keep_masks: np.ndarray, mask_to_keep: dict[int, int]) -> None:
    """One random move for each active candidate, in place: 60% factor move, 30% loop swap, 10% keep flip."""
    n = len(active)
    move = rng.random(n)
    # Factor move: take the smallest prime (or the whole factor) of one slot of a dim to another slot.
    fm = active & (move < 0.6)
    dim = rng.integers(space.D, size=n)
    n_slots = len(space.slots)
    src, dst = rng.integers(n_slots, size=n), rng.integers(n_slots, size=n)
    whole = rng.random(n) < 0.5
    for k in range(space.D):
        sel = np.nonzero(fm & (dim == k) & (src != dst))[0]
        if not len(sel):
            continue
        rows = space.dim_tuples[k][pop.idx[sel, k]].copy()
        a, b = src[sel], dst[sel]
        fa = rows[np.arange(len(sel)), a]
        movable = fa > 1
        p = np.where(whole[sel], fa, _smallest_prime_factor(np.maximum(fa, 2)))
        p = np.where(movable, p, 1)
        rows[np.arange(len(sel)), a] //= p
        rows[np.arange(len(sel)), b] *= p
        found = index[k].find(rows)
        pop.idx[sel, k] = np.where(found >= 0, found, pop.idx[sel, k])
    # Loop swap at one level.
    sw = np.nonzero(active & (move >= 0.6) & (move < 0.9))[0]
    if len(sw):
        lvl = rng.integers(space.L, size=len(sw))
        i, j = rng.integers(space.D, size=len(sw)), rng.integers(space.D, size=len(sw))
        oi, oj = pop.order[sw, lvl, i].copy(), pop.order[sw, lvl, j].copy()
        pop.order[sw, lvl, i], pop.order[sw, lvl, j] = oj, oi
    # Keep/bypass flip of one data space at one inner level.
    kf = np.nonzero(active & (move >= 0.9))[0]
    if len(kf) and space.L > 1 and len(keep_masks) > 1:
        bit = rng.integers((space.L - 1) * len(space.problem.dataspace_names), size=len(kf))
        flipped = keep_masks[pop.keep[kf]] ^ (np.int64(1) << bit)
        pop.keep[kf] = [mask_to_keep.get(int(m), int(old)) for m, old in zip(flipped, pop.keep[kf])]
