"""Measured profiles: what they hold, how runs use them by default, and per-operand provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsity_models as sm
from mapper.cache import ResultCache
from mapper.run import run_model
from mapper.spec import load_spec
from sparsity_models.profiles import (
    FAMILY_SOURCES, GENERIC_SOURCES, PROFILE_VERSION, ProfileMissing, ProfileStats, available, load_profile, source_for,
)
from sparsity_models.profiles.build import spec_settings
from sparsity_models.workmodel import Distribution, MeasuredWorkModel, expected_max
from workloads.graph import LayerGraph
from workloads.problem import batched_matmul, gemm
from workloads.yamlio import InputError

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny_spec.yaml"
FAST = {"max_evaluations": 400, "patience": 3, "exhaustive_limit": 400}


def test_every_family_source_has_a_bundled_role() -> None:
    names = set(available())
    for table in [*FAMILY_SOURCES.values(), GENERIC_SOURCES]:
        for role, entry in table.items():
            ck, _, src_role = entry.partition(":")
            assert ck in names, entry
            assert (src_role or role) in load_profile(ck)["roles"], entry
    for ck in names:
        assert load_profile(ck)["version"] == PROFILE_VERSION


def test_relu_inputs_nonnegative_and_zero_rich_unlike_gaussian() -> None:
    gauss = sm.synthetic_stats("transformer-v1").section("input_values")
    assert 0.4 < gauss["negative_fraction"] < 0.6 and gauss["zero_fraction"] == 0
    for ck, role in (("vgg16", "conv"), ("mobilenetv2", "conv_project"), ("mobilenetv2", "dwconv")):
        x = ProfileStats(ck, role, "t", 64).section("input_values")
        assert x["negative_fraction"] == 0 and x["zero_fraction"] > 0.2, (ck, role, x)
    # Softmax probabilities of causal attention: non-negative, the future keys exactly zero.
    p = ProfileStats("smollm2", "attn_av", "t", 64).section("input_values")
    assert p["negative_fraction"] == 0 and p["zero_fraction"] > 0.4


def test_llm_tensors_heavy_tailed_unlike_gaussian() -> None:
    gauss = sm.synthetic_stats("transformer-v1")
    assert abs(gauss.section("weight_values")["excess_kurtosis"]) < 0.1       # N(0, 0.02^2): kurtosis 3
    w = ProfileStats("smollm2", "attn_qkv", "t", 64).section("weight_values")
    assert w["excess_kurtosis"] > 1.0
    x = ProfileStats("smollm2", "attn_qkv", "t", 64).section("input_values")    # RMSNorm outputs with outliers
    assert x["excess_kurtosis"] > 10 * max(1.0, gauss.section("input_values")["excess_kurtosis"])
    assert x["max_abs_over_std"] > 2 * gauss.section("input_values")["max_abs_over_std"]


def test_measured_profile_moves_bit_level_models() -> None:
    """The same statistics on a ReLU conv profile and on the Gaussian profile: ReLU inputs have
    all-zero high-order slices without any compression trick, and need fewer SBQ terms."""
    relu_stats, gauss_stats = ProfileStats("vgg16", "conv", "t", 256), sm.synthetic_stats("transformer-v1")
    relu = sm.build_work_model("panacea", {}, relu_stats).describe()
    gauss = sm.build_work_model("panacea", {}, None).describe()
    assert relu["provenance"] == "measured-profile" and gauss["provenance"] == "synthetic"
    zero_only = [s.section("panacea")["act_vector_sparsity_variants"]["zero_only"] for s in (relu_stats, gauss_stats)]
    assert zero_only[0] > 0.5 and zero_only[1] == 0
    sbq = {"budget": 4, "comp": 4, "depth": 4}
    assert relu_stats.section("sbq", sbq)["terms_per_input_see"] < 0.5 * gauss_stats.section("sbq", sbq)["terms_per_input_see"]
    assert relu["mean_group_cycles"] != pytest.approx(gauss["mean_group_cycles"], rel=0.05)


def test_shipped_specs_are_covered_by_every_default_role() -> None:
    """Every work/format-model setting in specs/ builds from every role the families map to."""
    from sparsity_models.families import resolve

    roles = {(ck.partition(":")[0], ck.partition(":")[2] or role)
             for table in FAMILY_SOURCES.values() for role, ck in table.items()}
    for family, params in spec_settings(ROOT / "specs"):
        if not resolve(family).uses_stats:
            continue
        for ck, role in sorted(roles):
            stats = ProfileStats(ck, role, "t", 96)
            sm.build_work_model(family, params, stats).cycles_per_step(np.array([16]))
            sm.build_format_model(family, params, stats).bits_per_element("Weights")


def test_missing_setting_raises_and_exact_mode_needs_tensors() -> None:
    stats = ProfileStats("minilm", "attn_qkv", "t", 384)
    with pytest.raises(ProfileMissing):
        stats.section("bitcols", {"group_size": 48, "sub_group": 8})
    with pytest.raises(InputError, match="exact"):
        sm.build_work_model("pragmatic", {"mode": "exact"}, stats)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=60), st.integers(1, 64))
def test_distribution_gives_the_tiles_expected_max(values: list[int], n: int) -> None:
    tiles = np.array(values, np.float64).reshape(-1, 1)
    dist = Distribution.of(tiles)
    assert expected_max(dist, np.array([n]))[0] == pytest.approx(expected_max(tiles, np.array([n]))[0])
    a, b = MeasuredWorkModel("x", 4, tiles), MeasuredWorkModel("x", 4, dist)
    assert b.cycles_per_step(np.array([4 * n]))[0] == pytest.approx(a.cycles_per_step(np.array([4 * n]))[0])
    assert b.busy == pytest.approx(a.busy)


def test_source_for_reports_unmatched_and_generic_roles() -> None:
    assert source_for("gpt2", "ffn_down") == ("minilm", "ffn_down", False)
    assert source_for("torchvision.resnet", "conv_pw") == ("mobilenetv2", "conv_project", False)
    assert source_for("vit", "head") is None                 # no measured ViT classifier
    assert source_for(None, "attn_qk") == ("minilm", "attn_qk", True)


def _spec(tmp_path: Path, work: str):
    text = TINY.read_text().replace("work_model: {family: dense}", f"work_model: {work}")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_spec(path)


def _toy(model_type: str) -> LayerGraph:
    g = LayerGraph("toy", {"model_type": model_type})
    g.add_layer("encoder.layer.0.attention.self.query", gemm(32, 16, 64), "linear",
                weight_name="encoder.layer.0.attention.self.query.weight")
    g.add_layer("encoder.layer.0.attention.self.qk", batched_matmul(2, 16, 16, 32), "matmul",
                inputs=["encoder.layer.0.attention.self.query"])
    g.add_layer("decoder.project_in", gemm(32, 16, 64), "linear", weight_name="decoder.project_in.weight")
    return g


def test_default_run_uses_profiles_and_names_synthetic_operands(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{family: pragmatic, group_size: 16}")
    cache = ResultCache(tmp_path / "c.sqlite")
    rep = run_model(spec, "toy", graph=_toy("bert"), cache=cache, search_options=FAST)
    prov = rep.summary()["provenance"]
    rows = {r["layer"]: r for r in rep.rows}
    assert rows["encoder.layer.0.attention.self.query"]["weights_stats"] == "profile:minilm/attn_qkv"
    assert rows["encoder.layer.0.attention.self.qk"]["inputs_stats"] == "profile:minilm/attn_qk"
    assert rows["decoder.project_in"]["role"] == "other"
    assert rows["decoder.project_in"]["weights_stats"] == "synthetic:transformer-v1"
    assert prov["counts"]["weights"] == {"measured": 0, "profile": 2, "synthetic": 1}
    assert prov["synthetic_layers"] == {"weights": ["decoder.project_in"], "inputs": ["decoder.project_in"]}
    assert prov["no_matching_role"] == [{"layer": "decoder.project_in", "role": "other"}]
    assert "1 layers have no matching measured role" in prov["note"]

    forced = run_model(spec, "toy", graph=_toy("bert"), weights="synthetic", cache=cache, search_options=FAST)
    fp = forced.summary()["provenance"]
    assert fp["counts"]["inputs"]["synthetic"] == 3 and fp["statistics"] == "synthetic" and not fp["no_matching_role"]


def test_checkpoint_weights_count_attention_matmuls_separately(tmp_path: Path) -> None:
    """Issue 12 item 6: with measured weights the attention matmuls are not counted as measured."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    save_file({"encoder.layer.0.attention.self.query.weight": rng.standard_normal((32, 64)).astype(np.float32),
               "decoder.project_in.weight": rng.standard_normal((32, 64)).astype(np.float32)},
              str(tmp_path / "w.safetensors"))
    spec = _spec(tmp_path, "{family: pragmatic, group_size: 16}")
    rep = run_model(spec, "toy", graph=_toy("bert"), weights=str(tmp_path / "w.safetensors"),
                    cache=ResultCache(tmp_path / "c.sqlite"), search_options=FAST)
    prov = rep.summary()["provenance"]
    rows = {r["layer"]: r for r in rep.rows}
    q = rows["encoder.layer.0.attention.self.query"]
    assert q["weights_stats"].startswith("checkpoint:") and q["inputs_stats"] == "synthetic:transformer-v1"
    assert rows["encoder.layer.0.attention.self.qk"]["weights_stats"] == "profile:minilm/attn_qk"
    assert prov["counts"]["weights"] == {"measured": 2, "profile": 1, "synthetic": 0}
    assert prov["counts"]["inputs"] == {"measured": 0, "profile": 1, "synthetic": 2}
    assert prov["synthetic_layers"]["inputs"] == ["encoder.layer.0.attention.self.query", "decoder.project_in"]
    assert prov["statistics"] == "checkpoint+measured-profile+synthetic"


