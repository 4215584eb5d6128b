"""``python -m mapper search --arch/--problem``: timeloop-mapper on one layer (issue 11, part 3).

The three complete timeloop-mapper inputs of ../shared/mapper_cases run unchanged; the
exhaustive conv1d case returns the optimum of a brute force that enumerates its mapspace with
itertools (independently of mapper/mapspace.py and mapper/search.py) and evaluates every
mapping with the model; the written loop nests equal Timeloop's own printouts byte for byte.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from mapper.arch import load_arch
from mapper.cli import main
from mapper.constraints import constraints_from_list
from mapper.mapping import load_mapping
from mapper.model import evaluate, evaluate_batch
from mapper.nest import MappingBatch
from mapper.search import search
from mapper.timeloop_inputs import gather, mapper_options
from mapper.timeloop_out import loop_nest_text, stats_text
from mapper.timeloop_search import read_layer_inputs
from workloads.problem import gemm, load_problem
from workloads.yamlio import InputError

from shared_data import MISSING, SHARED
from test_timeloop_inputs import CONFORMANCE, DATA, needs_shared

CASES = (SHARED or Path(MISSING)) / "mapper_cases"
# ../shared is part of CI: these tests fail without it (conftest.py mapper_cases_dir)
needs_cases = pytest.mark.usefixtures("mapper_cases_dir")


def _case_files(name: str) -> tuple[Path, Path, Path]:
    d = CASES / name
    return d / f"mapper_{name}.yaml", d / "ERT.yaml", d / "ART.yaml"


def _ordered_factorizations(n: int, k: int) -> list[tuple[int, ...]]:
    if k == 1:
        return [(n,)]
    return [(f, *rest) for f in range(1, n + 1) if n % f == 0 for rest in _ordered_factorizations(n // f, k - 1)]


def _brute_force(problem, arch, ert) -> tuple[float, float]:
    """Lexicographic minimum of (cycles, energy pJ) over every valid mapping of a fanout-free arch:
    all ordered factorizations, all orders of the non-unit loops of every level, all keep/bypass
    choices below the outermost level."""
    dims, names, L = problem.dims, problem.dataspace_names, len(arch.levels)
    assert all(arch.fanout(i) == (1, 1) for i in range(L))
    rows_t, rows_p = [], []
    for choice in itertools.product(*(_ordered_factorizations(problem.bounds[d], L) for d in dims)):
        t = np.array(choice).T                       # [L, D]
        per_level = []
        for i in range(L):
            units = [k for k in range(len(dims)) if t[i, k] == 1]
            moving = [k for k in range(len(dims)) if t[i, k] > 1]
            per_level.append([units + list(p) for p in itertools.permutations(moving)])   # outer to inner
        for orders in itertools.product(*per_level):
            rows_t.append(t)
            rows_p.append(orders)
    T, P = np.array(rows_t, np.int64), np.array(rows_p, np.int64)
    ones = np.ones_like(T)
    subsets = [frozenset(c) for r in range(len(names) + 1) for c in itertools.combinations(names, r)]
    best = (math.inf, math.inf)
    for inner in itertools.product(subsets, repeat=L - 1):
        keep = (frozenset(names), *inner)
        ev = evaluate_batch(problem, arch, MappingBatch(T, ones, ones, P, keep), ert)
        cycles, energy = ev.cycles[ev.valid].astype(float), ev.energy_pJ[ev.valid]
        if len(cycles):
            b = np.lexsort((energy, cycles))[0]
            best = min(best, (float(cycles[b]), float(energy[b])))
    return best


@needs_cases
def test_conv1d_case_returns_the_exhaustive_optimum() -> None:
    spec, ert_file, art_file = _case_files("3level_conv1d_oc_exhaustive")
    layer = read_layer_inputs({"arch": str(spec), "problem": str(spec), "mapper": str(spec), "ert": str(ert_file),
                               "art": str(art_file)})
    assert layer.options.objective == ("delay", "energy") and layer.options.search == {"mode": "exhaustive"}
    result = search(layer.problem, layer.arch, layer.constraints, ert=layer.priced.ert, objective=layer.options.objective,
                    **layer.options.search)
    assert result.exhaustive
    expected = _brute_force(layer.problem, layer.arch, layer.priced.ert)
    assert result.objectives == pytest.approx(expected, rel=1e-12)
    alone = evaluate(layer.problem, layer.arch, result.mapping, layer.priced.ert)
    assert (alone.cycles, alone.energy_pJ) == pytest.approx(expected, rel=1e-12)


@needs_cases
@pytest.mark.parametrize("name", ["3level_conv1d_oc_exhaustive", "3level_gemm_768x768x256",
                                  "eyeriss_gemm_768x768x256_as_conv1x1"])
def test_mapper_cases_run_unchanged(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One YAML with every section, given positionally; the written map.yaml re-evaluates to the same result."""
    spec, ert_file, art_file = _case_files(name)
    extra = ["--max-evaluations", "6000"] if "gemm" in name else []
    assert main(["search", str(spec), "--ert", str(ert_file), "--art", str(art_file), "--out", str(tmp_path), *extra]) == 0
    out = capsys.readouterr()
    assert "timeout" in out.err and out.err.startswith("warning: ")   # ignored mapper keys are named on stderr
    for suffix in ("map.yaml", "map.txt", "stats.txt"):
        assert (tmp_path / f"timeloop-mapper.{suffix}").is_file()
    searched = re.search(r"best delay then energy = ([\d.e+]+), ([\d.e+]+)", out.out)
    assert searched
    # mapper model reads the written mapping back (problem and arch from the same one file)
    assert main(["model", "--arch", str(spec), "--problem", str(spec), "--mapping", str(tmp_path / "timeloop-mapper.map.yaml"),
                 "--ert", str(ert_file), "--out", str(tmp_path / "model")]) == 0
    model = json.loads((tmp_path / "model" / "model.json").read_text())
    assert model["cycles"] == pytest.approx(float(searched.group(1)), rel=1e-5)
    assert model["energy_pJ"] == pytest.approx(float(searched.group(2)), rel=1e-5)
    stats = (tmp_path / "timeloop-mapper.stats.txt").read_text()
    assert f"Computes = {model['computes']}" in stats and f"Cycles: {model['cycles']}" in stats


