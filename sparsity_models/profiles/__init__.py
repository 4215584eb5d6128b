"""Measured profiles: statistics of real checkpoints per layer role, bundled with bitloop.

A profile (``sparsity_models/data/profiles/<checkpoint>.json``) holds, for every role
of one real checkpoint (``sparsity_models.roles``), the statistics sections the work and
format models read, pooled over the checkpoint's layers of that role: per-group cycle
arrays become histograms (:class:`~sparsity_models.workmodel.Distribution`), ``*_hist``
arrays are summed, scalars are averaged weighted by weight elements (SQNRs as total
signal over total noise). No tensors are stored. ``python -m sparsity_models.profiles
build`` regenerates the files from the checkpoints (``sparsity_models.checkpoints``).

:data:`FAMILY_SOURCES` says which checkpoint's role stands in for each model family's
layers; :func:`graph_stats` gives a :class:`ProfileStats` per layer of a graph.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from sparsity_models.workmodel import Distribution

PROFILE_VERSION = 1   # bump when the pooling, the roles or the measured inputs change

# Which checkpoint measures each role, per model family (``model_type`` of workloads/configs).
_LLM = {"attn_qkv": "smollm2", "attn_out": "smollm2", "ffn_up": "smollm2", "attn_qk": "smollm2",
        "attn_av": "smollm2", "head": "smollm2"}
_VIT = {r: "vit-s-dinov2" for r in ("patch_embed", "attn_qkv", "attn_out", "ffn_up", "ffn_down", "attn_qk", "attn_av")}
FAMILY_SOURCES: dict[str, dict[str, str]] = {
    "llama": {**_LLM, "ffn_down": "smollm2"},
    # GELU (GPT-2, Phi) and ReLU (OPT) FFNs: the down projection reads a rectified, zero-rich
    # activation; SmolLM2's reads SiLU(gate) * up (signed), MiniLM's reads GELU outputs.
    "gpt2": {**_LLM, "ffn_down": "minilm"},
    "opt": {**_LLM, "ffn_down": "minilm"},
    "phi": {**_LLM, "ffn_down": "minilm"},
    "bert": {r: "minilm" for r in ("attn_qkv", "attn_out", "ffn_up", "ffn_down", "attn_qk", "attn_av", "head")},
    "vit": dict(_VIT),
    "deit": dict(_VIT),
    "torchvision.mobilenet_v2": {r: "mobilenetv2" for r in ("conv_first", "dwconv", "conv_project", "conv_expand",
                                                             "classifier")},
    "torchvision.vgg": {"conv_first": "vgg16", "conv": "vgg16", "classifier": "vgg16"},
    # No ResNet checkpoint ships offline: k x k convs after ReLU from VGG16, 1x1 convs after
    # ReLU from MobileNetV2's projections (after ReLU6), the classifier from MobileNetV2's.
    "torchvision.resnet": {"conv_first": "vgg16", "conv": "vgg16", "conv_pw": "mobilenetv2:conv_project",
                           "classifier": "mobilenetv2"},
}


# Models of other families (ONNX files, config.json types without an entry above): the
# closest measured role by what feeds the layer, marked "generic" in the provenance.
GENERIC_SOURCES: dict[str, str] = {
    **{r: "minilm" for r in ("attn_qkv", "attn_out", "ffn_up", "ffn_down", "attn_qk", "attn_av", "head")},
    "patch_embed": "vit-s-dinov2", "conv_first": "vgg16", "conv": "vgg16", "classifier": "mobilenetv2",
    "conv_pw": "mobilenetv2:conv_project", "conv_project": "mobilenetv2", "conv_expand": "mobilenetv2",
    "dwconv": "mobilenetv2",
}


class ProfileMissing(LookupError):
    """A section/parameter setting the profile does not hold."""


@lru_cache(maxsize=None)
def load_profile(checkpoint: str) -> dict[str, Any]:
    """The bundled profile of ``checkpoint`` (parsed JSON)."""
    path = resources.files("sparsity_models").joinpath(f"data/profiles/{checkpoint}.json")
    raw = path.read_bytes()
    data = json.loads(raw)
    data["digest"] = hashlib.sha256(raw).hexdigest()[:16]
    if data.get("version") != PROFILE_VERSION:
        raise RuntimeError(f"profile {checkpoint} has version {data.get('version')}, expected {PROFILE_VERSION}: "
                           "regenerate with python -m sparsity_models.profiles build")
    return data


def available() -> list[str]:
    """Checkpoints with a bundled profile."""
    folder = resources.files("sparsity_models").joinpath("data/profiles")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def source_for(model_type: str | None, role: str) -> tuple[str, str, bool] | None:
    """``(checkpoint, role, generic)`` whose profile stands in for ``role`` in a ``model_type`` model.

    ``generic`` is True when the model family has no entry in :data:`FAMILY_SOURCES` and
    :data:`GENERIC_SOURCES` was used; None when no measured role matches.
    """
    family = FAMILY_SOURCES.get(model_type or "")
    entry = (family if family is not None else GENERIC_SOURCES).get(role)
    if entry is None:
        return None
    ck, _, src_role = entry.partition(":")
    return ck, src_role or role, family is None


def graph_stats(graph: Any, skip: Any = ()) -> tuple[dict[str, "ProfileStats"], dict[str, str]]:
    """A :class:`ProfileStats` per layer of a LayerGraph (except ``skip``), and every layer's role.

    The model family is ``graph.meta['model_type']``; layers whose role has no measured
    source are left out of the first mapping.
    """
    from sparsity_models.roles import graph_roles

    roles = graph_roles(graph)
    model_type = graph.meta.get("model_type")
    out: dict[str, ProfileStats] = {}
    for layer in graph.layers():
        if layer.name in skip:
            continue
        src = source_for(model_type, roles[layer.name])
        if src is not None:
            ck, role, generic = src
            out[layer.name] = ProfileStats(ck, role, layer.name, layer_width(layer), roles[layer.name], generic)
    return out, roles


def section_key(name: str, params: dict[str, Any]) -> str:
    """Profile key of a section with its full parameters."""
    return f"{name}:{json.dumps(params, sort_keys=True)}"


class SensitiveKeys:
    """Stands in for BBS sensitive-channel counts in section keys.

    A profile pools layers of different widths, so a BBS section with sensitive channels
    is keyed by the selection rule (fraction, parallel) instead of one layer's count.
    """

    def __init__(self) -> None:
        self._rule: dict[int, str] = {}

    def count(self, fraction: float, parallel: int, m: int) -> int:
        """The local-rule count for ``m`` output channels (as ``LayerStats.sensitive_count``), remembered."""
        import math

        if fraction <= 0:
            return 0
        n = min(m, math.ceil(fraction * m / parallel) * parallel)
        self._rule[n] = f"fraction={fraction:g},parallel={parallel}"
        return n

    def key(self, name: str, params: dict[str, Any]) -> str:
        p = dict(params)
        if name == "bbs" and p.get("n_sensitive", 0) in self._rule:
            p["n_sensitive"] = self._rule[p["n_sensitive"]]
        return section_key(name, p)


def decode(result: dict[str, Any]) -> dict[str, Any]:
    """A stored (JSON) section result as the work/format models read it."""
    out: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, dict) and set(v) == {"values", "counts"}:
            out[k] = Distribution(np.asarray(v["values"], np.float64), np.asarray(v["counts"], np.int64))
        elif isinstance(v, dict) and set(v) == {"hist"}:
            out[k] = np.asarray(v["hist"], np.int64)
        else:
            out[k] = v
    return out


class ProfileStats:
    """Statistics of one target layer from a measured profile: one role of one real checkpoint.

    Duck-types :class:`~sparsity_models.layerstats.LayerStats` for the families
    (``section``, ``sensitive_count``, ``provenance``). A section the profile lacks raises
    :class:`ProfileMissing`; ``mapper.bitlevel`` then falls back to the synthetic profile
    and :attr:`fallbacks` records why.

    Args:
        checkpoint: profile name (``minilm``, ``smollm2``, ...).
        role: role measured in that checkpoint.
        layer: target layer name.
        m: output channels of the target layer (for the BBS sensitive-channel rule).
        target_role: the target layer's own role (differs when a role stands in for another).
        generic: the model family had no entry in FAMILY_SOURCES (GENERIC_SOURCES was used).
    """

    weights_synthetic = False

    def __init__(self, checkpoint: str, role: str, layer: str, m: int, target_role: str | None = None,
                 generic: bool = False):
        data = load_profile(checkpoint)
        if role not in data["roles"]:
            raise ProfileMissing(f"profile {checkpoint} has no role {role}")
        self.checkpoint, self.role, self.layer, self.m = checkpoint, role, layer, int(m)
        self.target_role = target_role or role
        self.generic = generic
        self.entry = data["roles"][role]
        self.inputs_measured = bool(self.entry["inputs_measured"])
        self.label = f"{checkpoint}/{role}"
        self._keys = SensitiveKeys()
        self._memo: dict[str, dict[str, Any]] = {}
        self.fallbacks: set[str] = set()

    def section(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        from sparsity_models.sections import section_params

        key = self._keys.key(name, section_params(name, params))
        if key not in self._memo:
            raw = self.entry["sections"].get(key)
            if raw is None:
                raise ProfileMissing(f"profile {self.label} has no section {key}")
            self._memo[key] = decode(raw)
        return self._memo[key]

    def sensitive_count(self, fraction: float, parallel: int) -> tuple[int, str]:
        if fraction <= 0:
            return 0, "none"
        return self._keys.count(fraction, parallel, self.m), "local"

    def identity(self) -> str:
        """Cache identity: profile version and file digest, checkpoint, role, target width."""
        return f"profile-v{PROFILE_VERSION}-{load_profile(self.checkpoint)['digest']}:{self.label}:m={self.m}"

    def provenance(self) -> dict[str, Any]:
        x = f"profile:{self.label}" if self.inputs_measured else "synthetic (profile has no measured inputs)"
        return {"provenance": "measured-profile", "layer": self.layer, "weights": f"profile:{self.label}", "inputs": x,
                "source": f"measured profile v{PROFILE_VERSION} of {self.checkpoint}, role {self.role}"
                          + (" (generic match: no profile entry for this model family)" if self.generic else ""),
                "role": self.target_role}

    def __repr__(self) -> str:
        return f"ProfileStats({self.label!r}, layer={self.layer!r})"


def layer_width(layer: Any) -> int:
    """Output channels of a workloads Layer (M; C for depthwise convs)."""
    b = layer.problem.bounds
    return int(b["M"]) if "M" in b else int(b.get("C", 1))
