"""Numbers that cannot be trusted never leave mapper.model as results: plug-in work/format models
and energy tables that return NaN, infinite or negative values are errors; cycles that do not fit
int64 or a zero bandwidth make a mapping invalid instead of overflowing."""

from __future__ import annotations

import dataclasses

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
    bad = EnergyTable({**ERT.energy_pJ, "Buffer": {"read": float("nan"), "write": 1}})
    with pytest.raises(InputError, match="Buffer.read"):
        evaluate(PROBLEM, arch_from_dict(arch_dict()), MAPPING, bad)


def test_zero_bandwidth_and_unrepresentable_cycles_make_a_mapping_invalid() -> None:
    arch = arch_from_dict(arch_dict())
    stalled = dataclasses.replace(arch, levels=(arch.levels[0], dataclasses.replace(arch.levels[1], read_bandwidth=0.0),
                                                arch.levels[2]))
    batch = batch_from_mappings(PROBLEM, [MAPPING])
    ev = evaluate_batch(PROBLEM, stalled, batch, ERT)
    assert not ev.valid[0] and ev.cycles[0] > 0
    slow = evaluate_batch(PROBLEM, arch, batch, ERT, BitLevelModels(work=_Work(1e30, 1.0)))
    assert not slow.valid[0] and slow.cycles[0] > 0       # 4 steps x 1e30 cycles do not fit int64
    assert evaluate_batch(PROBLEM, arch, batch, ERT).valid[0]
