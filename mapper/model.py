"""Evaluation of mappings: nest-analysis counts -> energy (pJ), cycles, utilization, validity.

``evaluate_batch`` is the vectorized path the search uses; ``evaluate`` evaluates one
mapping and returns an :class:`Evaluation` whose ``to_dict`` is the stable JSON contract
of ``python -m mapper model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mapper.arch import Arch, StorageLevel
from mapper.ert import EnergyTable
from mapper.mapping import Mapping, validate_mapping
from mapper.nest import MappingBatch, NestCounts, analyze, batch_from_mappings
from workloads.problem import Problem
from workloads.yamlio import InputError


class WorkModel(Protocol):
    """Compute-level behaviour per MAC (see docs/architecture.md)."""

    family: str
    group_lanes: int

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray: ...
    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]: ...
    def describe(self) -> dict: ...


class FormatModel(Protocol):
    """Stored bits per element of a data space, metadata included."""

    def bits_per_element(self, dataspace: str) -> float: ...


class DenseMAC:
    """Work model of a bit-parallel MAC lane: one cycle and one ``mac`` action per MAC."""

    family = "dense"
    group_lanes = 1

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(n_lanes))

    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]:
        return {"mac": np.ones(np.shape(n_lanes))}

    def describe(self) -> dict:
        return {"family": "dense", "source": "analytical: 1 cycle per MAC"}


@dataclass
class BitLevelModels:
    """The bit-level parts of a spec that enter every evaluation.

    Attributes:
        work: compute-level work model (default: dense MAC).
        formats: stored-format model (default: one word per element).
        format_levels: level names that store the compressed format (None: every level).
        lockstep_level: lanes below one instance of this level run in lock-step (None: all lanes).
    """

    work: WorkModel = field(default_factory=DenseMAC)
    formats: FormatModel | None = None
    format_levels: frozenset[str] | None = None
    lockstep_level: str | None = None


@dataclass
class BatchEvaluation:
    """Per-mapping results of a batch (arrays over the batch)."""

    counts: NestCounts
    valid: np.ndarray            # [B] bool: every kept tile fits its level
    capacity_use: np.ndarray     # [B, levels] fraction of capacity used (0 for unbounded)
    compute_cycles: np.ndarray   # [B] float
    level_cycles: np.ndarray     # [B, levels] cycles each level's bandwidth needs
    cycles: np.ndarray           # [B] int64 total cycles
    energy_level_pJ: np.ndarray  # [B, levels, dataspaces] access (and address-generation) energy
    energy_leak_pJ: np.ndarray   # [B, levels] leakage
    energy_network_pJ: np.ndarray  # [B, levels, dataspaces] link transfers between a level's children
    energy_compute_pJ: np.ndarray  # [B]
    compute_actions: dict[str, np.ndarray]  # action -> [B] count
    vector: dict[str, np.ndarray]  # reads/fills/updates -> [B, levels, dataspaces] vector accesses per instance
    utilization: np.ndarray      # [B]

    @property
    def energy_pJ(self) -> np.ndarray:
        return (self.energy_level_pJ.sum(axis=(1, 2)) + self.energy_leak_pJ.sum(axis=1)
                + self.energy_network_pJ.sum(axis=(1, 2)) + self.energy_compute_pJ)


def bits_table(arch: Arch, problem: Problem, models: BitLevelModels) -> np.ndarray:
    """[levels, dataspaces] stored bits per element at each level."""
    bits = np.zeros((len(arch.levels), len(problem.dataspaces)))
    for i, lvl in enumerate(arch.levels):
        compressed = models.formats is not None and (models.format_levels is None or lvl.name in models.format_levels)
        for j, ds in enumerate(problem.dataspace_names):
            bits[i, j] = models.formats.bits_per_element(ds) if compressed else lvl.word_bits  # type: ignore[union-attr]
    return _checked(bits, "format model", "bits_per_element")


MAX_CYCLES = 2**62   # cycles beyond this are not represented (int64); such mappings are invalid


def _checked(values: Any, source: str, key: str) -> np.ndarray:
    """A plug-in's per-candidate numbers as floats; NaN, infinite or negative ones are an error."""
    if isinstance(values, float) and math.isfinite(values) and values >= 0:
        return np.float64(values)   # the common scalar case, without numpy's array round trip
    out = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise InputError(source, key, f"expected finite numbers >= 0, got {out.ravel()[:4].tolist()}")
    return out


