"""docs/reproduction.md and the spec table of docs/specs.md cannot go stale.

A full ``python benchmarks/reproduce.py`` maps every paper's comparison (minutes), so the
test does not rerun it. Instead: (1) both docs must equal what the committed results file
renders; (2) the results file's digest of every input that can change a number must match
the tree (a changed spec, component, statistic, workload or mapper file fails here until
the script is rerun); (3) the rows that need no mapping (Table V PE ratios, Table II and
Sec. V-H weight bits, Table VI areas) and the spec areas are recomputed now and must equal
the stored ones; (4) every row more than 15% off names a cause that the doc explains.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import reproduce  # noqa: E402
import reproduction_doc as doc  # noqa: E402

DATA = json.loads(reproduce.RESULTS.read_text())


def test_docs_are_what_the_results_file_renders():
    assert doc.render_reproduction(DATA) == doc.REPRODUCTION_MD.read_text(), \
        "docs/reproduction.md is stale: python benchmarks/reproduce.py --render"
    specs_md = doc.SPECS_MD.read_text()
    assert doc.render_specs_md(DATA, specs_md) == specs_md, "docs/specs.md's table is stale: python benchmarks/reproduce.py --render"


def test_results_come_from_the_current_inputs():
    assert DATA["inputs_digest"] == reproduce.inputs_digest(), \
        "a spec, component, statistics, workload or mapper file changed: rerun python benchmarks/reproduce.py"


def test_rows_without_mapping_and_spec_areas_regenerate_equal():
    stored = {(c["paper"], c["claim"], c["workload"]): c for c in DATA["claims"]}
    fresh = reproduce.quick_claims()
    assert len(fresh) == 10
    for c in fresh:
        s = stored[(c.paper, c.claim, c.workload)]
        assert s["bitloop_value"] == pytest.approx(c.bitloop_value, rel=1e-9) and s["paper_value"] == c.paper_value
    areas = reproduce.spec_areas()
    assert areas.keys() == DATA["spec_areas"].keys()
    for name, a in areas.items():
        assert a == pytest.approx(DATA["spec_areas"][name], rel=1e-9), name


def test_every_gap_over_15_percent_has_a_named_cause_with_its_explanation():
    text = doc.REPRODUCTION_MD.read_text()
    off = doc.gaps(DATA["claims"])
    assert off, "the comparison has gaps; an empty list means the gap filter is broken"
    for c in off:
        assert c["cause"] in doc.CAUSES, f"no named cause for: {c['paper']} {c['claim']} {c['workload']} ({c['ratio']:.2f})"
        assert f"**{doc.CAUSES[c['cause']][0]}.**" in text
    for c in DATA["claims"]:
        ratio = c["bitloop_value"] / c["paper_value"] if c["paper_value"] else float("nan")
        assert c["ratio"] == pytest.approx(ratio, nan_ok=True)


def test_every_paper_and_scope_is_in_the_results():
    assert {c["paper"] for c in DATA["claims"]} == {"BitVert", "BitMoD", "Panacea", "SBQ"}
    assert DATA["config"]["bitvert"]["scope"]["vit-s"] == "conv,linear,!classifier"
    assert DATA["config"]["panacea"]["scope"] == "linear,conv"
    assert DATA["config"]["bitmod"]["decode_tokens"] == 20


def test_rows_are_marked_calibrated_definitional_or_predicted():
    """A row fitted to its paper number (or built on one) is shown as calibrated, one that follows
    from the stated configuration as definitional; everything else is a prediction."""
    kinds = {(c["claim"], c["workload"]): doc.row_kind(c)[0] for c in DATA["claims"]}
    assert set(kinds.values()) == {"calibrated", "definitional", "predicted"}
    marked = {k: v for k, v in kinds.items() if v != "predicted"}
    assert marked == {
        ("PE area BitVert / Stripes", "PE"): "calibrated",
        ("PE power BitVert / Stripes", "PE"): "calibrated",
        ("moderate BBS effective weight bits (measured profiles, 2% sensitive)", "VGG-16"): "calibrated",
        ("conservative BBS weight bits, group 32, no sensitive channels", "Llama-3-8B"): "definitional",
        ("moderate BBS weight bits, group 32, no sensitive channels", "Llama-3-8B"): "definitional",
        ("tq area incl. 80 KB buffers (mm^2)", "engine"): "calibrated",
        ("sibia area incl. 80 KB buffers (mm^2)", "engine"): "calibrated",
        ("area reduction vs Sibia (%)", "engine"): "calibrated",
        ("tq on-chip power (mW, mean over models)", "resnet18+resnet50+deit-s"): "calibrated",
        ("sibia on-chip power (mW, mean over models)", "resnet18+resnet50+deit-s"): "calibrated",
    }
    text = doc.REPRODUCTION_MD.read_text()
    assert "| calibrated | `tq_engine` area fitted to it (held out: " in text
