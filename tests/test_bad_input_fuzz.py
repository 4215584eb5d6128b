"""Hypothesis fuzzing of every loader: valid documents with any node replaced by arbitrary data
(NaN, infinities, huge integers, wrong types, deep structures, expression injections), and
arbitrary text for the YAML/JSON/CSV/option parsers. A loader either returns or raises
``InputError`` -- never another exception -- and what it returns holds no NaN or infinity."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workloads.yamlio import InputError, load_yaml, parse_json_text, parse_yaml_text

from test_bad_input import _replace   # one leaf-replacement helper for both campaigns

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
GEMM = REPO / "specs" / "examples" / "gemm_ws"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 1, 2, 1e-300, 1e300, 2**63, -(2**63)]),
    st.text(max_size=12), st.sampled_from(["1/0", "__import__('os').system('true')", "x" * 200, "M=0", "K<-1",
                                           "must_specify", "0..-1", "a[0..99999999]", "Weights", "DRAM", "1e400"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                                 max_size=3),
                      max_leaves=8)


def _paths(data: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, path + (i,))
    return out


def _finite(value: Any, seen: set[int] | None = None) -> None:
    """No NaN/inf float inside a loaded object (dataclasses, dicts, lists, tuples)."""
    import dataclasses

    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, float):
        assert math.isfinite(value), value
    elif isinstance(value, dict):
        for v in value.values():
            _finite(v, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _finite(v, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _finite(getattr(value, f.name), seen)


def _mutations(base: Any) -> st.SearchStrategy[Any]:
    paths = _paths(base)
    return st.tuples(st.sampled_from(paths), VALUES).map(lambda pv: _replace(base, pv[0], pv[1]))


def _must_load_or_refuse(load: Callable[[Any], Any], data: Any) -> None:
    try:
        result = load(data)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    _finite(result)


# ---- the loaders --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _arch() -> Any:
    from mapper.arch import arch_from_dict

    return arch_from_dict(load_yaml(GEMM / "arch.yaml"), "a")


@functools.lru_cache(maxsize=1)
def _problem() -> Any:
    from workloads.problem import problem_from_dict

    return problem_from_dict(load_yaml(GEMM / "problem.yaml"), "p")


def _load_arch(d: Any) -> Any:
    from mapper.arch import arch_from_dict
    from mapper.limits import check_arch

    arch = arch_from_dict(d, "a")
    check_arch(arch, "a")
    return arch


def _load_problem(d: Any) -> Any:
    from mapper.limits import check_problem
    from workloads.problem import problem_from_dict

    problem = problem_from_dict(d, "p")
    check_problem(problem, "p")
    return problem


def _load_mapping(d: Any) -> Any:
    from mapper.mapping import mapping_from_dict

    return mapping_from_dict(d, _arch(), _problem(), "m")


def _load_ert(d: Any) -> Any:
    from mapper.ert import ert_from_dict

    return ert_from_dict(d, "e")


def _load_constraints(d: Any) -> Any:
    from mapper.constraints import constraints_from_list

    return constraints_from_list(d, _arch(), _problem(), "c")


def _load_spec(d: Any) -> Any:
    from mapper.bitlevel import layer_models
    from mapper.spec import spec_from_dict

    spec = spec_from_dict(d, DATA / "fuzzed_spec.yaml", allow_plugins=False)
    spec.ert  # noqa: B018 - component resolution is part of loading a spec
    layer_models(spec, None)
    return spec.ert


def _load_config(d: Any) -> Any:
    from workloads.hf_config import parse_hf_config

    return parse_hf_config(d, "config.json")


CONSTRAINTS = [{"target": "GLB", "type": "temporal", "factors": "K=4", "permutation": "KMN"},
               {"target": "RF", "type": "bypass", "keep": ["Weights"], "bypass": ["Inputs", "Outputs"]}]
TINY_GPT2 = {"model_type": "gpt2", "n_embd": 16, "n_head": 2, "n_layer": 1, "n_positions": 64, "n_inner": 32,
             "vocab_size": 100}

LOADERS = {
    "arch_v04": (lambda: load_yaml(GEMM / "arch.yaml"), _load_arch),
    "arch_v03": (lambda: load_yaml(DATA / "arch_v03.yaml"), _load_arch),
    "problem": (lambda: load_yaml(DATA / "problem_conv.yaml"), _load_problem),
    "mapping": (lambda: load_yaml(GEMM / "mapping_ws.yaml"), _load_mapping),
    "ert": (lambda: load_yaml(GEMM / "ERT.yaml"), _load_ert),
    "constraints": (lambda: CONSTRAINTS, _load_constraints),
    "spec": (lambda: load_yaml(DATA / "tiny_spec.yaml"), _load_spec),
    "bitvert_spec": (lambda: load_yaml(REPO / "specs" / "bitvert.yaml"), _load_spec),
    "hf_config": (lambda: TINY_GPT2, _load_config),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_loader_fuzz(kind: str) -> None:
    base, load = LOADERS[kind]

    @settings(FUZZ, max_examples=20 if kind == "bitvert_spec" else 60)   # resolving BitVert's PE costs ~0.1 s
    @given(_mutations(base()))
    def check(data: Any) -> None:
        _must_load_or_refuse(load, data)

    check()


@settings(FUZZ, max_examples=30)
@given(_mutations(load_yaml(REPO / "components" / "library" / "bitparallel_baselines.yaml")))
def test_component_library_fuzz(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    from components import ComponentInstance, resolve

    lib = tmp_path_factory.mktemp("lib") / "lib.yaml"
    lib.write_text(yaml.safe_dump(data))
    inst = [ComponentInstance("sys.mac", "int8_mac", {}), ComponentInstance("sys.simd", "simd_lane", {})]
    _must_load_or_refuse(lambda _: resolve(inst, libraries=[lib]).ert, None)


@FUZZ
@given(st.lists(st.lists(st.one_of(st.text(max_size=8), st.sampled_from(["nan", "inf", "-1", "*", "1e400", "intadder",
                                                                      "read", "28nm"])), min_size=1, max_size=6),
                max_size=5))
def test_csv_estimator_fuzz(tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]]) -> None:
    from components import ComponentInstance, resolve

    csv = tmp_path_factory.mktemp("csv") / "table.csv"
    header = "class,action,width,technology,energy_pJ,area_um2"
    csv.write_text("\n".join([header, *(",".join(c.replace(",", ";").replace("\n", " ") for c in r) for r in rows)]) + "\n")
    inst = [ComponentInstance("sys.mac", "int8_mac", {})]
    _must_load_or_refuse(lambda _: resolve(inst, estimators=[csv]).ert, None)


@FUZZ
@given(st.text(max_size=300) | st.sampled_from(["a: &x [*x]", "[" * 300, "a: !Component {b: 1}", "!!python/object:os.system",
                                                "a: !!python/name:os.system ''", "{? [1]: 2}", "a: 1\na: 2"]))
def test_yaml_and_json_text_fuzz(text: str) -> None:
    for parse in (parse_yaml_text, parse_json_text):
        _must_load_or_refuse(lambda t: parse(t, "f"), text)


@FUZZ
@given(st.text(max_size=60))
def test_cli_value_parsers_fuzz(text: str) -> None:
    from mapper.cli_options import parse_objective
    from mapper.sweep_points import parse_param

    _must_load_or_refuse(parse_objective, text)
    _must_load_or_refuse(parse_param, text)


def test_yaml_tags_never_execute_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for text in (f"!!python/object/apply:os.system ['touch {marker}']", f"a: !!python/object/new:os.system ['touch {marker}']"):
        try:
            parse_yaml_text(text, "evil.yaml")
        except InputError:
            pass
    assert not marker.exists()
