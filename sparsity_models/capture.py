"""Operands of real layers on real inputs: weights plus calibration input rows per layer.

Used by the profile builder (``sparsity_models.profiles``). Inputs are real: the
calibration text shipped in ``sparsity_models/data/calibration.txt`` for language
models, scikit-image's bundled sample photographs (``skimage.data``, no download) for
image models. Rows are sampled evenly over every forward pass (not the first ones seen),
so a conv's rows cover all image positions.

Operand conventions (``Out[M, N] += W[M, K] x[K, N]``): a conv's input rows are its
unfolded patches (``K = C R S``); for attention ``Q K^T`` the Weights are the keys
``[keys, head_dim]`` and the Inputs the queries; for ``P V`` the Weights are ``V^T``
``[head_dim, keys]`` and the Inputs the softmax rows ``[queries, keys]`` (heads stacked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "cat", "retina")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Operands:
    """One measured layer: its role, weight ``[M, ...]`` and input rows ``[T, K]`` (None: not captured)."""

    name: str
    role: str
    weight: torch.Tensor
    inputs: torch.Tensor | None
    note: str = ""


def evenly(x: torch.Tensor, n: int) -> torch.Tensor:
    """At most ``n`` rows of ``x``, evenly spaced."""
    if x.shape[0] <= n:
        return x
    return x[torch.linspace(0, x.shape[0] - 1, n).round().long()]


def sample_images(size: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                  names: Sequence[str] = IMAGES) -> torch.Tensor:
    """scikit-image sample photographs, centre-cropped square, resized to ``size``, normalized: ``[N, 3, size, size]``."""
    import skimage.data
    from skimage.transform import resize

    out = []
    for n in names:
        img = getattr(skimage.data, n)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        img = img[..., :3]
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        img = resize(img, (size, size), anti_aliasing=True, preserve_range=True).astype(np.float32) / 255.0
        out.append((img - np.asarray(mean, np.float32)) / np.asarray(std, np.float32))
    return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())


def conv_rows(x: torch.Tensor, weight_shape: Sequence[int], stride: Sequence[int], padding: Sequence[int],
              dilation: Sequence[int], groups: int) -> torch.Tensor:
    """Unfolded input patches ``[positions, C/groups * R * S]`` of a conv (the first group for grouped convs)."""
    if groups > 1:
        x = x[:, : x.shape[1] // groups]
    cols = torch.nn.functional.unfold(x, tuple(weight_shape[2:]), dilation=tuple(dilation), padding=tuple(padding),
                                      stride=tuple(stride))
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def capture_modules(model: nn.Module, run: Callable[[nn.Module], None], modules: dict[str, tuple[nn.Module, str]],
                    max_rows: int, per_call: int) -> list[Operands]:
    """Weights and input rows of ``modules`` (name -> (module, role)) while ``run(model)`` runs.

    Each call of a module contributes at most ``per_call`` evenly spaced rows; at the end
    ``max_rows`` are kept, evenly spaced. Linear and Conv2d modules only.
    """
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    handles = []

    def hook_for(name: str, mod: nn.Module) -> Callable:
        def hook(_m: nn.Module, args: tuple) -> None:
            x = args[0].detach().float()
            if isinstance(mod, nn.Conv2d) and mod.groups > 1 and mod.groups == mod.weight.shape[0]:
                # depthwise: every channel's R*S patches are rows of one shared [T, R*S] input
                r = conv_rows(x.reshape(-1, 1, *x.shape[2:]), (1, 1, *mod.kernel_size), mod.stride, mod.padding,
                              mod.dilation, 1)
            elif isinstance(mod, nn.Conv2d):
                r = conv_rows(x, mod.weight.shape, mod.stride, mod.padding, mod.dilation, mod.groups)
            else:
                r = x.reshape(-1, x.shape[-1])
            rows[name].append(evenly(r, per_call))
        return hook

    for name, (mod, _) in modules.items():
        handles.append(mod.register_forward_pre_hook(hook_for(name, mod)))
    model.eval()
    try:
        with torch.no_grad():
            run(model)
    finally:
        for h in handles:
            h.remove()
    out = []
    for name, (mod, role) in modules.items():
        x = evenly(torch.cat(rows[name]), max_rows) if rows[name] else None
        w = mod.weight.detach().float().clone()
        if isinstance(mod, nn.Conv2d) and mod.groups > 1 and mod.groups == w.shape[0]:
            w = w.reshape(w.shape[0], -1)   # depthwise: one row of R*S per channel; inputs are single-channel patches
        out.append(Operands(name, role, w, x))
    return out


def attention_operands(name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, kv_heads: int,
                       causal: bool) -> tuple[Operands, Operands]:
    """``qk`` and ``av`` operands of one attention call from its projected ``q [T, H*d]``, ``k``, ``v [T, Hkv*d]``."""
    t = q.shape[0]
    d = q.shape[1] // heads
    qh = q.reshape(t, heads, d).transpose(0, 1)          # [H, T, d]
    kh = k.reshape(t, kv_heads, d).transpose(0, 1)       # [Hkv, T, d]
    vh = v.reshape(t, kv_heads, d).transpose(0, 1)
    rep = heads // kv_heads
    scores = qh @ kh.repeat_interleave(rep, 0).transpose(1, 2) / math.sqrt(d)
    if causal:
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    p = torch.softmax(scores, dim=-1)
    qk = Operands(f"{name}.qk", "attn_qk", kh.reshape(-1, d), qh.reshape(-1, d))
    av = Operands(f"{name}.av", "attn_av", vh.transpose(1, 2).reshape(-1, t), p.reshape(-1, t))
    return qk, av


def stack_operands(parts: list[Operands], max_rows: int, max_weight_rows: int) -> Operands:
    """One Operands from several calls of the same layer (rows stacked, evenly subsampled)."""
    first = parts[0]
    w = evenly(torch.cat([p.weight for p in parts]), max_weight_rows)
    x = evenly(torch.cat([p.inputs for p in parts if p.inputs is not None]), max_rows)
    return Operands(first.name, first.role, w, x, first.note)


def onnx_operands(path: str, feeds: list[dict[str, np.ndarray]], roles: dict[str, str], max_rows: int,
                  max_weight_rows: int = 4096) -> list[Operands]:
    """Weights and input rows of the layers of an ONNX model run by onnxruntime on each of ``feeds``.

    ``roles``: layer name (``workloads.onnx_graph`` naming) -> role; layers not listed are
    skipped. Input rows (and the activation operand of an attention matmul) of all runs are
    pooled and evenly subsampled.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from sparsity_models.loaders import onnx_weight
    from workloads.onnx_graph import _is_layer, graph_from_onnx

    model = onnx.load(path)
    layers = graph_from_onnx(path).layers()
    inits = {i.name: i for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if _is_layer(n, inits)]
    chosen = [(n, lay) for n, lay in zip(nodes, layers) if lay.name in roles]
    known = {o.name for o in model.graph.output}
    for t in dict.fromkeys(t for n, _ in chosen for t in n.input[:2] if t not in inits):
        if t not in known:
            model.graph.output.append(helper.make_empty_tensor_value_info(t))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    rows: dict[str, list[torch.Tensor]] = {lay.name: [] for _, lay in chosen}
    wrows: dict[str, list[torch.Tensor]] = {lay.name: [] for _, lay in chosen}
    for feed in feeds:
        values = dict(zip(names, sess.run(names, feed)))
        for node, lay in chosen:
            if lay.kind == "matmul":
                a = torch.from_numpy(values[node.input[0]]).float()
                b = torch.from_numpy(values[node.input[1]]).float()
                rows[lay.name].append(evenly(a.reshape(-1, a.shape[-1]), max_rows))
                wrows[lay.name].append(evenly(b.transpose(-1, -2).reshape(-1, b.shape[-2]), max_weight_rows))
                continue
            data = node.input[0] if node.input[0] not in inits else node.input[1]
            rows[lay.name].append(evenly(_layer_rows(node, torch.from_numpy(values[data]).float(), inits), max_rows))
    out = []
    for node, lay in chosen:
        x = evenly(torch.cat(rows[lay.name]), max_rows)
        if lay.kind == "matmul":
            w = evenly(torch.cat(wrows[lay.name]), max_weight_rows)
        else:
            w = torch.from_numpy(onnx_weight(node, inits, numpy_helper.to_array))
            if node.op_type == "Conv" and w.shape[1] == 1 and int(_attrs(node).get("group", 1)) == w.shape[0] > 1:
                w = w.reshape(w.shape[0], -1)    # depthwise: one row of R*S per channel
        out.append(Operands(lay.name, roles[lay.name], w, x))
    return out


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _layer_rows(node: Any, x: torch.Tensor, inits: dict) -> torch.Tensor:
    """Input rows ``[T, K]`` of a Conv/Gemm/MatMul node with an initializer weight."""
    if node.op_type != "Conv":
        return x.reshape(-1, x.shape[-1]) if node.input[0] not in inits else x.reshape(x.shape[0], -1).T
    at = _attrs(node)
    w_shape = list(inits[node.input[1]].dims)
    pads = list(at.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        x = torch.nn.functional.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        pads = [0, 0, 0, 0]
    groups = int(at.get("group", 1))
    stride, dilation = at.get("strides", [1, 1]), at.get("dilations", [1, 1])
    if groups > 1 and groups == w_shape[0]:
        return conv_rows(x.reshape(-1, 1, *x.shape[2:]), (1, 1, *w_shape[2:]), stride, pads[:2], dilation, 1)
    return conv_rows(x, w_shape, stride, pads[:2], dilation, groups)
