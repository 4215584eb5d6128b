"""User estimators (a CSV table, a Python class in a named file) change the result."""

from __future__ import annotations

import pytest

from components import ComponentInstance, resolve
from workloads.yamlio import InputError

INSTANCES = [ComponentInstance("sys.pe", "bitvert_pe", {"sub_group": 8}),
             ComponentInstance("sys.glb", "smartbuffer_SRAM", {"width": 128, "depth": 1024})]


def test_user_csv_changes_result(tmp_path):
    base = resolve(INSTANCES)
    csv = tmp_path / "adders.csv"
    csv.write_text("class,action,width,technology,energy_pJ,area_um2\n"
                   "intadder,*,8,28nm,1.0,1000\n"
                   "adder_tree,*,8,28nm,2.0,2000\n")
    user = resolve(INSTANCES, estimators=[csv])
    assert user.ert["sys.pe"]["compute"] > base.ert["sys.pe"]["compute"] + 1.0
    assert user.art["sys.pe"] > base.art["sys.pe"] + 2000
    assert user.ert["sys.glb"] == base.ert["sys.glb"]           # untouched primitives unchanged
    recs = {r["primitive"]: r for r in user.provenance["sys.pe"]}
    assert recs["accumulator"]["area_estimator"] == "table:adders.csv"
    assert recs["eff_mux"]["area_estimator"] == "logic_28nm_cells"


def test_user_python_estimator_changes_result(tmp_path):
    plugin = tmp_path / "my_sram.py"
    plugin.write_text(
        "class FlatSRAM:\n"
        "    name = 'flat_sram'\n"
        "    accuracy = 99\n"
        "    def energy(self, q):\n"
        "        if q.class_name != 'SRAM':\n"
        "            return None\n"
        "        return {'read': 1.5, 'write': 2.5, 'leak': 0.0}.get(q.action)\n"
        "    def area(self, q):\n"
        "        return 123.0 if q.class_name == 'SRAM' else None\n")
    base = resolve(INSTANCES)
    user = resolve(INSTANCES, estimators=[plugin])
    assert user.ert["sys.glb"]["read"] != base.ert["sys.glb"]["read"]
    storage = resolve([ComponentInstance("s", "SRAM", {"width": 8, "depth": 8})], estimators=[plugin])
    assert storage.ert["s"]["read"] == 1.5 and storage.art["s"] == 123.0
    assert user.ert["sys.pe"] == base.ert["sys.pe"]
    rec = next(r for r in user.provenance["sys.glb"] if r["class"] == "SRAM")
    assert rec["area_estimator"] == "flat_sram" and rec["action_estimators"]["read"] == "flat_sram"


def test_lower_accuracy_plugin_loses(tmp_path):
    csv = tmp_path / "low.csv"
    csv.write_text("# accuracy: 10\nclass,action,energy_pJ,area_um2\nintadder,*,100,100\n")
    base = resolve(INSTANCES)
    user = resolve(INSTANCES, estimators=[csv])
    assert user.ert["sys.pe"] == base.ert["sys.pe"]


def test_plugin_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        resolve(INSTANCES, estimators=[tmp_path / "nope.py"])
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(InputError, match="plug-in raised RuntimeError: boom"):
        resolve(INSTANCES, estimators=[bad])
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(InputError, match="no estimator class"):
        resolve(INSTANCES, estimators=[empty])
    with pytest.raises(InputError, match=".csv tables or .py files"):
        resolve(INSTANCES, estimators=[tmp_path / "x.json"])
    badcsv = tmp_path / "b.csv"
    badcsv.write_text("class,energy_pJ\nintadder,lots\n")
    with pytest.raises(InputError, match=r"row 2\.energy_pJ"):
        resolve(INSTANCES, estimators=[badcsv])