def _used_clusters(arch: Arch, i: int, counts: NestCounts) -> np.ndarray:
    """[B] clusters of level ``i`` that hold a used instance, at most instances / cluster_size."""
    lvl = arch.levels[i]
    return np.minimum(counts.used_instances[:, i], max(lvl.instances // lvl.cluster_size, 1)).astype(float)


def _cluster_utilization(arch: Arch, i: int, counts: NestCounts) -> np.ndarray:
    """[B] used instances per used cluster: they share one cluster access's energy
    (buffer.cpp FinalizeBufferEnergy); 1 without clusters."""
    return counts.used_instances[:, i] / _used_clusters(arch, i, counts)


def link_energy(level: StorageLevel, ert: EnergyTable) -> float:
    """pJ per word moved over a link between two children of ``level``.

    The ERT action ``link_transfer`` of the level if given, else Timeloop's legacy network
    attributes ``energy_per_hop + 2 x router_energy`` (network-legacy.cpp
    ComputeNetworkEnergy), else 0 (Timeloop's default network has no wire energy).
    """
    from_ert = ert.energy(level.path, level.name, "link_transfer")
    if from_ert:
        return from_ert
    attrs = level.attributes
    return float(attrs.get("energy_per_hop", 0.0) or 0.0) + 2 * float(attrs.get("router_energy", 0.0) or 0.0)


def lockstep_compute_cycles(arch: Arch, models: BitLevelModels, used_instances: np.ndarray,
                            compute_steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(compute cycles [B], lanes per lock-step domain [B]): temporal steps per compute unit
    times the work model's cycles per step for the lanes that run in lock-step
    (``used_instances``: [B, levels + 1], last column the used compute units)."""
    L = len(arch.levels)
    lock = L if models.lockstep_level is None else arch.level_index(models.lockstep_level, "<spec>", "lockstep_level")
    n_lanes = used_instances[:, L] // used_instances[:, 0 if lock == L else lock]
    per_step = _checked(models.work.cycles_per_step(n_lanes), f"work model {models.work.family}", "cycles_per_step")
    return compute_steps * per_step, n_lanes


def evaluate_batch(
    problem: Problem, arch: Arch, batch: MappingBatch,
    ert: EnergyTable | None = None, models: BitLevelModels | None = None,
) -> BatchEvaluation:
    """Energy, cycles and validity of every mapping in ``batch``."""
    models = models or BitLevelModels()
    counts = analyze(problem, arch, batch)
    B, L = batch.size, len(arch.levels)
    bits = bits_table(arch, problem, models)
    rw = np.array([ds.read_write for ds in problem.dataspaces])
    word_bits = np.array([l.word_bits for l in arch.levels], float)
    block = np.array([l.block_size for l in arch.levels], float)

    # Capacity: every kept tile must fit (bits per instance).
    tile_bits = (counts.tile * bits[None] * counts.kept).sum(axis=2)  # [B, L]
    cap = np.array([np.inf if l.capacity_bits is None else l.capacity_bits for l in arch.levels])
    valid = np.all(tile_bits <= cap[None], axis=1)
    capacity_use = np.where(np.isfinite(cap)[None], tile_bits / np.where(np.isfinite(cap), np.maximum(cap, 1), 1)[None], 0.0)

    # Vector accesses per used instance.
    words_per_elem = bits / word_bits[:, None]
    vector = {}
    words = {}
    for name, total in (("reads", counts.reads), ("fills", counts.fills), ("updates", counts.updates)):
        per_inst = counts.per_instance(total)
        words[name] = per_inst * words_per_elem[None]
        vector[name] = np.ceil(words[name] / block[None, :, None])

    compute_cycles, n_lanes = lockstep_compute_cycles(arch, models, counts.used_instances, counts.compute_steps)

    # Bandwidth: cycles each level instance needs for its traffic (words per cycle).
    level_cycles = np.zeros((B, L))
    for i, lvl in enumerate(arch.levels):
        r = words["reads"][:, i].sum(axis=1)
        w = words["fills"][:, i].sum(axis=1) + words["updates"][:, i].sum(axis=1)
        need = np.zeros(B)
        with np.errstate(divide="ignore"):   # a bandwidth of 0 (API-built arch): never done
            for traffic, bandwidth in ((r, lvl.read_bandwidth), (w, lvl.write_bandwidth), (r + w, lvl.shared_bandwidth)):
                if bandwidth is not None:
                    need = np.maximum(need, np.where(traffic > 0, traffic / bandwidth, 0.0))
        level_cycles[:, i] = need
    exact_cycles = np.ceil(np.maximum(compute_cycles, level_cycles.max(axis=1, initial=0.0)))
    # A count that cannot be represented (or an infinite bandwidth need) makes the mapping invalid.
    representable = np.isfinite(exact_cycles) & (exact_cycles < MAX_CYCLES)
    valid &= representable
    cycles = np.where(representable, exact_cycles, MAX_CYCLES).astype(np.int64)

    # Energy (Timeloop: buffer.cpp ComputeBufferEnergy / FinalizeBufferEnergy, arithmetic.cpp Evaluate).
    n_ds = len(problem.dataspaces)
    energy_level = np.zeros((B, L, n_ds))
    energy_leak = np.zeros((B, L))
    energy_network = np.zeros((B, L, n_ds))
    # MACs performed: steps x active lanes (= the problem's MACs unless factors are padded).
    performed = counts.compute_steps * counts.used_instances[:, L]
    actions = {k: _checked(v, f"work model {models.work.family}", f"actions_per_mac.{k}") * performed
               for k, v in models.work.actions_per_mac(n_lanes).items()}
    energy_compute = np.zeros(B)
    if ert is not None:
        for i, lvl in enumerate(arch.levels):
            used_i = counts.used_instances[:, i]
            e_op = {op: float(_checked(ert.energy(lvl.path, lvl.name, op), ert.source, f"{lvl.name}.{op}"))
                    for op in ("read", "fill", "update")}
            per_instance = sum(vector[k][:, i] * e_op[op] for k, op in (("reads", "read"), ("fills", "fill"), ("updates", "update")))
            energy_level[:, i] = per_instance / _cluster_utilization(arch, i, counts)[:, None] * used_i[:, None]
            addr_gen = lvl.attributes.get("addr_gen_energy")
            if addr_gen is not None:
                generations = counts.fills[:, i] + np.where(rw[None], counts.updates[:, i], counts.reads[:, i])
                energy_level[:, i] += generations / used_i[:, None] * float(addr_gen) * _used_clusters(arch, i, counts)[:, None]
            # Leakage of the utilized instances only (ComputeLeaksPerCycle).
            energy_leak[:, i] = ert.energy(lvl.path, lvl.name, "leak") * used_i * cycles
            energy_network[:, i] = counts.link_transfers[:, i] * link_energy(lvl, ert)
        comp = arch.compute
        for action, count in actions.items():
            energy_compute += count * ert.energy(comp.path, comp.name, action)
    utilization = counts.used_instances[:, L] / arch.compute.instances
    total = energy_level.sum(axis=(1, 2)) + energy_leak.sum(axis=1) + energy_network.sum(axis=(1, 2)) + energy_compute
    valid &= np.isfinite(total) & (total >= 0)
    return BatchEvaluation(
        counts, valid, capacity_use, compute_cycles, level_cycles, cycles, energy_level, energy_leak,
        energy_network, energy_compute, actions, vector, utilization,
    )


@dataclass
class Evaluation:
    """One mapping's evaluation, with the stable JSON view ``to_dict``."""

    problem: Problem
    arch: Arch
    mapping: Mapping
    batch: BatchEvaluation
    clock_MHz: float | None = None

    @property
    def energy_pJ(self) -> float:
        return float(self.batch.energy_pJ[0])

    @property
    def cycles(self) -> int:
        return int(self.batch.cycles[0])

    @property
    def computes(self) -> int:
        return int(self.batch.counts.computes)

    def to_dict(self) -> dict[str, Any]:
        """The ``model.json`` contract (totals over all instances; names as in arch and problem)."""
        ev, c = self.batch, self.batch.counts
        levels: dict[str, Any] = {}
        for i, lvl in enumerate(self.arch.levels):
            used = int(c.used_instances[0, i])
            dataspaces = {}
            for j, ds in enumerate(c.dataspaces):
                if not c.kept[0, i, j]:
                    continue
                r, f, u = int(c.reads[0, i, j]), int(c.fills[0, i, j]), int(c.updates[0, i, j])
                dataspaces[ds] = {
                    "reads": r, "fills": f, "updates": u,
                    "reads_per_instance": r // used, "fills_per_instance": f // used, "updates_per_instance": u // used,
                    "tile_size": int(c.tile[0, i, j]),
                    "vector_reads_per_instance": int(ev.vector["reads"][0, i, j]),
                    "vector_fills_per_instance": int(ev.vector["fills"][0, i, j]),
                    "vector_updates_per_instance": int(ev.vector["updates"][0, i, j]),
                    "multicast": float(c.multicast[0, i, j]),
                    "spatial_reduction": float(c.reduction[0, i, j]),
                    "link_transfers": float(c.link_transfers[0, i, j]),
                    "link_transfers_per_instance": float(c.link_transfers[0, i, j]) / used,
                    "energy_pJ": float(ev.energy_level_pJ[0, i, j]),
                    "network_energy_pJ": float(ev.energy_network_pJ[0, i, j]),
                }
            levels[lvl.name] = {
                "instances": lvl.instances,
                "used_instances": used,
                "energy_pJ": float(ev.energy_level_pJ[0, i].sum() + ev.energy_leak_pJ[0, i]),
                "leak_energy_pJ": float(ev.energy_leak_pJ[0, i]),
                "network_energy_pJ": float(ev.energy_network_pJ[0, i].sum()),
                "capacity_utilization": float(ev.capacity_use[0, i]),
                "bandwidth_cycles": float(ev.level_cycles[0, i]),
                "dataspaces": dataspaces,
            }
        comp = self.arch.compute
        compute_energy = float(ev.energy_compute_pJ[0])
        cycles = self.cycles
        result: dict[str, Any] = {
            "nest_analysis": self.arch.nest_analysis,
            "computes": self.computes,
            "cycles": cycles,
            "compute_cycles": float(ev.compute_cycles[0]),
            "utilization": float(ev.utilization[0]),
            "energy_pJ": self.energy_pJ,
            "energy_per_mac_pJ": self.energy_pJ / max(self.computes, 1),
            "edp_pJ_cycles": self.energy_pJ * cycles,
            "levels": levels,
            "compute": {
                "name": comp.name, "instances": comp.instances, "used_instances": int(c.used_instances[0, -1]),
                "energy_pJ": compute_energy,
                "actions": {k: float(v[0]) for k, v in ev.compute_actions.items()},
            },
            "valid": bool(ev.valid[0]),
        }
        if self.clock_MHz:
            seconds = cycles / (self.clock_MHz * 1e6)
            result["seconds"] = seconds
            result["edp_J_s"] = self.energy_pJ * 1e-12 * seconds
        return result


def capacity_error(arch: Arch, problem: Problem, ev: BatchEvaluation, b: int, bits: np.ndarray, source: str) -> InputError:
    """An error naming the first level whose kept tiles do not fit, with the sizes in bits."""
    c = ev.counts
    for i, lvl in enumerate(arch.levels):
        cap = lvl.capacity_bits
        if cap is None:
            continue
        need = float((c.tile[b, i] * bits[i] * c.kept[b, i]).sum())
        if need > cap:
            parts = ", ".join(f"{ds} {int(c.tile[b, i, j])} x {bits[i, j]:g} bits" for j, ds in enumerate(c.dataspaces) if c.kept[b, i, j])
            return InputError(source, f"{lvl.name}", f"tiles need {need:g} bits ({parts}) but {lvl.name} holds {cap} bits per instance")
    return InputError(source, "mapping", "mapping is invalid")


def evaluate(
    problem: Problem, arch: Arch, mapping: Mapping, ert: EnergyTable | None = None,
    models: BitLevelModels | None = None, clock_MHz: float | None = None, source: str = "<mapping>",
    check_capacity: bool = True,
) -> Evaluation:
    """Evaluate one mapping; raises :class:`InputError` if it is invalid (factors, fanout, capacity)."""
    validate_mapping(mapping, arch, problem, source)
    models = models or BitLevelModels()
    batch = batch_from_mappings(problem, [mapping])
    ev = evaluate_batch(problem, arch, batch, ert, models)
    if check_capacity and not bool(ev.valid[0]):
        raise capacity_error(arch, problem, ev, 0, bits_table(arch, problem, models), source)
    return Evaluation(problem, arch, mapping, ev, clock_MHz)


__all__ = [
    "BatchEvaluation", "BitLevelModels", "DenseMAC", "Evaluation", "FormatModel", "WorkModel",
    "evaluate", "evaluate_batch",
]
