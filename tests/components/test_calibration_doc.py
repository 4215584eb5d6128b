"""The calibration tables of docs/components.md cannot go stale, and every fitted factor keeps
the one bound (0.5-2x) or is a named, argued exception.

Leave-one-out refits every fitted row (``python -m components.calibrate --loo``, about a
minute), so its values are stored in components/data/calibration_held_out.csv with a digest of
the components package; the test checks the digest, the rendered tables and the fitted column
here, and recomputes two held-out rows in test_components_paper_tables.py (after the full fit,
whose design matrices it reuses).
"""

from __future__ import annotations

import pytest

from components import calibration_doc as doc
from components.calibrate import HELD_OUT_CSV, fitted_rows, inputs_digest, load_targets, read_held_out, report
from components.estimators.logic import load_factors

DIGEST, ROWS = read_held_out()


def test_held_out_file_comes_from_the_current_components():
    assert DIGEST == inputs_digest(), \
        f"{HELD_OUT_CSV.name} is stale (a component, estimator, prior or target changed): python -m components.calibrate --loo"


def test_held_out_file_covers_every_target_and_its_fitted_values_are_current():
    model = {(t.id, t.quantity): (t, v) for t, v in report()}
    assert [(h.id, h.quantity) for h in ROWS] == list(model)
    for h in ROWS:
        t, v = model[(h.id, h.quantity)]
        assert (h.role, h.paper) == (t.role, pytest.approx(t.value, rel=1e-5))
        assert h.fitted == pytest.approx(v, rel=1e-5), h.id
    # every fitted row was held out; a row no fit uses is its own held-out prediction
    fitted = set(fitted_rows(load_targets()))
    assert {h.id for h in ROWS if h.role != "predict"} == fitted
    assert all(h.held_out == h.fitted for h in ROWS if h.id not in fitted)
    assert all(h.held_out != pytest.approx(h.fitted, rel=1e-6) for h in ROWS if h.role == "calibrate")


def test_doc_tables_are_what_the_model_and_the_held_out_file_render():
    text = doc.DOC.read_text(encoding="utf-8")
    assert doc.render(text, ROWS) == text, "docs/components.md calibration tables are stale: python -m components.calibrate --render"


def test_every_fitted_factor_is_within_the_bound_or_an_argued_exception():
    lo, hi = doc.BOUND
    outside = sorted(k for k, v in load_factors().items() if not lo <= v <= hi)
    assert outside == sorted(doc.EXCEPTIONS)
    text = doc.DOC.read_text(encoding="utf-8")
    argued = text.split("**Factors outside the bound**", 1)[1].split("Modeling assumptions", 1)[0]
    for name in doc.EXCEPTIONS:
        assert f"`{name}`" in argued, f"{name} is outside {lo}-{hi}x and not argued in docs/components.md"
    # every fitted factor has a family description in the factor table
    assert {k.rsplit("_", 2)[0] for k in load_factors()} <= set(doc.FAMILIES)
