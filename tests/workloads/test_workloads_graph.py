"""LayerGraph container: building, ordering, dedup, tables, tensor-name lookup."""

from __future__ import annotations

import pytest

from workloads.graph import Layer, LayerGraph, problem_label
from workloads.problem import WEIGHTS, batched_matmul, conv2d, gemm
from workloads.yamlio import InputError


def _toy() -> LayerGraph:
    g = LayerGraph("toy", {"phase": "prefill"})
    g.add_layer("a", gemm(M=8, N=4, K=16), "linear", weight_name="a.weight")
    g.add_layer("b", gemm(M=8, N=4, K=16), "linear", inputs=["a"], weight_name="b.weight")
    g.add_layer("qk", batched_matmul(B=2, M=4, N=4, K=4), "matmul", inputs=["a", "b"])
    g.add_layer("c", conv2d(N=1, C=4, M=2, R=3, S=3, P=5, Q=5, stride=2), "conv", inputs=["qk"],
                weight_name="c.weight", count=3)
    return g


def test_layers_are_in_insertion_order_and_edges_follow_inputs():
    g = _toy()
    assert [layer.name for layer in g.layers()] == ["a", "b", "qk", "c"] == g.names()
    assert g.predecessors("qk") == ["a", "b"]
    assert g.successors("a") == ["b", "qk"]
    assert isinstance(g.layer("c"), Layer) and g.layer("c").count == 3
    assert len(g) == 4 and "qk" in g and "zz" not in g


def test_macs_and_weights_include_count():
    g = _toy()
    # a, b: 8*4*16 = 512 each; qk: 2*4*4*4 = 128; c: 3 repeats of 4*2*3*3*5*5 = 1800 -> 5400.
    assert g.total_macs() == 512 + 512 + 128 + 5400
    # weights: a, b 8*16 = 128 each; c: 3 * (4*2*3*3) = 216; the matmul has none.
    assert g.weight_elements() == 128 + 128 + 216
    assert g.layer("qk").weight_elements == 0
    assert g.layer("c").problem.tile_size(WEIGHTS) == 72


def test_unique_problems_groups_identical_shapes_in_first_use_order():
    groups = _toy().unique_problems()
    assert [names for _, names in groups] == [["a", "b"], ["qk"], ["c"]]
    assert groups[0][0].bounds == {"M": 8, "N": 4, "K": 16}


def test_rows_are_plain_dicts_and_dataframe_works():
    g = _toy()
    rows = g.rows()
    assert rows[0] == {
        "index": 0, "layer": "a", "kind": "linear", "problem": "GEMM(M=8,N=4,K=16)", "count": 1, "macs": 512,
        "weight_name": "a.weight", "weight_elements": 128, "inputs": "", "M": 8, "N": 4, "K": 16,
    }
    assert rows[2]["inputs"] == "a;b" and rows[2]["weight_name"] is None
    assert rows[3]["Wstride"] == 2 and rows[3]["macs"] == 5400
    df = g.to_dataframe()
    assert list(df["layer"]) == ["a", "b", "qk", "c"] and int(df["macs"].sum()) == g.total_macs()


def test_problem_label_shows_non_unit_coefficients():
    assert problem_label(conv2d(N=1, C=2, M=3, R=1, S=1, P=4, Q=4, stride=2)).endswith("Wstride=2,Hstride=2)")
    assert problem_label(gemm(M=1, N=2, K=3)) == "GEMM(M=1,N=2,K=3)"


def test_layer_for_tensor_tolerates_task_head_prefixes():
    g = LayerGraph("m")
    g.add_layer("encoder.layer.0.attention.self.query", gemm(M=4, N=4, K=4), "linear",
                weight_name="encoder.layer.0.attention.self.query.weight")
    g.add_layer("lm_head", gemm(M=4, N=1, K=4), "linear", weight_name="wte.weight")
    assert g.layer_for_tensor("encoder.layer.0.attention.self.query.weight") == "encoder.layer.0.attention.self.query"
    assert g.layer_for_tensor("bert.encoder.layer.0.attention.self.query.weight") == "encoder.layer.0.attention.self.query"
    assert g.layer_for_tensor("encoder.layer.0.attention.self.query") == "encoder.layer.0.attention.self.query"
    assert g.layer_for_tensor("transformer.wte.weight") == "lm_head"
    assert g.layer_for_tensor("encoder.layer.0.attention.self.query.bias") is None


def test_building_mistakes_are_rejected():
    g = _toy()
    with pytest.raises(ValueError, match="duplicate"):
        g.add_layer("a", gemm(M=1, N=1, K=1), "linear")
    with pytest.raises(ValueError, match="kind"):
        g.add_layer("x", gemm(M=1, N=1, K=1), "pool")
    with pytest.raises(ValueError, match="unknown layer"):
        g.add_layer("y", gemm(M=1, N=1, K=1), "linear", inputs=["nope"])
    assert "y" not in g  # nothing half-added
    with pytest.raises(ValueError, match="no weight"):
        g.add_layer("z", batched_matmul(B=1, M=1, N=1, K=1), "matmul", weight_name="z.weight")
    with pytest.raises(InputError, match="no layer named"):
        g.layer("missing")
