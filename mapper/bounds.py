"""Lower bounds on energy (pJ), cycles and the search objective over a whole mapspace.

The bound reasons only from facts that hold in any dense nest analysis (bitloop's and
Timeloop's counting alike); docs/search.md derives each term. For every keep pattern the
mapspace allows (whose smallest tiles fit), with F(d) the points of data space d that the
problem touches and MACs the problem's operation count:

* the outermost level reads every point of every operand once and receives an update of
  every output point once; every other level that keeps d is filled with every point of d
  once and (operands) reads it out once, or (outputs) receives an update of it once;
* the innermost level keeping an operand reads it at least MACs / (lanes below one of its
  instances) times (a read is shared by at most the lanes below), the innermost level
  keeping an output receives that many updates and reads that many less the points each of
  its instances touches first;
* a vector access carries at most block_size words and costs at least its energy divided
  by the cluster size; compute energy is MACs times the cheapest per-MAC action energy over
  every possible lock-step lane count; leakage is each storage level's leak power for one
  used instance times the cycle bound (only used instances leak, and compute units do not:
  mapper.model);
* cycles are at least MACs x cycles-per-step(n) / lanes usable with n lanes per lock-step
  domain, and at least every level's compulsory words over its bandwidth.

The objective bound is the minimum over keep patterns of the objective of that pattern's
energy and cycle bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping as TMapping, Sequence

import numpy as np

from mapper.arch import Arch
from mapper.constraints import Constraints
from mapper.ert import EnergyTable
from mapper.mapspace import Mapspace
from mapper.model import BitLevelModels, bits_table, lockstep_compute_cycles
from workloads.problem import DataSpace, Problem
from workloads.yamlio import InputError

Objective = str | TMapping[str, float] | Sequence[str]
# A lexicographic objective steers the guided search by its first metric with the second as a
# tie-breaker that moves a value by less than this fraction (the search keeps the exact
# lexicographic best of everything it evaluates; mapper.search._Best).
TIE_BREAK = 1e-9


@dataclass(frozen=True)
class LowerBound:
    """Bounds that no mapping of the mapspace can beat.

    Attributes:
        energy_pJ: lower bound on energy (pJ).
        cycles: lower bound on cycles.
        objective: lower bound on the search objective (same units as the objective).
    """

    energy_pJ: float
    cycles: float
    objective: float

    def gap(self, value: float) -> float:
        """How far ``value`` is above the objective bound, as a fraction (0.1 = 10 %); inf when
        the bound is 0 and the value is not."""
        if value <= self.objective:
            return 0.0
        return value / self.objective - 1 if self.objective > 0 else float("inf")


def footprint(problem: Problem, ds: DataSpace) -> int:
    """Distinct points of ``ds`` that the problem's iteration space touches."""
    total = 1
    for axis in ds.projection:
        values = np.zeros(1, np.int64)
        for term in axis:
            c = problem.coefficient(term)
            values = np.unique((values[:, None] + c * np.arange(problem.bounds[term.dim], dtype=np.int64)[None, :]).ravel())
        total *= len(values)
    return total


def objective_of(energy_pJ: np.ndarray, cycles: np.ndarray, objective: Objective) -> np.ndarray:
    """The search objective of energies (pJ) and cycles: ``energy``, ``delay`` (cycles), ``edp``
    (pJ x cycles), a mapping of those names to weights for a weighted sum, or a list of names
    compared lexicographically (Timeloop's ``optimization_metrics``), as one steering value:
    ``first x (1 + TIE_BREAK x g(second))`` with g in [0, 1) increasing."""
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise InputError("<search>", "objective", "expected at least one metric")
        first = objective_of(energy_pJ, cycles, objective[0])
        if len(objective) == 1:
            return first
        second = np.log1p(np.maximum(objective_of(energy_pJ, cycles, objective[1]), 0.0))
        return first * (1 + TIE_BREAK * second / (second + 64.0))
    metrics = {"energy": energy_pJ, "delay": cycles, "edp": energy_pJ * cycles}
    if isinstance(objective, str):
        if objective not in metrics:
            raise InputError("<search>", "objective", f"expected energy, delay, edp or a weighted mapping, got {objective!r}")
        return metrics[objective]
    unknown = [k for k in objective if k not in metrics]
    if unknown:
        raise InputError("<search>", "objective", f"unknown metric {unknown[0]!r} (expected energy, delay, edp)")
    return sum(float(w) * metrics[k] for k, w in objective.items())


