"""Published Timeloop/Accelergy inputs read unchanged (issue 11, part 2).

The thirteen cases of ../shared/timeloop_conformance hold each input twice: ``original/`` as
published and ``converted/`` rewritten into simpler syntax (each case's ``_conversions`` says
how). Reading either must give the same Arch levels, Problem and Mapping -- except ispass_04,
whose reference outputs came from an older arch (docs/timeloop_compat.md): there the published
arch is read as the v0.4 format defines it, and the older arch (tests/data/timeloop) must give
exactly the converted levels. The energy/count numbers against expected.json are tested in the
conformance test, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapper.arch import Arch, arch_from_dict, load_arch
from mapper.cli import main
from mapper.energy_sources import price_arch
from mapper.ert import ert_from_dict, load_ert, strip_instance_range
from mapper.mapping import Mapping, load_mapping, mapping_from_dict
from workloads.problem import conv2d, load_problem, problem_from_dict
from workloads.yamlio import InputError, parse_yaml_text

from shared_data import MISSING, SHARED, case_names

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "timeloop"
CONFORMANCE = (SHARED or Path(MISSING)) / "timeloop_conformance"
CASES = case_names("timeloop_conformance", "original")
STALE_REFERENCE = {"ispass_04_conv1d_oc_ic_3levelspatial_cp", "ispass_04_conv1d_oc_ic_3levelspatial_kp"}
# ../shared is part of CI: these tests fail without it (conftest.py conformance_dir)
needs_shared = pytest.mark.usefixtures("conformance_dir")


def _read(case: str, variant: str, arch_file: Path | None = None) -> tuple[Arch, object, Mapping]:
    d = CONFORMANCE / case / variant
    arch = load_arch(arch_file or d / "arch.yaml", spatial_dummies=True)
    problem = load_problem(d / "problem.yaml")
    return arch, problem, load_mapping(d / "mapping.yaml", arch, problem)


def _levels(arch: Arch) -> list[tuple]:
    return [(l.name, l.instances, l.mesh_x, l.mesh_y, l.word_bits, l.block_size, l.depth, l.cluster_size, l.is_dummy)
            for l in arch.levels] + [(arch.compute.name, arch.compute.instances, arch.compute.mesh_x, arch.compute.mesh_y)]


def _meaning(m: Mapping, dims: tuple[str, ...]) -> list[tuple]:
    """Factors, order of the non-unit loops, spatial X/Y factors and kept data spaces per level."""
    def big(t):
        return {d: f for d, f in t.items() if f > 1}
    return [(big(l.temporal), [d for d in l.full_permutation(dims) if l.temporal.get(d, 1) > 1],
             big(l.spatial_x), big(l.spatial_y), l.keep) for l in m.levels]


@needs_shared
def test_thirteen_cases_present() -> None:
    assert len(CASES) == 13


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_original_reads_as_converted(case: str) -> None:
    """Same levels (name, instances, mesh, word bits, block, depth, cluster), problem and mapping."""
    a1, p1, m1 = _read(case, "original")
    a2, p2, m2 = _read(case, "converted")
    assert p1 == p2
    if case in STALE_REFERENCE:
        # As the format defines it: one GlobalBuffer above the 16-way PE fanout (timeloopfe's
        # inter_PE_spatial dummy sits where the PE container is).
        assert [(l.name, l.instances) for l in a1.levels] == [
            ("MainMemory", 1), ("GlobalBuffer", 1), ("inter_PE_spatial", 1), ("RegisterFile", 16)]
        assert a1.fanout(2) == (16, 1) and a1.aliases["PE"] == "inter_PE_spatial"
        # The arch the reference outputs were generated from gives exactly the converted levels.
        a1, p1, m1 = _read(case, "original", DATA / "ispass_04_arch_2024-05-29.yaml")
        assert _levels(a1) == _levels(a2)
        assert _meaning(m1, p1.dims) == _meaning(m2, p2.dims)
        return
    assert _levels(a1) == _levels(a2)
    assert m1 == m2


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_original_evaluates_through_the_cli(case: str, tmp_path: Path) -> None:
    d = CONFORMANCE / case / "original"
    code = main(["model", "--arch", str(d / "arch.yaml"), "--problem", str(d / "problem.yaml"),
                 "--mapping", str(d / "mapping.yaml"), "--ert", str(d / "ERT.yaml"), "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "model.json").read_text())
    assert result["computes"] == json.loads((CONFORMANCE / case / "expected.json").read_text())["computes"]
    sources = result["energy_sources"]
    assert set(sources) == {*result["levels"], result["compute"]["name"]}
    for name, s in sources.items():
        if name.startswith("inter_"):
            assert s == {"source": "dummy_storage"}
        else:
            assert s["source"] == "ERT" and strip_instance_range(s["table"]).split(".")[-1] == name
    assert "Energy sources:" in (tmp_path / "model.summary.txt").read_text()


# ---- v0.4 flattening rules (pytimeloop/timeloopfe/common/version_transpilers/v4_to_v3.py) ----------

def _v04(*nodes: dict) -> dict:
    return {"architecture": {"version": 0.4, "nodes": list(nodes)}}


def _c(name: str, **kw) -> dict:
    return {"_tag": "Container", "name": name, **kw}


def _s(name: str, cls: str = "regfile", **kw) -> dict:
    return {"_tag": "Component", "name": name, "class": cls,
            "attributes": {"depth": 4, "width": 8, "datawidth": 8, **kw.pop("attributes", {})}, **kw}


NESTED = _v04(_c("sys", attributes={"technology": "40nm"}), _s("DRAM", "DRAM"), _s("GLB"),
              _c("row", spatial={"meshY": 2}), _c("PE", spatial={"meshX": 4}),
              {"_tag": "Parallel", "nodes": [_s("wreg"), _s("ireg")]},
              _s("mac", "intmac", spatial={"meshX": 2}))


def test_v04_timeloopfe_flattening() -> None:
    """Each fanout becomes inter_<node>_spatial where the node is; !Parallel children are levels in order."""
    a = arch_from_dict(NESTED, "n.yaml", spatial_dummies=True)
    assert [(l.name, l.mesh_x, l.mesh_y, l.component_class) for l in a.levels] == [
        ("DRAM", 1, 1, "DRAM"), ("GLB", 1, 1, "regfile"), ("inter_row_spatial", 1, 1, "dummy_storage"),
        ("inter_PE_spatial", 1, 2, "dummy_storage"), ("wreg", 4, 2, "regfile"), ("ireg", 4, 2, "regfile"),
        ("inter_mac_spatial", 4, 2, "dummy_storage")]
    assert (a.compute.name, a.compute.mesh_x, a.compute.mesh_y) == ("mac", 8, 2)
    assert [a.fanout(i) for i in range(len(a.levels))] == [(1, 1), (1, 1), (1, 2), (4, 1), (1, 1), (1, 1), (2, 1)]
    assert a.aliases == {"row": "inter_row_spatial", "PE": "inter_PE_spatial"}   # containers only
    assert a.levels[4].attributes["technology"] == "40nm"   # container attributes are inherited


def test_v04_folded_flattening() -> None:
    """Without dummies the fanouts belong to the level above; container and dummy names alias it."""
    a = arch_from_dict(NESTED, "n.yaml")
    assert a.level_names == ("DRAM", "GLB", "wreg", "ireg")
    assert [a.fanout(i) for i in range(4)] == [(1, 1), (4, 2), (1, 1), (2, 1)]
    assert a.aliases["PE"] == a.aliases["inter_PE_spatial"] == a.aliases["row"] == "GLB"
    assert a.aliases["inter_mac_spatial"] == "ireg" and "mac" not in a.aliases


def test_v04_node_constraints_follow_timeloopfe() -> None:
    """A container's spatial constraints go to the level carrying its fanout; a component's to itself."""
    arch = _v04(_s("DRAM", "DRAM"), _s("GLB"),
                _c("PE", spatial={"meshX": 4}, constraints={"spatial": {"factors": "K=1"}, "temporal": {"factors": "K=1"}}),
                _s("RF", spatial={"meshX": 2}, constraints={"spatial": {"split": 0}, "dataspace": {"keep": ["A"]}}),
                _s("mac", "intmac"))
    timeloop = arch_from_dict(arch, "c.yaml", spatial_dummies=True)
    assert [(c["type"], c["target"]) for c in timeloop.constraints] == [
        ("spatial", "inter_PE_spatial"), ("spatial", "inter_RF_spatial"), ("dataspace", "RF")]
    folded = arch_from_dict(arch, "c.yaml")
    assert [(c["type"], c["target"]) for c in folded.constraints] == [("spatial", "GLB"), ("spatial", "GLB"), ("dataspace", "RF")]
    assert folded.level_index("RF") == 2 and timeloop.level_index("RF") == 4


@pytest.mark.parametrize("bad, key, words", [
    ({"_tag": "Parallel", "nodes": [_c("X")]}, "architecture.nodes[2].nodes[0]", "containers under a !Parallel"),
    ({"_tag": "Parallel", "nodes": [_s("r", spatial={"meshX": 2})]}, "architecture.nodes[2].nodes[0]", "spatial fanout"),
    ({"_tag": "Network", "name": "noc"}, "architecture.nodes[2]", "unsupported node tag !Network"),
])
def test_v04_unsupported_nodes(bad: dict, key: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        arch_from_dict(_v04(_s("DRAM", "DRAM"), _s("GLB"), bad, _s("mac", "intmac")), "bad.yaml", spatial_dummies=True)
    assert info.value.key == key and words in info.value.expected


def test_v03_ranges_subclass_and_dummy() -> None:
    """1-based ranges, class storage + subclass, an explicit dummy_storage level keeping nothing."""
    text = """
