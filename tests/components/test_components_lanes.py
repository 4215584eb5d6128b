"""The compute-lane and storage conventions of docs/architecture.md hold for the library."""

from __future__ import annotations

import pytest

from components import ComponentInstance, resolve
from components.compound import load_library

LANES = ["bitvert_lane", "bitmod_lane", "sbq_lane", "fp16_mac_lane", "int8_mac", "ant_pe", "olive_pe",
         "stripes_lane", "pragmatic_lane", "bitlet_lane", "bitwave_lane", "tq_lane", "sibia_lane", "panacea_lane"]
STORAGE = [("smartbuffer_SRAM", {"width": 64, "depth": 1024}), ("smartbuffer_RF", {"width": 16, "depth": 16}),
           ("register_storage", {"width": 24}), ("offchip_DRAM", {"type": "HBM2"}), ("DRAM", {"type": "DDR4", "width": 64})]


@pytest.mark.parametrize("cls", LANES)
def test_compute_lane_actions(cls):
    t = resolve([ComponentInstance("lane", cls, {})], clock_MHz=800)
    acts = t.ert["lane"]
    assert {"compute", "idle", "mac"} <= set(acts), acts
    assert acts["compute"] > 0
    if cls != "panacea_lane":  # a lane-cycle does at most one dense MAC's work
        assert acts["mac"] >= acts["compute"] * 0.999
    assert 0 <= acts["idle"] < acts["compute"]


def test_panacea_lane_is_one_output_of_the_pea_block():
    """A Panacea lane is one of the v*v outputs of a PEA; one lane-cycle computes n_dwo + n_swo
    slice products, a dense 8b x 8b MAC is 4 of them."""
    t = resolve([ComponentInstance("lane", "panacea_lane", {}), ComponentInstance("pea", "panacea_pea", {})])
    assert t.art["lane"] == pytest.approx(t.art["pea"] / 16, rel=1e-6)
    assert t.ert["lane"]["compute"] == pytest.approx(t.ert["pea"]["compute"] / 16, rel=1e-6)
    assert t.ert["lane"]["compute"] == pytest.approx(t.ert["lane"]["mac"] * (4 + 8) / 4, rel=1e-6)
    assert t.art["lane"] > 0


def test_bitvert_lane_is_pe_share():
    t = resolve([ComponentInstance("lane", "bitvert_lane", {"pe_rows": 10**9, "pe_cols": 10**9}),
                 ComponentInstance("pe", "bitvert_pe", {})])
    assert t.art["lane"] == pytest.approx(t.art["pe"] / 16, rel=1e-6)
    assert t.ert["lane"]["mac"] == pytest.approx(8 * t.ert["lane"]["compute"], rel=1e-6)


@pytest.mark.parametrize("cls, attrs", STORAGE)
def test_storage_actions(cls, attrs):
    t = resolve([ComponentInstance("buf", cls, attrs)])
    assert {"read", "write", "update"} <= set(t.ert["buf"])
    assert t.energy("buf", "leak") >= 0


def test_swept_parameters_are_attributes():
    lib = load_library()
    assert "sub_group" in lib.get("bitvert_pe").attributes
    assert "queue_depth" in lib.get("sbq_compute_lane").attributes
    assert {"n_dwo", "n_swo"} <= set(lib.get("panacea_pea").attributes)
    # a deeper term queue costs more area; more operators cost more
    t = resolve([ComponentInstance("q4", "sbq_compute_lane", {"queue_depth": 4}),
                 ComponentInstance("q8", "sbq_compute_lane", {"queue_depth": 8}),
                 ComponentInstance("p1", "panacea_pea", {"n_dwo": 4, "n_swo": 8}),
                 ComponentInstance("p2", "panacea_pea", {"n_dwo": 8, "n_swo": 4}),
                 ComponentInstance("p3", "panacea_pea", {"n_dwo": 8, "n_swo": 8})])
    assert t.art["q8"] > t.art["q4"]
    assert t.art["p3"] > t.art["p1"]
