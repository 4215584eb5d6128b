"""Reading Timeloop architecture (v0.3 and v0.4), problem and mapping YAML, round trips,
and the InputError raised for each kind of malformed input.

Fixtures in tests/data/: ``arch_v03.yaml`` and ``arch_v04.yaml`` describe the same
hardware (DRAM -> GLB -> 4x4 PEs, each with a RegFile and 2 MACs), ``problem_conv.yaml``
a strided/dilated CNN layer and ``mapping_conv.yaml`` a mapping of it onto that hardware.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mapper.arch import Arch, load_arch
from mapper.mapping import LevelMapping, Mapping, load_mapping, mapping_from_dict
from workloads.problem import Problem, batched_matmul, conv2d, depthwise_conv2d, gemm, load_problem, problem_from_dict
from workloads.yamlio import InputError, parse_yaml_text

DATA = Path(__file__).resolve().parent / "data"
MESH_KEYS = {"meshX", "meshY", "mesh_x", "mesh_y"}


@pytest.fixture(scope="module")
def arch() -> Arch:
    return load_arch(DATA / "arch_v04.yaml")


@pytest.fixture(scope="module")
def problem() -> Problem:
    return load_problem(DATA / "problem_conv.yaml")


# ---- architecture: v0.3 and v0.4 ----------------------------------------------------------

@pytest.mark.parametrize("name", ["arch_v03.yaml", "arch_v04.yaml"])
def test_arch_fields(name: str) -> None:
    """Both forms give the levels, paths, meshes, fanouts and storage parameters stated in the YAML."""
    a = load_arch(DATA / name)
    assert a.level_names == ("DRAM", "GLB", "RegFile")
    assert [l.path for l in a.levels] == ["system.DRAM", "system.chip.GLB", "system.chip.PE.RegFile"]
    assert [(l.mesh_x, l.mesh_y) for l in a.levels] == [(1, 1), (1, 1), (4, 4)]
    assert (a.compute.name, a.compute.path, a.compute.component_class) == ("MACC", "system.chip.PE.MACC", "intmac")
    assert (a.compute.mesh_x, a.compute.mesh_y, a.compute.instances) == (8, 4, 32)
    assert [a.fanout(i) for i in range(3)] == [(1, 1), (4, 4), (2, 1)]
    dram, glb, rf = a.levels
    assert (dram.word_bits, dram.block_size, dram.depth, dram.capacity_words) == (8, 8, None, None)
    assert (glb.block_size, glb.depth, glb.capacity_words, glb.capacity_bits) == (8, 2048, 16384, 131072)
    assert (glb.read_bandwidth, glb.write_bandwidth, glb.shared_bandwidth) == (16.0, 16.0, None)
    assert (rf.block_size, rf.depth, rf.instances, rf.component_class) == (2, 16, 16, "smartbuffer_RF")
    assert glb.attributes["technology"] == rf.attributes["technology"] == "28nm"  # inherited from chip
    assert "technology" not in dram.attributes


def test_arch_v03_v04_same_hardware() -> None:
    """Every field agrees between the two forms, attributes compared without mesh keys."""
    a3, a4 = load_arch(DATA / "arch_v03.yaml"), load_arch(DATA / "arch_v04.yaml")

    def strip(level: Any) -> Any:
        return dataclasses.replace(level, attributes={k: v for k, v in level.attributes.items() if k not in MESH_KEYS})

    assert [strip(l) for l in a3.levels] == [strip(l) for l in a4.levels]
    assert strip(a3.compute) == strip(a4.compute)


def test_arch_v03_v04_identical_objects() -> None:
    """The same hardware in both forms parses to identical Arch objects (up to the source file name)."""
    a3, a4 = load_arch(DATA / "arch_v03.yaml"), load_arch(DATA / "arch_v04.yaml")
    assert dataclasses.replace(a3, source="") == dataclasses.replace(a4, source="")


# ---- problem --------------------------------------------------------------------------------

def test_problem_fixture_matches_builder(problem: Problem) -> None:
    assert problem == conv2d(N=1, C=4, M=8, R=3, S=3, P=4, Q=4, stride=2, dilation=(1, 2))
    # Inputs W = 2*(4-1) + 1*(3-1) + 1 = 9, H = 2*(4-1) + 2*(3-1) + 1 = 11; 4 channels.
    assert problem.tile_size("Inputs") == 4 * 9 * 11
    assert (problem.tile_size("Weights"), problem.tile_size("Outputs"), problem.macs) == (288, 128, 4608)
    assert problem.dataspace("Outputs").read_write and not problem.dataspace("Inputs").read_write


def test_problem_hyphenated_and_underscored_keys(problem: Problem) -> None:
    text = (DATA / "problem_conv.yaml").read_text()
    assert "data-spaces" in text and "read-write" in text
    underscored = text.replace("data-spaces", "data_spaces").replace("read-write", "read_write")
    assert problem_from_dict(parse_yaml_text(underscored, "u.yaml"), "u.yaml") == problem


@pytest.mark.parametrize("built", [
    gemm(4, 3, 2),
    batched_matmul(2, 3, 4, 5),
    conv2d(N=2, C=3, M=4, R=3, S=2, P=5, Q=3, stride=(2, 1), dilation=(1, 3)),
    depthwise_conv2d(N=1, C=3, R=3, S=3, P=2, Q=2, stride=2, dilation=2),
], ids=["gemm", "bmm", "conv", "depthwise"])
def test_problem_yaml_round_trip(built: Problem) -> None:
    text = built.to_yaml()
    assert "data-spaces:" in text and "read-write: true" in text  # Timeloop's hyphenated spelling
    again = problem_from_dict(parse_yaml_text(text, "rt.yaml"), "rt.yaml")
    assert again == built
    underscored = text.replace("data-spaces", "data_spaces").replace("read-write", "read_write")
    assert problem_from_dict(parse_yaml_text(underscored, "rt.yaml"), "rt.yaml") == built


# ---- mapping --------------------------------------------------------------------------------

def test_mapping_fixture(arch: Arch, problem: Problem) -> None:
    m = load_mapping(DATA / "mapping_conv.yaml", arch, problem)
    dram, glb, rf = m.levels
    dims = problem.dims
    # permutations are innermost first: PQMCRSN at DRAM makes P the innermost DRAM loop
    assert dram.permutation == tuple("PQMCRSN")
    assert dram.temporal_loops(dims) == [("C", 2), ("M", 2), ("P", 2)]
    assert glb.temporal_loops(dims) == [("Q", 2), ("R", 3)]
    assert rf.temporal_loops(dims) == [("S", 3)]
    # split 1: the first permutation entry (M) goes to X, the rest to Y
    assert (glb.spatial_x, glb.spatial_y) == ({"M": 4}, {"Q": 2, "C": 2})
    # RegFile fanout is 2x1, so without a split everything lands on X
    assert (rf.spatial_x, rf.spatial_y) == ({"P": 2}, {})
    assert dram.keep == {"Weights", "Inputs", "Outputs"}  # no datatype directive: keeps all
    assert glb.keep == {"Weights", "Inputs"} and rf.keep == {"Weights"}
    for d in dims:
        assert m.factor_product(d) == problem.bounds[d]


def test_mapping_v03_arch_gives_same_mapping(arch: Arch, problem: Problem) -> None:
    a3 = load_arch(DATA / "arch_v03.yaml")
    assert load_mapping(DATA / "mapping_conv.yaml", a3, problem) == load_mapping(DATA / "mapping_conv.yaml", arch, problem)


@pytest.mark.parametrize("factors", [
    "C=2 M=2 N=1 P=2", "C2 M2 N1 P2", "C=2 M2 P=2", ["C=2", "M2", "P2"], {"C": 2, "M": 2, "P": 2},
])
def test_factor_spellings(arch: Arch, problem: Problem, factors: Any) -> None:
    """``C=2``, ``C2``, a mix, token lists and mappings mean the same factors."""
    data = {"mapping": [
        {"target": "DRAM", "type": "temporal", "factors": factors, "permutation": "PMC"},
        {"target": "GLB", "type": "temporal", "factors": "R3 S3 Q4 C2 M4 P2"},
    ]}
    m = mapping_from_dict(data, arch, problem)
    assert {d: f for d, f in m.levels[0].temporal.items() if f > 1} == {"C": 2, "M": 2, "P": 2}
    assert m.levels[0].temporal_loops(problem.dims) == [("C", 2), ("M", 2), ("P", 2)]


def _normalized(m: Mapping, dims: tuple[str, ...]) -> list[tuple]:
    """What a mapping means: factors > 1, full innermost-first permutation, spatial split, keep."""
    def big(t: Any) -> dict[str, int]:
        return {d: f for d, f in t.items() if f > 1}
    return [(big(l.temporal), l.full_permutation(dims), big(l.spatial_x), big(l.spatial_y), l.keep) for l in m.levels]


def test_mapping_round_trip(arch: Arch, problem: Problem) -> None:
    original = load_mapping(DATA / "mapping_conv.yaml", arch, problem)
    text = original.to_yaml(arch, problem)
    again = mapping_from_dict(parse_yaml_text(text, "rt.yaml"), arch, problem, "rt.yaml")
    assert _normalized(again, problem.dims) == _normalized(original, problem.dims)
    # once written out in full, writing and reading again changes nothing at all
    third = mapping_from_dict(parse_yaml_text(again.to_yaml(arch, problem), "rt2.yaml"), arch, problem, "rt2.yaml")
    assert third == again


def test_mapping_round_trip_y_only_spatial(arch: Arch, problem: Problem) -> None:
    """A level whose spatial factors are all on Y survives the round trip (split 0)."""
    levels = (
        LevelMapping({"C": 4, "R": 3, "S": 3, "P": 4, "Q": 4}, tuple("QPSRC"), keep=frozenset(problem.dataspace_names)),
        LevelMapping({"M": 2}, (), {}, {"M": 4}, keep=frozenset({"Inputs"})),
        LevelMapping(keep=frozenset()),
    )
    m = Mapping(levels)
    again = mapping_from_dict(parse_yaml_text(m.to_yaml(arch, problem), "y.yaml"), arch, problem, "y.yaml")
    assert _normalized(again, problem.dims) == _normalized(m, problem.dims)


# ---- malformed inputs -------------------------------------------------------------------------

def _edit(base: str, *edits: tuple[str, str]) -> str:
    """A fixture's text with each ``(old, new)`` replacement applied (each ``old`` must occur once)."""
    text = (DATA / base).read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"fixture edit {old!r} must match exactly once in {base}"
        text = text.replace(old, new)
    return text


