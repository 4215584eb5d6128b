"""Read the layer-shape fields of a Hugging Face ``config.json`` into one normalized record.

Supported ``model_type`` values and the module layout they imply:

* ``gpt2``: fused QKV ``c_attn`` (GPT-2's Conv1D stores weights as [in, out]), GELU MLP.
* ``opt``: q/k/v/out projections, ``fc1``/``fc2``, optional ``project_in``/``project_out``.
* ``llama``: q/k/v/o projections (grouped-query attention via ``num_key_value_heads``),
  SwiGLU MLP ``gate_proj``/``up_proj``/``down_proj``. Yi uses this layout too.
* ``phi``: q/k/v projections and ``dense``, ``fc1``/``fc2``, attention and MLP in parallel.
* ``bert``: encoder with ``query``/``key``/``value``, ``intermediate``/``output`` and a pooler.
* ``vit`` / ``deit``: encoder over image patches (Conv2d patch embedding) and a classifier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from workloads.yamlio import InputError, as_int, parse_json_text, read_text

HF_MODEL_TYPES = ("gpt2", "opt", "llama", "phi", "bert", "vit", "deit")
# Bounds on config sizes (far beyond published models; they keep layer graphs and counts finite).
MAX_CONFIG_FIELD = 2**24      # hidden/intermediate sizes, heads, vocabulary, positions, pixels
MAX_LAYERS = 2**12            # transformer blocks


@dataclass(frozen=True)
class TransformerConfig:
    """Shapes of a transformer, independent of the config file's field names.

    Sizes are element counts. ``max_positions`` is set only for learned absolute
    position embeddings (a hard limit on context length); rotary models leave it None.
    """

    family: str                    # one of HF_MODEL_TYPES ("deit" is kept distinct from "vit")
    hidden: int                    # d_model
    layers: int                    # transformer blocks
    heads: int                     # query heads
    kv_heads: int                  # key/value heads (== heads without grouped-query attention)
    head_dim: int
    intermediate: int              # MLP width
    vocab: int | None = None       # LM head rows (language models)
    max_positions: int | None = None
    tied_lm_head: bool = False     # LM head shares the token-embedding tensor
    causal: bool = True            # decoder (True) or bidirectional encoder (False)
    embed_proj_dim: int | None = None  # OPT word_embed_proj_dim when it differs from hidden
    image_size: int | None = None  # vision: input height = width (pixels)
    patch_size: int | None = None
    num_channels: int | None = None
    num_labels: int | None = None  # vision classifier outputs (None: no classifier)

    @property
    def is_vision(self) -> bool:
        return self.family in ("vit", "deit")

    @property
    def is_lm(self) -> bool:
        return self.causal


def _field(data: Mapping[str, Any], names: tuple[str, ...], source: str, default: Any = None, minimum: int = 1) -> int | None:
    """First present, non-null integer field among ``names`` (``default`` if none is), at most
    :data:`MAX_CONFIG_FIELD` (or :data:`MAX_LAYERS` for layer counts)."""
    for n in names:
        if data.get(n) is not None:
            top = MAX_LAYERS if n in ("n_layer", "num_hidden_layers") else MAX_CONFIG_FIELD
            return as_int(data[n], source, n, minimum=minimum, maximum=top)
    if default is None:
        return None
    return int(default)


def _required(data: Mapping[str, Any], names: tuple[str, ...], source: str) -> int:
    value = _field(data, names, source)
    if value is None:
        raise InputError(source, names[0], "missing required field")
    return value


def _num_labels(data: Mapping[str, Any], source: str) -> int | None:
    if isinstance(data.get("id2label"), dict) and data["id2label"]:
        return len(data["id2label"])
    return _field(data, ("num_labels",), source)


def parse_hf_config(data: Any, source: str | os.PathLike = "<config>") -> TransformerConfig:
    """Normalize a Hugging Face config (a ``config.json`` as a dict) for the supported model types."""
    src = str(source)
    if not isinstance(data, dict):
        raise InputError(src, "<top>", f"expected a JSON object, got {type(data).__name__}")
    model_type = data.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise InputError(src, "model_type", f"expected one of {', '.join(HF_MODEL_TYPES)}, got {model_type!r}")

    if model_type == "gpt2":
        hidden = _required(data, ("n_embd",), src)
        heads = _required(data, ("n_head",), src)
        cfg = dict(
            hidden=hidden, layers=_required(data, ("n_layer",), src), heads=heads, kv_heads=heads,
            intermediate=_field(data, ("n_inner",), src, default=4 * hidden),
            vocab=_required(data, ("vocab_size",), src),
            max_positions=_field(data, ("n_positions", "n_ctx"), src, default=1024),
            tied_lm_head=bool(data.get("tie_word_embeddings", True)),
        )
    elif model_type == "opt":
        hidden = _required(data, ("hidden_size",), src)
        heads = _required(data, ("num_attention_heads",), src)
        proj = _field(data, ("word_embed_proj_dim",), src, default=hidden)
        cfg = dict(
            hidden=hidden, layers=_required(data, ("num_hidden_layers",), src), heads=heads, kv_heads=heads,
            intermediate=_required(data, ("ffn_dim",), src), vocab=_required(data, ("vocab_size",), src),
            max_positions=_field(data, ("max_position_embeddings",), src, default=2048),
            tied_lm_head=bool(data.get("tie_word_embeddings", True)),
            embed_proj_dim=proj if proj != hidden else None,
        )
    elif model_type in ("llama", "phi"):
        hidden = _required(data, ("hidden_size",), src)
        heads = _required(data, ("num_attention_heads",), src)
        cfg = dict(
            hidden=hidden, layers=_required(data, ("num_hidden_layers",), src), heads=heads,
            kv_heads=_field(data, ("num_key_value_heads",), src, default=heads),
            intermediate=_required(data, ("intermediate_size",), src),
            vocab=_required(data, ("vocab_size",), src),
            tied_lm_head=bool(data.get("tie_word_embeddings", False)),
        )
        if data.get("head_dim") is not None:
            cfg["head_dim"] = as_int(data["head_dim"], src, "head_dim", minimum=1, maximum=MAX_CONFIG_FIELD)
    elif model_type == "bert":
        heads = _required(data, ("num_attention_heads",), src)
        cfg = dict(
            hidden=_required(data, ("hidden_size",), src), layers=_required(data, ("num_hidden_layers",), src),
            heads=heads, kv_heads=heads, intermediate=_required(data, ("intermediate_size",), src),
            max_positions=_field(data, ("max_position_embeddings",), src, default=512), causal=False,
        )
    else:  # vit, deit
        heads = _required(data, ("num_attention_heads",), src)
        cfg = dict(
            hidden=_required(data, ("hidden_size",), src), layers=_required(data, ("num_hidden_layers",), src),
            heads=heads, kv_heads=heads, intermediate=_required(data, ("intermediate_size",), src), causal=False,
            image_size=_field(data, ("image_size",), src, default=224),
            patch_size=_field(data, ("patch_size",), src, default=16),
            num_channels=_field(data, ("num_channels",), src, default=3),
            num_labels=_num_labels(data, src),
        )

    if "head_dim" not in cfg:
        if cfg["hidden"] % cfg["heads"]:
            raise InputError(src, "num_attention_heads", f"hidden size {cfg['hidden']} is not divisible by {cfg['heads']} heads")
        cfg["head_dim"] = cfg["hidden"] // cfg["heads"]
    if cfg["heads"] % cfg["kv_heads"]:
        raise InputError(src, "num_key_value_heads", f"{cfg['heads']} query heads are not divisible into {cfg['kv_heads']} key/value heads")
    return TransformerConfig(family=model_type, **cfg)


def read_config_json(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """Load ``config.json`` from a file or a directory that contains one; returns (data, file path)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    return parse_json_text(read_text(p), p), p
