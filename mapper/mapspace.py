"""The mapspace of one (problem, arch, constraints): factorizations x permutations x spatial
splits x keep/bypass.

Factor *slots* per dimension: one temporal slot per storage level, plus an X and a Y
spatial slot per level whose fanout has X or Y > 1. A dimension's bound is split over its
slots as an ordered factorization (perfect factors), or over a padded bound when imperfect
factorization is enabled.

Equivalent permutations are pruned exactly: loops of bound 1 are not ordered, and a
level's temporal order is irrelevant when no data space is kept at any level below it (its
loops then sit above compute units only, whose counts do not depend on loop order).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

from mapper.arch import Arch
from mapper.constraints import Constraints, LevelConstraints
from mapper.nest import MappingBatch
from workloads.problem import Problem
from workloads.yamlio import InputError

I64 = np.int64


@lru_cache(maxsize=4096)
def ordered_factorizations(n: int, k: int) -> tuple[tuple[int, ...], ...]:
    """All k-tuples of positive integers whose product is n."""
    if k == 1:
        return ((n,),)
    out = []
    for f in range(1, n + 1):
        if n % f == 0:
            out.extend((f,) + rest for rest in ordered_factorizations(n // f, k - 1))
    return tuple(out)


@dataclass(frozen=True)
class Slot:
    """A factor slot: level index and kind ``t`` (temporal), ``x`` or ``y`` (spatial)."""

    level: int
    kind: str


class Mapspace:
    """Enumerates and samples valid mappings (up to capacity, which evaluation checks)."""

    def __init__(self, problem: Problem, arch: Arch, constraints: Constraints | None = None, imperfect: bool = False):
        self.problem, self.arch = problem, arch
        self.constraints = constraints or Constraints.none(arch)
        self.imperfect = imperfect
        self.L, self.D = len(arch.levels), len(problem.dims)
        self.slots: list[Slot] = []
        for i in range(self.L):
            self.slots.append(Slot(i, "t"))
            fx, fy = arch.fanout(i)
            if fx > 1:
                self.slots.append(Slot(i, "x"))
            if fy > 1:
                self.slots.append(Slot(i, "y"))
        self.dim_tuples = [self._dim_tuples(k, d) for k, d in enumerate(problem.dims)]
        self.keep_patterns = self._keep_patterns()
        self.tail_rank = self._tail_rank()
        self._level_factors = self._factor_tables()

    # ---- factor tuples per dimension -----------------------------------------------------
    def padded_bounds(self, bound: int) -> list[int]:
        """Bounds a dimension may be padded to (just ``bound`` unless imperfect factors are on)."""
        if not self.imperfect or bound <= 2:
            return [bound]
        # Round up to multiples of each fanout size (and powers of two) within 12.5% padding.
        candidates = {bound}
        sizes = {f for i in range(self.L) for f in self.arch.fanout(i) if f > 1} | {2 ** k for k in range(1, 11)}
        for s in sizes:
            padded = math.ceil(bound / s) * s
            if padded <= bound * 1.125:
                candidates.add(padded)
        return sorted(candidates)

    def _dim_tuples(self, k: int, dim: str) -> np.ndarray:
        """[n, slots] allowed factor tuples of one dimension (constraints and fanouts applied), in
        lexicographic order (the order of :func:`ordered_factorizations`).

        Built slot by slot over the divisors of the bound: a prefix of factors grows by every
        allowed divisor of what remains, so only allowed tuples are ever materialized."""
        parts = []
        for bound in self.padded_bounds(self.problem.bounds[dim]):
            divs = _divisors(bound)
            allowed = np.array([[self._slot_allows(s, dim, int(f)) for f in divs] for s in self.slots], bool)
            rows, rest = np.zeros((1, 0), I64), np.array([bound], I64)
            for s in range(len(self.slots) - 1):
                take = allowed[s][None, :] & (rest[:, None] % divs[None, :] == 0)
                r, c = np.nonzero(take)
                rows = np.concatenate([rows[r], divs[c][:, None]], axis=1)
                rest = rest[r] // divs[c]
            last_ok = allowed[-1][np.searchsorted(divs, rest)]
            parts.append(np.concatenate([rows[last_ok], rest[last_ok][:, None]], axis=1))
        out = np.concatenate(parts)
        out = out[self._rows_ok(dim, out)]
        if not len(out):
            raise InputError("<constraints>", f"factors.{dim}", f"no factorization of {dim}={self.problem.bounds[dim]} satisfies the constraints and fanouts")
        return out

    def _rows_ok(self, dim: str, rows: np.ndarray) -> np.ndarray:
        """Rows whose spatial factors satisfy the per-dimension rules: a dimension is not split
        over both X and Y at one level (as in Timeloop), and a level's spatial bound on the
        dimension holds for its X x Y factor."""
        ok = np.ones(len(rows), bool)
        for i in range(self.L):
            x = [s for s, slot in enumerate(self.slots) if slot.level == i and slot.kind == "x"]
            y = [s for s, slot in enumerate(self.slots) if slot.level == i and slot.kind == "y"]
            fx = rows[:, x[0]] if x else np.ones(len(rows), I64)
            fy = rows[:, y[0]] if y else np.ones(len(rows), I64)
            ok &= ~((fx > 1) & (fy > 1))
            bound = self.constraints.levels[i].spatial.get(dim)
            if bound is not None:
                ok &= bound.allows(fx * fy)
        return ok

    def _slot_allows(self, slot: Slot, dim: str, f: int) -> bool:
        lc: LevelConstraints = self.constraints.levels[slot.level]
        if slot.kind == "t":
            bound = lc.temporal.get(dim)
            return bound is None or bound.allows(f)
        fx, fy = self.arch.fanout(slot.level)
        if f > (fx if slot.kind == "x" else fy):
            return False
        allowed = lc.x_dims if slot.kind == "x" else lc.y_dims
        if allowed is not None and f > 1 and dim not in allowed:
            return False
        bound = lc.spatial.get(dim)
        if bound is None:
            return True
        if bound.op == "=":
            # A spatial '=' applies to the level's total (X*Y); checked on combinations.
            return f <= bound.value
        return bound.op == ">=" or bound.allows(f)

    # ---- keep / bypass --------------------------------------------------------------------
    def _keep_patterns(self) -> list[tuple[frozenset[str], ...]]:
        names = self.problem.dataspace_names
        per_level: list[list[frozenset[str]]] = []
        for i, lc in enumerate(self.constraints.levels):
            if i == 0:
                per_level.append([frozenset(names)])
                continue
            free = [d for d in names if d not in lc.keep and d not in lc.bypass]
            options = []
            for r in range(len(free) + 1):
                for chosen in itertools.combinations(free, r):
                    options.append(frozenset(lc.keep) | frozenset(chosen))
            per_level.append(options)
        return [tuple(p) for p in itertools.product(*per_level)]

    def order_matters(self, keep: tuple[frozenset[str], ...]) -> list[bool]:
        """Per level: does its temporal loop order change any count? (see module doc)."""
        deepest = max((i for i in range(self.L) for _ in keep[i]), default=0)
        return [i < deepest for i in range(self.L)]

    # ---- combination checks ---------------------------------------------------------------
    def assemble(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[n, D] tuple indices -> temporal, spatial_x, spatial_y arrays [n, L, D]."""
        F = np.stack([self._level_factors[k][idx[:, k]] for k in range(self.D)], axis=-1)  # [n, 3, L, D]
        return F[:, 0], F[:, 1], F[:, 2]

    def temporal(self, idx: np.ndarray) -> np.ndarray:
        """[n, D] tuple indices -> temporal factors [n, L, D]."""
        return np.stack([self._level_factors[k][idx[:, k], 0] for k in range(self.D)], axis=-1)

    def valid(self, idx: np.ndarray) -> np.ndarray:
        """[n] whether the tuple combinations fit every fanout and reach the minimum cumulative
        fanout utilization (Timeloop's ``utilization`` constraint). Per-dimension spatial rules
        are applied to the tuples themselves (:meth:`_rows_ok`)."""
        px = np.ones((len(idx), self.L), I64)
        py = np.ones((len(idx), self.L), I64)
        for k in range(self.D):
            px *= self._level_factors[k][idx[:, k], 1]
            py *= self._level_factors[k][idx[:, k], 2]
        ok = np.ones(len(idx), bool)
        used = np.ones(len(idx))
        for i in range(self.L):
            fx, fy = self.arch.fanout(i)
            ok &= (px[:, i] <= fx) & (py[:, i] <= fy)
            used *= px[:, i] * py[:, i] / (fx * fy)
        if self.constraints.min_parallelism > 0:
            ok &= used >= self.constraints.min_parallelism
        return ok

    def _factor_tables(self) -> list[np.ndarray]:
        """Per dim: [rows, 3, L] temporal / X / Y factor of each level for each factor tuple."""
        tables = []
        for rows in self.dim_tuples:
            t = np.ones((len(rows), 3, self.L), I64)
            for s, slot in enumerate(self.slots):
                t[:, "txy".index(slot.kind), slot.level] = rows[:, s]
            tables.append(t)
        return tables

    # ---- permutations ---------------------------------------------------------------------
    def level_orders(self, level: int, nonunit: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Outer-to-inner orders of all dims at a level: non-unit loops permuted (respecting a
        partial-permutation constraint), unit loops placed outermost in a fixed order."""
        units = tuple(k for k in range(self.D) if k not in nonunit)
        fixed_inner = [self.problem.dims.index(d) for d in self.constraints.levels[level].permutation]
        inner_rev = tuple(reversed([k for k in fixed_inner if k in nonunit]))  # outer-to-inner tail
        free = [k for k in nonunit if k not in inner_rev]
        return [units + perm + inner_rev for perm in itertools.permutations(free)]

    def canonical_orders(self, T: np.ndarray, order: np.ndarray, matters: np.ndarray) -> np.ndarray:
        """One representative of each class of equivalent loop orders [n, L, D] (outer to inner).

        Loops of bound 1 go outermost in dimension order, a level's partial-permutation
        constraint keeps its (non-unit) dimensions innermost in the given order, and the other
        loops keep their relative order, or take dimension order where ``matters`` [n, L] says
        the level's order cannot change any count (see :meth:`order_matters`)."""
        D = self.D
        dims = np.arange(D, dtype=I64)
        pos = np.argsort(order, axis=2)  # position of each dim in the order
        key = np.where(matters[:, :, None], pos, dims[None, None, :])
        tail = self.tail_rank[None]
        nonunit = T > 1
        key = np.where(nonunit & (tail >= 0), D + tail, key)
        key = np.where(nonunit, key, dims[None, None, :] - 2 * D)
        return np.argsort(key, axis=2, kind="stable").astype(I64)

    def _tail_rank(self) -> np.ndarray:
        """[L, D] outer-to-inner rank of each dim in its level's partial-permutation constraint (-1: free)."""
        rank = np.full((self.L, self.D), -1, I64)
        for i, lc in enumerate(self.constraints.levels):
            for j, d in enumerate(lc.permutation):  # innermost first
                rank[i, self.problem.dims.index(d)] = len(lc.permutation) - 1 - j
        return rank

    def count(self, limit: int) -> int:
        """Points ``enumerate`` yields (an upper bound under partial-permutation constraints);
        stops counting once past ``limit``."""
        counts = [len(t) for t in self.dim_tuples]
        total_f = math.prod(counts)
        if total_f * len(self.keep_patterns) > 50 * limit:
            return limit + 1
        fact = np.array([math.factorial(k) for k in range(self.D + 1)], dtype=np.float64)
        total = 0.0
        for start in range(0, total_f, 65536):
            flat = np.arange(start, min(start + 65536, total_f), dtype=I64)
            idx = np.stack(np.unravel_index(flat, counts), axis=1)
            T = self.temporal(idx[self.valid(idx)])
            orders = fact[(T > 1).sum(axis=2)]  # [n, L]
            for keep in self.keep_patterns:
                matters = np.array(self.order_matters(keep))
                total += float(np.where(matters[None], orders, 1.0).prod(axis=1).sum())
                if total > limit:
                    return limit + 1
        return int(total)

    # ---- exhaustive enumeration -------------------------------------------------------------
    def enumerate(self, batch_size: int = 8192) -> Iterator[MappingBatch]:
        """Every valid point, pruned of equivalent orders, in deterministic order."""
        counts = [len(t) for t in self.dim_tuples]
        total = math.prod(counts)
        for keep in self.keep_patterns:
            matters = self.order_matters(keep)
            for start in range(0, total, batch_size):
                flat = np.arange(start, min(start + batch_size, total), dtype=I64)
                idx = np.stack(np.unravel_index(flat, counts), axis=1)
                T, SX, SY = self.assemble(idx[self.valid(idx)])
                if len(T):
                    yield from self._with_orders(T, SX, SY, keep, matters, batch_size)

    def _with_orders(self, T: np.ndarray, SX: np.ndarray, SY: np.ndarray, keep: tuple[frozenset[str], ...],
                     matters: list[bool], batch_size: int) -> Iterator[MappingBatch]:
        """Expand factorizations by their canonical loop orders, in full batches."""
        nonunit = T > 1  # [n, L, D]
        signature = np.packbits(nonunit.reshape(len(T), -1), axis=1)
        _, group_of = np.unique(signature, axis=0, return_inverse=True)
        group_of = group_of.reshape(-1)
        pending: list[tuple[np.ndarray, np.ndarray]] = []  # (member rows, orders)
        pending_n = 0
        for g in range(group_of.max() + 1):
            members = np.nonzero(group_of == g)[0]
            first = nonunit[members[0]]
            per_level = []
            for i in range(self.L):
                orders = self.level_orders(i, tuple(int(k) for k in np.nonzero(first[i])[0]))
                per_level.append(orders if matters[i] else orders[:1])  # order cannot matter: one canonical order
            combos = np.array(list(itertools.product(*per_level)), I64)  # [P, L, D]
            m = np.repeat(members, len(combos))
            o = np.tile(np.arange(len(combos)), len(members))
            pending.append((m, combos[o]))
            pending_n += len(m)
            if pending_n >= batch_size:
                yield from self._flush(T, SX, SY, keep, pending, batch_size)
                pending, pending_n = [], 0
        if pending:
            yield from self._flush(T, SX, SY, keep, pending, batch_size)

    @staticmethod
    def _flush(T: np.ndarray, SX: np.ndarray, SY: np.ndarray, keep: tuple[frozenset[str], ...],
               pending: list[tuple[np.ndarray, np.ndarray]], batch_size: int) -> Iterator[MappingBatch]:
        rows = np.concatenate([m for m, _ in pending])
        orders = np.concatenate([o for _, o in pending])
        for start in range(0, len(rows), batch_size):
            r = rows[start:start + batch_size]
            yield MappingBatch(T[r], SX[r], SY[r], orders[start:start + batch_size], keep)

    # ---- sampling ---------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int, keep: tuple[frozenset[str], ...]) -> MappingBatch:
        """n random valid points (uniform factor tuples per dim, rejection on fanout; random orders)."""
        idx = self.sample_indices(rng, n)
        T, SX, SY = self.assemble(idx)
        return MappingBatch(T, SX, SY, self.random_orders(rng, T), keep)

    def sample_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """[n, D] random valid tuple combinations (uniform per dim, rejection on fanout)."""
        parts, got = [], 0
        for _ in range(50):
            idx = np.stack([rng.integers(0, len(t), size=4 * n) for t in self.dim_tuples], axis=1)
            idx = idx[self.valid(idx)]
            parts.append(idx)
            got += len(idx)
            if got >= n:
                break
        if got == 0:
            raise InputError("<constraints>", "spatial", "no factorization fits the fanouts and spatial constraints")
        return np.concatenate(parts)[:n]

    def random_orders(self, rng: np.random.Generator, T: np.ndarray) -> np.ndarray:
        """Random outer-to-inner orders [n, L, D] honouring partial-permutation constraints."""
        n = len(T)
        keys = rng.random((n, self.L, self.D))
        for i, lc in enumerate(self.constraints.levels):
            for rank, d in enumerate(lc.permutation):  # innermost first -> largest keys
                keys[:, i, self.problem.dims.index(d)] = 2.0 + (len(lc.permutation) - rank)
        return np.argsort(keys, axis=2, kind="stable").astype(I64)


def _divisors(n: int) -> np.ndarray:
    """The divisors of ``n`` >= 1, ascending (pairs d, n // d for d up to sqrt(n))."""
    low = np.arange(1, math.isqrt(n) + 1, dtype=I64)
    low = low[n % low == 0]
    return np.unique(np.concatenate([low, n // low]))
