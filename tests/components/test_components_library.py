"""Compound-component YAML: structure checks and clear errors naming the class and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import ComponentInstance, read_library_file, resolve
from components.compound import builtin_names, load_library
from workloads.yamlio import InputError

GOOD = """
compound_components:
  version: 0.4
  classes:
  - name: toy
    attributes: {width: 8, n: must_specify}
    subcomponents:
    - {name: "adder[0..n-1]", class: intadder, attributes: {width: width}}
    actions:
    - name: compute
      subcomponents: [{name: adder, actions: [{name: add}]}]
"""


def _write(tmp_path: Path, text: str, name: str = "lib.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _resolve(tmp_path, text, cls="toy", attrs=None):
    lib = _write(tmp_path, text)
    return resolve([ComponentInstance("sys.x", cls, attrs if attrs is not None else {"n": 2})], libraries=[lib])


# class -> (library file, actions it defines); docs/components.md, "Component classes"
BUILTIN = {
    "bitvert_pe": ("bitvert", {"compute"}), "bitvert_lane": ("bitvert", {"compute", "idle", "leak", "mac"}),
    "bitmod_tile": ("bitmod", {"compute"}), "fp16_mac_pe": ("bitmod", {"compute"}),
    "sbq_ipu": ("sbq", {"compute"}), "sbq_engine": ("sbq", {"compute"}),
    "panacea_pea": ("bitslice_baselines", {"compute"}), "sibia_lane": ("bitslice_baselines", {"compute", "mac"}),
    "tq_lane": ("bitslice_baselines", {"compute", "mac"}),
    "stripes_pe": ("bitserial_baselines", {"compute"}), "pragmatic_pe": ("bitserial_baselines", {"compute"}),
    "bitlet_pe": ("bitserial_baselines", {"compute"}), "bitwave_pe": ("bitserial_baselines", {"compute"}),
    "ant_pe": ("bitparallel_baselines", {"compute", "mac"}), "olive_pe": ("bitparallel_baselines", {"compute", "mac"}),
    "int8_mac": ("bitparallel_baselines", {"compute", "mac"}),
    "smartbuffer_SRAM": ("storage", {"read", "write", "update", "leak"}),
    "smartbuffer_RF": ("storage", {"read", "write", "update", "leak"}),
}


def test_builtin_library_reads():
    names = builtin_names()
    assert {"bitvert", "bitmod", "sbq", "storage", "bitserial_baselines", "bitparallel_baselines",
            "bitslice_baselines"} <= set(names)
    lib = load_library()
    for cls, (file, actions) in BUILTIN.items():
        c = lib.get(cls)
        assert c is not None, cls
        assert (c.name, Path(c.source).name, set(c.actions)) == (cls, f"{file}.yaml", actions), cls


@pytest.mark.parametrize("cls", sorted(BUILTIN))
def test_builtin_class_prices_every_action(cls):
    """Every listed class resolves with its defaults (storage: a 64 x 256 array) to a positive area
    and a positive energy for each action it defines, plus the leak every class gets."""
    attrs = {"width": 64, "depth": 256} if BUILTIN[cls][0] == "storage" else {}
    t = resolve([ComponentInstance("x", cls, attrs)], clock_MHz=800)
    assert t.art["x"] > 0
    for action in BUILTIN[cls][1] | {"leak"}:
        assert t.ert["x"][action] > 0, action


def test_good_library_resolves(tmp_path):
    t = _resolve(tmp_path, GOOD)
    assert t.ert["sys.x"]["compute"] > 0 and t.art["sys.x"] > 0


def test_unknown_class_names_class_and_key(tmp_path):
    text = GOOD.replace("class: intadder", "class: flux_capacitor")
    with pytest.raises(InputError) as err:
        _resolve(tmp_path, text)
    msg = str(err.value)
    assert "flux_capacitor" in msg and "toy.subcomponents[0].class" in msg and "unknown class" in msg


def test_unknown_top_level_class(tmp_path):
    with pytest.raises(InputError, match="sys.x.class: unknown class 'nope'"):
        resolve([ComponentInstance("sys.x", "nope", {})])


def test_missing_required_attribute(tmp_path):
    with pytest.raises(InputError) as err:
        _resolve(tmp_path, GOOD, attrs={})
    assert "toy.attributes.n" in str(err.value) and "must_specify" in str(err.value)


def test_cyclic_subcomponents(tmp_path):
    text = """
compound_components:
  version: 0.4
  classes:
  - name: a
    subcomponents: [{name: inner, class: b}]
    actions: [{name: compute, subcomponents: [{name: inner, actions: [{name: compute}]}]}]
  - name: b
    subcomponents: [{name: back, class: a}]
    actions: [{name: compute, subcomponents: [{name: back, actions: [{name: compute}]}]}]
"""
    with pytest.raises(InputError) as err:
        _resolve(tmp_path, text, cls="a", attrs={})
    msg = str(err.value)
    assert "cyclic subcomponents" in msg and "a -> b -> a" in msg and "b.subcomponents[0].class" in msg


@pytest.mark.parametrize("bad, key", [
    ("width: \"2 * (width\"", "toy.subcomponents[0].attributes.width"),
    ("width: \"width.bit_length()\"", "toy.subcomponents[0].attributes.width"),
    ("width: \"__import__('os')\"", "toy.subcomponents[0].attributes.width"),
    ("width: \"widht * 2\"", "toy.subcomponents[0].attributes.width"),
])
def test_bad_expression(tmp_path, bad, key):
    text = GOOD.replace("attributes: {width: width}", "attributes: {" + bad + "}")
    with pytest.raises(InputError) as err:
        _resolve(tmp_path, text)
    assert key in str(err.value) and "expression" in str(err.value)


def test_bad_default_expression(tmp_path):
    text = GOOD.replace("attributes: {width: 8, n: must_specify}", "attributes: {width: \"log2(\", n: must_specify}")
    with pytest.raises(InputError, match=r"toy\.attributes\.width: bad expression"):
        read_library_file(_write(tmp_path, text))


@pytest.mark.parametrize("mutation, match", [
    (("version: 0.4", "version: 0.9"), "compound_components.version"),
    (("{name: adder, actions: [{name: add}]}", "{name: nothere, actions: [{name: add}]}"), "unknown subcomponent 'nothere'"),
    (("name: \"adder[0..n-1]\"", "name: \"adder[1..n]\""), "must start at 0"),
    (("attributes: {width: 8, n: must_specify}", "attributes: [1]"), "toy.attributes"),
])
def test_structure_errors(tmp_path, mutation, match):
    text = GOOD.replace(*mutation)
    with pytest.raises(InputError, match=match):
        read_library_file(_write(tmp_path, text))


def test_missing_action_names_class(tmp_path):
    with pytest.raises(InputError, match=r"toy\.actions: class has no action 'explode'"):
        from components.resolve import Resolver, _Where, builtin_estimators
        lib = load_library([_write(tmp_path, GOOD)])
        Resolver(lib, builtin_estimators()).energy("toy", {"n": 1}, "explode", {}, _Where("x", "y"))


def test_duplicate_class_in_file(tmp_path):
    text = GOOD + GOOD.split("classes:\n", 1)[1]
    with pytest.raises(InputError, match="defined twice"):
        read_library_file(_write(tmp_path, text))


def test_missing_library_file(tmp_path):
    with pytest.raises(InputError, match="component library not found"):
        load_library([tmp_path / "nope.yaml"])