architecture:
  version: 0.3
  subtree:
  - name: top
    local:
    - {name: "DRAM[1..1]", class: DRAM, attributes: {width: 64, datawidth: 8}}
    - {name: "inter_PE_spatial[1..1]", class: dummy_storage, attributes: {width: 1, depth: 1, datawidth: 1}}
    - {name: "reg[1..4]", class: storage, subclass: aladdin_register, attributes: {depth: 1, width: 8, datawidth: 8, meshX: 4}}
    - {name: "mac[1..4]", class: intmac, attributes: {width: 8, meshX: 4}}
"""
    a = arch_from_dict(parse_yaml_text(text), "v03.yaml")
    assert [(l.name, l.instances, l.component_class, l.is_dummy) for l in a.levels] == [
        ("DRAM", 1, "DRAM", False), ("inter_PE_spatial", 1, "dummy_storage", True), ("reg", 4, "aladdin_register", False)]
    problem = conv2d(N=1, C=1, M=4, R=1, S=1, P=2, Q=1)
    m = mapping_from_dict({"mapping": [
        {"target": "inter_PE_spatial", "type": "spatial", "factors": "M=4"},
        {"target": "DRAM", "type": "temporal", "factors": "P=2"}]}, a, problem)
    assert [set(l.keep) for l in m.levels] == [set(problem.dataspace_names), set(), set(problem.dataspace_names)]
    assert dict(m.levels[1].spatial_x) == {"M": 4}


# ---- mapping directives ----------------------------------------------------------------------

def _gemm_arch() -> Arch:
    return arch_from_dict(_v04(_c("sys"), _s("DRAM", "DRAM"), _s("GLB", attributes={"depth": 64}),
                               _c("PE", spatial={"meshX": 4}), _s("RF"), _s("mac", "intmac")), "g.yaml", spatial_dummies=True)


GEMM = problem_from_dict({"problem": {"shape": {"name": "GEMM", "dimensions": ["M", "N", "K"], "data_spaces": [
    {"name": "A", "projection": [[["M"]], [["K"]]]}, {"name": "B", "projection": [[["K"]], [["N"]]]},
    {"name": "Z", "projection": [[["M"]], [["N"]]], "read_write": True}]}, "instance": {"M": 8, "N": 2, "K": 4}}})


def _map(*entries: dict, arch: Arch | None = None) -> Mapping:
    return mapping_from_dict({"mapping": list(entries)}, arch or _gemm_arch(), GEMM, "m.yaml")


def test_mapping_spellings_mean_the_same() -> None:
    """Comma lists, DIMN tokens, factor 0 (= whole dimension), type dataspace, container targets."""
    ref = _map({"target": "DRAM", "type": "temporal", "factors": "M=2 N=1 K=1", "permutation": "MNK"},
               {"target": "GLB", "type": "temporal", "factors": "K=4 N=2", "permutation": "KN"},
               {"target": "inter_PE_spatial", "type": "spatial", "factors": "M=4"},
               {"target": "RF", "type": "bypass", "keep": ["A"], "bypass": ["B", "Z"]})
    other = _map({"target": "DRAM", "type": "temporal", "factors": "M2,N1,K1", "permutation": "MNK"},
                 {"target": "GLB", "type": "temporal", "factors": "K=0,N=2", "permutation": "KN"},
                 {"target": "PE", "type": "spatial", "factors": "M=4,N=1"},
                 {"target": "RF", "type": "dataspace", "keep": ["A"], "bypass": ["B", "Z"]})
    assert _meaning(ref, GEMM.dims) == _meaning(other, GEMM.dims)
    assert ref.levels[2].keep == frozenset()   # the dummy keeps nothing unless told


def test_spatial_on_level_above_a_dummy_applies_to_the_dummy() -> None:
    """bitloop's older v0.4 convention (spatial at the storage level above the container) still reads."""
    a = _map({"target": "GLB", "type": "spatial", "factors": "M=4"}, {"target": "DRAM", "type": "temporal", "factors": "M2 K4 N2"})
    assert dict(a.levels[2].spatial_x) == {"M": 4} and not a.levels[1].spatial_x


