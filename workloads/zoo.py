"""Built-in models and :func:`build_graph`, the entry point from a model name to a layer graph.

Each built-in model is one YAML file in ``workloads/configs/`` holding the published
configuration fields that set layer shapes (Hugging Face ``config.json`` fields for
transformers, torchvision architecture parameters for CNNs), its aliases and its source.
Nothing is downloaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.cnn import CNN_TYPES, cnn_graph
from workloads.graph import LayerGraph
from workloads.phases import DEFAULT_DECODE_TOKENS, PHASES
from workloads.hf_config import TransformerConfig, parse_hf_config, read_config_json
from workloads.transformer import Phase, transformer_graph, vision_tokens
from workloads.yamlio import InputError, as_int, load_yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: canonical name, aliases, provenance and architecture config."""

    name: str
    aliases: tuple[str, ...]
    source: str
    config: dict[str, Any]
    path: Path


def _key(name: str) -> str:
    """Alias lookup key: case-insensitive, ``-``, ``_`` and spaces ignored (dots kept: opt-1.3b != opt-13b)."""
    return "".join(ch for ch in name.strip().lower() if ch not in "-_ ")


@functools.lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, ModelEntry], dict[str, str]]:
    models: dict[str, ModelEntry] = {}
    lookup: dict[str, str] = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        data = load_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            raise InputError(path, "config", "expected a mapping of architecture fields")
        entry = ModelEntry(str(data["name"]), tuple(str(a) for a in data.get("aliases", [])),
                           str(data.get("source", "")), data["config"], path)
        models[entry.name] = entry
        for alias in (entry.name, *entry.aliases):
            other = lookup.setdefault(_key(alias), entry.name)
            if other != entry.name:
                raise RuntimeError(f"built-in alias {alias!r} names both {other} and {entry.name}")
    return models, lookup


def known_models() -> list[str]:
    """Canonical names of the built-in models."""
    return list(_registry()[0])


def model_entry(model: str) -> ModelEntry:
    """The built-in model called ``model`` (any alias, case-insensitive); InputError listing the known ones."""
    models, lookup = _registry()
    name = lookup.get(_key(model))
    if name is None:
        raise InputError("<model>", "model", f"unknown model {model!r}; expected a config.json path or one of: {', '.join(models)}")
    return models[name]


def _resolve(model: str) -> tuple[str, dict[str, Any], str]:
    """(model name, architecture config, source label) for a built-in name or a config.json path."""
    if not isinstance(model, str) or not model.strip():
        raise InputError("<model>", "model", f"expected a model name or a config.json path, got {model!r}")
    models, lookup = _registry()
    if _key(model) in lookup:
        entry = models[lookup[_key(model)]]
        return entry.name, entry.config, str(entry.path)
    path = Path(model).expanduser()
    if path.exists() or model.endswith(".json"):
        data, file = read_config_json(path)
        if not isinstance(data, dict):
            raise InputError(file, "<top>", f"expected a JSON object, got {type(data).__name__}")
        label = (file.parent.name or str(file)) if file.name == "config.json" else file.stem
        return label, data, str(file)
    return model_entry(model).name, {}, ""  # raises the unknown-model error


def _check_int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError("<model>", key, f"expected an integer >= {minimum}, got {value!r}")
    return as_int(value, "<model>", key, minimum=minimum)