# ---- text outputs ------------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("case", ["ispass_04_conv1d_oc_ic_3levelspatial_cp", "ispass_04_conv1d_oc_ic_3levelspatial_kp",
                                  "example_simple_weight_stationary"])
def test_loop_nest_is_timeloops_printout(case: str) -> None:
    """The .map.txt of a case equals the one Timeloop printed for it (tests/data/timeloop/README.md)."""
    d = CONFORMANCE / case / "converted"
    arch = load_arch(d / "arch.yaml", spatial_dummies=True)
    problem = load_problem(d / "problem.yaml")
    mapping = load_mapping(d / "mapping.yaml", arch, problem)
    text = loop_nest_text(evaluate(problem, arch, mapping).to_dict(), arch, problem, mapping)
    assert text == (DATA / f"{case}.map.txt").read_text()


def _field(block: str, name: str) -> str:
    match = re.search(rf"^\s*{re.escape(name)}\s*: (.*)$", block, re.M)
    assert match, name
    return match.group(1)


@needs_shared
def test_stats_text_states_the_evaluation() -> None:
    """Per data space: per-instance counts, totals and bandwidths as in model.json; fJ/Compute sums."""
    from mapper.energy_sources import price_arch
    from mapper.ert import load_ert

    d = CONFORMANCE / "ispass_04_conv1d_oc_ic_3levelspatial_cp" / "converted"
    arch = load_arch(d / "arch.yaml", spatial_dummies=True)
    problem = load_problem(d / "problem.yaml")
    mapping = load_mapping(d / "mapping.yaml", arch, problem)
    priced = price_arch(arch, load_ert(d / "ERT.yaml"))
    result = evaluate(problem, arch, mapping, priced.ert).to_dict()
    text = stats_text(result, arch, problem, mapping, priced.ert, priced.sources)
    assert "=== inter_PE_spatial ===" not in text          # keeps nothing, costs nothing: hidden as in Timeloop
    assert re.findall(r"^Level (\d+)\n-+\n=== (\w+) ===", text, re.M) == [
        ("0", "MACC"), ("1", "RegisterFile"), ("2", "GlobalBuffer"), ("4", "MainMemory")]
    cycles = result["cycles"]
    for name in ("RegisterFile", "GlobalBuffer", "MainMemory"):
        level = result["levels"][name]
        section = text.split(f"=== {name} ===")[1].split("\nLevel ")[0]
        for ds, s in level["dataspaces"].items():
            block = section.split(f"    {ds}:\n")[1]
            assert int(_field(block, "Scalar reads (per-instance)")) == s["reads"] // level["used_instances"]
            assert int(_field(block, "Vector fills (per-instance)")) == s["vector_fills_per_instance"]
            assert _field(block, "Energy (total)") == f"{s['energy_pJ']:.2f} pJ"
            reads = s["reads"] / level["used_instances"]
            assert _field(block, "Read Bandwidth (per-instance)") == f"{reads / cycles:.2f} words/cycle"
            assert int(_field(block, "Link transfers (total)")) == s.get("link_transfers", 0)
        assert _field(section, "Vector access energy source").startswith("ERT (System_top_level.")
    per_compute = dict(re.findall(r"^    (\w+)\s*= ([\d.]+)$", text.split("fJ/Compute")[1], re.M))
    assert float(per_compute["Total"]) == pytest.approx(result["energy_pJ"] * 1000 / result["computes"], abs=0.005)
    assert sum(float(v) for k, v in per_compute.items() if k != "Total") == pytest.approx(float(per_compute["Total"]), abs=0.05)