def test_residual_factor_is_refused() -> None:
    with pytest.raises(InputError, match="residual factor ',3'"):
        _map({"target": "DRAM", "type": "temporal", "factors": "M=4,3"})


def test_folded_dummy_cannot_hold_temporal_loops() -> None:
    folded = arch_from_dict(_v04(_c("sys"), _s("DRAM", "DRAM"), _s("GLB", attributes={"depth": 64}),
                                 _c("PE", spatial={"meshX": 4}), _s("RF"), _s("mac", "intmac")), "g.yaml")
    ok = _map({"target": "inter_PE_spatial", "type": "temporal", "factors": "M=1 N=1 K=1"},
              {"target": "inter_PE_spatial", "type": "bypass", "bypass": ["A", "B", "Z"]},
              {"target": "PE", "type": "spatial", "factors": "M=4"},
              {"target": "DRAM", "type": "temporal", "factors": "M2 K4 N2"}, arch=folded)
    assert dict(ok.levels[1].spatial_x) == {"M": 4} and ok.levels[1].keep == frozenset("ABZ")
    with pytest.raises(InputError, match="folded into level 'GLB'"):
        _map({"target": "inter_PE_spatial", "type": "temporal", "factors": "K=4"}, arch=folded)


# ---- problem and ERT -------------------------------------------------------------------------

