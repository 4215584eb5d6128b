"""Cache keys follow the resolved inputs: after editing a component library, a CSV or Python
estimator, a built-in data CSV or a statistics parameter, `search` (run_model), `compare` and
`sweep` sharing one result cache give the new answer -- the one a fresh cache gives -- and
never the stored old one. Also: the key changes with the bitloop build, and a damaged cache
is moved aside or its bad rows recomputed without losing the run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest

from mapper.cache import ResultCache
from mapper.compare import compare
from mapper.run import run_model
from mapper.spec import load_spec
from mapper.sweep import sweep
from workloads.graph import LayerGraph
from workloads.problem import gemm

FAST = {"max_evaluations": 400, "patience": 3, "exhaustive_limit": 400}

SPEC = """\
spec:
  name: keyed
  clock_MHz: 200
  architecture:
    version: 0.4
    nodes:
    - !Container {name: system}
    - !Component
      name: DRAM
      class: offchip_DRAM
      attributes: {type: LPDDR4, width: 64, datawidth: 8}
    - !Component
      name: GLB
      class: smartbuffer_SRAM
      attributes: {depth: 256, width: 64, datawidth: 8, read_bandwidth: 8, write_bandwidth: 8}
    - !Container
      name: PE
      spatial: {meshX: 4}
    - !Component
      name: mac
      class: keyed_mac
      attributes: {datawidth: 8}
  components:
    libraries: [lib.yaml]
    estimators: [ESTIMATORS]
  work_model: WORK
"""

LIBRARY = """\
compound_components:
  version: 0.4
  classes:
  - name: keyed_mac
    attributes: {technology: 28nm, datawidth: 8}
    subcomponents:
    - {name: multiplier, class: intmultiplier, attributes: {width_a: datawidth, width_b: datawidth}}
    - {name: accumulator, class: intadder, attributes: {width: 24}}
    actions:
    - name: mac
      subcomponents:
      - {name: multiplier, actions: [{name: multiply, energy_scale: SCALE}]}
      - {name: accumulator, actions: [{name: add}]}
    - name: compute
      subcomponents:
      - {name: multiplier, actions: [{name: multiply, energy_scale: SCALE}]}
      - {name: accumulator, actions: [{name: add}]}
"""

CSV = "class,action,energy_pJ,area_um2\nintadder,*,ADD,50\n"

PLUGIN = """\
class Multiplier:
    name = "keyed_multiplier"
    accuracy = 99
    def energy(self, q):
        return MUL if q.class_name == "intmultiplier" else None
    def area(self, q):
        return 100.0 if q.class_name == "intmultiplier" else None
"""


def _graph() -> LayerGraph:
    g = LayerGraph("toy")
    g.add_layer("fc0", gemm(16, 8, 32), "linear", weight_name="fc0.weight")
    return g


class Setup:
    """A spec folder whose library, CSV and Python estimators, and work model can be edited."""

    def __init__(self, root: Path, plugin: bool = False):
        self.root = root
        self.values = {"SCALE": "1", "ADD": "0.5", "MUL": "2.0",
                       "WORK": "{family: dense}"}
        self.plugin = plugin
        self.write()

    def write(self) -> None:
        estimators = "adders.csv, mul.py" if self.plugin else "adders.csv"
        spec = SPEC.replace("ESTIMATORS", estimators).replace("WORK", self.values["WORK"])
        (self.root / "spec.yaml").write_text(spec)
        (self.root / "lib.yaml").write_text(LIBRARY.replace("SCALE", self.values["SCALE"]))
        (self.root / "adders.csv").write_text(CSV.replace("ADD", self.values["ADD"]))
        (self.root / "mul.py").write_text(PLUGIN.replace("MUL", self.values["MUL"]))

    def edit(self, **values: str) -> None:
        self.values.update(values)
        self.write()

    def answers(self, cache: Path) -> dict[str, float]:
        """Energy (pJ) from search, compare and sweep, all sharing the result cache ``cache``."""
        spec = load_spec(self.root / "spec.yaml", allow_plugins=self.plugin)
        store = ResultCache(cache)
        search = run_model(spec, "toy", graph=_graph(), cache=store, search_options=FAST, objective="energy")
        cmp = compare([spec], [_graph()], cache=store, search_options=FAST, objective="energy")
        swp = sweep(spec, "toy", {"arch.GLB.depth": [256]}, graph=_graph(), cache=store, search_options=FAST,
                    objective="energy")
        return {"search": search.summary()["energy_pJ"], "compare": cmp["rows"][0]["energy_pJ"],
                "sweep": float(swp["energy_pJ"].iloc[0]), "sweep_cached": bool(swp["cached"].iloc[0])}


def _check_edit(tmp_path: Path, setup: Setup, edit: dict[str, str]) -> None:
    shared = tmp_path / "shared.sqlite"
    before = setup.answers(shared)
    assert setup.answers(shared)["sweep_cached"]                 # the cache is in use
    setup.edit(**edit)
    after = setup.answers(shared)
    fresh = setup.answers(tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}.sqlite")
    for verb in ("search", "compare", "sweep"):
        assert after[verb] != pytest.approx(before[verb], rel=1e-9), f"{verb} kept the old answer after {edit}"
        assert after[verb] == pytest.approx(fresh[verb], rel=1e-12), f"{verb} differs from a fresh cache after {edit}"
    assert not after["sweep_cached"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path / "cache"))


def test_edited_component_library_changes_every_verb(tmp_path: Path) -> None:
    _check_edit(tmp_path, Setup(tmp_path), {"SCALE": "20"})      # a multiplier made 20x more expensive


def test_edited_csv_estimator_changes_every_verb(tmp_path: Path) -> None:
    _check_edit(tmp_path, Setup(tmp_path), {"ADD": "7.5"})


def test_edited_python_estimator_changes_every_verb(tmp_path: Path) -> None:
    _check_edit(tmp_path, Setup(tmp_path, plugin=True), {"MUL": "9.0"})


def test_statistics_parameter_changes_every_verb(tmp_path: Path) -> None:
    # Stripes-style bit-serial lanes whose cycles come from the synthetic profile's statistics.
    setup = Setup(tmp_path)
    setup.edit(WORK="{family: pragmatic, profile: transformer-v1}")
    _check_edit(tmp_path, setup, {"WORK": "{family: pragmatic, profile: uniform-v1}"})


@pytest.fixture
def dram_data(tmp_path: Path) -> Iterator[Path]:
    """A copy of the DRAM estimator's data CSV that the estimator reads instead of the shipped one
    (its memo cleared on the way in and out, so no other test sees the edited table)."""
    from components.estimators import dram

    shipped = dram.DATA
    copy = tmp_path / "dram_energy.csv"
    copy.write_text(shipped.read_text())
    dram.DATA = copy
    dram.dram_table.cache_clear()
    try:
        yield copy
    finally:
        dram.DATA = shipped
        dram.dram_table.cache_clear()


def test_edited_data_csv_changes_every_verb(tmp_path: Path, dram_data: Path) -> None:
    """A built-in estimator's data CSV (DRAM pJ/bit) edited between runs: a new process reads the
    new file; here the reader's memo is cleared to play that new process."""
    from components.estimators import dram

    setup = Setup(tmp_path)
    shared = tmp_path / "shared.sqlite"
    before = setup.answers(shared)
    rows = [line.split(",") for line in dram_data.read_text().splitlines()]
    col = next(r for r in rows if not r[0].startswith("#")).index("pJ_per_bit")
    for r in rows:
        if r[0].upper() == "LPDDR4":
            r[col] = str(3 * float(r[col]))
    dram_data.write_text("\n".join(",".join(r) for r in rows) + "\n")
    dram.dram_table.cache_clear()
    after = setup.answers(shared)
    fresh = setup.answers(tmp_path / "fresh.sqlite")
    for verb in ("search", "compare", "sweep"):
        assert after[verb] > before[verb] * 1.01
        assert after[verb] == pytest.approx(fresh[verb], rel=1e-12)


