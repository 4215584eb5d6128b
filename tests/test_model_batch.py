"""mapper.model.evaluate_batch per row: a batch of mappings gives each mapping exactly what it
gets alone (validity, capacity use, bandwidth and total cycles, every energy term); and capacity
use by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from test_nest_contracts import _batch_case
from test_nest_oracle import arch_dict, lm
from mapper.arch import arch_from_dict
from mapper.ert import EnergyTable
from mapper.mapping import Mapping
from mapper.model import evaluate, evaluate_batch
from mapper.nest import analyze, batch_from_mappings
from workloads.problem import gemm

ERT = EnergyTable({"DRAM": {"read": 100.0, "write": 90.0}, "Buffer": {"read": 3.0, "write": 4.0, "update": 5.0, "leak": 0.5},
                   "Reg": {"read": 1.0, "write": 1.5, "leak": 0.25}, "MAC": {"mac": 2.0}})
FIELDS = ("valid", "capacity_use", "compute_cycles", "level_cycles", "cycles", "energy_level_pJ", "energy_leak_pJ",
          "energy_network_pJ", "energy_compute_pJ", "utilization", "energy_pJ")


@pytest.mark.parametrize("shared_keep", [True, False])
@pytest.mark.parametrize("bandwidth", ["read_bandwidth", "write_bandwidth", "shared_bandwidth"])
def test_an_evaluated_batch_row_equals_the_mapping_alone(bandwidth: str, shared_keep: bool) -> None:
    """Random batches on an arch whose Buffer holds the median of the batch's Buffer tiles (so
    some rows fit and some do not) and moves 1 word per cycle (so bandwidth sets some cycles);
    their mappings share one keep choice or each have their own."""
    mixed = spread = 0
    for seed in range(8):
        problem, arch, mappings = _batch_case(seed, shared_keep=shared_keep)
        batch = batch_from_mappings(problem, mappings)
        counts = analyze(problem, arch, batch)
        buffer_bits = (counts.tile[:, 1] * counts.kept[:, 1]).sum(axis=1) * arch.levels[1].word_bits
        words = max(int(np.median(buffer_bits)) // arch.levels[1].word_bits, 1)
        buffer = dataclasses.replace(arch.levels[1], depth=words // arch.levels[1].block_size, **{bandwidth: 1.0})
        arch = dataclasses.replace(arch, levels=(arch.levels[0], buffer, *arch.levels[2:]))
        together = evaluate_batch(problem, arch, batch, ERT)
        assert together.cycles.dtype == np.int64
        for b, m in enumerate(mappings):
            alone = evaluate_batch(problem, arch, batch_from_mappings(problem, [m]), ERT)
            for name in FIELDS:
                assert np.array_equal(getattr(together, name)[b], getattr(alone, name)[0]), (seed, b, name)
            for kind in ("reads", "fills", "updates"):
                assert np.array_equal(together.vector[kind][b], alone.vector[kind][0]), (seed, b, kind)
        mixed += len(set(together.valid.tolist())) == 2
        spread += len(set(together.level_cycles[:, 1].tolist())) > 1
    assert mixed and spread      # the cases exercise both outcomes and different bandwidth needs


def test_capacity_use_by_hand() -> None:
    """GEMM M=2, N=1, K=3 on DRAM -> Buffer (8 entries x 8 bits) -> Reg (1 entry of 1 bit, keeping
    only Outputs). The Buffer keeps all 6 weights, 3 inputs, 2 outputs = 11 x 8 bits of 64: not
    valid, use 88/64; the Reg's one 1-bit output fills its 1 bit: use 1.0; DRAM is unbounded: 0."""
    spec = arch_dict()
    for node in spec["architecture"]["nodes"]:
        if node["name"] == "Buffer":
            node["attributes"] = {"datawidth": 8, "width": 8, "depth": 8}
        if node["name"] == "Reg":
            node["attributes"] = {"datawidth": 1, "width": 1, "depth": 1}
    arch = arch_from_dict(spec)
    mapping = Mapping((lm(), lm({"M": 2}, "M"), lm({"K": 3}, "K", keep={"Outputs"})))
    result = evaluate(gemm(2, 1, 3), arch, mapping, ERT, check_capacity=False).to_dict()
    use = {name: level["capacity_utilization"] for name, level in result["levels"].items()}
    assert use == pytest.approx({"DRAM": 0.0, "Buffer": 88 / 64, "Reg": 1.0}, rel=1e-12)
    assert result["valid"] is False


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("component, action", [("Reg", "read"), ("Buffer", "leak"), ("Buffer", "link_transfer")])
def test_an_overflowing_energy_invalidates_its_own_row_only(component: str, action: str) -> None:
    """1-D conv R=3, P=4: row 0 runs P in time in one Reg, row 1 spreads P over 4 Regs (6 words
    move over the links). One action is priced so that the row spending less on it stays finite
    and the other overflows to inf: only that row is invalid (every other price is 0)."""
    from workloads.problem import conv2d

    problem = conv2d(N=1, C=1, M=1, R=3, S=1, P=4, Q=1)
    arch = arch_from_dict(arch_dict(reg_fanout=(4, 1)))
    batch = batch_from_mappings(problem, [Mapping((lm(), lm({"R": 3, "P": 4}, "PR"), lm())),
                                          Mapping((lm(), lm({"R": 3}, "R", sx={"P": 4}), lm()))])

    def priced(price: float) -> np.ndarray:
        tables = {"DRAM": {"read": 0, "write": 0}, "Buffer": {"read": 0, "write": 0}, "Reg": {"read": 0, "write": 0},
                  "MAC": {"mac": 0}}
        tables[component] = {**tables[component], action: price}
        ev = evaluate_batch(problem, arch, batch, EnergyTable(tables))
        return ev.energy_pJ, ev.valid

    unit, valid = priced(1.0)
    lo, hi = sorted(unit)
    assert valid.all() and hi > 1.1 * lo and hi >= 2
    # lo x price < 1.797e308 (the largest float) < hi x price
    energy, valid = priced(1.75e308 / ((lo + hi) / 2) if lo > 0 else 1e308)
    assert valid.tolist() == np.isfinite(energy).tolist() == [bool(u == lo) for u in unit]
