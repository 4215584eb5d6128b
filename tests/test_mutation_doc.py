"""docs/testing.md is what benchmarks/mutation.py renders from benchmarks/mutation_results.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _mutation_script():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "benchmarks" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_testing_doc_is_the_render_of_the_mutation_results():
    script = _mutation_script()
    results = json.loads(script.RESULTS.read_text())
    assert script.DOC.read_text() == script.render(results, script.load_equivalents())


def test_every_listed_equivalent_matches_a_surviving_mutant():
    """An equivalents entry that no survivor matches is stale (the code changed or it was killed)."""
    script = _mutation_script()
    results = json.loads(script.RESULTS.read_text())
    survivors = [(script.module_of(m["file"]), script._changed_lines(m["diff"]))
                 for g in results["groups"].values() for m in g["mutants"].values() if m["status"] not in script.KILLED]
    for eq in script.load_equivalents():
        key = (eq["module"], (" ".join(eq["before"].split()), " ".join(eq["after"].split())))
        assert key in survivors, f"stale equivalent: {eq}"


def test_the_core_keeps_the_kill_rate_issue_16_asks_for():
    """At least 90% of the non-equivalent mutants of mapper/nest.py and mapper/model.py killed, none left unrun."""
    script = _mutation_script()
    summary = script.summarize(json.loads(script.RESULTS.read_text()), script.load_equivalents())
    for module in script.LISTED:
        row = summary["modules"][module]
        assert row["not_run"] == 0 and row["kill_rate"] >= 0.9, (module, row)