def test_keys_include_schema_and_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from mapper import cache

    key = cache.cache_key("search", "x")
    monkeypatch.setattr(cache, "build_id", lambda: "9.9.9+0000")
    assert cache.cache_key("search", "x") != key                 # another version or code: another key
    monkeypatch.setattr(cache, "CACHE_SCHEMA", "other")
    assert cache.cache_key("search", "x") != key


def test_code_digest_covers_package_data(tmp_path: Path) -> None:
    """Editing a data file shipped in a package changes the code digest (computed over files)."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    for package in ("components", "mapper", "sparsity_models", "workloads"):
        shutil.copytree(repo / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-c", "from workloads.provenance import code_digest; print(code_digest())"]

    def digest() -> str:
        return subprocess.run(cmd, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                              check=True).stdout.strip()
    first = digest()
    csv = tmp_path / "components" / "data" / "dram_energy.csv"
    csv.write_text(csv.read_text() + "# edited\n")
    assert digest() != first and len(first) == 16


# ---- damaged caches -------------------------------------------------------------------------
def test_corrupt_cache_file_is_moved_aside_and_the_run_completes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = Setup(tmp_path)
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    answers = setup.answers(db)
    err = capsys.readouterr().err
    assert "unreadable result cache" in err and "moved it to" in err
    aside = list(tmp_path.glob("results.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert answers == setup.answers(tmp_path / "fresh.sqlite") | {"sweep_cached": answers["sweep_cached"]}
    assert ResultCache(db).count() >= 2                            # the new cache holds this run's results


def test_damaged_rows_are_recomputed(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    db = tmp_path / "results.sqlite"
    good = setup.answers(db)
    with sqlite3.connect(db) as con:
        keys = [k for (k,) in con.execute("SELECT key FROM results")]
        bad: list[Any] = ["{not json", json.dumps({"mapping_yaml": 3}), json.dumps({"status": "ok", "energy_pJ": "x"}),
                          json.dumps([1, 2])]
        for i, key in enumerate(keys):
            con.execute("UPDATE results SET value = ? WHERE key = ?", (bad[i % len(bad)], key))
    again = setup.answers(db)
    assert {k: again[k] for k in ("search", "compare", "sweep")} == {k: good[k] for k in ("search", "compare", "sweep")}
    with sqlite3.connect(db) as con:
        for (value,) in con.execute("SELECT value FROM results"):
            json.loads(value)                                      # every bad row was replaced


def test_cache_path_that_is_a_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mapper.cli import main

    (tmp_path / "c.sqlite").mkdir()
    setup = Setup(tmp_path)
    code = main(["search", "--spec", str(setup.root / "spec.yaml"), "--model", "gpt2", "--cache", str(tmp_path / "c.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "must be a file" in err


def test_statistics_keys_follow_parameters_code_and_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsity_models import cache as stats_cache

    key = stats_cache.cache_key("abc", "bitcols", {"group_size": 16})
    assert stats_cache.cache_key("abc", "bitcols", {"group_size": 8}) != key        # a statistics parameter
    assert stats_cache.cache_key("abd", "bitcols", {"group_size": 16}) != key       # the tensors
    monkeypatch.setattr(stats_cache, "_stats_build", lambda: "other code")
    assert stats_cache.cache_key("abc", "bitcols", {"group_size": 16}) != key       # the statistics code
