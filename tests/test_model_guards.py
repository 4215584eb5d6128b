"""Numbers that cannot be trusted never leave mapper.model as results: plug-in work/format models
and energy tables that return NaN, infinite or negative values are errors; cycles that do not fit
int64 or a zero bandwidth make a mapping invalid instead of overflowing."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from test_nest_oracle import arch_dict, lm
from mapper.arch import arch_from_dict
from mapper.ert import EnergyTable
from mapper.mapping import Mapping
from mapper.model import BitLevelModels, evaluate, evaluate_batch
from mapper.nest import batch_from_mappings
from workloads.problem import gemm
from workloads.yamlio import InputError

PROBLEM = gemm(M=4, N=2, K=2)
MAPPING = Mapping((lm(), lm({"M": 4}, "M"), lm({"N": 2, "K": 2}, "KN")))
ERT = EnergyTable({"DRAM": {"read": 1, "write": 1}, "Buffer": {"read": 1, "write": 1}, "Reg": {"read": 1, "write": 1},
                   "MAC": {"mac": 1}})


class _Work:
    family = "broken"
    group_lanes = 1

    def __init__(self, cycles: float, action: float) -> None:
        self.cycles, self.action = cycles, action

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray:
        return np.full(np.shape(n_lanes), self.cycles)

    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]:
        return {"mac": np.full(np.shape(n_lanes), self.action)}

    def describe(self) -> dict:
        return {"family": self.family}


class _Format:
    def __init__(self, bits: float) -> None:
        self.bits = bits

    def bits_per_element(self, dataspace: str) -> float:
        return self.bits


@pytest.mark.parametrize("work, key", [(_Work(float("nan"), 1.0), "cycles_per_step"), (_Work(1.0, -1.0), "actions_per_mac.mac"),
                                       (_Work(float("inf"), 1.0), "cycles_per_step")])
def test_bad_work_model_numbers_are_errors(work: _Work, key: str) -> None:
    with pytest.raises(InputError, match=key):
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(work=work))


@pytest.mark.parametrize("bits", [float("nan"), -8.0])
def test_bad_format_model_numbers_are_errors(bits: float) -> None:
    with pytest.raises(InputError, match="bits_per_element"):
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(formats=_Format(bits)))


def test_bad_energy_table_numbers_are_errors() -> None:
    bad = EnergyTable({**ERT.energy_pJ, "Buffer": {"read": float("nan"), "write": 1}}, source="ert.yaml")
    with pytest.raises(InputError, match="Buffer.read") as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, bad)
    assert info.value.source == "ert.yaml"


def test_zero_bandwidth_and_unrepresentable_cycles_make_a_mapping_invalid() -> None:
    arch = arch_from_dict(arch_dict())
    stalled = dataclasses.replace(arch, levels=(arch.levels[0], dataclasses.replace(arch.levels[1], read_bandwidth=0.0),
                                                arch.levels[2]))
    batch = batch_from_mappings(PROBLEM, [MAPPING])
    ev = evaluate_batch(PROBLEM, stalled, batch, ERT)
    assert not ev.valid[0] and ev.cycles[0] > 0
    slow = evaluate_batch(PROBLEM, arch, batch, ERT, BitLevelModels(work=_Work(1e30, 1.0)))
    assert not slow.valid[0] and slow.cycles[0] > 0       # 16 steps x 1e30 cycles do not fit int64
    assert evaluate_batch(PROBLEM, arch, batch, ERT).valid[0]


def test_an_invalid_mapping_whose_tiles_fit_is_reported_as_invalid() -> None:
    """A Buffer with read bandwidth 0 never finishes: evaluate rejects the mapping without naming
    a level (every tile fits)."""
    arch = arch_from_dict(arch_dict())
    stalled = dataclasses.replace(arch, levels=(arch.levels[0], dataclasses.replace(arch.levels[1], read_bandwidth=0.0),
                                                arch.levels[2]))
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, stalled, MAPPING, ERT, source="map.yaml")
    assert (info.value.source, info.value.key, info.value.expected) == ("map.yaml", "mapping", "mapping is invalid")


def test_bad_numbers_name_the_model_the_key_and_the_first_values() -> None:
    """The error shows the first 4 values of the offending table (3 levels x 3 data spaces here)."""
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(formats=_Format(-8.0)))
    assert (info.value.source, info.value.key, info.value.expected) == (
        "format model", "bits_per_element", "expected finite numbers >= 0, got [-8.0, -8.0, -8.0, -8.0]")
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(work=_Work(float("nan"), 1.0)))
    assert (info.value.source, info.value.key) == ("work model broken", "cycles_per_step")
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(work=_Work(1.0, -1.0)))
    assert (info.value.source, info.value.key) == ("work model broken", "actions_per_mac.mac")


def test_a_missing_plugin_number_is_an_input_error() -> None:
    """A work model answering None (no number at all) is reported like NaN, not as a TypeError."""
    with pytest.raises(InputError, match="cycles_per_step"):
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(work=_Work(None, 1.0)))  # type: ignore[arg-type]


def test_evaluate_keeps_its_inputs_and_names_its_source() -> None:
    ev = evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, clock_MHz=100.0)
    assert (ev.problem, ev.mapping, ev.clock_MHz) == (PROBLEM, MAPPING, 100.0)
    bad = Mapping((lm(), lm({"M": 2}, "M"), lm({"N": 2, "K": 2}, "KN")))   # M = 4 needs factors 4
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), bad, ERT, source="map.yaml")
    assert info.value.source == "map.yaml"
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), bad, ERT)
    assert info.value.source == "<mapping>"


class _LaneCycles:
    """A work model whose step takes one cycle per lane of its lock-step domain; records the lanes."""

    family = "lanes"
    group_lanes = 1

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray:
        self.seen.append(np.asarray(n_lanes))
        return np.asarray(n_lanes, float)

    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]:
        return {"mac": np.ones(np.shape(n_lanes)), "lane_op": np.asarray(n_lanes, float)}

    def describe(self) -> dict:
        return {"family": self.family}


@pytest.mark.parametrize("lockstep, lanes", [(None, 8), ("DRAM", 8), ("Buffer", 4), ("Reg", 2), ("system.chip.PE.Reg", 2)])
def test_lanes_of_the_lockstep_domain(lockstep: str | None, lanes: int) -> None:
    """2 Buffers x 2 Regs x 2 MACs = 8 MAC lanes used; the lanes that run in lock-step are those
    below one instance of the lock-step level (all 8 without one): 8 / 1 DRAM, 8 / 2 Buffers,
    8 / 4 Regs. Each MAC runs K = 2 steps of ``lanes`` cycles."""
    problem = gemm(M=2, N=2, K=4)
    arch = arch_from_dict(arch_dict(buf_mesh=(2, 1), reg_fanout=(2, 1), mac_fanout=(2, 1)))
    mapping = Mapping((lm(sx={"M": 2}), lm(sx={"N": 2}), lm({"K": 2}, "K", sx={"K": 2})))
    work = _LaneCycles()
    ert = EnergyTable({**ERT.energy_pJ, "MAC": {"mac": 1, "lane_op": 1}})
    ev = evaluate(problem, arch, mapping, ert, BitLevelModels(work=work, lockstep_level=lockstep))
    assert ev.batch.counts.used_instances[0].tolist() == [1, 2, 4, 8]
    assert ev.to_dict()["compute_cycles"] == 2 * lanes
    # 2 steps x 8 MACs performed; the model's lane_op action is ``lanes`` per MAC
    assert ev.to_dict()["compute"]["actions"] == {"mac": 16.0, "lane_op": 16.0 * lanes}
    assert ev.to_dict()["compute"]["energy_pJ"] == 16.0 + 16.0 * lanes     # 1 pJ per action
    assert work.seen[-1].tolist() == [lanes] and work.seen[-1].dtype.kind == "i"   # whole lanes


def test_an_unknown_lockstep_level_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, ERT, BitLevelModels(lockstep_level="GLB"))
    assert (info.value.source, info.value.key, info.value.expected) == (
        "<spec>", "lockstep_level", "unknown level 'GLB' (arch levels: DRAM, Buffer, Reg)")


def test_a_zero_bandwidth_raises_no_warning() -> None:
    arch = arch_from_dict(arch_dict())
    stalled = dataclasses.replace(arch, levels=(arch.levels[0], dataclasses.replace(arch.levels[1], read_bandwidth=0.0),
                                                arch.levels[2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not evaluate_batch(PROBLEM, stalled, batch_from_mappings(PROBLEM, [MAPPING]), ERT).valid[0]


@pytest.mark.parametrize("per_step, valid", [(2.0**58, False), (2.0**57, True), (0.0, True)])
def test_cycles_up_to_but_not_including_2_to_the_62_are_represented(per_step: float, valid: bool) -> None:
    """16 compute steps (M 4 x N 2 x K 2 on one MAC) x 2^58 cycles = 2^62, the first count not
    represented (MAX_CYCLES); 2^61 is; a work model that takes no time gives 0 cycles (no level
    has a bandwidth)."""
    ev = evaluate_batch(PROBLEM, arch_from_dict(arch_dict()), batch_from_mappings(PROBLEM, [MAPPING]), ERT,
                        BitLevelModels(work=_Work(per_step, 1.0)))
    assert (bool(ev.valid[0]), int(ev.cycles[0])) == (valid, min(int(16 * per_step), 2**62))