# ---- mapper.yaml, input files, constraints ------------------------------------------------------

def test_mapper_options_map_onto_the_search() -> None:
    opts = mapper_options({"optimization_metrics": ["delay", "energy"], "optimization_metric": [], "algorithm": "random_pruned",
                           "victory_condition": 500, "num_threads": 8, "timeout": 15000, "live_status": False,
                           "max_permutations_per_if_visit": 16, "out_prefix": "run1"}, "m.yaml")
    assert opts.objective == ("delay", "energy") and opts.out_prefix == "run1"
    assert opts.search == {"patience": 2}      # ceil(500 stale mappings x 8 threads / 2048 per round)
    assert [i.split(" ")[0] for i in opts.ignored] == ["max_permutations_per_if_visit", "timeout"]
    single = mapper_options({"optimization_metric": "energy", "algorithm": "exhaustive", "victory_condition": 0}, "m.yaml")
    assert single.objective == "energy" and single.search == {"mode": "exhaustive"}
    assert mapper_options({"search_size": 5000}, "m.yaml").search == {"patience": math.ceil(500 * (__import__("os").cpu_count() or 1) / 2048),
                                                                        "max_evaluations": 5000}
    with pytest.raises(InputError, match="unsupported optimization metric 'last_level_accesses'"):
        mapper_options({"optimization_metric": "last_level_accesses"}, "m.yaml")