def _max_used_lanes(space: Mapspace) -> int:
    """An upper bound on the compute lanes any mapping of the mapspace uses."""
    arch = space.arch
    per_level = []
    for i in range(space.L):
        fx, fy = arch.fanout(i)
        cols = [s for s, slot in enumerate(space.slots) if slot.level == i and slot.kind != "t"]
        best = 1
        for rows in space.dim_tuples:
            best *= int(rows[:, cols].prod(axis=1).max()) if cols else 1
        per_level.append(min(fx * fy, best))
    total_per_dim = 1
    for rows in space.dim_tuples:
        cols = [s for s, slot in enumerate(space.slots) if slot.kind != "t"]
        total_per_dim *= int(rows[:, cols].prod(axis=1).max()) if cols else 1
    return max(1, min(int(np.prod(per_level)), total_per_dim, arch.compute.instances))


def lower_bound(
    problem: Problem, arch: Arch, constraints: Constraints | None = None, ert: EnergyTable | None = None,
    models: BitLevelModels | None = None, objective: Objective = "edp", space: Mapspace | None = None,
) -> LowerBound:
    """Lower bounds on energy, cycles and ``objective`` over every mapping of the mapspace."""
    space = space or Mapspace(problem, arch, constraints)
    return bound_of(*pattern_bounds(space, ert, models), objective)


def bound_of(energy: np.ndarray, cycles: np.ndarray, objective: Objective) -> LowerBound:
    """The mapspace's bounds from per-keep-pattern bounds (:func:`pattern_bounds`)."""
    if not np.isfinite(energy).any():
        return LowerBound(np.inf, np.inf, np.inf)
    first = objective[0] if isinstance(objective, (list, tuple)) and objective else objective
    return LowerBound(float(energy.min()), float(cycles.min()), float(objective_of(energy, cycles, first).min()))