def test_problem_layouts() -> None:
    """Bounds under instance or directly under problem; extra instance keys ignored; cnn_layer shape."""
    shape = GEMM.to_yaml_dict()["problem"]["shape"]
    old = problem_from_dict({"problem": {"shape": shape, "M": 8, "N": 2, "K": 4, "H": 224}}, "old.yaml")
    assert old == GEMM
    built = conv2d(N=1, C=3, M=8, R=3, S=3, P=5, Q=5, stride=2)
    named = problem_from_dict({"problem": {"shape": "cnn_layer", "instance": {
        "N": 1, "C": 3, "M": 8, "R": 3, "S": 3, "P": 5, "Q": 5, "Wstride": 2, "Hstride": 2, "Wpad": 1}}}, "cnn.yaml")
    assert named == built
    assert problem_from_dict({"problem": {"N": 1, "C": 3, "M": 8, "R": 3, "S": 3, "P": 5, "Q": 5,
                                          "Wstride": 2, "Hstride": 2}}, "noshape.yaml") == built


def test_ert_range_suffix_and_missing_table() -> None:
    arch = _gemm_arch()
    ert = ert_from_dict({"ERT": {"version": 0.4, "tables": [
        {"name": f"system_top_level.{n}[1..{k}]", "actions": [{"name": "read", "energy": e}, {"name": "write", "energy": e}]}
        for n, k, e in (("DRAM", 1, 100.0), ("GLB", 1, 10.0), ("RF", 4, 1.0))]}}, "e.yaml")
    assert ert.energy("sys.PE.RF", "RF", "update") == 1.0    # update falls back to write
    with pytest.raises(InputError) as info:
        price_arch(arch, ert)
    assert (info.value.source, info.value.key) == ("e.yaml", "ERT.tables.mac") and "system_top_level.RF[1..4]" in info.value.expected