def build_graph(
    model: str,
    phase: str = "prefill",
    seq_len: int = 256,
    batch: int = 1,
    kv_len: int | None = None,
    include_lm_head: bool = False,
    image_size: int | None = None,
    decode_tokens: int = DEFAULT_DECODE_TOKENS,
) -> LayerGraph:
    """Layer graph of ``model`` for one inference pass (or, for ``generate``, several).

    Args:
        model: built-in name or alias (see :func:`known_models`), a path to a Hugging
            Face ``config.json`` (or a directory holding one) of a GPT-2, OPT, Llama, Phi,
            BERT or ViT/DeiT model, or a path to an ``.onnx`` file
            (:func:`workloads.onnx_graph.graph_from_onnx`; prefill only, ``batch`` inputs).
        phase: ``prefill`` (``seq_len`` new tokens per sequence), ``decode`` (one new
            token per sequence) or ``generate`` (a prefill then ``decode_tokens`` decode
            steps with a growing KV cache; step i's layers are named ``<layer>@decode<i>``).
            Encoders and CNNs have only ``prefill``.
        seq_len: prefill context length in tokens; in decode, the default ``kv_len``.
            Ignored by vision models, whose token count follows from the image size.
        batch: sequences (or images) per pass.
        kv_len: tokens already in the KV cache. Default: 0 in prefill, ``seq_len`` in decode.
            Prefill attends to ``kv_len + seq_len`` keys, decode to ``kv_len + 1``.
        include_lm_head: add the LM head (vocabulary logits of the last position of each
            sequence). Vision models always include their classifier.
        image_size: input height = width in pixels for vision models (default: the model's, 224).
        decode_tokens: tokens generated after the prefill in the ``generate`` phase.
    """
    phase_name = phase.strip().lower() if isinstance(phase, str) else phase
    if phase_name not in PHASES:
        raise InputError("<model>", "phase", f"expected one of {', '.join(PHASES)}, got {phase!r}")
    seq_len = _check_int(seq_len, "seq_len", 1)
    batch = _check_int(batch, "batch", 1)
    if isinstance(model, str) and model.strip().lower().endswith(".onnx"):
        from workloads.onnx_graph import graph_from_onnx

        _only_prefill(model, phase_name, kv_len)
        if image_size is not None:
            raise InputError("<model>", "image_size", "an ONNX model's input shapes are fixed by the file")
        return graph_from_onnx(Path(model).expanduser(), batch=batch)
    name, config, source = _resolve(model)
    if kv_len is not None:
        kv_len = _check_int(kv_len, "kv_len", 0)
    if image_size is not None:
        image_size = _check_int(image_size, "image_size", 1)
    if not isinstance(include_lm_head, bool):
        raise InputError("<model>", "include_lm_head", f"expected true or false, got {include_lm_head!r}")

    if phase_name == "generate":
        return _generate_graph(model, seq_len, batch, kv_len, include_lm_head, image_size,
                               _check_int(decode_tokens, "decode_tokens", 1))
    model_type = config.get("model_type")
    meta: dict[str, Any] = {"model": name, "source": source, "phase": phase_name, "batch": batch,
                            "include_lm_head": include_lm_head, "model_type": model_type}
    if model_type in CNN_TYPES:
        _only_prefill(name, phase_name, kv_len)
        size = image_size or as_int(config.get("image_size", 224), source, "config.image_size", minimum=1)
        meta.update(image_size=size, include_lm_head=False)
        return cnn_graph(config, name, batch, size, source, meta)

    cfg = parse_hf_config(config, source)
    if cfg.is_vision:
        _only_prefill(name, phase_name, kv_len)
        size = image_size or cfg.image_size or 224
        if size < (cfg.patch_size or 1):
            raise InputError("<model>", "image_size", f"expected at least one {cfg.patch_size}-pixel patch, got {size}")
        tokens = vision_tokens(cfg, size)[1]
        meta.update(image_size=size, seq_len=tokens, kv_len=0, query_rows=tokens, keys=tokens, include_lm_head=False)
        return transformer_graph(cfg, name, Phase("prefill", batch, tokens, tokens), image_size=size, meta=meta)
    if image_size is not None:
        raise InputError("<model>", "image_size", f"{name} is not a vision model")
    if not cfg.causal:
        _only_prefill(name, phase_name, kv_len)
    if phase_name == "prefill":
        kv = kv_len or 0
        rows, keys = seq_len, kv + seq_len
    else:
        kv = seq_len if kv_len is None else kv_len
        rows, keys = 1, kv + 1
    _check_positions(cfg, name, keys)
    lm_head = include_lm_head and cfg.is_lm
    meta.update(seq_len=seq_len, kv_len=kv, query_rows=rows, keys=keys, include_lm_head=lm_head)
    return transformer_graph(cfg, name, Phase(phase_name, batch, rows, keys), include_lm_head=lm_head, meta=meta)


def _generate_graph(model: str, seq_len: int, batch: int, kv_len: int | None, include_lm_head: bool,
                    image_size: int | None, decode_tokens: int) -> LayerGraph:
    """A prefill of ``seq_len`` tokens, then ``decode_tokens`` decode steps; step i attends to
    the ``kv_len + seq_len + i - 1`` cached tokens and itself."""
    prefill = build_graph(model, "prefill", seq_len, batch, kv_len, include_lm_head, image_size)
    cached = (kv_len or 0) + seq_len
    try:
        build_graph(model, "decode", seq_len, batch, cached, include_lm_head, image_size)
    except InputError as exc:
        if exc.key == "phase":
            _only_prefill(prefill.name, "generate", None)
        raise
    g = LayerGraph(prefill.name, {**prefill.meta, "phase": "generate", "decode_tokens": decode_tokens,
                                  "keys": cached + decode_tokens})
    g.graph = prefill.graph.copy()
    last = g.sinks()
    for i in range(1, decode_tokens + 1):
        step = build_graph(model, "decode", seq_len, batch, cached + i - 1, include_lm_head)
        g.add_pass(step, f"decode{i}", after=last)
        last = [f"{n}@decode{i}" for n in step.sinks()]
    return g


def _only_prefill(name: str, phase: str, kv_len: int | None) -> None:
    if phase != "prefill":
        raise InputError("<model>", "phase", f"{name} is not an autoregressive decoder; expected 'prefill', got {phase!r}")
    if kv_len:
        raise InputError("<model>", "kv_len", f"{name} has no KV cache; expected no kv_len, got {kv_len}")


def _check_positions(cfg: TransformerConfig, name: str, keys: int) -> None:
    if cfg.max_positions is not None and keys > cfg.max_positions:
        raise InputError("<model>", "seq_len", f"{name} has learned position embeddings for {cfg.max_positions} tokens; "
                         f"this pass spans {keys}")
