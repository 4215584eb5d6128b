"""Layer roles: what a layer computes and what feeds it, the key that matches a target
model's layers to measured statistics.

A role names the weight's job and the kind of activation the layer reads (LayerNorm
output, GELU output, ReLU output, pixels, softmax probabilities, ...), because those decide
the bit-level statistics. :func:`graph_roles` assigns roles to the layers of a
``workloads.graph.LayerGraph`` from module names, layer kinds and the graph's edges; an
ONNX graph carries the roles its builder found in ``graph.meta['roles']``.
"""

from __future__ import annotations

import re
from typing import Any

ROLES: dict[str, str] = {
    "attn_qkv": "attention Q/K/V projection (input: LayerNorm/RMSNorm output)",
    "attn_out": "attention output projection (input: attention context)",
    "ffn_up": "FFN up/gate projection (input: LayerNorm/RMSNorm output)",
    "ffn_down": "FFN down projection (input: GELU/SiLU/ReLU output)",
    "attn_qk": "attention scores Q K^T (Weights = K, Inputs = Q: activations on both sides)",
    "attn_av": "attention context P V (Weights = V^T, Inputs = softmax probabilities)",
    "patch_embed": "patch-embedding conv on image pixels",
    "head": "classifier / pooler / LM head of a transformer (input: final norm output)",
    "conv_first": "first conv on image pixels",
    "conv": "k x k conv after ReLU",
    "conv_pw": "1x1 conv after ReLU (not after a depthwise conv)",
    "conv_project": "1x1 projection conv after depthwise conv + ReLU6",
    "conv_expand": "1x1 expansion conv on a linear bottleneck (no activation before it)",
    "dwconv": "depthwise conv after ReLU/ReLU6",
    "classifier": "fully connected classifier of a CNN (input: pooled ReLU features)",
    "other": "a layer whose role was not recognised",
}

# Module-name suffixes of transformer linear layers (workloads/transformer.py naming), checked in order.
_LINEAR_RULES: tuple[tuple[str, str], ...] = (
    (r"(^|\.)(lm_head|classifier|cls_classifier|distillation_classifier|pooler\.dense)$", "head"),
    (r"(attention\.self\.(query|key|value)|attention\.attention\.(query|key|value)|attn\.c_attn|self_attn\.[qkv]_proj)$",
     "attn_qkv"),
    (r"(attention\.output\.dense|attn\.c_proj|self_attn\.(o_proj|out_proj|dense))$", "attn_out"),
    (r"(intermediate\.dense|mlp\.(c_fc|gate_proj|up_proj|fc1)|\.fc1)$", "ffn_up"),
    (r"(\.output\.dense|mlp\.(c_proj|down_proj|fc2)|\.fc2)$", "ffn_down"),
)


_CNN_ROLES = ("conv_first", "conv", "conv_pw", "conv_project", "conv_expand", "dwconv", "classifier")


def linear_role(name: str) -> str:
    """Role of a transformer linear layer from its module name ('other' if none matches)."""
    for pattern, role in _LINEAR_RULES:
        if re.search(pattern, name):
            return role
    return "other"


def graph_roles(graph: Any) -> dict[str, str]:
    """Role of every layer of a LayerGraph (``graph.meta['roles']`` entries take precedence)."""
    given = dict(graph.meta.get("roles", {}))
    out: dict[str, str] = {}
    for layer in graph.layers():   # execution order: predecessors first
        out[layer.name] = given.get(layer.name) or _role(graph, layer, out)
    return out


def _role(graph: Any, layer: Any, known: dict[str, str]) -> str:
    name, kind = layer.name, layer.kind
    if kind == "matmul":
        return "attn_qk" if name.endswith(".qk") else "attn_av" if name.endswith(".av") else "other"
    if kind == "dwconv":
        return "dwconv"
    preds = [graph.layer(p) for p in graph.predecessors(name)]
    if kind == "conv":
        if "patch_embed" in name:
            return "patch_embed"
        if not preds:
            return "conv_first"
        if _is_1x1(layer):
            if any(p.kind == "dwconv" for p in preds):
                return "conv_project"
            if all(known.get(p.name) == "conv_project" for p in preds):
                return "conv_expand"
            return "conv_pw"
        return "conv"
    # linear: a CNN's fully connected layers read pooled conv features (or the previous FC's)
    if preds and all(known.get(p.name) in _CNN_ROLES for p in preds):
        return "classifier"
    return linear_role(name)


def _is_1x1(layer: Any) -> bool:
    b = layer.problem.bounds
    return int(b.get("R", 1)) == 1 and int(b.get("S", 1)) == 1
