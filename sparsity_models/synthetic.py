"""Stated synthetic profiles: the operands used when no real tensors are given.

A profile is a named, seeded generative model of a layer's weights and inputs; statistics
computed from it are labelled ``synthetic`` with the profile name, never ``measured``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workloads.yamlio import InputError

if TYPE_CHECKING:
    import torch

DEFAULT_PROFILE = "transformer-v1"
PROFILES = {
    "transformer-v1": "weights N(0, 0.02^2); inputs LayerNorm-like: N(0,1) * lognormal(0, 0.5) channel gains "
                      "+ N(0, 0.5^2) channel offsets; seed 0",
    "gelu-v1": "weights N(0, 0.02^2); inputs GELU of N(0,1) * lognormal(0, 0.5) channel gains (MLP down-projection); seed 0",
    "uniform-v1": "weights and inputs uniform on [-1, 1]; seed 0",
}
DEFAULT_SHAPE = (768, 768)   # [M, K]
DEFAULT_TOKENS = 256


def check_profile(name: str) -> str:
    if name not in PROFILES:
        raise InputError("<work_model>", "profile",
                         f"unknown synthetic profile {name!r}; expected one of {sorted(PROFILES)}")
    return name


def synthetic_weight(profile: str, m: int = DEFAULT_SHAPE[0], k: int = DEFAULT_SHAPE[1]) -> torch.Tensor:
    """Weights ``[M, K]`` of the profile."""
    import torch

    check_profile(profile)
    g = torch.Generator().manual_seed(0)
    if profile == "uniform-v1":
        return torch.rand(m, k, generator=g) * 2 - 1
    return torch.randn(m, k, generator=g) * 0.02


def synthetic_inputs(profile: str, k: int, tokens: int = DEFAULT_TOKENS) -> torch.Tensor:
    """Input rows ``[T, K]`` of the profile."""
    import torch

    check_profile(profile)
    g = torch.Generator().manual_seed(1)
    if profile == "uniform-v1":
        return torch.rand(tokens, k, generator=g) * 2 - 1
    gain = torch.exp(torch.randn(k, generator=g) * 0.5)
    x = torch.randn(tokens, k, generator=g) * gain
    if profile == "gelu-v1":
        return torch.nn.functional.gelu(x)
    return x + torch.randn(k, generator=g) * 0.5