def test_docs_tables_match_the_profiles() -> None:
    from sparsity_models.profiles.docs import DOC, render

    text = DOC.read_text(encoding="utf-8")
    assert render() in text, "run: python -m sparsity_models.profiles docs --write"


def test_every_builtin_model_gets_measured_profiles() -> None:
    """Every layer of every built-in model has a measured role, except the ones listed (reported as such)."""
    from sparsity_models.profiles import graph_stats
    from workloads.zoo import build_graph, known_models

    unmatched = {}
    for model in known_models():
        g = build_graph(model)
        stats, roles = graph_stats(g)
        assert all(not s.generic for s in stats.values()), model
        missing = sorted({roles[n] for n in g.names() if n not in stats})
        if missing:
            unmatched[model] = missing
    assert unmatched == {"deit-s": ["head"], "opt-350m": ["other"], "vit-b": ["head"], "vit-s": ["head"]}


def test_cache_keys_cover_tensor_parameters_and_profile_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import sparsity_models.profiles as prof
    from mapper.bitlevel import stats_identity
    from sparsity_models.cache import cache_key, tensor_digest

    a, b = torch.zeros(4, 4), torch.ones(4, 4)
    assert tensor_digest(a) != tensor_digest(b) and tensor_digest(a) != tensor_digest(a.double())
    assert cache_key(tensor_digest(a), "bbs", {"pruned_columns": 2}) != cache_key(tensor_digest(a), "bbs", {"pruned_columns": 4})
    ls = sm.LayerStats("x", torch.randn(8, 32), torch.randn(4, 32))
    other = sm.LayerStats("x", ls.weight, torch.randn(4, 32))          # same weights, other inputs
    assert stats_identity(ls) != stats_identity(other)
    p = ProfileStats("minilm", "attn_qkv", "t", 384)
    ident = stats_identity(p)
    assert ident != stats_identity(ProfileStats("minilm", "attn_qkv", "t", 768))
    assert load_profile("minilm")["digest"] in ident
    monkeypatch.setattr(prof, "PROFILE_VERSION", PROFILE_VERSION + 1)
    assert stats_identity(p) != ident