# (id, fixture to edit, old text, new text -- or a list of (old, new) --, expected key, words the message must contain)
BAD_PROBLEMS = [
    ("missing-instance", "problem_conv.yaml", "  instance:\n", "  instanc:\n", "problem.instance", "missing"),
    ("dims-not-list", "problem_conv.yaml", "dimensions: [C, M, R, S, N, P, Q]", "dimensions: CMRSNPQ",
     "problem.shape.dimensions", "list"),
    ("negative-bound", "problem_conv.yaml", "    M: 8\n", "    M: -8\n", "problem.instance.M", ">= 1"),
    ("fractional-bound", "problem_conv.yaml", "    P: 4\n", "    P: 4.5\n", "problem.instance.P", "integer"),
    ("missing-bound", "problem_conv.yaml", "    Q: 4\n", "", "problem.instance.Q", "missing"),
    ("unknown-dim", "problem_conv.yaml", "      - [[M]]\n      - [[R]]", "      - [[M]]\n      - [[Z]]",
     "problem.shape.data_spaces[0].projection[2][0]", "unknown dimension 'Z'"),
    ("bad-read-write", "problem_conv.yaml", "read-write: true", "read-write: maybe",
     "problem.shape.data_spaces[2].read_write", "true or false"),
]
BAD_ARCHS = [
    ("missing-class", "arch_v04.yaml", "    class: smartbuffer_SRAM\n", "", "architecture.nodes[3].class", "class"),
    ("depth-not-int", "arch_v04.yaml", "depth: 2048", "depth: lots", "system.chip.GLB.attributes.depth", "integer"),
    ("mesh-not-int", "arch_v04.yaml", "spatial: {meshX: 2}", "spatial: {meshX: two}",
     "architecture.nodes[6].spatial.meshX", "integer"),
    ("v03-mesh-not-divisor", "arch_v03.yaml", "meshX: 4", "meshX: 3",
     "architecture.subtree[0].subtree[0].subtree[0].local[0].attributes.meshX", "does not divide"),
    ("v03-bad-range", "arch_v03.yaml", "PE[0..15]", "PE[15..0]", "architecture.subtree[0].subtree[0].subtree[0].name",
     "lo <= hi"),
    ("attributes-not-mapping", "arch_v04.yaml", "attributes: {datawidth: 8}", "attributes: [datawidth]",
     "architecture.nodes[6].attributes", "mapping"),
    ("no-architecture", "arch_v04.yaml", "architecture:\n", "archtecture:\n", "architecture", "missing"),
]
BAD_MAPPINGS = [
    ("unknown-level", "mapping_conv.yaml", "- target: RegFile\n  type: temporal", "- target: PEs\n  type: temporal",
     "mapping[4].target", "unknown level 'PEs'"),
    ("missing-target", "mapping_conv.yaml", "- target: RegFile\n  type: temporal", "- type: temporal",
     "mapping[4].target", "level name"),
    ("not-a-list", "mapping_conv.yaml", "mapping:\n", "mapping: all of them\ndirectives:\n", "mapping", "list"),
    ("unknown-dim-factor", "mapping_conv.yaml", "factors: S3", "factors: S3 Z1", "mapping[4].factors",
     "unknown dimension 'Z'"),
    ("unknown-dim-permutation", "mapping_conv.yaml", "permutation: RQ", "permutation: RZ", "mapping[1].permutation",
     "unknown dimension 'Z'"),
    ("factor-not-int", "mapping_conv.yaml", "factors: P2", "factors: {P: two}", "mapping[5].factors.P", "integer"),
    ("bad-factor-token", "mapping_conv.yaml", "factors: S3", "factors: S3 M-2", "mapping[4].factors", "M-2"),
    ("product-not-bound", "mapping_conv.yaml", "C=2 M=2 R=1", "C=2 M=4 R=1", "factors.M", "16"),
    # fanout cases keep every factor product equal to its bound
    ("fanout-x", "mapping_conv.yaml", [("factors: M=4 Q=2 C=2", "factors: M=8 Q=2 C=2"), ("C=2 M=2 R=1", "C=2 M=1 R=1")],
     "GLB.spatial", "meshX=4"),
    ("fanout-y", "mapping_conv.yaml", [("factors: M=4 Q=2 C=2", "factors: M=4 Q=4 C=2"), ("P1 Q2", "P1 Q1")],
     "GLB.spatial", "meshY=4"),
    ("fanout-regfile", "mapping_conv.yaml", [("factors: P2", "factors: P4"), ("P=2 Q=1", "P=1 Q=1")],
     "RegFile.spatial", "meshX=2"),
    ("unknown-dataspace", "mapping_conv.yaml", "keep: [Weights]\n", "keep: [Weight]\n", "mapping[6].keep",
     "unknown data space 'Weight'"),
    ("outermost-bypass", "mapping_conv.yaml", "- target: DRAM\n  type: temporal",
     "- {target: DRAM, type: datatype, bypass: [Inputs]}\n- target: DRAM\n  type: temporal", "DRAM.keep", "Inputs"),
    ("negative-split", "mapping_conv.yaml", "split: 1", "split: -1", "mapping[2].split", ">= 0"),
    ("bad-type", "mapping_conv.yaml", "  type: datatype\n  keep: [Weights]\n", "  type: datatyp\n  keep: [Weights]\n",
     "mapping[6].type", "datatyp"),
]


