"""Mapping search: exhaustive (provably optimal) for small mapspaces, guided for large ones.

Both evaluate candidates in vectorized batches (``evaluate_batch``), so the work model's
lock-step cycles and the format model's compressed sizes enter every candidate. Ties are
broken deterministically (first in enumeration order; in the guided search, by the
candidate's canonical encoding), and a seed makes guided runs repeatable. Every result
carries a lower bound over the whole mapspace (mapper.bounds).

The guided search (docs/search.md) screens keep patterns, descends one arm per promising
pattern by lock-step steepest descent over factor, loop-order, keep and pair moves (the
neighbours of every arm in one batch, whatever their keep patterns), halves the arms by
value, and ends with an iterated local search (restarts and kicks) in the best patterns
until ``patience`` descents bring no improvement or the evaluation or time budget runs out.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mapper.arch import Arch
from mapper.bounds import LowerBound, MappingBound, Objective, bound_of, objective_of
from mapper.constraints import Constraints
from mapper.ert import EnergyTable
from mapper.mapping import Mapping
from mapper.mapspace import Mapspace
from mapper.model import BatchEvaluation, BitLevelModels, Evaluation, bits_table, evaluate_batch
from mapper.nest import MappingBatch
from workloads.problem import Problem
from workloads.yamlio import InputError



def objective_values(ev: BatchEvaluation, objective: Objective) -> np.ndarray:
    """Objective per candidate (lower is better; :func:`mapper.bounds.objective_of`); invalid
    candidates get +inf. A list of metrics (Timeloop's ``optimization_metrics``, compared
    lexicographically) gives [B, k] values, one column per metric, exact."""
    if isinstance(objective, (list, tuple)):
        return np.stack([objective_values(ev, name) for name in objective], axis=1)
    return np.where(ev.valid, objective_of(ev.energy_pJ, ev.cycles.astype(float), objective), np.inf)


@dataclass
class SearchResult:
    """Best mapping found and how the search went."""

    mapping: Mapping
    evaluation: Evaluation
    problem: Problem  # the problem the mapping is for: padded up to its factors when imperfect
    objective: float
    evaluated: int  # distinct mappings evaluated by the model
    valid: int      # of those, the valid ones
    exhaustive: bool
    seconds: float
    bound: LowerBound  # lower bounds over the whole mapspace (mapper.bounds); bound.gap(objective) is the optimality gap
    history: list[tuple[int, float]] = field(default_factory=list)  # (mappings considered so far, best objective)
    objectives: tuple[float, ...] = ()  # every metric of a lexicographic objective, in order
    pruned: int = 0  # distinct mappings the guided search ruled out by their lower bound, unevaluated


class _Best:
    """Running best candidate with deterministic tie-breaking; ``values`` rows are compared
    lexicographically (one column per metric)."""

    def __init__(self) -> None:
        self.values: tuple[float, ...] = (np.inf,)
        self.key: bytes = b""
        self.batch: MappingBatch | None = None
        self.index = -1

    @property
    def value(self) -> float:
        return self.values[0]

    def offer(self, values: np.ndarray, batch: MappingBatch, keys: list[bytes] | None = None) -> bool:
        """``values``: [n] or [n, k]; the (lexicographically) smallest, first in batch order or
        smallest key, wins."""
        if not len(values):
            return False
        rows = values[:, None] if values.ndim == 1 else values
        i = int(np.argmin(rows[:, 0])) if rows.shape[1] == 1 else int(np.lexsort(rows.T[::-1])[0])
        v = tuple(float(x) for x in rows[i])
        if keys is not None:
            ties = np.nonzero(np.all(rows == rows[i], axis=1))[0]
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
    patience: int = 40, population: int = 48, mutants: int = 256, imperfect: bool = False,
    progress: Callable[[int, float], None] | None = None, clock_MHz: float | None = None,
    min_batch: int | None = None, prune: bool = True,
) -> SearchResult:
    """Find the best mapping of ``problem`` on ``arch``.

    ``mode``: ``exhaustive``, ``guided`` or ``auto`` (exhaustive when the pruned mapspace has at
    most ``exhaustive_limit`` points). Guided search (docs/search.md): at most
    ``max_evaluations`` evaluations and ``time_limit_s`` seconds; it stops after ``patience``
    restart/kick descents in a row without improvement; ``mutants`` random mappings are
    screened per keep pattern and ``population`` of them kept per pattern as restart points.
    ``min_batch``: new candidates per descent step of an arm (topped up with pair moves); None:
    :func:`default_min_batch`.
    ``prune``: the guided search skips a neighbour whose lower bound (mapper.bounds.MappingBound)
    cannot beat the point it descends from; its result, trajectory and budget use are the same
    as without (``max_evaluations`` counts such mappings too), only faster.
    ``progress(considered, best)`` is called after each batch (mappings evaluated or pruned so far).
    """
    models = models or BitLevelModels()
    space = Mapspace(problem, arch, constraints, imperfect=imperfect)
    start = time.perf_counter()
    if mode not in ("auto", "exhaustive", "guided"):
        raise InputError("<search>", "mode", f"expected auto, exhaustive or guided, got {mode!r}")
    exhaustive = mode == "exhaustive" or (mode == "auto" and space.count(exhaustive_limit) <= exhaustive_limit)
    mapping_bound = MappingBound(space, ert, models, objective)
    energy_lb, cycles_lb = mapping_bound.pattern_bounds()
    best = _Best()
    stats = {"evaluated": 0, "valid": 0, "pruned": 0}
    history: list[tuple[int, float]] = []

    min_use = _min_capacity_use(arch)

    def run(batch: MappingBatch, keys: list[bytes] | None = None) -> np.ndarray:
        """Evaluate a batch; the exact (lexicographic) values decide the best, the guided search
        steers by their scalar form (:func:`mapper.bounds.objective_of`)."""
        ev = evaluate_batch(problem, arch, batch, ert, models)
        exact = objective_values(ev, objective)
        if min_use is not None:
            exact[~np.all(ev.capacity_use >= min_use, axis=1)] = np.inf
        stats["evaluated"] += batch.size
        stats["valid"] += int(np.isfinite(exact if exact.ndim == 1 else exact[:, 0]).sum())
        considered = stats["evaluated"] + stats["pruned"]
        if best.offer(exact, batch, keys):
            history.append((considered, best.value))
        if progress:
            progress(considered, best.value)
        if exact.ndim == 1:
            return exact
        steer = objective_of(ev.energy_pJ, ev.cycles.astype(float), objective)
        return np.where(np.isfinite(exact[:, 0]), steer, np.inf)

    if exhaustive:
        for batch in space.enumerate():
            run(batch)
    else:
        step = min_batch if min_batch is not None else default_min_batch(max_evaluations)
        _Guided(space, run, np.random.default_rng(seed), stats, max_evaluations, time_limit_s, start, patience, population,
                mutants, objective_of(energy_lb, cycles_lb, objective), step,
                mapping_bound if prune and mapping_bound.prunes else None).run_search()

    if best.batch is None or not np.isfinite(best.value):
        # keep_patterns[0] keeps only what the constraints require: the least each level must hold.
        raise _no_valid_mapping(arch, _minimal_tile_bits(problem, arch, models, space.keep_patterns[0]))
    mapping = best.batch.mapping(best.index, problem)
    # Imperfect factors pad dimensions: the mapping is exact for the padded problem.
    padded = problem.with_bounds(**{d: mapping.factor_product(d) for d in problem.dims})
    from mapper.model import evaluate  # local: evaluate re-validates the winner end to end

    evaluation = evaluate(padded, arch, mapping, ert, models, clock_MHz=clock_MHz)
    return SearchResult(mapping, evaluation, padded, best.value, stats["evaluated"], stats["valid"], exhaustive,
                        time.perf_counter() - start, bound_of(energy_lb, cycles_lb, objective), history, best.values,
                        stats["pruned"])


def default_min_batch(max_evaluations: int, floor: int = 128) -> int:
    """New candidates per descent step: 1024, or budget / 64 (at least ``floor``) for small
    budgets, which take smaller steps (docs/search.md; ``bench_search.py --batches``)."""
    return min(1024, max(floor, max_evaluations // 64))


# ---- guided search -------------------------------------------------------------------------

@dataclass
class _Candidates:
    """Mappings as arrays: factor-tuple row per dim, outer-to-inner loop orders, keep-pattern index."""

    idx: np.ndarray    # [n, D]
    order: np.ndarray  # [n, L, D]
    keep: np.ndarray   # [n]
    canonical: bool = False  # orders already in canonical form (Mapspace.canonical_orders)

    def __len__(self) -> int:
        return len(self.idx)

    def take(self, sel: np.ndarray | int) -> "_Candidates":
        sel = np.atleast_1d(np.asarray(sel, np.int64))
        return _Candidates(self.idx[sel], self.order[sel], self.keep[sel], self.canonical)

    def keys(self) -> list[bytes]:
        """One hashable key per candidate (its bytes; numpy drops trailing zero bytes, which
        keeps equal-length rows distinct)."""
        n, L, D = self.order.shape
        flat = np.ascontiguousarray(np.concatenate([self.idx, self.order.reshape(n, L * D), self.keep[:, None]], axis=1))
        return flat.view(np.dtype((np.bytes_, flat.shape[1] * 8))).ravel().tolist()

    @staticmethod
    def concat(parts: list["_Candidates"]) -> "_Candidates":
        return _Candidates(np.concatenate([p.idx for p in parts]), np.concatenate([p.order for p in parts]),
                           np.concatenate([p.keep for p in parts]), all(p.canonical for p in parts))


@dataclass
class _Arm:
    """One descent trajectory, started in one keep pattern: its current point, further start
    points of that pattern, and whether it is at a local optimum."""

    point: _Candidates
    value: float
    starts: _Candidates  # further screened start points, best first
    converged: bool = False

    @property
    def pattern(self) -> int:
        return int(self.point.keep[0])


class _Guided:
    """Guided search state: one evaluation cache and budget shared by every keep-pattern arm.

    The budget counts distinct mappings considered: evaluated, or pruned (ruled out by
    ``bound``, a :class:`mapper.bounds.MappingBound`, without evaluation; see :meth:`evaluate`).
    """

    def __init__(self, space: Mapspace, run: Callable[..., np.ndarray], rng: np.random.Generator, stats: dict[str, int],
                 max_evaluations: int, time_limit_s: float | None, start: float, patience: int, population: int,
                 mutants: int, pattern_bound: np.ndarray, min_batch: int, bound: MappingBound | None = None,
                 tolerance: float = 0.05, top_arms: int = 4, max_arms: int = 32, max_batch: int = 8192):
        self.space, self.run, self.rng, self.stats, self.bound = space, run, rng, stats, bound
        self.pattern_bound, self.tolerance, self.top_arms, self.max_arms = pattern_bound, tolerance, top_arms, max_arms
        self.min_batch = min_batch  # new candidates per descent step of an arm
        self.max_batch = max_batch  # mappings per evaluate_batch call (bounds its memory)
        self.keep_choices = tuple(space.keep_patterns)
        self.max_evaluations, self.time_limit_s, self.start = max_evaluations, time_limit_s, start
        self.patience, self.population, self.mutants = patience, population, mutants
        self.matters = np.array([space.order_matters(k) for k in space.keep_patterns], bool)  # [P, L]
        self.cache: dict[bytes, float] = {}   # key -> objective of an evaluated mapping
        self.pruned: dict[bytes, float] = {}  # key -> lower bound of a pruned (unevaluated) mapping
        self._near: dict[tuple[int, int], np.ndarray] = {}
        self.neighbour_patterns = _neighbour_patterns(space)
        self.slot_level = np.array([s.level for s in space.slots], np.int64)
        self.slot_temporal = np.array([s.kind == "t" for s in space.slots], bool)

    # ---- evaluation -------------------------------------------------------------------------
    def considered(self) -> int:
        """Distinct mappings evaluated or pruned so far (what the budget counts)."""
        return self.stats["evaluated"] + self.stats["pruned"]

    def out_of_budget(self) -> bool:
        if self.considered() >= self.max_evaluations:
            return True
        return self.time_limit_s is not None and time.perf_counter() - self.start > self.time_limit_s

    def canonicalize(self, c: _Candidates) -> None:
        """Make the loop orders of ``c`` canonical in place (see Mapspace.canonical_orders)."""
        if not c.canonical:
            c.order = self.space.canonical_orders(self.space.temporal(c.idx), c.order, self.matters[c.keep])
            c.canonical = True

    def fresh(self, c: _Candidates) -> int:
        """How many distinct mappings of ``c`` are not considered yet (orders made canonical in place)."""
        self.canonicalize(c)
        cache, pruned = self.cache, self.pruned
        return len({k for k in c.keys() if k not in cache and k not in pruned})   # O(len(c)), not O(cache)

    def evaluate(self, c: _Candidates, threshold: np.ndarray | None = None) -> np.ndarray:
        """Objective of every candidate (inf: invalid or beyond the budget). Orders are made
        canonical in place; each distinct mapping is evaluated once, all keep patterns in one batch.

        ``threshold`` [n]: the value each candidate has to beat. A new candidate whose lower
        bound is at least its threshold (the largest, if it occurs more than once) is pruned:
        counted, not evaluated, and its bound is returned in place of its value (neither beats
        the threshold). A pruned candidate asked for again with a threshold above its bound, or
        without thresholds, is evaluated then (and not counted again).
        """
        space, cache, pruned = self.space, self.cache, self.pruned
        self.canonicalize(c)
        keys = c.keys()
        room = max(0, self.max_evaluations - self.considered())   # new mappings the budget allows
        known = np.fromiter(map(cache.__contains__, keys), bool, len(keys))
        again = np.zeros(0, np.int64)
        if pruned:
            held = np.fromiter(map(pruned.__contains__, keys), bool, len(keys))
            known |= held
            again = self._unprune(keys, np.nonzero(held)[0], threshold)
        new = np.nonzero(~known)[0]
        first = _first_positions(keys, new)
        pos = np.sort(np.fromiter(first.values(), np.int64, len(first)))[:room]
        if len(pos):
            ok = space.valid(c.idx[pos])
            for i in pos[~ok]:
                cache[keys[i]] = np.inf
            pos = pos[ok]
        T, SX, SY = space.assemble(c.idx[pos])
        if len(pos) and threshold is not None and self.bound is not None:
            limit = threshold.copy()   # at a key's first position: its largest threshold
            if len(first) < len(new):
                owner = np.fromiter(map(first.__getitem__, map(keys.__getitem__, new)), np.int64, len(new))
                np.maximum.at(limit, owner, threshold[new])
            lower = self.bound(T, SX, SY, c.keep[pos])
            cut = lower >= limit[pos]
            pruned.update(zip(map(keys.__getitem__, pos[cut]), lower[cut].tolist()))
            self.stats["pruned"] += int(cut.sum())
            pos, T, SX, SY = pos[~cut], T[~cut], SX[~cut], SY[~cut]
        if len(again):
            pos = np.concatenate([pos, again])
            T, SX, SY = (np.concatenate([a, b]) for a, b in zip((T, SX, SY), space.assemble(c.idx[again])))
        for chunk in range(0, len(pos), self.max_batch):
            part = slice(chunk, chunk + self.max_batch)
            rows = pos[part]
            batch = MappingBatch(T[part], SX[part], SY[part], c.order[rows], self.keep_choices[0],
                                 keep_choices=self.keep_choices, keep_index=c.keep[rows])
            chunk_keys = [keys[i] for i in rows]
            cache.update(zip(chunk_keys, self.run(batch, chunk_keys).tolist()))
        return self._values(keys)

    def _unprune(self, keys: list[bytes], held: np.ndarray, threshold: np.ndarray | None) -> np.ndarray:
        """Positions (the first of each key) among ``held`` (pruned candidates) whose values are
        needed now: asked for above their bound, or every one without thresholds. They leave the
        pruned set: counted once, as evaluated from now on."""
        if threshold is not None:
            bounds = np.fromiter(map(self.pruned.__getitem__, map(keys.__getitem__, held)), float, len(held))
            held = held[bounds < threshold[held]]
        again = np.sort(np.fromiter(_first_positions(keys, held).values(), np.int64))
        for i in again.tolist():
            del self.pruned[keys[i]]
        self.stats["pruned"] -= len(again)
        return again

    def values_of(self, c: _Candidates) -> np.ndarray:
        """Values of candidates considered so far: the objective, the lower bound of a pruned
        one, inf for one not considered (orders made canonical in place)."""
        self.canonicalize(c)
        return self._values(c.keys())

    def _values(self, keys: list[bytes]) -> np.ndarray:
        values = np.fromiter(map(self.cache.get, keys, itertools.repeat(np.inf)), float, len(keys))
        if self.pruned:
            miss = np.nonzero(np.isinf(values))[0]
            values[miss] = np.fromiter(map(self.pruned.get, map(keys.__getitem__, miss), itertools.repeat(np.inf)),
                                       float, len(miss))
        return values

    def settle(self, groups: list[tuple[_Candidates, int]]) -> None:
        """Evaluate the pruned candidates of each group (candidates, k) that could rank among
        its k smallest values, until every such value is exact (all groups in one batch)."""
        while self.pruned:
            waiting = []
            for c, k in groups:
                self.canonicalize(c)
                keys = c.keys()
                values = self._values(keys)
                if k <= 0 or not len(values):
                    continue
                kth = np.sort(values)[k - 1] if len(values) >= k else np.inf
                sel = [i for i, key in enumerate(keys) if key in self.pruned and values[i] <= kth]
                if sel:
                    waiting.append(c.take(np.array(sel, np.int64)))
            if not waiting:
                return
            self.evaluate(_Candidates.concat(waiting))

    # ---- start points -----------------------------------------------------------------------
    def screen(self) -> list[_Arm]:
        """Random samples and the smallest-tile mapping in each keep pattern (the patterns with
        the lowest bounds first, as many as an eighth of the budget covers); one arm for each of
        the ``max_arms`` best patterns, started from its best point."""
        space = self.space
        budget = max(self.max_evaluations // 8, 16)
        feasible = np.nonzero(np.isfinite(self.pattern_bound))[0]
        patterns = feasible[np.argsort(self.pattern_bound[feasible], kind="stable")]
        n = self.mutants
        patterns = patterns[: max(1, budget // n)]
        P = len(patterns)
        if not P:  # no pattern's smallest tiles fit: no valid mapping
            return []
        idx = space.sample_indices(self.rng, n * P)
        m = len(idx) // P
        order = space.random_orders(self.rng, space.temporal(idx[: m * P]))
        parts = [_Candidates(idx[: m * P], order, np.repeat(patterns, m))]
        outer = [np.nonzero((rows[:, 0] == space.problem.bounds[d]) & (rows[:, 1:] == 1).all(axis=1))[0]
                 for rows, d in zip(space.dim_tuples, space.problem.dims)]  # every factor in the outermost slot
        if all(len(o) for o in outer):
            outer = np.array([o[0] for o in outer], np.int64)
            parts.insert(0, _Candidates(np.tile(outer, (P, 1)), np.tile(np.arange(space.D), (P, space.L, 1)), patterns.copy()))
        cands = _Candidates.concat(parts)
        values = self.evaluate(cands)
        arms = []
        for p in patterns:
            sel = np.nonzero((cands.keep == p) & np.isfinite(values))[0]
            if not len(sel):
                continue
            sel = sel[np.argsort(values[sel], kind="stable")][: self.population]
            arms.append(_Arm(cands.take(sel[0]), float(values[sel[0]]), cands.take(sel[1:])))
        arms.sort(key=lambda a: a.value)
        return arms[: self.max_arms]

    # ---- neighbourhoods ---------------------------------------------------------------------
    def near(self, d: int, row: int) -> np.ndarray:
        """Rows of dimension d's factor tuples that differ from ``row`` in exactly one or two
        slots (one factor moved between two slots), memoized."""
        key = (d, row)
        if key not in self._near:
            rows = self.space.dim_tuples[d]
            diff = (rows != rows[row]).sum(axis=1)
            self._near[key] = np.nonzero((diff > 0) & (diff <= 2))[0]
        return self._near[key]

    def dim_moves(self, x: _Candidates) -> _Candidates:
        """Every allowed factor tuple of one dimension that differs from x's in at most two slots
        (a factor moved between two slots), each also with its newly non-unit loops innermost."""
        space, parts = self.space, []
        for d in range(space.D):
            rows = space.dim_tuples[d]
            cur = rows[x.idx[0, d]]
            near = self.near(d, int(x.idx[0, d]))
            if not len(near):
                continue
            idx = np.repeat(x.idx, len(near), axis=0)
            idx[:, d] = near
            order = np.repeat(x.order, len(near), axis=0)
            parts.append(_Candidates(idx, order, np.repeat(x.keep, len(near))))
            # Variant: the loop of d innermost at every level where it became non-unit.
            grown = (rows[near] > 1) & (cur <= 1)[None, :] & self.slot_temporal[None, :]
            if grown.any():
                inner = order.copy()
                for s in np.nonzero(grown.any(axis=0))[0]:
                    lvl = self.slot_level[s]
                    hit = grown[:, s]
                    inner[hit, lvl] = _move_innermost(inner[hit, lvl], d)
                hit = grown.any(axis=1)
                parts.append(_Candidates(idx[hit], inner[hit], np.repeat(x.keep, int(hit.sum()))))
        return _Candidates.concat(parts) if parts else x.take(np.zeros(0, np.int64))

    def order_moves(self, x: _Candidates, cap: int = 120) -> _Candidates:
        """Every loop order of one level (levels whose order can matter), at most ``cap`` per level."""
        space, parts = self.space, []
        T = space.temporal(x.idx)
        matters = self.matters[x.keep[0]]
        for lvl in range(space.L):
            if not matters[lvl]:
                continue
            nonunit = tuple(int(k) for k in np.nonzero(T[0, lvl] > 1)[0])
            if len(nonunit) < 2:
                continue
            orders = np.array(space.level_orders(lvl, nonunit), np.int64)
            if len(orders) > cap:
                orders = orders[self.rng.choice(len(orders), cap, replace=False)]
            order = np.repeat(x.order, len(orders), axis=0)
            order[:, lvl] = orders
            parts.append(_Candidates(np.repeat(x.idx, len(orders), axis=0), order, np.repeat(x.keep, len(orders))))
        return _Candidates.concat(parts) if parts else x.take(np.zeros(0, np.int64))

    def single_moves(self, x: _Candidates) -> tuple[_Candidates, int]:
        """Factor and loop-order moves, topped up with random pair moves to ``min_batch``
        candidates (a batch costs about the same up to that size); and how many come before the
        pair moves (the neighbours :meth:`keep_near` ranks)."""
        c = _Candidates.concat([self.dim_moves(x), self.order_moves(x)])
        n, fresh = len(c), self.fresh(c)
        if fresh < self.min_batch:
            c = _Candidates.concat([c, self.pair_moves(x, self.min_batch - fresh)])
        return c, n

    def pair_moves(self, x: _Candidates, cap: int = 512) -> _Candidates:
        """Two dimensions re-factored at once, each by a move of :meth:`dim_moves` (tile shape
        changes at about constant tile size: escapes capacity-bound optima); at most ``cap``,
        sampled when there are more."""
        space = self.space
        near = []
        for d in range(space.D):
            near.append(self.near(d, int(x.idx[0, d])))
        pairs = [(d1, d2) for d1 in range(space.D) for d2 in range(d1 + 1, space.D) if len(near[d1]) and len(near[d2])]
        sizes = np.array([len(near[d1]) * len(near[d2]) for d1, d2 in pairs], np.int64)
        if not len(pairs):
            return x.take(np.zeros(0, np.int64))
        total = int(sizes.sum())
        flat = np.arange(total) if total <= cap else np.sort(self.rng.choice(total, cap, replace=False))
        which = np.searchsorted(np.cumsum(sizes), flat, side="right")
        local = flat - np.concatenate([[0], np.cumsum(sizes)[:-1]])[which]
        idx = np.repeat(x.idx, len(flat), axis=0)
        for j, (d1, d2) in enumerate(pairs):
            sel = which == j
            n2 = len(near[d2])
            idx[sel, d1] = near[d1][local[sel] // n2]
            idx[sel, d2] = near[d2][local[sel] % n2]
        return _Candidates(idx, np.repeat(x.order, len(flat), axis=0), np.repeat(x.keep, len(flat)))

    def keep_near(self, x: _Candidates) -> tuple[_Candidates, int]:
        """The factor/order neighbours of x that :meth:`keep_moves` ranks, and how many of them
        it takes (none without a neighbouring keep pattern)."""
        flips = self.neighbour_patterns[int(x.keep[0])]
        if not len(flips):
            return x.take(np.zeros(0, np.int64)), 0
        return _Candidates.concat([self.dim_moves(x), self.order_moves(x)]), max(0, self.min_batch // len(flips) - 1)

    def keep_moves(self, x: _Candidates, near: _Candidates, k: int) -> _Candidates:
        """x and its k best neighbours ``near`` (:meth:`keep_near`, values settled) under every
        keep pattern that keeps or bypasses one more data space at one level (a keep change
        often needs a tile change); none without such a pattern."""
        flips = self.neighbour_patterns[int(x.keep[0])]
        values = self.values_of(near)
        best = np.argsort(values, kind="stable")[:k]
        points = _Candidates.concat([x, near.take(best[np.isfinite(values[best])])])
        n = len(points)
        return _Candidates(np.tile(points.idx, (len(flips), 1)), np.tile(points.order, (len(flips), 1, 1)), np.repeat(flips, n))

    def kick(self, x: _Candidates, n: int) -> _Candidates:
        """n random perturbations of x: two dimensions moved as in :meth:`dim_moves`, and one
        level's loop order shuffled in half of them."""
        space = self.space
        idx = np.repeat(x.idx, n, axis=0)
        for d in self.rng.permutation(space.D)[:2]:
            near = self.near(d, int(x.idx[0, d]))
            if len(near):
                idx[:, d] = near[self.rng.integers(len(near), size=n)]
        T = space.temporal(idx)
        order = np.repeat(x.order, n, axis=0)
        shuffled = space.random_orders(self.rng, T)
        lvl = self.rng.integers(space.L, size=n)
        hit = np.nonzero(self.rng.random(n) < 0.5)[0]
        order[hit, lvl[hit]] = shuffled[hit, lvl[hit]]
        return _Candidates(idx, order, np.repeat(x.keep, n))

    # ---- local search -------------------------------------------------------------------------
    def descend(self, arms: list[_Arm], steps: int | None = None, deep: bool = False) -> None:
        """Steepest descent of several arms in lock step (their neighbourhoods share batches).

        An arm tries its move tiers in turn: single factor moves and loop orders, then keep
        moves, then (``deep``) pair moves; it takes the best candidate of the first tier that
        improves it and starts over at tier 0, and is converged when no tier improves it."""
        tiers = 3 if deep else 1   # single moves, keep moves, pair moves
        tier = {id(a): 0 for a in arms}
        done = 0
        active = [a for a in arms if not a.converged]
        while active and not self.out_of_budget() and (steps is None or done < steps):
            # Each candidate's threshold: its arm's value (a candidate that cannot beat it may be
            # pruned), or inf where the value itself is needed: a deep descent's single moves
            # are what its keep moves rank next if no move improves.
            parts: list[_Candidates] = []
            limits: list[np.ndarray] = []
            ranked: dict[int, tuple[_Candidates, int]] = {}   # arms making keep moves
            for j, arm in enumerate(active):
                t = tier[id(arm)]
                if t == 0:
                    cands, exact = self.single_moves(arm.point)
                elif t == 1:
                    ranked[j] = self.keep_near(arm.point)
                    cands, exact = arm.point.take(np.zeros(0, np.int64)), 0
                else:
                    cands, exact = self.pair_moves(arm.point), 0
                parts.append(cands)
                limits.append(np.where(np.arange(len(cands)) < (exact if deep else 0), np.inf, arm.value))
            self.settle(list(ranked.values()))
            for j, (near, k) in ranked.items():
                parts[j] = self.keep_moves(active[j].point, near, k)
                limits[j] = np.full(len(parts[j]), active[j].value)
            owner = [np.full(len(p), j) for j, p in enumerate(parts)]
            cands, owner_arr = _Candidates.concat(parts), np.concatenate(owner)
            values = self.evaluate(cands, np.concatenate(limits))
            for j, arm in enumerate(active):
                mine = np.nonzero(owner_arr == j)[0]
                i = mine[int(np.argmin(values[mine]))] if len(mine) else -1
                if i >= 0 and values[i] < arm.value * (1 - 1e-12):
                    arm.point, arm.value = cands.take(i), float(values[i])
                    tier[id(arm)] = 0
                elif tier[id(arm)] + 1 < tiers:
                    tier[id(arm)] += 1
                else:
                    arm.converged = True
            done += 1
            active = [a for a in active if not a.converged]

    def trials(self, arms: list[_Arm]) -> list[_Arm]:
        """New descent starts for each arm: its next screened start point and the best of random
        kicks of its current point."""
        parts, owner = [], []
        for j, arm in enumerate(arms):
            if len(arm.starts):
                parts.append(arm.starts.take(0))
                owner.append(np.full(1, 2 * j))
                arm.starts = arm.starts.take(np.arange(1, len(arm.starts)))
            kicks = self.kick(arm.point, max(8, self.mutants // 4))
            parts.append(kicks)
            owner.append(np.full(len(kicks), 2 * j + 1))
        cands, owner_arr = _Candidates.concat(parts), np.concatenate(owner)
        values = self.evaluate(cands)
        out = []
        for o in np.unique(owner_arr):
            mine = np.nonzero(owner_arr == o)[0]
            i = mine[int(np.argmin(values[mine]))]
            if np.isfinite(values[i]):
                out.append(_Arm(cands.take(i), float(values[i]), arms[o // 2].starts))
        return out

    def run_search(self) -> None:
        arms = self.screen()
        if not arms:
            return
        # Successive halving over keep patterns: every arm descends, the better half (and every
        # arm within `tolerance` of the best) goes on with twice the steps. An arm whose
        # pattern's lower bound cannot beat the best found is dropped.
        live, steps = list(arms), 1
        while live and not self.out_of_budget():
            self.descend(live, steps)
            best = min(a.value for a in arms)
            live = sorted((a for a in live if not a.converged and self.pattern_bound[a.pattern] < best), key=lambda a: a.value)
            half = max(1, (len(live) + 1) // 2)
            live = live[:half] + [a for a in live[half:] if a.value <= best * (1 + self.tolerance)]
            steps *= 2
        # Iterated local search over the best arm of each of the best patterns: restarts from
        # further screened points and kicks, until `patience` descents in a row bring no
        # improvement of the overall best.
        top: list[_Arm] = []
        for a in sorted(arms, key=lambda a: a.value):
            if all(t.pattern != a.pattern for t in top):
                top.append(a)
        top = top[: self.top_arms]
        for arm in top:
            arm.converged = False
        self.descend(top, deep=True)
        best = min(a.value for a in arms)
        stale = 0
        while stale < self.patience and not self.out_of_budget():
            trials = self.trials(top)
            self.descend(trials)
            promising = [t for t in trials if t.value <= best * (1 + self.tolerance)]
            for t in promising:
                t.converged = False
            self.descend(promising, deep=True)
            for trial in trials:
                arm = next((a for a in top if a.pattern == trial.pattern), None)
                if arm is not None and trial.value < arm.value:
                    arm.point, arm.value = trial.point, trial.value
            new_best = min([best] + [t.value for t in trials])
            stale = 0 if new_best < best * (1 - 1e-12) else stale + max(len(trials), 1)
            best = new_best


def _first_positions(keys: list[bytes], positions: np.ndarray) -> dict[bytes, int]:
    """key -> the first of ``positions`` (ascending) holding it."""
    return dict(zip(map(keys.__getitem__, positions[::-1]), positions[::-1].tolist()))


def _neighbour_patterns(space: Mapspace) -> list[np.ndarray]:
    """Per keep pattern: the patterns that differ in one data space at one level."""
    names = space.problem.dataspace_names
    sets = [frozenset((i, d) for i in range(space.L) for d in names if d in k[i]) for k in space.keep_patterns]
    where = {s: p for p, s in enumerate(sets)}
    out = []
    for s in sets:
        flips = [where.get(s ^ {(i, d)}) for i in range(1, space.L) for d in names]
        out.append(np.array(sorted(f for f in flips if f is not None), np.int64))
    return out


def _move_innermost(orders: np.ndarray, d: int) -> np.ndarray:
    """Orders [n, D] (outer to inner) with dimension d moved to the innermost position."""
    rest = orders[orders != d].reshape(len(orders), -1)
    return np.concatenate([rest, np.full((len(orders), 1), d, orders.dtype)], axis=1)
