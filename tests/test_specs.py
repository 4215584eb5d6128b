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
    "baselines/ant_llm": 1024, "baselines/olive": 1152,                   # BitMoD simulator: 32 x 32, 36 x 32 PEs
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


def test_dtp_pairs_weight_subtiles_to_fill_idle_dwos():
    """panacea Sec. III-D, by hand with 4 DWOs and 8 SWOs. SWO-bound tiles (no DWO work, 32 LO x LO
    products): alone 32 / 8 = 4 cycles each; a DTP pair moves the second tile's products to the
    DWOs: max(0 / 4, 32 / 8, 64 / 12) = 16/3 cycles for two tiles, 8/3 each. DWO-bound tiles (40
    DWO products): alone 10, paired max(80 / 4, 32 / 8, 144 / 12) = 20 for two, no gain. Rows r
    and r + pes pair up; a row without a partner runs alone."""
    import torch

    from sparsity_models.stats.slices import dtp_pair_cycles

    swo = torch.tensor([32.0])
    sparse = dtp_pair_cycles(torch.zeros(2, 1, 1), swo, 4, 8, pes=1)
    assert sparse.flatten().tolist() == pytest.approx([8 / 3, 8 / 3])
    dense = dtp_pair_cycles(torch.full((2, 1, 1), 40.0), swo, 4, 8, pes=1)
    assert dense.flatten().tolist() == pytest.approx([10.0, 10.0])
    odd = dtp_pair_cycles(torch.zeros(3, 1, 1), swo, 4, 8, pes=1)
    assert odd.flatten().tolist() == pytest.approx([8 / 3, 8 / 3, 4.0])


def test_dtp_raises_panacea_throughput_when_weight_ho_slices_are_sparse():
    """Sparse HO slices of both operands leave the DWOs idle and bound a tile at its 32 LO x LO
    products on 8 SWOs (0.125 cycles per step): DTP's pairing lets the DWOs take the second
    tile's share and speeds Panacea up (Sec. IV: +7.6% on GPT-2); on the dense synthetic
    profile (DWO-bound) it changes almost nothing."""
    import torch

    from sparsity_models.stats.slices import panacea_stats

    torch.manual_seed(0)
    w = torch.randn(128, 128) * 0.02
    w[:, 0] = 1.0                                   # a large per-channel scale: the other weights' HO slices are 0
    x = torch.randn(64, 128) * (torch.rand(64, 128) < 0.05)
    x[:, 0] = 5.0
    args = dict(v=4, weight_bits=7, zpm=True, dbs=True, dbs_target=0.9, rle_bits=4, tile_k=32, n_dwo=4, n_swo=8, pes=4)
    off, on = panacea_stats(w, x, dtp=False, **args), panacea_stats(w, x, dtp=True, **args)
    assert off["rho_w"] > 0.9 and off["rho_x"] > 0.9
    assert off["tile_cycles"].mean() == pytest.approx(0.125)
    assert on["tile_cycles"].mean() < 0.8 * off["tile_cycles"].mean()
    spec = load_spec("panacea")
    steps = {d: float(layer_models(spec.with_overrides({"work_model.dtp": d}), None).work.cycles_per_step(np.array([256]))[0])
             for d in (False, True)}
    assert steps[True] <= steps[False]


def test_panacea_weight_and_psum_buffers_are_priced_once(tmp_path: Path):
    """The PEA's weight buffer and partial-sum buffer are the spec's WBUF and PSUM levels; the
    component behind the MAC lanes no longer holds them. A plug-in pricing a 128-entry register
    file (the old in-PEA weight buffer, 2 x TK x 2 rows) at 1e6 pJ per read leaves the lane's
    compute energy unchanged, while the WBUF level stays a storage level with its own reads."""
    import components

    spec = load_spec("panacea")
    pea = components.load_library(["bitslice_baselines"]).get("panacea_pea")
    assert not {"weight_buffer", "psum_buffer"} & {sub.name.split("[")[0] for sub in pea.subcomponents}
    assert [l.name for l in spec.arch.levels][-2:] == ["WBUF", "PSUM"]
    lane = spec.arch.compute
    base = spec.ert.energy(lane.path, lane.name, "compute")
    tmp = tmp_path / "marker.csv"
    tmp.write_text("class,action,depth,energy_pJ,area_um2\nregfile,read,128,1000000,\n")
    marked = load_spec("panacea")
    marked.estimators = [tmp]
    assert marked.ert.energy(lane.path, lane.name, "compute") == pytest.approx(base)


def test_storage_classes_pass_leak_scale_banking_and_dram_energy():
    """smartbuffer_SRAM passes leak_scale (cell flavour) and banking to its SRAM; offchip_DRAM
    passes energy_per_bit_pJ (energy per access = width x pJ/bit)."""
    spec = load_spec("baselines/sa_ws")
    hp = spec.with_overrides({"arch.GLB.leak_scale": 1.0})
    glb = next(l for l in spec.arch.levels if l.name == "GLB")
    lstp, itrs_hp = spec.ert.energy(glb.path, glb.name, "leak"), hp.ert.energy(glb.path, glb.name, "leak")
    half = spec.with_overrides({"arch.GLB.leak_scale": 0.5}).ert.energy(glb.path, glb.name, "leak")
    assert glb.attributes["leak_scale"] == 5.6e-4
    # leak = leak_scale x SRAM leakage + the address generators' (not scaled): linear in leak_scale
    sram = (itrs_hp - half) / 0.5
    assert lstp == pytest.approx(itrs_hp - sram * (1 - 5.6e-4)) and sram > 0.9 * itrs_hp
    dram = spec.arch.levels[0]
    custom = spec.with_overrides({"arch.DRAM.energy_per_bit_pJ": 2.5})
    assert custom.ert.energy(dram.path, dram.name, "read") == pytest.approx(256 * 2.5)
    assert load_spec("bitmod").ert.energy("system.DRAM", "DRAM", "read") == pytest.approx(128 * 18.75)
    split = spec.with_overrides({"arch.GLB.banking": "split"})
    assert split.ert.energy(glb.path, glb.name, "read") != pytest.approx(spec.ert.energy(glb.path, glb.name, "read"))


def test_bitmod_comparison_as_the_authors_simulator_configures_it():
    """yc2367/BitMoD sim: 32 B/cycle DRAM for every design; output channels on the PE rows
    (FP16 32 x 24, BitMoD/ANT 32 x 32, OliVe 36 x 32 in prefill); ANT/OliVe store 5.5/4.5 bits."""

    for name, (x, y) in {"baselines/fp16": (32, 24), "bitmod": (32, 32), "baselines/ant_llm": (32, 32),
                         "baselines/olive": (36, 32)}.items():
        s = load_spec(name)
        assert s.arch.levels[0].shared_bandwidth == 32
        spatial = next(c for c in s.constraints_raw if c.get("type") == "spatial" and c["target"] == "ABuf")
        assert spatial["factors"].split()[:2] == [f"M<={x}", f"N<={y}"]
    bits = {n: layer_models(load_spec(n), None).formats.bits_per_element("Weights") for n in ("baselines/ant_llm", "baselines/olive")}
    assert bits == {"baselines/ant_llm": 5.5, "baselines/olive": 4.5}