def test_gather_sections(tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    both.write_text("problem: {shape: cnn_layer, instance: {C: 1, M: 1, R: 1, S: 1, N: 1, P: 1, Q: 1}}\n"
                    "mapper: {optimization_metric: energy}\n")
    cons = tmp_path / "cons.yaml"
    cons.write_text("- {target: X, type: temporal}\n")
    inputs = gather({"problem": str(both), "mapper": str(both), "constraints": str(cons)}, [both])
    assert set(inputs.sections) == {"problem", "mapper"}
    assert inputs.constraints == [({"constraints": [{"target": "X", "type": "temporal"}]}, str(cons))]
    # constraint sections of several files all apply (no conflict)
    more = tmp_path / "more.yaml"
    more.write_text("architecture_constraints: {targets: []}\n")
    assert len(gather({"constraints": str(cons)}, [str(more)]).constraints) == 2
    with pytest.raises(InputError) as info:
        gather({"arch": str(both)}, [])
    assert (info.value.source, info.value.key) == (str(both), "architecture")
    other = tmp_path / "other.yaml"
    other.write_text("mapper: {optimization_metric: delay}\n")
    with pytest.raises(InputError, match="also given, differently"):
        gather({}, [str(both), str(other)])


def _small_arch():
    from mapper.arch import arch_from_dict

    nodes = [{"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"width": 8, "datawidth": 8}},
             {"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": {"depth": 64, "width": 8, "datawidth": 8}},
             {"_tag": "Container", "name": "PE", "spatial": {"meshX": 4}},
             {"_tag": "Component", "name": "RF", "class": "regfile", "attributes": {"depth": 4, "width": 8, "datawidth": 8}},
             {"_tag": "Component", "name": "mac", "class": "intmac"}]
    return arch_from_dict({"architecture": {"version": 0.4, "nodes": nodes}}, "a.yaml", spatial_dummies=True)


def test_constraint_layouts_read_alike() -> None:
    arch, problem = _small_arch(), gemm(8, 4, 6)
    plain = constraints_from_list([
        {"target": "GLB", "type": "temporal", "factors": "M=2 N<=2", "permutation": "NM"},
        {"target": "inter_PE_spatial", "type": "spatial", "factors": "K=1", "permutation": "MN", "split": 1},
        {"target": "RF", "type": "bypass", "keep": ["Weights"], "bypass": ["Inputs"]}], arch, problem, "c.yaml")
    timeloopfe = constraints_from_list({"architecture_constraints": {"targets": [
        {"target": "GLB", "type": "temporal", "factors": "M=2,N<=2", "permutation": "NM"},
        {"target": "PE", "type": "spatial", "factors": ["K=1"], "permutation": ["M", "N"], "split": 1},
        {"target": "RF", "type": "dataspace", "keep": ["Weights"], "bypass": ["Inputs"]}]}}, arch, problem, "c.yaml")
    nested = constraints_from_list({"mapspace_constraints": [
        {"target": "GLB", "constraints": [{"type": "temporal", "attributes": {"factors": "M2 N<=2", "permutation": "NM"}}]},
        {"name": "inter_PE_spatial", "type": "spatial", "factors": "K=1", "permutation": "MN", "split": 1},
        {"target": "RF", "type": "datatype", "keep": ["Weights"], "bypass": ["Inputs"]}]}, arch, problem, "c.yaml")
    assert plain.levels == timeloopfe.levels == nested.levels
    glb, dummy, rf = plain.levels[1], plain.levels[2], plain.levels[3]
    assert (glb.temporal["M"].op, glb.temporal["M"].value, glb.temporal["N"].op) == ("=", 2, "<=")
    assert dummy.x_dims == {"M", "K"} and dummy.y_dims == {"N", "K"}   # K is unlisted: either axis
    # timeloopfe's dummy constraints where the input says nothing else
    assert all(b.op == "=" and b.value == 1 for b in dummy.temporal.values()) and dummy.bypass == set(problem.dataspace_names)
    assert rf.keep == {"Weights"} and rf.bypass == {"Inputs"}


def test_constraint_rules_from_timeloop() -> None:
    arch, problem = _small_arch(), gemm(8, 4, 6)
    c = constraints_from_list([
        {"target": "GLB", "type": "temporal", "factors": "M=0 K=12", "default_max_factor": 2},
        {"target": "RF", "type": "max_overbooked_proportion", "proportion": 0.1},
        {"target": "RF", "type": "spatial", "no_link_transfer": ["Inputs"]},
        {"target": "RF", "type": "utilization", "min": 0.5}], arch, problem, "c.yaml")
    glb = c.levels[1]
    assert glb.temporal["M"].value == 8                          # 0: the whole dimension
    assert "K" in glb.temporal and glb.temporal["K"].op == "<="   # K=12 > 6 is ignored; the default max applies
    assert glb.temporal["N"] == glb.temporal["K"] and glb.temporal["N"].value == 2
    assert c.min_parallelism == 0.5
    assert [line.split(": ")[1] for line in c.ignored] == [
        "constraints[0].factors", "constraints[1]", "constraints[2].no_link_transfer"]
    assert "K=12 exceeds" in c.ignored[0] and "max_overbooked_proportion ignored" in c.ignored[1]
    with pytest.raises(InputError, match="after '_'"):
        constraints_from_list([{"target": "GLB", "type": "temporal", "permutation": "M_N"}], arch, problem, "c.yaml")


def test_utilization_is_timeloops_cumulative_fanout() -> None:
    """Every mapping the search may return uses at least min x all compute instances."""
    from mapper.mapspace import Mapspace

    arch, problem = _small_arch(), gemm(4, 3, 2)

    def used_pes(minimum: float) -> set[int]:
        cons = constraints_from_list([{"target": "RF", "type": "utilization", "min": minimum}], arch, problem, "c.yaml")
        return {n for b in Mapspace(problem, arch, cons).enumerate() for n in (b.spatial_x * b.spatial_y).prod(axis=(1, 2)).tolist()}

    assert used_pes(0.0) == {1, 2, 3, 4}
    assert used_pes(0.75) == {3, 4} and used_pes(0.8) == {4}     # of 4 PEs


def test_search_verb_dispatch_errors(capsys: pytest.CaptureFixture) -> None:
    assert main(["search", "--spec", "panacea"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["search", "--spec", "panacea", "--model", "gpt2", "--arch", "a.yaml"]) == 2
    assert "either --spec and --model" in capsys.readouterr().err
    assert main(["search"]) == 2
    assert "--arch and --problem" in capsys.readouterr().err


def test_buffer_min_utilization_attribute() -> None:
    """Timeloop's buffer attribute min_utilization: the mapped tiles must fill that fraction of the level."""
    import dataclasses

    from mapper.energy_sources import price_arch

    arch, problem = _small_arch(), gemm(2, 2, 4)
    ert = price_arch(arch).ert

    def glb_use(a) -> float:
        found = search(problem, a, constraints_from_list([], a, problem), ert=ert, objective="energy", mode="exhaustive")
        return found.evaluation.to_dict()["levels"]["GLB"]["capacity_utilization"]

    assert glb_use(arch) < 0.1          # 4 of 64 words: the cheapest mapping keeps little at the GLB
    glb = arch.levels[1]
    strict = dataclasses.replace(arch, levels=(arch.levels[0], dataclasses.replace(glb, attributes={**glb.attributes, "min_utilization": 0.1}),
                                               *arch.levels[2:]))
    assert glb_use(strict) >= 0.1
