"""Whole-model runs: summary contract, identical layers mapped once, resume from the cache,
CLI outputs, and `model` reproducing what `search` wrote."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mapper.cache import ResultCache
from mapper.cli import main
from mapper.run import run_model
from mapper.spec import load_spec
from workloads.graph import LayerGraph
from workloads.problem import gemm

SPEC = Path(__file__).parent / "data" / "tiny_spec.yaml"
FAST = {"max_evaluations": 3000, "patience": 5, "exhaustive_limit": 2000}


def _graph() -> LayerGraph:
    g = LayerGraph("toy")
    g.add_layer("fc1", gemm(32, 16, 64), "linear", weight_name="fc1.weight")
    g.add_layer("fc2", gemm(32, 16, 64), "linear", inputs=["fc1"], weight_name="fc2.weight")
    g.add_layer("head", gemm(8, 16, 32), "linear", inputs=["fc2"], weight_name="head.weight", count=3)
    return g


def test_summary_contract_and_totals(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    report = run_model(spec, "toy", graph=_graph(), cache=ResultCache(tmp_path / "c.sqlite"), search_options=FAST)
    s = report.summary()
    for key, kind in [("spec", str), ("model", str), ("phase", str), ("macs", int), ("cycles", int), ("seconds", float),
                      ("energy_pJ", float), ("edp_J_s", float), ("energy_breakdown_pJ", dict), ("layers", int), ("unique_layers", int)]:
        assert isinstance(s[key], kind), key
    assert s["layers"] == 3 and s["unique_layers"] == 2
    # MACs: 2 x (32*16*64) + 3 x (8*16*32) = 65536 + 12288
    assert s["macs"] == 2 * 32 * 16 * 64 + 3 * 8 * 16 * 32
    rows = {r["layer"]: r for r in report.rows}
    assert s["cycles"] == rows["fc1"]["cycles"] + rows["fc2"]["cycles"] + 3 * rows["head"]["cycles"]
    assert s["energy_pJ"] == pytest.approx(sum(r["energy_pJ"] * r["count"] for r in report.rows))
    assert sum(s["energy_breakdown_pJ"].values()) == pytest.approx(s["energy_pJ"])
    assert s["seconds"] == pytest.approx(s["cycles"] / 200e6)
    assert s["edp_J_s"] == pytest.approx(s["energy_pJ"] * 1e-12 * s["seconds"])
    # Identical shapes share one mapping and (with no per-layer statistics) identical costs.
    assert rows["fc1"]["cycles"] == rows["fc2"]["cycles"] and rows["fc1"]["energy_pJ"] == rows["fc2"]["energy_pJ"]
    # 16 MAC lanes: no layer can finish in fewer than MACs / 16 cycles.
    for r in report.rows:
        assert r["cycles"] >= r["macs"] / 16
    assert "does not depend on tensor statistics" in s["provenance"]["note"]  # a dense INT8 spec


def test_resume_does_not_redo_finished_layers(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    cache = ResultCache(tmp_path / "c.sqlite")
    # An "interrupted" run that finished only the fc shape.
    partial = LayerGraph("toy")
    partial.add_layer("fc1", gemm(32, 16, 64), "linear")
    first = run_model(spec, "toy", graph=partial, cache=cache, search_options=FAST)
    assert cache.count() == 1
    full = run_model(spec, "toy", graph=_graph(), cache=cache, search_options=FAST)
    info = full.search_info
    assert info["GEMM(M=32,N=16,K=64)"]["cached"] is True
    assert info["GEMM(M=8,N=16,K=32)"]["cached"] is False
    assert cache.count() == 2
    assert {r["layer"]: r for r in full.rows}["fc1"]["energy_pJ"] == first.rows[0]["energy_pJ"]
    again = run_model(spec, "toy", graph=_graph(), cache=cache, search_options=FAST)
    assert all(v["cached"] for v in again.search_info.values())
    assert again.summary()["energy_pJ"] == full.summary()["energy_pJ"]


def test_cli_search_outputs_and_model_reproduces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["search", "--spec", str(SPEC), "--model", "gpt2", "--seq-len", "16", "--jobs", "1",
                 "--max-evaluations", "3000", "--cache", str(tmp_path / "c.sqlite"), "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "gpt2" and summary["phase"] == "prefill" and summary["layers"] == 72
    with open(out / "layers.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 72
    for col in ("layer", "problem", "count", "macs", "cycles", "energy_pJ", "energy_DRAM_pJ", "energy_GLB_pJ", "energy_RF_pJ", "energy_mac_pJ"):
        assert col in rows[0]
    _check_breakdown_svg(out / "energy_breakdown.svg", summary["energy_breakdown_pJ"])
    # `model` on a mapping that `search` wrote reproduces the layer's numbers.
    row = next(r for r in rows if r["layer"] == "h.0.mlp.c_fc")
    stem = row["problem"].replace("(", "_").replace(")", "").replace(",", "_")
    capsys.readouterr()
    code = main(["model", "--spec", str(SPEC), "--problem", str(out / "mappings" / f"{stem}.problem.yaml"),
                 "--mapping", str(out / "mappings" / f"{stem}.yaml"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cycles"] == int(row["cycles"])
    assert result["energy_pJ"] == pytest.approx(float(row["energy_pJ"]), rel=1e-9)
    assert (out / "stats" / "h.0.mlp.c_fc.stats.txt").exists()


def test_cli_search_bad_spec_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec:\n  name: bad\n  architecture: {version: 0.4, nodes: [{name: DRAM, class: offchip_DRAM}]}\n")
    code = main(["search", "--spec", str(bad), "--model", "gpt2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(bad) in err and "architecture" in err
    assert main(["search", "--spec", str(tmp_path / "missing.yaml"), "--model", "gpt2"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_imperfect_factors_pad_and_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GEMM 15 x 15 x 15 on a 4x4 array: exact factors (``imperfect: False``, CLI --perfect) use
    at most 3x3 lanes (15 = 3 * 5), so >= 3375 / 9 = 375 cycles; the default pads to 16 and lets
    all 16 lanes work. The padded mapping is written with its padded problem, and `model`
    reproduces the layer's numbers from those files."""
    spec = load_spec(SPEC)
    g = LayerGraph("prime")
    g.add_layer("fc", gemm(15, 15, 15), "linear")
    cache = ResultCache(tmp_path / "c.sqlite")
    opts = {"mode": "guided", "max_evaluations": 20000, "patience": 10}
    exact = run_model(spec, "prime", graph=g, cache=cache, search_options={**opts, "imperfect": False}, objective="delay")
    padded = run_model(spec, "prime", graph=g, cache=cache, search_options=opts, objective="delay")
    label = "GEMM(M=15,N=15,K=15)"
    assert exact.rows[0]["macs"] == padded.rows[0]["macs"] == 15 ** 3
    assert exact.rows[0]["cycles"] >= 375
    assert padded.rows[0]["cycles"] < exact.rows[0]["cycles"]
    instance = padded.problems[label].split("instance:")[1]
    assert "16" in instance  # at least one dimension was padded
    out = tmp_path / "out"
    from mapper.report import write_report

    write_report(padded, out)
    code = main(["model", "--spec", str(SPEC), "--problem", str(out / "mappings" / "GEMM_M=15_N=15_K=15.problem.yaml"),
                 "--mapping", str(out / "mappings" / "GEMM_M=15_N=15_K=15.yaml"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cycles"] == padded.rows[0]["cycles"]
    assert result["energy_pJ"] == pytest.approx(padded.rows[0]["energy_pJ"], rel=1e-9)


def test_imperfect_factors_are_the_default_for_a_prime_token_count(tmp_path: Path) -> None:
    """ViT's 197 tokens (prime) on Stripes' 16 token rows: exact factors cannot split N over the
    rows, so at most 1 of 16 rows works (utilization <= 1/16); the default pads N to 208 = 13 x 16
    and uses every row and lane, on 197 of 208 padded tokens: spatial utilization 197/208, counted
    on the layer's own MACs (64 x 197 x 64, 8 cycles per MAC on 4096 bit-serial lanes)."""
    spec = load_spec("baselines/stripes")
    g = LayerGraph("vit-like")
    g.add_layer("attention.query", gemm(M=64, N=197, K=64), "linear", weight_name="q.weight")
    cache = ResultCache(tmp_path / "c.sqlite")
    opts = {"mode": "guided", "max_evaluations": 3000, "patience": 5}
    exact = run_model(spec, "vit-like", graph=g, cache=cache, search_options={**opts, "imperfect": False}, objective="delay")
    padded = run_model(spec, "vit-like", graph=g, cache=cache, search_options=opts, objective="delay")
    assert "N: 208" in next(iter(padded.problems.values()))
    ideal = 64 * 197 * 64 * 8 / spec.arch.compute.instances
    assert exact.summary()["utilization"] <= 1 / 16 + 1e-9 and exact.rows[0]["cycles"] >= 16 * ideal
    assert padded.summary()["utilization"] == pytest.approx(197 / 208)    # every lane, 11 of 208 tokens padding
    assert padded.rows[0]["cycles"] >= ideal and exact.rows[0]["cycles"] >= 8 * padded.rows[0]["cycles"]


def test_layer_filter_restricts_the_run(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    cache = ResultCache(tmp_path / "c.sqlite")
    full = run_model(spec, "toy", graph=_graph(), cache=cache, search_options=FAST)
    part = run_model(spec, "toy", graph=_graph(), cache=cache, search_options=FAST, layers="fc*,!fc2")
    assert [r["layer"] for r in part.rows] == ["fc1"]
    assert part.summary()["layer_filter"] == "fc*,!fc2" and full.summary()["layer_filter"] is None
    rows = {r["layer"]: r for r in full.rows}
    assert part.summary()["cycles"] == rows["fc1"]["cycles"]
    assert part.summary()["energy_pJ"] == pytest.approx(rows["fc1"]["energy_pJ"])


def test_generate_phase_is_the_sum_of_its_steps(tmp_path: Path) -> None:
    """``generate`` = a prefill of 8 tokens then 3 decode steps attending to 8, 9 and 10 cached
    tokens: every total (cycles, energy, MACs, each part) equals the sum of the separate runs."""
    spec = load_spec(SPEC)
    cache = ResultCache(tmp_path / "c.sqlite")
    opts = {"mode": "guided", "max_evaluations": 300, "patience": 2, "population": 16, "mutants": 64}
    gen = run_model(spec, "gpt2", phase="generate", seq_len=8, decode_tokens=3, cache=cache, search_options=opts)
    steps = [run_model(spec, "gpt2", phase="prefill", seq_len=8, cache=cache, search_options=opts)]
    steps += [run_model(spec, "gpt2", phase="decode", seq_len=8, kv_len=8 + i, cache=cache, search_options=opts)
              for i in range(3)]
    s = gen.summary()
    assert s["phase"] == "generate" and s["layers"] == 4 * 72
    for key in ("cycles", "macs"):
        assert s[key] == sum(r.summary()[key] for r in steps)
    assert s["energy_pJ"] == pytest.approx(sum(r.summary()["energy_pJ"] for r in steps), rel=1e-9)
    for part, value in s["energy_breakdown_pJ"].items():
        assert value == pytest.approx(sum(r.summary()["energy_breakdown_pJ"][part] for r in steps), rel=1e-9)
    decode_only = run_model(spec, "gpt2", phase="generate", seq_len=8, decode_tokens=3, cache=cache,
                            search_options=opts, layers="*@decode*")
    assert decode_only.summary()["cycles"] == sum(r.summary()["cycles"] for r in steps[1:])


def _check_breakdown_svg(path, parts: dict[str, float]) -> None:
    """The plot is well-formed SVG with one bar per part, bar lengths proportional to energy."""
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    rects = ET.parse(path).getroot().findall(f"{ns}rect")
    assert [r.find(f"{ns}title").text.split(":")[0] for r in rects] == list(parts)
    peak = max(parts.values())
    longest = max(float(r.get("width")) for r in rects)
    for r, pj in zip(rects, parts.values()):
        assert float(r.get("width")) == pytest.approx(longest * pj / peak, abs=0.01)


class _Stats:
    """Statistics stand-in: only an identity (what run_model keys searches and evaluations by)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def identity(self) -> str:
        return self.name


class _Bits:
    """Format model: every element takes ``bits`` bits at the levels it applies to."""

    def __init__(self, bits: float) -> None:
        self.bits = bits

    def bits_per_element(self, dataspace: str) -> float:
        return self.bits


def test_a_layer_whose_statistics_overflow_the_shared_mapping_gets_its_own(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """fc1 and fc2 share a shape; fc2's statistics store 8x the bits at the RF, so fc1's mapping
    does not fit it: fc2 must be searched and evaluated on a mapping that fits (not an error)."""
    import mapper.run as run
    from mapper.model import BitLevelModels, DenseMAC, evaluate

    spec = load_spec(SPEC)
    stats = {"fc1": _Stats("narrow"), "fc2": _Stats("wide")}
    monkeypatch.setattr(run, "layer_statistics", lambda *a: (stats, {}, {"weights": None, "synthetic_profile": None,
                                                                         "used": False}))
    models = {"narrow": BitLevelModels(DenseMAC(), _Bits(8), frozenset({"RF"})),
              "wide": BitLevelModels(DenseMAC(), _Bits(64), frozenset({"RF"}))}
    monkeypatch.setattr(run, "layer_models", lambda spec, st: models[st.name if st else "narrow"])
    report = run_model(spec, "toy", graph=_graph(), cache=ResultCache(tmp_path / "c.sqlite"), search_options=FAST, jobs=1)
    rows = {r["layer"]: r for r in report.rows}
    shape = rows["fc1"]["problem"]
    assert rows["fc2"]["problem"] == shape and rows["fc1"]["mapping"] == shape
    # The precondition: the shape's mapping (searched on fc1's statistics) overflows the RF with fc2's.
    mapped, mapping = run._decoded({**report.search_info[shape], "mapping_yaml": report.mappings[shape],
                                    "problem_yaml": report.problems[shape]}, spec, shape)
    wide = evaluate(mapped, spec.arch, mapping, spec.ert, models["wide"], check_capacity=False)
    assert not bool(wide.batch.valid[0])
    own = rows["fc2"]["mapping"]
    assert own != shape and own.startswith(shape + "~") and own in report.mappings
    mapped, mapping = run._decoded({**report.search_info[own], "mapping_yaml": report.mappings[own],
                                    "problem_yaml": report.problems[own]}, spec, own)
    again = evaluate(mapped, spec.arch, mapping, spec.ert, models["wide"])   # fits (raises otherwise)
    assert rows["fc2"]["cycles"] == again.cycles and rows["fc2"]["energy_pJ"] == pytest.approx(again.energy_pJ)


@pytest.mark.parametrize("jobs", [1, 2])
def test_searches_of_several_plans_run_once_per_cache_key(tmp_path: Path, jobs: int) -> None:
    """Two plans of one spec share the GEMM(32,16,64) shape: 2 unique searches for 3 shapes
    asked; both plans get the same results; a new Searches finds all of them in the cache."""
    from mapper.run import Searches, finish_model, plan_model

    spec = load_spec(SPEC)
    small = LayerGraph("small")
    small.add_layer("fc", gemm(32, 16, 64), "linear")
    cache = ResultCache(tmp_path / "c.sqlite")
    searches = Searches(jobs, cache)
    plans = [plan_model(spec, "toy", graph=_graph(), search_options=FAST), plan_model(spec, "small", graph=small, search_options=FAST)]
    for plan in plans:
        searches.submit(plan)
    toy, alone = (finish_model(p, searches) for p in plans)
    searches.cancel()
    assert cache.count() == 2
    assert alone.rows[0]["energy_pJ"] == {r["layer"]: r for r in toy.rows}["fc1"]["energy_pJ"]
    again = Searches(jobs, cache)
    again.submit(plans[0])
    assert all(v["cached"] for v in again.results(plans[0]).values())


def test_an_ended_run_commits_the_searches_that_finished(tmp_path: Path) -> None:
    """Searches finished in the workers but not yet taken (the run stops before finishing their
    plan) are committed by ``cancel``: a rerun finds them in the cache."""
    from concurrent.futures import wait

    from mapper.run import Searches, plan_model

    cache = ResultCache(tmp_path / "c.sqlite")
    searches = Searches(2, cache)
    searches.submit(plan_model(load_spec(SPEC), "toy", graph=_graph(), search_options=FAST))
    wait(list(searches._futures.values()))
    assert cache.count() == 0
    searches.cancel()
    assert cache.count() == 2
