"""Lower bounds (mapper.bounds): never above the exhaustive optimum, exact on hand cases."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.arch import Arch, arch_from_dict
from mapper.bounds import footprint, lower_bound
from mapper.constraints import constraints_from_list
from mapper.ert import EnergyTable
from mapper.model import BitLevelModels
from mapper.search import search
from workloads.problem import conv2d, gemm
from workloads.yamlio import InputError


class SlowWideLanes:
    """A work model whose step time and per-MAC actions grow with the lock-step lane count
    (so the cheapest lane count for energy and the fastest for cycles differ)."""

    family = "test"
    group_lanes = 1

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray:
        return 1.0 + 0.25 * np.log2(np.maximum(n_lanes, 1))

    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]:
        n = np.asarray(n_lanes, float)
        return {"compute": 1.0 + 0.1 * n, "idle": 0.2 * np.log2(np.maximum(n, 1))}

    def describe(self) -> dict:
        return {"family": "test"}


class HalfWeights:
    """Weights stored in 4 bits at every level that uses the format."""

    def bits_per_element(self, dataspace: str) -> float:
        return 4.0 if dataspace == "Weights" else 8.0


def _arch(levels: int, mesh: int, glb_depth: int, rf_depth: int, rf_width: int, dram_bw: float | None,
          glb_bw: float | None, cluster: bool) -> Arch:
    dram = {"datawidth": 8, "width": 32}
    if dram_bw:
        dram["shared_bandwidth"] = dram_bw
    nodes: list[dict] = [{"_tag": "Container", "name": "system"},
                         {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": dram}]
    if levels == 3:
        glb = {"datawidth": 8, "width": 16, "depth": glb_depth}
        if glb_bw:
            glb["read_bandwidth"] = glb_bw
        if cluster:
            glb["cluster_size"] = 2
        nodes.append({"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": glb})
    nodes.append({"_tag": "Container", "name": "PE", "spatial": {"meshX": mesh}})
    nodes.append({"_tag": "Component", "name": "RF", "class": "RF", "attributes": {"datawidth": 8, "width": rf_width, "depth": rf_depth}})
    nodes.append({"_tag": "Component", "name": "mac", "class": "intmac"})
    return arch_from_dict({"architecture": {"version": 0.4, "nodes": nodes}})


def _ert(rng: np.random.Generator) -> EnergyTable:
    e = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    return EnergyTable({
        "DRAM": {"read": e(50, 200), "write": e(50, 200), "update": e(50, 200), "leak": e(0, 2)},
        "GLB": {"read": e(5, 20), "write": e(5, 20), "update": e(5, 20), "leak": e(0, 0.5)},
        "RF": {"read": e(0.5, 2), "write": e(0.5, 2), "leak": e(0, 0.05)},
        "mac": {"mac": e(1, 3), "compute": e(0.5, 2), "idle": e(0, 0.5), "leak": e(0, 0.01)},
    })


cases = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "levels": st.sampled_from([2, 3]),
    "mesh": st.sampled_from([1, 2, 4]),
    "glb_depth": st.sampled_from([4, 16, 64]),
    "rf_depth": st.sampled_from([2, 4, 16]),
    "rf_width": st.sampled_from([8, 16]),
    "dram_bw": st.sampled_from([None, 1.0, 4.0]),
    "glb_bw": st.sampled_from([None, 2.0]),
    "cluster": st.booleans(),
    "problem": st.sampled_from([(2, 2, 4), (4, 1, 2), (3, 2, 2), ("conv", 2, 3, 2), ("conv", 1, 2, 2)]),
    "work": st.booleans(),
    "formats": st.booleans(),
})


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_bound_never_exceeds_exhaustive_optimum(case: dict) -> None:
    rng = np.random.default_rng(case["seed"])
    arch = _arch(case["levels"], case["mesh"], case["glb_depth"], case["rf_depth"], case["rf_width"], case["dram_bw"],
                 case["glb_bw"], case["cluster"])
    shape = case["problem"]
    problem = conv2d(1, shape[1], 2, shape[2], 1, 3, 1, stride=shape[3]) if shape[0] == "conv" else gemm(*shape)
    constraints = None
    if case["levels"] == 3:  # fix the GLB's keep choice to keep the exhaustive search small
        kept = [d for d in problem.dataspace_names if rng.random() < 0.6]
        constraints = constraints_from_list([{"target": "GLB", "type": "datatype", "keep": kept,
                                              "bypass": [d for d in problem.dataspace_names if d not in kept]}], arch, problem)
    models = BitLevelModels(SlowWideLanes() if case["work"] else BitLevelModels().work,
                            HalfWeights() if case["formats"] else None, frozenset({"DRAM", "RF"}) if case["formats"] else None)
    ert = _ert(rng)
    for objective in ("energy", "delay", "edp"):
        try:
            best = search(problem, arch, constraints, ert=ert, models=models, objective=objective, mode="exhaustive")
        except InputError as exc:  # no valid mapping: the bound must say so too
            assert "no valid mapping" in str(exc)
            assert np.isinf(lower_bound(problem, arch, constraints, ert, models, objective).objective)
            return
        lb = lower_bound(problem, arch, constraints, ert, models, objective)
        assert lb.objective <= best.objective * (1 + 1e-9)
        assert lb.energy_pJ <= best.evaluation.energy_pJ * (1 + 1e-9) or objective == "delay"
        assert best.bound.objective == pytest.approx(lb.objective)
        assert best.bound.gap(best.objective) >= 0
    assert lb.cycles <= best.evaluation.cycles * (1 + 1e-9)


def _one_mac_arch(rf: bool) -> Arch:
    nodes: list[dict] = [{"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 8}}]
    if rf:
        nodes.append({"_tag": "Component", "name": "RF", "class": "RF", "attributes": {"datawidth": 8, "width": 8, "depth": 64}})
    nodes.append({"_tag": "Component", "name": "mac", "class": "intmac"})
    return arch_from_dict({"architecture": {"version": 0.4, "nodes": nodes}})


HAND_ERT = EnergyTable({"DRAM": {"read": 100.0, "write": 120.0, "update": 110.0}, "RF": {"read": 1.0, "write": 2.0},
                        "mac": {"mac": 3.0}})


def test_bound_is_exact_on_a_single_level_arch() -> None:
    # DRAM -> one MAC, GEMM 4x3x2 (24 MACs, 12 outputs): every MAC reads a weight and an input
    # from DRAM and updates an output there; each output's first read is skipped.
    problem, arch = gemm(4, 3, 2), _one_mac_arch(rf=False)
    macs, outputs = 24, 12
    energy = macs * (100.0 + 100.0 + 110.0 + 3.0) + (macs - outputs) * 100.0
    lb = lower_bound(problem, arch, ert=HAND_ERT, objective="edp")
    best = search(problem, arch, ert=HAND_ERT, objective="edp", mode="exhaustive")
    assert lb.energy_pJ == pytest.approx(energy) and lb.cycles == macs
    assert best.evaluation.energy_pJ == pytest.approx(energy) and lb.objective == pytest.approx(best.objective)


def test_bound_is_exact_when_the_rf_holds_the_operands() -> None:
    # DRAM -> RF (keeps weights and inputs, 64 words) -> one MAC, GEMM 4x3x2: weights (8) and
    # inputs (6) come from DRAM once and are written into the RF once; every MAC reads both from
    # the RF; outputs bypass the RF, so every MAC updates DRAM (and reads it but the first time).
    problem, arch = gemm(4, 3, 2), _one_mac_arch(rf=True)
    cons = constraints_from_list([{"target": "RF", "type": "datatype", "keep": ["Weights", "Inputs"], "bypass": ["Outputs"]}],
                                 arch, problem)
    macs, operands, outputs = 24, 8 + 6, 12
    energy = operands * (100.0 + 2.0) + macs * (2 * 1.0 + 110.0 + 3.0) + (macs - outputs) * 100.0
    lb = lower_bound(problem, arch, cons, ert=HAND_ERT, objective="energy")
    best = search(problem, arch, cons, ert=HAND_ERT, objective="energy", mode="exhaustive")
    assert lb.energy_pJ == pytest.approx(energy)
    assert best.objective == pytest.approx(energy)


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (3, 1), (1, 2), (2, 3)])
def test_footprint_counts_touched_points(stride: int, dilation: int) -> None:
    problem = conv2d(1, 2, 3, 3, 2, 4, 3, stride=stride, dilation=dilation)
    for ds in problem.dataspaces:
        touched = set()
        for point in itertools.product(*(range(problem.bounds[d]) for d in problem.dims)):
            values = dict(zip(problem.dims, point))
            touched.add(tuple(sum(problem.coefficient(t) * values[t.dim] for t in axis) for axis in ds.projection))
        assert footprint(problem, ds) == len(touched)


def test_whole_model_rows_and_summary_carry_bounds_and_gaps(tmp_path) -> None:
    from pathlib import Path

    from mapper.cache import ResultCache
    from mapper.report import write_report
    from mapper.run import run_model
    from mapper.spec import load_spec
    from workloads.graph import LayerGraph

    g = LayerGraph("toy")
    g.add_layer("fc", gemm(32, 16, 64), "linear", weight_name="fc.weight", count=2)
    g.add_layer("head", gemm(8, 16, 32), "linear", inputs=["fc"], weight_name="head.weight")
    spec = load_spec(Path(__file__).parent / "data" / "tiny_spec.yaml")
    report = run_model(spec, "toy", graph=g, objective="energy", cache=ResultCache(tmp_path / "c.sqlite"),
                       search_options={"max_evaluations": 2000, "exhaustive_limit": 2000})
    for r in report.rows:
        assert r["objective"] == pytest.approx(r["energy_pJ"])  # objective "energy"
        assert 0 < r["objective_lower_bound"] <= r["objective"] and r["objective_gap"] >= 0
        assert r["objective_gap"] == pytest.approx(r["objective"] / r["objective_lower_bound"] - 1)
        assert r["cycles_lower_bound"] <= r["cycles"] and r["energy_lower_bound_pJ"] <= r["energy_pJ"]
    s = report.summary()["lower_bound"]
    assert s["energy_pJ"] == pytest.approx(sum(r["energy_lower_bound_pJ"] * r["count"] for r in report.rows))
    assert s["max_layer_objective_gap"] == max(r["objective_gap"] for r in report.rows)
    paths = write_report(report, tmp_path / "out")
    header = paths["layers_csv"].read_text().splitlines()[0].split(",")
    assert {"objective", "objective_lower_bound", "objective_gap", "energy_lower_bound_pJ", "cycles_lower_bound"} <= set(header)
    info = json.loads(paths["summary"].read_text())["search"]
    assert all(v["objective_gap"] >= 0 and v["objective_lower_bound"] > 0 for v in info.values())
