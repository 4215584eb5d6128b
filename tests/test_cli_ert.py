"""`python -m mapper ert`: ERT/ART for a spec; user plug-ins named on the command line change it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapper.cli import main
from mapper.ert import load_ert

SPEC = Path(__file__).parent / "data" / "tiny_spec.yaml"


def test_ert_writes_tables_and_plugins_change_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ert", "--spec", str(SPEC), "--out", str(tmp_path / "base")]) == 0
    base = load_ert(tmp_path / "base" / "ERT.yaml", tmp_path / "base" / "ART.yaml")
    assert (tmp_path / "base" / "ERT_summary.yaml").exists()
    glb_read = base.energy("system.GLB", "GLB", "read")
    assert glb_read > 0 and base.area("system.GLB", "GLB") > 0

    plugin = tmp_path / "flat_sram.py"
    plugin.write_text(
        "class FlatSRAM:\n"
        "    name = 'flat_sram'\n"
        "    accuracy = 99\n"
        "    def energy(self, q):\n"
        "        return {'read': 1.5, 'write': 2.5, 'leak': 0.0}.get(q.action) if q.class_name == 'SRAM' else None\n"
        "    def area(self, q):\n"
        "        return 123.0 if q.class_name == 'SRAM' else None\n")
    assert main(["ert", "--spec", str(SPEC), "--estimator", str(plugin), "--out", str(tmp_path / "py")]) == 0
    py = load_ert(tmp_path / "py" / "ERT.yaml")
    assert py.energy("system.GLB", "GLB", "read") != pytest.approx(glb_read)
    assert py.energy("system.PE.mac", "mac", "mac") == pytest.approx(base.energy("system.PE.mac", "mac", "mac"))

    table = tmp_path / "mac.csv"
    table.write_text("class,action,width,technology,energy_pJ,area_um2\nintmultiplier,*,8,28nm,5.0,900\n")
    assert main(["ert", "--spec", str(SPEC), "--estimator", str(table), "--out", str(tmp_path / "csv")]) == 0
    csv = load_ert(tmp_path / "csv" / "ERT.yaml", tmp_path / "csv" / "ART.yaml")
    assert csv.energy("system.PE.mac", "mac", "mac") > base.energy("system.PE.mac", "mac", "mac") + 1.0
    assert csv.area("system.PE.mac", "mac") > base.area("system.PE.mac", "mac")


def test_ert_missing_plugin_is_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ert", "--spec", str(SPEC), "--estimator", str(tmp_path / "nope.py"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope.py" in err and "not found" in err and "Traceback" not in err
