"""Primitive estimators: table (wildcards, width and technology scaling), DRAM, logic, SRAM."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import PrimitiveQuery, TableEstimator
from components.estimators.dram import DRAMEstimator, dram_table
from components.estimators.logic import LogicEstimator
from components.estimators.sram import SRAMEstimator
from components.estimators.technology import area_scale, energy_scale, parse_node

TABLE = """# accuracy: 95
class,action,width,technology,flavor,energy_pJ,area_um2
my_adder,add,16,45nm,*,0.10,40
my_adder,*,16,45nm,*,0.01,
my_*,read,32,28nm,fast,2.0,100
my_*,read,32,28nm,*,1.0,90
"""


@pytest.fixture()
def table(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(TABLE)
    return TableEstimator(p)


def test_table_exact_wildcard_and_accuracy(table):
    assert table.accuracy == 95
    q = PrimitiveQuery("my_adder", {"width": 16, "technology": "45nm"}, "add")
    assert table.energy(q) == pytest.approx(0.10)
    assert table.energy(PrimitiveQuery("my_adder", {"width": 16, "technology": "45nm"}, "idle")) == pytest.approx(0.01)
    assert table.area(PrimitiveQuery("my_adder", {"width": 16, "technology": "45nm"})) == pytest.approx(40)
    fast = PrimitiveQuery("my_sram", {"width": 32, "technology": "28nm", "flavor": "fast"}, "read")
    slow = PrimitiveQuery("my_sram", {"width": 32, "technology": "28nm", "flavor": "lp"}, "read")
    assert table.energy(fast) == pytest.approx(2.0) and table.energy(slow) == pytest.approx(1.0)
    assert table.energy(PrimitiveQuery("other", {"width": 16}, "add")) is None


def test_table_width_and_technology_scaling(table):
    q = PrimitiveQuery("my_adder", {"width": 32, "technology": "45nm"}, "add")
    assert table.energy(q) == pytest.approx(0.20)                  # linear in width
    q28 = PrimitiveQuery("my_adder", {"width": 16, "technology": "28nm"}, "add")
    assert table.energy(q28) == pytest.approx(0.10 * energy_scale("45nm", "28nm"))
    assert table.area(PrimitiveQuery("my_adder", {"width": 16, "technology": "28nm"})) == pytest.approx(40 * area_scale(45, 28))


def test_technology_table():
    assert parse_node("28nm") == 28 and parse_node(0.028 if False else "0.028um") == pytest.approx(28)
    assert area_scale("45nm", "45nm") == pytest.approx(1.0)
    assert area_scale("45nm", "32nm") == pytest.approx(0.46)     # Stillmaker-Baas table
    assert 0.2 < area_scale("45nm", "28nm") < 0.46
    assert energy_scale("28nm", "7nm") < 1 < energy_scale("28nm", "65nm")
    with pytest.raises(ValueError):
        area_scale("28nm", "3nm")


@pytest.mark.parametrize("kind, per_bit", [("LPDDR4", 8.0), ("DDR3", 70.0), ("DDR4", 44.8), ("HBM2", 3.9)])
def test_dram_pj_per_bit(kind, per_bit):
    est = DRAMEstimator()
    assert est.energy(PrimitiveQuery("DRAM", {"type": kind, "width": 64}, "read")) == pytest.approx(64 * per_bit)
    assert est.area(PrimitiveQuery("DRAM", {"type": kind})) == 0
    assert all(src for _, src in dram_table().values())


def test_dram_unknown_type():
    with pytest.raises(ValueError, match="unknown DRAM type"):
        DRAMEstimator().energy(PrimitiveQuery("DRAM", {"type": "SDR", "width": 8}, "read"))


LOGIC = LogicEstimator()
WIDTH_CLASSES = [("intadder", {}), ("reg", {}), ("barrel_shifter", {}), ("comparator", {}),
                 ("leading_one_detector", {}), ("and_array", {}), ("counter", {}),
                 ("mux", {"n_inputs": 5}), ("fifo", {"depth": 4}), ("adder_tree", {"n_inputs": 8}),
                 ("intmultiplier", {"width_b": 4}), ("regfile", {"depth": 8})]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(WIDTH_CLASSES), st.integers(min_value=1, max_value=63), st.integers(min_value=1, max_value=64))
def test_logic_non_decreasing_in_width(kind, w, dw):
    name, extra = kind
    small = PrimitiveQuery(name, {"width": w, **extra}, "compute")
    large = PrimitiveQuery(name, {"width": w + dw, **extra}, "compute")
    assert LOGIC.energy(large) >= LOGIC.energy(small) - 1e-12
    assert LOGIC.area(large) >= LOGIC.area(small) - 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=2, max_value=32), st.integers(min_value=2, max_value=32))
def test_multiplier_and_mux_grow(a, b):
    q = lambda n, **k: LOGIC.area(PrimitiveQuery(n, k))   # noqa: E731
    assert q("intmultiplier", width_a=a + 1, width_b=b) >= q("intmultiplier", width_a=a, width_b=b)
    assert q("mux", n_inputs=a + 1, width=b) > q("mux", n_inputs=a, width=b)
    assert q("priority_encoder", n_inputs=a + 1) >= q("priority_encoder", n_inputs=a)


def test_fp_units_and_actions():
    mul = PrimitiveQuery("fpmultiplier", {"precision": 16}, "multiply")
    add = PrimitiveQuery("fpadder", {"precision": 16}, "add")
    assert LOGIC.energy(mul) > LOGIC.energy(add) > 0
    assert LOGIC.area(PrimitiveQuery("fpmultiplier", {"precision": 32})) > LOGIC.area(PrimitiveQuery("fpmultiplier", {"precision": 16}))
    assert LOGIC.energy(PrimitiveQuery("reg", {"width": 8}, "idle")) > 0
    assert LOGIC.energy(PrimitiveQuery("intadder", {"width": 8}, "idle")) == 0
    assert LOGIC.energy(PrimitiveQuery("intadder", {"width": 8}, "teleport")) is None
    with pytest.raises(ValueError, match="unsupported FP precision"):
        LOGIC.area(PrimitiveQuery("fpadder", {"precision": 12}))


SRAM = SRAMEstimator()


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=4, max_value=15), st.integers(min_value=1, max_value=6),
       st.sampled_from([16, 32, 64, 128, 256, 512, 1024]), st.integers(min_value=1, max_value=16),
       st.sampled_from([(0, 0, 1), (1, 1, 0)]))
def test_sram_non_decreasing_in_capacity(log_depth, grow, width, banks, ports):
    rd, wr, rw = ports
    base = {"width": width, "n_banks": banks, "n_rd_ports": rd, "n_wr_ports": wr, "n_rdwr_ports": rw}
    small = {**base, "depth": 2 ** log_depth}
    large = {**base, "depth": 2 ** (log_depth + grow)}
    for action in ("read", "write", "leak"):
        assert SRAM.energy(PrimitiveQuery("SRAM", large, action)) >= SRAM.energy(PrimitiveQuery("SRAM", small, action)) * (1 - 1e-9)
    assert SRAM.area(PrimitiveQuery("SRAM", large)) >= SRAM.area(PrimitiveQuery("SRAM", small)) * (1 - 1e-9)


def test_sram_ports_and_banks_cost():
    q = lambda **k: PrimitiveQuery("SRAM", {"width": 128, "depth": 4096, **k})   # noqa: E731
    assert SRAM.area(q(n_rd_ports=1, n_wr_ports=1)) > SRAM.area(q())
    assert SRAM.area(q(n_banks=16)) > SRAM.area(q(n_banks=1))
    assert SRAM.energy(PrimitiveQuery("SRAM", {"width": 128, "depth": 4096, "clock_MHz": 500}, "leak")) == pytest.approx(
        2 * SRAM.energy(PrimitiveQuery("SRAM", {"width": 128, "depth": 4096, "clock_MHz": 1000}, "leak")))


@pytest.mark.parametrize("kb, banks, width, read_pj, write_pj, area_mm2", [
    (512, 8, 512, 92.79, 83.35, 1.602),      # data/README.md reference points (1R + 1W)
    (512, 8, 256, 70.09, 51.72, 1.485),
    (288, 32, 4096, 144.58, 244.22, None),
])
def test_sram_split_banking_reference_points(kb, banks, width, read_pj, write_pj, area_mm2):
    attrs = {"width": width, "depth": kb * 8192 // width, "n_banks": banks, "n_rd_ports": 1, "n_wr_ports": 1,
             "banking": "split"}
    assert SRAM.energy(PrimitiveQuery("SRAM", attrs, "read")) == pytest.approx(read_pj, rel=0.15)
    assert SRAM.energy(PrimitiveQuery("SRAM", attrs, "write")) == pytest.approx(write_pj, rel=0.10)
    if area_mm2:
        assert SRAM.area(PrimitiveQuery("SRAM", attrs)) == pytest.approx(area_mm2 * 1e6, rel=0.15)