def _load(kind: str, path: Path) -> Any:
    if kind == "problem":
        return load_problem(path)
    if kind == "arch":
        return load_arch(path)
    return load_mapping(path, load_arch(DATA / "arch_v04.yaml"), load_problem(DATA / "problem_conv.yaml"))


def _cases() -> list[Any]:
    out = []
    for kind, table in (("problem", BAD_PROBLEMS), ("arch", BAD_ARCHS), ("mapping", BAD_MAPPINGS)):
        for case_id, base, *edit, key, words in table:
            edits = edit[0] if len(edit) == 1 else [tuple(edit)]
            out.append(pytest.param(kind, base, edits, key, words, id=f"{kind}-{case_id}"))
    return out


@pytest.mark.parametrize("kind, base, edits, key, words", _cases())
def test_malformed_input_names_file_and_key(tmp_path: Path, kind: str, base: str, edits: list[tuple[str, str]],
                                            key: str, words: str) -> None:
    path = tmp_path / f"bad_{kind}.yaml"
    path.write_text(_edit(base, *edits))
    with pytest.raises(InputError) as info:
        _load(kind, path)
    err = info.value
    assert (err.source, err.key) == (str(path), key)
    assert str(err).startswith(f"{path}: {key}: ")
    assert words in err.expected


@pytest.mark.parametrize("kind, base, old, new", [
    ("problem", "problem_conv.yaml", "    name: CNN-Layer\n", "    name: CNN: Layer\n"),
    ("arch", "arch_v04.yaml", "    name: RegFile\n", "    name: RegFile: x\n"),
    ("mapping", "mapping_conv.yaml", "  permutation: RQ\n", "  permutation: R: Q\n"),
], ids=["problem", "arch", "mapping"])
def test_bad_yaml_syntax_names_file_and_line(tmp_path: Path, kind: str, base: str, old: str, new: str) -> None:
    """A 'mapping values are not allowed here' error is reported on the edited line."""
    text = _edit(base, (old, new))
    line = text[: text.index(new)].count("\n") + 1
    path = tmp_path / f"syntax_{kind}.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        _load(kind, path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: invalid YAML at line {line},")


@pytest.mark.parametrize("kind", ["problem", "arch", "mapping"])
def test_missing_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InputError, match="file not found") as info:
        _load(kind, path)
    assert info.value.source == str(path)


def test_input_error_survives_pickling() -> None:
    """Errors raised in worker processes reach the CLI with their file, key and message."""
    import pickle

    err = InputError("specs/x.yaml", "spec.work_model.sub_group", "expected one of 4, 8, 16")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, InputError) and str(back) == str(err)
    assert (back.source, back.key, back.expected) == (err.source, err.key, err.expected)