def pattern_bounds(space: Mapspace, ert: EnergyTable | None = None, models: BitLevelModels | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Energy (pJ) and cycle bounds [P] of the mappings of each keep pattern of ``space``
    (inf for a pattern whose smallest tiles do not fit)."""
    return MappingBound(space, ert, models or BitLevelModels(), "energy").pattern_bounds()


def _pattern_terms(space: Mapspace, ert: EnergyTable | None,
                   models: BitLevelModels) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Per keep pattern: (smallest tiles fit [P], energy bound without leakage [P] pJ, leakage pJ
    per cycle, cycle bound [P])."""
    problem, arch = space.problem, space.arch
    L, names = len(arch.levels), problem.dataspace_names
    macs = float(problem.macs)
    F = np.array([footprint(problem, ds) for ds in problem.dataspaces], float)
    rw = np.array([ds.read_write for ds in problem.dataspaces], bool)
    bits = bits_table(arch, problem, models)
    words = bits / np.array([l.word_bits for l in arch.levels], float)[:, None]  # [L, ds] words per element
    lanes_below = np.array([arch.compute.instances // l.instances for l in arch.levels], float)
    instances = np.array([l.instances for l in arch.levels], float)

    def per_word(action: str) -> np.ndarray:
        """[L] pJ per word of an action: vector energy / (block x cluster)."""
        if ert is None:
            return np.zeros(L)
        return np.array([ert.energy(l.path, l.name, action) / (l.block_size * l.cluster_size) for l in arch.levels])

    e_read, e_fill, e_update = per_word("read"), per_word("fill"), per_word("update")

    # Keep patterns whose smallest tiles (one point of each kept data space) fit.
    keep = np.array([[[d in k[i] for d in names] for i in range(L)] for k in space.keep_patterns], bool)  # [P, L, ds]
    cap = np.array([np.inf if l.capacity_bits is None else l.capacity_bits for l in arch.levels])
    fits = np.all((keep * bits[None]).sum(axis=2) <= cap[None], axis=1)

    # Per pattern, level and data space: compulsory reads / fills / updates (points).
    level = np.arange(L)[None, :, None]
    innermost = np.where(keep, level, -1).max(axis=1)  # [P, ds] innermost keeper
    is_inner = level == innermost[:, None, :]
    per_mac = macs / lanes_below[None, :, None]
    reads = np.where(keep & ~rw, F, 0.0)
    reads = np.where(is_inner & ~rw, np.maximum(F, per_mac), reads)
    reads = np.where(is_inner & rw, np.maximum(per_mac - instances[None, :, None] * F, 0.0), reads)
    fills = np.where(keep & ~rw & (level > 0), F, 0.0)
    updates = np.where(keep & rw, F, 0.0)
    updates = np.where(is_inner & rw, np.maximum(F, per_mac), updates)

    dynamic = ((reads * e_read[None, :, None] + fills * e_fill[None, :, None] + updates * e_update[None, :, None])
               * words[None]).sum(axis=(1, 2))  # [P] pJ

    # Compute: the cheapest lock-step lane count for energy, the fastest for cycles.
    lock = L if models.lockstep_level is None else arch.level_index(models.lockstep_level, "<spec>", "lockstep_level")
    lock_instances = 1 if lock == L else arch.levels[lock].instances
    n = np.arange(1, arch.compute.instances // lock_instances + 1)
    comp = arch.compute
    per_mac_pJ = np.zeros(len(n))
    if ert is not None:
        for action, count in models.work.actions_per_mac(n).items():
            per_mac_pJ = per_mac_pJ + np.asarray(count, float) * ert.energy(comp.path, comp.name, action)
    compute_pJ = macs * float(per_mac_pJ.min())
    usable = np.minimum(n * lock_instances, _max_used_lanes(space))
    compute_cycles = float((macs * np.asarray(models.work.cycles_per_step(n), float) / usable).min())

    # Bandwidth: each level's compulsory words over its bandwidth, per instance.
    r_words = (reads * words[None]).sum(axis=2) / instances[None]  # [P, L]
    w_words = ((fills + updates) * words[None]).sum(axis=2) / instances[None]
    cycles = np.full(len(keep), compute_cycles)
    for i, lvl in enumerate(arch.levels):
        if lvl.read_bandwidth:
            cycles = np.maximum(cycles, r_words[:, i] / lvl.read_bandwidth)
        if lvl.write_bandwidth:
            cycles = np.maximum(cycles, w_words[:, i] / lvl.write_bandwidth)
        if lvl.shared_bandwidth:
            cycles = np.maximum(cycles, (r_words[:, i] + w_words[:, i]) / lvl.shared_bandwidth)

    leak = 0.0
    if ert is not None:
        leak = float(sum(ert.energy(l.path, l.name, "leak") for l in arch.levels))  # pJ/cycle, >= 1 used instance each
    return fits, dynamic + compute_pJ, leak, cycles


class MappingBound:
    """A lower bound on the objective of individual mappings of ``space``: their keep pattern's
    energy and cycle bounds, with the mapping's own compute cycles (exact: temporal steps times
    the work model's cycles per step, rounded up as the model's cycles are) in place of the
    pattern's compute-cycle bound, and its leakage over those cycles. The search skips a
    neighbour whose bound cannot beat the point it descends from (mapper.search).

    Only objectives that grow with energy and cycles have such a bound (``energy``, ``delay``,
    ``edp``, weighted sums with weights >= 0): :attr:`prunes` says so. The per-pattern terms
    are computed once: :meth:`pattern_bounds` gives the mapspace's per-pattern bounds too.
    """

    # The bound is lowered by this fraction so that float rounding in the model's sums can
    # never put an evaluated value below it.
    SAFETY = 1e-9

    def __init__(self, space: Mapspace, ert: EnergyTable | None, models: BitLevelModels, objective: Objective):
        self.space, self.models, self.objective = space, models, objective
        self.fits, self.fixed_pJ, self.leak_pJ_per_cycle, self.cycles = _pattern_terms(space, ert, models)

    @property
    def prunes(self) -> bool:
        """Whether the objective grows with energy and cycles (then the bound may prune)."""
        if isinstance(self.objective, str):
            return self.objective in ("energy", "delay", "edp")
        return not isinstance(self.objective, (list, tuple)) and all(float(w) >= 0 for w in self.objective.values())

    def pattern_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Energy (pJ) and cycle bounds [P] of each keep pattern (inf where its smallest tiles
        do not fit): :func:`pattern_bounds`."""
        energy = self.fixed_pJ + self.leak_pJ_per_cycle * self.cycles
        return np.where(self.fits, energy, np.inf), np.where(self.fits, self.cycles, np.inf)

    def __call__(self, temporal: np.ndarray, spatial_x: np.ndarray, spatial_y: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """[n] objective lower bounds of the mappings with these factors ([n, levels, dims], as
        ``Mapspace.assemble`` gives them) and keep patterns ``keep`` [n] (any loop order)."""
        used = np.ones((len(keep), self.space.L + 1), np.int64)
        used[:, 1:] = np.cumprod((spatial_x * spatial_y).prod(axis=2), axis=1)
        compute, _ = lockstep_compute_cycles(self.space.arch, self.models, used, temporal.prod(axis=(1, 2)))
        cycles = np.maximum(np.ceil(compute), self.cycles[keep])   # the model's cycles are whole
        energy = self.fixed_pJ[keep] + self.leak_pJ_per_cycle * cycles
        return np.where(self.fits[keep], objective_of(energy, cycles, self.objective) * (1 - self.SAFETY), np.inf)


__all__ = ["LowerBound", "MappingBound", "bound_of", "footprint", "lower_bound", "objective_of", "pattern_bounds"]
