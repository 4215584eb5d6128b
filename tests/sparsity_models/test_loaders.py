"""Checkpoint loaders on tiny files written here, one per format (no network, no big files)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsity_models.loaders import (
    load_checkpoint, load_ct2, load_gguf, load_keras_h5, load_onnx, load_safetensors, load_torch,
)
from sparsity_models.sources import open_source
from workloads.yamlio import InputError

RNG = np.random.default_rng(0)


def _w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def test_torch_state_dict_keeps_layer_weights_only(tmp_path: Path) -> None:
    net = torch.nn.ModuleDict({"embed_tokens": torch.nn.Embedding(10, 4), "fc": torch.nn.Linear(4, 6),
                               "norm": torch.nn.LayerNorm(6), "conv": torch.nn.Conv2d(3, 5, 3)})
    p = tmp_path / "m.pth"
    torch.save({"state_dict": net.state_dict()}, p)
    ck = load_torch(p)
    assert sorted(ck.tensors) == ["conv", "fc"]              # embedding and norm left out
    assert np.array_equal(ck.tensors["fc"], net["fc"].weight.detach().numpy())
    assert ck.tensors["conv"].shape == (5, 3, 3, 3)


def test_safetensors(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    w = _w(6, 4)
    save_file({"enc.fc.weight": w, "enc.fc.bias": _w(6), "enc.norm.weight": _w(4, 4)}, str(tmp_path / "m.safetensors"))
    ck = load_safetensors(tmp_path / "m.safetensors")
    assert list(ck.tensors) == ["enc.fc"] and np.array_equal(ck.tensors["enc.fc"], w)


def test_onnx_initializers_in_torch_layout(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="extra bitloop[onnx] not installed")
    from onnx import TensorProto, helper, numpy_helper

    wc, wg, wm = _w(4, 3, 3, 3), _w(5, 4), _w(5, 7)   # conv [M,C,R,S]; Gemm transB=1 stores [M,K]; MatMul [K,M]
    nodes = [helper.make_node("Conv", ["x", "wc"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.weight"], ["g"], name="/fc/Gemm", transB=1),
             helper.make_node("MatMul", ["g", "wm"], ["y"], name="/proj/MatMul")]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])],
                              [numpy_helper.from_array(wc, "wc"), numpy_helper.from_array(wg, "fc.weight"),
                               numpy_helper.from_array(wm, "wm")])
    p = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(p))
    ck = load_onnx(p)
    assert np.array_equal(ck.tensors["wc"], wc)
    assert np.array_equal(ck.tensors["fc"], wg)                # .weight suffix dropped, already [M, K]
    assert np.array_equal(ck.tensors["wm"], wm.T)              # MatMul weight [K, M] -> [M, K]
    assert ck.tensor_name("fc") == "fc.weight" and ck.tensor_name("wm") == "wm"
    src = open_source(p)
    assert src.weight_name("wm") == "wm" and torch.equal(src.weight("wm"), torch.from_numpy(wm.T))


def _q4_1_reference(x: np.ndarray) -> np.ndarray:
    """Q4_1 by hand (ggml): per 32-value block m = min, d = (max - min) / 15 (both fp16),
    q = round((x - m) / d) in 0..15, value = d q + m."""
    blocks = x.reshape(-1, 32).astype(np.float32)
    lo, hi = blocks.min(1, keepdims=True), blocks.max(1, keepdims=True)
    d = ((hi - lo) / 15).astype(np.float16).astype(np.float32)
    m = lo.astype(np.float16).astype(np.float32)
    q = np.clip(np.round((blocks - lo) / np.where(d == 0, 1, (hi - lo) / 15)), 0, 15)
    return (q * d + m).reshape(x.shape)


def test_gguf_dequantizes_q4_1_and_keeps_f32(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf", reason="extra bitloop[gguf] not installed")
    from gguf.quants import quantize

    w32, w4 = _w(6, 32), _w(4, 64)
    p = tmp_path / "m.gguf"
    wr = gguf.GGUFWriter(str(p), "llama")
    wr.add_tensor("blk.0.attn_q.weight", w32)
    q = quantize(w4, gguf.GGMLQuantizationType.Q4_1)
    wr.add_tensor("blk.0.ffn_up.weight", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q4_1)
    wr.add_tensor("blk.0.attn_norm.weight", _w(32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    ck = load_gguf(p)
    assert sorted(ck.tensors) == ["blk.0.attn_q", "blk.0.ffn_up"]
    assert np.array_equal(ck.tensors["blk.0.attn_q"], w32) and ck.notes["blk.0.attn_q"] == "F32"
    got = ck.tensors["blk.0.ffn_up"]
    assert got.shape == (4, 64) and ck.notes["blk.0.ffn_up"] == "Q4_1"
    step = (w4.reshape(-1, 32).max(1) - w4.reshape(-1, 32).min(1)) / 15
    assert np.all(np.abs(got - w4).reshape(-1, 32) <= step[:, None] / 2 + 1e-2)   # rounding + fp16 scales
    assert np.abs(got - _q4_1_reference(w4)).max() < 2e-3
    assert all(len(np.unique(b)) <= 16 for b in got.reshape(-1, 32))   # a 4-bit grid per block


def _ct2_string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def test_ctranslate2_model_bin(tmp_path: Path) -> None:
    w16, w8 = _w(3, 4).astype(np.float16), RNG.integers(-127, 128, (2, 4)).astype(np.int8)
    scale = np.array([10.0, 20.0], np.float32)
    variables = [("decoder/layer_0/ffn/linear_0/weight", w16, 4), ("decoder/layer_0/ffn/linear_1/weight", w8, 1),
                 ("decoder/layer_0/ffn/linear_1/weight_scale", scale, 0),
                 ("decoder/embeddings/weight", _w(5, 4), 0)]
    blob = struct.pack("<I", 6) + _ct2_string("TestSpec") + struct.pack("<I", 1) + struct.pack("<I", len(variables))
    for name, arr, dtype_id in variables:
        blob += _ct2_string(name) + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<I", d) for d in arr.shape)
        blob += struct.pack("<B", dtype_id) + struct.pack("<I", arr.nbytes) + arr.tobytes()
    blob += struct.pack("<I", 0)
    (tmp_path / "model.bin").write_bytes(blob)
    ck = load_checkpoint(tmp_path)                               # the folder holding model.bin
    assert ck.format == "ct2" and sorted(ck.tensors) == ["decoder/layer_0/ffn/linear_0", "decoder/layer_0/ffn/linear_1"]
    assert np.array_equal(ck.tensors["decoder/layer_0/ffn/linear_0"], w16.astype(np.float32))
    assert np.allclose(ck.tensors["decoder/layer_0/ffn/linear_1"], w8 / scale[:, None])
    (tmp_path / "bad.bin").write_bytes(blob[:40])
    with pytest.raises(InputError):
        load_ct2(tmp_path / "bad.bin")


def test_keras_h5_kernels_transposed(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py", reason="extra bitloop[keras] not installed")
    conv, dense = _w(3, 3, 2, 4), _w(5, 6)                   # Keras: [R, S, C, M] and [K, M]
    with h5py.File(tmp_path / "m.weights.h5", "w") as fh:
        fh["block1/layers/conv2d/vars/0"] = conv
        fh["block1/layers/conv2d/vars/1"] = _w(4)
        fh["head/vars/0"] = dense
    ck = load_keras_h5(tmp_path / "m.weights.h5")
    assert np.array_equal(ck.tensors["block1/layers/conv2d"], conv.transpose(3, 2, 0, 1))
    assert np.array_equal(ck.tensors["head"], dense.T)


def test_unknown_or_missing_files_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "w.xyz").write_text("x")
    with pytest.raises(InputError, match="unknown checkpoint type"):
        load_checkpoint(tmp_path / "w.xyz")
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "none.pth")
    (tmp_path / "broken.pth").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="cannot read a torch state dict"):
        load_torch(tmp_path / "broken.pth")
