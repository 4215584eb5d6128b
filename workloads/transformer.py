"""Layer graphs of transformer models (decoder LMs, BERT-style encoders, ViT) for one phase.

Shapes (GEMM convention ``Outputs[M,N] += Weights[M,K] * Inputs[K,N]``):

* A linear layer ``out_features x in_features`` is ``gemm(M=out, K=in, N=tokens)`` with
  ``tokens = batch * query_rows`` (``query_rows`` = ``seq_len`` in prefill, 1 in decode).
* Attention per layer is two batched matmuls with key/value heads folded into ``B``
  and the query heads that share one key/value head concatenated along ``N``
  (grouped-query attention reuses K and V across them):

  - ``qk``: scores[keys, q] += K[keys, head_dim] * Q^T[head_dim, q]:
    ``batched_matmul(B=batch*kv_heads, M=keys, N=heads/kv_heads*query_rows, K=head_dim)``
  - ``av``: out[head_dim, q] += V^T[head_dim, keys] * P^T[keys, q]:
    ``batched_matmul(B=batch*kv_heads, M=head_dim, N=heads/kv_heads*query_rows, K=keys)``

  The cached K/V are the ``Weights`` operand (stationary), queries stream as ``Inputs``.
  ``keys`` = ``kv_len + seq_len`` in prefill and ``kv_len + 1`` in decode (the new token
  attends to the cache and to itself). Causal masking is not exploited: a prefill
  computes the full ``seq_len x keys`` score block, as a dense kernel does.

Embeddings, norms, activations, softmax, rotary embeddings and residual adds carry no
MACs here and are not layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workloads.graph import LayerGraph
from workloads.hf_config import TransformerConfig
from workloads.problem import batched_matmul, conv2d, gemm


@dataclass(frozen=True)
class _Names:
    """Module names of one model family (relative to a block unless noted)."""

    block: str                       # block prefix, formatted with i
    attn: str                        # attention module (qk/av are named under it)
    qkv: tuple[str, ...]             # ("c_attn",) fused, or (q, k, v)
    attn_out: str
    mlp: tuple[str, ...]             # (up, down) or (gate, up, down) when gated
    gated: bool = False
    parallel: bool = False           # attention and MLP read the same block input (Phi)
    transposed: bool = False         # weights stored [in, out] (GPT-2 Conv1D)
    embed: str | None = None         # token embedding tensor (top level), for a tied LM head


_NAMES: dict[str, _Names] = {
    "gpt2": _Names("h.{i}", "attn", ("attn.c_attn",), "attn.c_proj", ("mlp.c_fc", "mlp.c_proj"),
                   transposed=True, embed="wte.weight"),
    "opt": _Names("decoder.layers.{i}", "self_attn", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                  "self_attn.out_proj", ("fc1", "fc2"), embed="decoder.embed_tokens.weight"),
    "llama": _Names("layers.{i}", "self_attn", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                    "self_attn.o_proj", ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"), gated=True,
                    embed="embed_tokens.weight"),
    "phi": _Names("layers.{i}", "self_attn", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                  "self_attn.dense", ("mlp.fc1", "mlp.fc2"), parallel=True, embed="embed_tokens.weight"),
    "bert": _Names("encoder.layer.{i}", "attention.self", ("attention.self.query", "attention.self.key",
                   "attention.self.value"), "attention.output.dense", ("intermediate.dense", "output.dense")),
    "vit": _Names("encoder.layer.{i}", "attention.attention", ("attention.attention.query", "attention.attention.key",
                  "attention.attention.value"), "attention.output.dense", ("intermediate.dense", "output.dense")),
}
_NAMES["deit"] = _NAMES["vit"]


@dataclass(frozen=True)
class Phase:
    """Token counts of one pass: ``query_rows`` new tokens per sequence attending to ``keys`` keys."""

    name: str          # "prefill" | "decode"
    batch: int         # sequences (or images)
    query_rows: int    # tokens per sequence that run through the linear layers
    keys: int          # keys/values each query attends to


class _Builder:
    """Appends layers to a graph and tracks edges by producer names."""

    def __init__(self, graph: LayerGraph, names: _Names) -> None:
        self.g = graph
        self.n = names

    def linear(self, name: str, out_f: int, in_f: int, tokens: int, inputs: list[str], weight: str | None = None,
               transposed: bool | None = None) -> list[str]:
        self.g.add_layer(
            name, gemm(M=out_f, N=tokens, K=in_f), "linear", inputs=inputs,
            weight_name=weight or f"{name}.weight",
            weight_transposed=self.n.transposed if transposed is None else transposed,
        )
        return [name]


def vision_tokens(cfg: TransformerConfig, image_size: int) -> tuple[int, int]:
    """(patch grid side, tokens per image) for a ViT/DeiT at ``image_size`` pixels."""
    assert cfg.patch_size is not None
    grid = (image_size - cfg.patch_size) // cfg.patch_size + 1
    extra = 2 if cfg.family == "deit" else 1  # [CLS] (+ distillation token for DeiT)
    return grid, grid * grid + extra


def transformer_graph(cfg: TransformerConfig, model: str, phase: Phase, *, include_lm_head: bool = False,
                      image_size: int | None = None, meta: dict[str, Any] | None = None) -> LayerGraph:
    """Build the layer graph of ``cfg`` for ``phase`` (validated by the caller)."""
    names = _NAMES[cfg.family]
    g = LayerGraph(model, meta)
    b = _Builder(g, names)
    tokens = phase.batch * phase.query_rows
    h, d = cfg.hidden, cfg.head_dim
    q_dim, kv_dim = cfg.heads * d, cfg.kv_heads * d
    group = cfg.heads // cfg.kv_heads

    prev: list[str] = []
    if cfg.is_vision:
        grid = vision_tokens(cfg, image_size or cfg.image_size or 224)[0]
        name = "embeddings.patch_embeddings.projection"
        g.add_layer(name, conv2d(N=phase.batch, C=cfg.num_channels or 3, M=h, R=cfg.patch_size, S=cfg.patch_size,
                                 P=grid, Q=grid, stride=cfg.patch_size), "conv", weight_name=f"{name}.weight")
        prev = [name]
    if cfg.embed_proj_dim is not None:  # OPT-350m: embeddings are narrower than the blocks
        prev = b.linear("decoder.project_in", h, cfg.embed_proj_dim, tokens, prev)

    for i in range(cfg.layers):
        blk = names.block.format(i=i)
        block_in = prev
        if len(names.qkv) == 1:  # fused QKV
            qkv = b.linear(f"{blk}.{names.qkv[0]}", q_dim + 2 * kv_dim, h, tokens, block_in)
            q_src = k_src = v_src = qkv
        else:
            q_src = b.linear(f"{blk}.{names.qkv[0]}", q_dim, h, tokens, block_in)
            k_src = b.linear(f"{blk}.{names.qkv[1]}", kv_dim, h, tokens, block_in)
            v_src = b.linear(f"{blk}.{names.qkv[2]}", kv_dim, h, tokens, block_in)
        attn = f"{blk}.{names.attn}"
        bmm_b, bmm_n = phase.batch * cfg.kv_heads, group * phase.query_rows
        g.add_layer(f"{attn}.qk", batched_matmul(B=bmm_b, M=phase.keys, N=bmm_n, K=d), "matmul",
                    inputs=dict.fromkeys(q_src + k_src))
        g.add_layer(f"{attn}.av", batched_matmul(B=bmm_b, M=d, N=bmm_n, K=phase.keys), "matmul",
                    inputs=dict.fromkeys([f"{attn}.qk"] + v_src))
        attn_out = b.linear(f"{blk}.{names.attn_out}", h, q_dim, tokens, [f"{attn}.av"])

        mlp_in = block_in if names.parallel else attn_out
        if names.gated:
            gate = b.linear(f"{blk}.{names.mlp[0]}", cfg.intermediate, h, tokens, mlp_in)
            up = b.linear(f"{blk}.{names.mlp[1]}", cfg.intermediate, h, tokens, mlp_in)
            mlp_out = b.linear(f"{blk}.{names.mlp[2]}", h, cfg.intermediate, tokens, gate + up)
        else:
            up = b.linear(f"{blk}.{names.mlp[0]}", cfg.intermediate, h, tokens, mlp_in)
            mlp_out = b.linear(f"{blk}.{names.mlp[1]}", h, cfg.intermediate, tokens, up)
        prev = attn_out + mlp_out if names.parallel else mlp_out

    if cfg.embed_proj_dim is not None:
        prev = b.linear("decoder.project_out", cfg.embed_proj_dim, h, tokens, prev)
    if cfg.family == "bert":  # BertModel's pooler: dense over the [CLS] token of each sequence
        b.linear("pooler.dense", h, h, phase.batch, prev)
    if cfg.is_vision and cfg.num_labels:
        heads = ("cls_classifier", "distillation_classifier") if cfg.family == "deit" else ("classifier",)
        for head in heads:
            b.linear(head, cfg.num_labels, h, phase.batch, prev, transposed=False)
    if include_lm_head and cfg.vocab:
        # Next-token logits of the last position of each sequence (what generation needs).
        k = cfg.embed_proj_dim or h
        weight = names.embed if cfg.tied_lm_head and names.embed else "lm_head.weight"
        b.linear("lm_head", cfg.vocab, k, phase.batch, prev, weight=weight,
                 transposed=False)
    return g
