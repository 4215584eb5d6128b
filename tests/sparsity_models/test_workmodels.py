"""Work and format models: E[max], exact mode, actions, families, errors, provenance."""

import itertools

import numpy as np
import pytest
import torch

import sparsity_models as sm
from sparsity_models.workmodel import MeasuredWorkModel, exact_lockstep, expected_max
from workloads.yamlio import InputError


def test_expected_max_matches_enumeration():
    vals = np.array([1, 2, 3])
    assert expected_max(vals, np.array([1]))[0] == pytest.approx(2.0)
    assert expected_max(vals, np.array([2]))[0] == pytest.approx(22 / 9)   # sum_k 1 - F(k-1)^2
    skew = np.array([1, 1, 1, 4, 2.5])
    for n in (1, 2, 3):
        brute = np.mean([max(c) for c in itertools.product(skew, repeat=n)])
        assert expected_max(skew, np.array([n]))[0] == pytest.approx(brute)


def test_exact_mode_walks_the_tiles():
    tiles = np.array([[1, 4], [2, 2], [3, 1], [1, 1]])
    # lock-step sets {row0,row1}, {row2,row3}: maxima [2, 4] and [3, 1] -> 2.5
    assert exact_lockstep(tiles, 2) == 2.5
    assert exact_lockstep(tiles, 1) == tiles.mean() and exact_lockstep(tiles, 9) == 3.5   # column maxima 3, 4
    wm = MeasuredWorkModel("x", 16, tiles, mode="exact")
    assert wm.cycles_per_step(np.array([16, 32, 31, 8])).tolist() == [tiles.mean(), 2.5, tiles.mean(), tiles.mean()]
    acts = wm.actions_per_mac(np.array([32]))
    assert acts["compute"][0] == pytest.approx(tiles.mean()) and acts["idle"][0] == pytest.approx(2.5 - tiles.mean())


def test_expected_cycles_grow_with_lanes_and_stay_between_mean_and_max():
    wm = sm.build_work_model("pragmatic")
    n = np.array([16, 32, 256, 4096, 65536])
    c = wm.cycles_per_step(n)
    assert np.all(np.diff(c) >= 0)
    assert c[0] >= wm.tiles.mean() - 1e-9 and c[-1] <= wm.tiles.max() + 1e-9
    assert c.shape == n.shape and wm.cycles_per_step(n.reshape(5, 1)).shape == (5, 1)


def test_dense_stripes_and_fixed_models():
    n = np.array([1, 64, 1024])
    d = sm.build_work_model("dense")
    assert d.cycles_per_step(n).tolist() == [1, 1, 1] and list(d.actions_per_mac(n)) == ["mac"]
    s = sm.build_work_model("stripes")
    assert s.cycles_per_step(n).tolist() == [8, 8, 8] and s.actions_per_mac(n)["compute"].tolist() == [8, 8, 8]
    assert sm.build_work_model("int8").family == "dense"
    b = sm.build_work_model("bitmod", {"dtype": "int6"})
    assert b.cycles_per_step(n).tolist() == [3, 3, 3] and b.group_lanes == 4


def test_bitvert_moderate_group_32_bits_and_cycles():
    params = {"pruning": "moderate", "group_size": 32}
    w = sm.build_work_model("bitvert", params)
    assert w.cycles_per_step(np.array([32, 1024])).tolist() == [4.0, 4.0]     # 8 - 4 stored columns
    f = sm.build_format_model("bitvert", params)
    assert f.bits_per_element("Weights") == pytest.approx(4.25)               # 4 columns + 8/32 metadata
    assert sm.build_format_model("bitvert", {"pruning": "conservative", "group_size": 32}).bits_per_element("Weights") \
        == pytest.approx(6.25)


def test_synthetic_profile_is_stated():
    d = sm.build_work_model("panacea").describe()
    assert d["provenance"] == "synthetic" and d["profile"] == "transformer-v1" and "profile_definition" in d
    assert sm.build_work_model("dense").describe()["provenance"] == "analytical"


def test_measured_provenance_names_layer_and_tensor():
    torch.manual_seed(0)
    ls = sm.LayerStats("blk.fc", torch.randn(32, 64) * 0.02, torch.randn(16, 64), weight_name="blk.fc.weight",
                       source="unit-test")
    d = sm.build_work_model("bitvert", {"pruning": "conservative"}, ls).describe()
    assert d["provenance"] == "measured" and d["layer"] == "blk.fc" and d["weight_tensor"] == "blk.fc.weight"
    assert d["inputs"] == "measured"
    d2 = sm.build_work_model("sbq", {}, sm.LayerStats("w_only", torch.randn(32, 64))).describe()
    assert d2["weights"] == "measured" and d2["inputs"].startswith("synthetic:")


@pytest.mark.parametrize("family,params,key", [
    ("bitvrt", {}, "work_model.family"),
    ("bitvert", {"group_sise": 16}, "work_model.group_sise"),
    ("bitvert", {"pruning": "aggressive"}, "work_model.pruning"),
    ("bitvert", {"sub_group": 5}, "work_model.sub_group"),
    ("bitvert", {"pruning": "custom"}, "work_model.pruned_columns"),
    ("panacea", {"v": 0}, "work_model.v"),
    ("sbq", {"see": "yes"}, "work_model.see"),
    ("bitmod", {"dtype": "fp5"}, "work_model.dtype"),
    ("dense", {"mode": "fast"}, "work_model.mode"),
])
def test_bad_family_or_parameter_names_the_key(family, params, key):
    with pytest.raises(InputError) as exc:
        sm.build_work_model(family, params)
    assert exc.value.key == key


def test_format_model_errors_and_spec_keys():
    f = sm.build_format_model("bitmod", {"family": "bitmod", "levels": ["DRAM"], "dtype": "fp3"})
    assert f.bits_per_element("Weights") == pytest.approx(3 + 10 / 128)
    assert f.bits_per_element("Inputs") == 16
    with pytest.raises(InputError) as exc:
        f.bits_per_element("Psums")
    assert exc.value.key == "dataspace"
    with pytest.raises(InputError) as exc:
        sm.build_format_model("nope")
    assert exc.value.key == "format_model.family"


def test_every_family_builds_and_emits_known_actions():
    n = np.array([1, 16, 256])
    for fam in sm.family_names():
        w = sm.build_work_model(fam)
        c = w.cycles_per_step(n)
        assert c.shape == n.shape and np.all(c >= 0)
        acts = w.actions_per_mac(n)
        assert set(acts) in ({"mac"}, {"compute", "idle"})
        assert all(np.all(v >= -1e-12) for v in acts.values())
        f = sm.build_format_model(fam)
        assert all(f.bits_per_element(ds) > 0 for ds in ("Weights", "Inputs", "Outputs"))
