"""The bundled accelerator specs: they parse, price every level, map small layers, keep the
iso-compute lane counts of the papers, and respond to each accelerator's key parameter in the
direction its paper reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mapper.bitlevel import layer_models
from mapper.model import BitLevelModels, DenseMAC, evaluate
from mapper.search import search
from mapper.spec import SPECS_DIR, Spec, load_spec
from workloads.problem import Problem, conv2d, gemm

SPECS = sorted(str(p.relative_to(SPECS_DIR).with_suffix("")) for p in [*SPECS_DIR.glob("*.yaml"), *SPECS_DIR.glob("baselines/*.yaml")])
FAST = {"mode": "guided", "max_evaluations": 600, "patience": 3, "population": 16, "mutants": 96, "seed": 0}

# MAC lanes of each spec (docs/architecture.md) and the paper's multiplier budget they encode.
LANES = {
    "bitvert": 8192, "baselines/stripes": 4096, "baselines/pragmatic": 4096, "baselines/bitwave": 4096,
    "baselines/bitlet": 32768, "baselines/ant": 512,                      # 4096 bit-serial multipliers
    "bitmod": 4096, "baselines/fp16": 768,                                # iso-area tiles (bitmod Table X)
    "panacea": 256, "baselines/sibia": 256, "baselines/sa_ws": 768, "baselines/sa_os": 768,
    "baselines/simd": 768,                                                # 3072 4b x 4b multipliers
    "sbq": 1536, "baselines/tq": 1536,                                    # sbq Table VI: 1536 MACs
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path))


def _map(spec: Spec, problem: Problem, models: BitLevelModels | None = None):
    models = models or layer_models(spec, None)
    res = search(problem, spec.arch, spec.constraints_for(problem), ert=spec.ert, models=models,
                 clock_MHz=spec.clock_MHz, **FAST)
    return res.mapping, evaluate(problem, spec.arch, res.mapping, spec.ert, models, clock_MHz=spec.clock_MHz)


def test_every_spec_is_listed():
    assert set(LANES) <= set(SPECS)
    assert {"bitvert", "bitmod", "panacea", "sbq"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_spec_parses_prices_and_maps(name):
    spec = load_spec(name)
    assert spec.name and spec.clock_MHz > 0
    if name in LANES:
        assert spec.arch.compute.instances == LANES[name]
    for level in [*spec.arch.levels, spec.arch.compute]:
        assert spec.ert.area(level.path, level.name) >= 0
    comp = spec.arch.compute
    actions = layer_models(spec, None).work.actions_per_mac(np.array([comp.instances]))
    for action in actions:                               # the lane class prices what the work model emits
        assert spec.ert.energy(comp.path, comp.name, action) >= 0
    assert spec.ert.energy(spec.arch.levels[1].path, spec.arch.levels[1].name, "read") > 0
    assert spec.area_um2 > 0
    for problem in (gemm(64, 32, 64), conv2d(1, 16, 32, 3, 3, 8, 8)):
        _, ev = _map(spec, problem)
        assert bool(ev.batch.valid[0]), f"{name}: no valid mapping of {problem.name}"
        assert ev.cycles > 0 and np.isfinite(ev.energy_pJ) and ev.energy_pJ > 0
        assert ev.computes == problem.macs


def test_stripes_vs_dense_int8_compute_cycles():
    """Same mapping, same lanes: an 8-bit bit-serial lane takes 8 cycles per MAC step, a dense MAC 1."""
    spec = load_spec("baselines/stripes")
    problem = gemm(128, 64, 128)
    mapping, serial = _map(spec, problem)
    dense = evaluate(problem, spec.arch, mapping, spec.ert, BitLevelModels(DenseMAC()), clock_MHz=spec.clock_MHz)
    assert serial.to_dict()["compute_cycles"] == pytest.approx(8 * dense.to_dict()["compute_cycles"])
    four = spec.with_overrides({"work_model.bits": 4})
    half = evaluate(problem, four.arch, mapping, four.ert, layer_models(four, None), clock_MHz=four.clock_MHz)
    assert half.to_dict()["compute_cycles"] == pytest.approx(4 * dense.to_dict()["compute_cycles"])


def _same_mapping(a: Spec, b: Spec, problem: Problem):
    mapping, ev_a = _map(a, problem)
    ev_b = evaluate(problem, b.arch, mapping, b.ert, layer_models(b, None), clock_MHz=b.clock_MHz)
    return ev_a, ev_b


def test_bitvert_sub_group_and_pruning():
    """bbs_bitvert Table IV: sub-group 8 (optimized) is smaller and lower-power than 16, at the
    same throughput; Sec. V-C: moderate pruning is faster than conservative."""
    sg8 = load_spec("bitvert")
    sg16 = sg8.with_overrides({"pe.sub_group": 16})
    problem = gemm(256, 64, 256)
    ev8, ev16 = _same_mapping(sg8, sg16, problem)
    assert ev8.cycles == ev16.cycles
    assert sg8.area_um2 < sg16.area_um2
    e8, e16 = ev8.to_dict()["compute"]["energy_pJ"], ev16.to_dict()["compute"]["energy_pJ"]
    assert e8 < e16
    cons = sg8.with_overrides({"work_model.pruning": "conservative", "format_model.pruning": "conservative"})
    assert _map(sg8, problem)[1].cycles < _map(cons, problem)[1].cycles


def test_bitmod_datatype():
    """bitmod Sec. IV-B: INT6 takes 3 bit-serial terms, FP4/FP3 two (1.33x / 2x over FP16's
    one MAC per cycle); Sec. V-C: 3-bit weights cut memory traffic in generation."""
    spec = load_spec("bitmod")
    variants = {d: spec.with_overrides({"work_model.dtype": d, "format_model.dtype": d}) for d in ("int8", "int6", "fp4", "fp3")}
    prefill = gemm(256, 256, 256)
    cycles = {d: _same_mapping(spec, s, prefill)[1].to_dict()["compute_cycles"] for d, s in variants.items()}
    assert cycles["int8"] > cycles["int6"] > cycles["fp4"] == cycles["fp3"]
    assert cycles["int6"] / cycles["fp4"] == pytest.approx(1.5)
    decode = gemm(1024, 1, 1024)                           # one token: weight traffic dominates
    dram = {d: _map(s, decode)[1].to_dict()["levels"]["DRAM"]["energy_pJ"] for d, s in variants.items()}
    assert dram["int6"] > dram["fp4"] > dram["fp3"]


def test_panacea_dbs():
    """panacea Sec. IV: DBS raises HO slice sparsity, improving energy and throughput."""
    on = load_spec("panacea")
    off = on.with_overrides({"work_model.dbs": False, "format_model.dbs": False})
    problem = gemm(128, 64, 128)
    ev_on, ev_off = _map(on, problem), _map(off, problem)
    assert ev_on[1].cycles < ev_off[1].cycles
    assert ev_on[1].energy_pJ < ev_off[1].energy_pJ


def test_sbq_budget():
    """sbq Sec. III-B: a budget of B term pairs takes at most B cycles per multiplication;
    lowering B speeds the engine up (and costs accuracy)."""
    spec = load_spec("sbq")
    problem = gemm(128, 64, 128)
    runs = {b: _same_mapping(spec, spec.with_overrides({"pe.budget": b, "format_model.budget": b}), problem)[1]
            for b in (2, 3, 4)}
    cycles = {b: ev.to_dict()["compute_cycles"] for b, ev in runs.items()}
    assert cycles[2] < cycles[3] < cycles[4]
    assert runs[2].energy_pJ < runs[4].energy_pJ


def test_bad_spec_override_names_key():
    with pytest.raises(Exception) as exc:
        load_spec("bitvert").with_overrides({"work_model.no_such_key": 1})
    assert "no_such_key" in str(exc.value)


def test_specs_dir_has_only_specs():
    for p in Path(SPECS_DIR).glob("**/*.yaml"):
        if "examples" in p.parts:
            continue
        assert load_spec(p).name