# ---- pricing a plain Timeloop arch -------------------------------------------------------------

@needs_shared
def test_plain_arch_is_priced_by_the_estimators() -> None:
    """No ERT: every level is priced (never a silent 0), and the DRAM estimate is Accelergy's
    own per-bit figure, so it equals the published ERT's DRAM entries exactly."""
    for case in ("ispass_03_conv1d_oc_3level_bypass", "example_simple_weight_stationary"):
        arch = load_arch(CONFORMANCE / case / "original" / "arch.yaml", spatial_dummies=True)
        priced = price_arch(arch)
        published = load_ert(CONFORMANCE / case / "original" / "ERT.yaml")
        for lvl in [*arch.levels, arch.compute]:
            source = priced.sources[lvl.name]
            if lvl.is_dummy:
                assert source == {"source": "dummy_storage"}
                continue
            assert source["source"] == "estimator" and source["class"] == lvl.component_class and source["estimators"]
            action = "read" if lvl is not arch.compute else "compute"
            assert priced.ert.energy(lvl.path, lvl.name, action) > 0
        dram = arch.levels[0]
        assert priced.ert.energy(dram.path, dram.name, "read") == published.energy(dram.path, dram.name, "read")


def test_unknown_class_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "arch.yaml"
    path.write_text("architecture:\n  version: 0.4\n  nodes:\n"
                    "  - !Component {name: buf, class: flux_capacitor, attributes: {depth: 4, width: 8}}\n"
                    "  - !Component {name: mac, class: intmac}\n")
    with pytest.raises(InputError) as info:
        price_arch(load_arch(path))
    assert info.value.source == str(path) and info.value.key == "buf.class" and "flux_capacitor" in info.value.expected


@needs_shared
@pytest.mark.parametrize("case", ["ispass_03_conv1d_oc_3level_bypass", "example_simple_weight_stationary"])
def test_estimates_vs_accelergy_tables(case: str, capsys: pytest.CaptureFixture) -> None:
    """The comparison tables in docs/timeloop_compat.md are what `python -m mapper.energy_sources` prints."""
    from mapper.energy_sources import main as compare_main

    d = CONFORMANCE / case / "original"
    compare_main([str(d / "arch.yaml"), str(d / "ERT.yaml")])
    printed = capsys.readouterr().out.strip().splitlines()
    doc = (REPO / "docs" / "timeloop_compat.md").read_text()
    table = doc.split(f"<!-- compare: {case} -->\n")[1].split("\n\n")[0].strip().splitlines()
    assert table == printed
