"""Uniform integer quantization: symmetric and asymmetric, per tensor / channel / group.

Symmetric (BitMoD Eq. 1): ``scale = max|x| / (2**(b-1) - 1)``, ``q = round(x/scale)``.
Asymmetric (BitMoD Eq. 2): ``scale = (max - min) / (2**b - 1)``, ``z = round(-min/scale)``,
``q = clamp(round(x/scale) + z, 0, 2**b - 1)``, dequantized ``(q - z) * scale``; every
value of ``[min, max]`` dequantizes within half a step.

Granularity: ``tensor`` (one scale), ``channel`` (one per row of ``[M, K]``), ``group``
(one per ``group_size`` consecutive elements of a row).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsity_models.grouping import as_matrix, to_groups, ungroup
from workloads.yamlio import InputError

GRANULARITIES = ("tensor", "channel", "group")


@dataclass
class IntQuant:
    """Result of an integer quantizer (tensors have the input's ``[M, K]`` shape).

    Attributes:
        q: integer codes (int32); signed for symmetric, unsigned for asymmetric.
        scale: step size per element position (float32, broadcast to ``q``'s shape).
        zero_point: integer zero point per position (None for symmetric).
        deq: dequantized values (float32).
        bits: code width in bits.
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    deq: torch.Tensor
    bits: int


def _safe_scale(scale: torch.Tensor) -> torch.Tensor:
    """Replace zero (all-zero sets, or denormal ranges that underflow) and non-finite scales by 1."""
    return torch.where((scale > 0) & torch.isfinite(scale), scale, torch.ones_like(scale))


def _reduce_view(x: torch.Tensor, granularity: str, group_size: int) -> torch.Tensor:
    """``[M, K]`` -> a 3-D view whose last axis is the set sharing one scale."""
    if granularity == "tensor":
        return x.reshape(1, 1, -1)
    if granularity == "channel":
        return x.unsqueeze(1)
    if granularity == "group":
        return to_groups(x, group_size)
    raise InputError("<quantizer>", "granularity", f"expected one of {GRANULARITIES}, got {granularity!r}")


def _back(v: torch.Tensor, x: torch.Tensor, granularity: str) -> torch.Tensor:
    if granularity == "tensor":
        return v.reshape(x.shape)
    if granularity == "channel":
        return v.squeeze(1)
    return ungroup(v, x.shape[1])


def quantize_symmetric(x: torch.Tensor, bits: int, granularity: str = "channel", group_size: int = 128) -> IntQuant:
    """Symmetric signed quantization to ``bits`` bits (codes in ``[-(2**(b-1)-1), 2**(b-1)-1]``)."""
    x2 = as_matrix(x).float()
    v = _reduce_view(x2, granularity, group_size)
    qmax = (1 << (bits - 1)) - 1
    amax = v.abs().amax(dim=-1, keepdim=True)
    scale = _safe_scale(amax / qmax)
    q = torch.clamp(torch.round(v / scale), -qmax, qmax)
    deq = q * scale
    return IntQuant(
        q=_back(q, x2, granularity).to(torch.int32),
        scale=_back(scale.expand_as(v), x2, granularity),
        zero_point=None,
        deq=_back(deq, x2, granularity),
        bits=bits,
    )


def quantize_asymmetric(x: torch.Tensor, bits: int, granularity: str = "group", group_size: int = 128) -> IntQuant:
    """Asymmetric unsigned quantization to ``bits`` bits with a per-set integer zero point."""
    x2 = as_matrix(x).float()
    v = _reduce_view(x2, granularity, group_size)
    levels = (1 << bits) - 1
    vmin, vmax = v.amin(dim=-1, keepdim=True), v.amax(dim=-1, keepdim=True)
    scale = _safe_scale((vmax - vmin) / levels)
    zp = torch.round(-vmin / scale)
    q = torch.clamp(torch.round(v / scale) + zp, 0, levels)
    deq = (q - zp) * scale
    return IntQuant(
        q=_back(q, x2, granularity).to(torch.int32),
        scale=_back(scale.expand_as(v), x2, granularity),
        zero_point=_back(zp.expand_as(v), x2, granularity).to(torch.int32),
        deq=_back(deq, x2, granularity),
        bits=bits,
    )


def int8_per_channel(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel symmetric INT8 weights (the 8-bit baseline model of BBS): ``(q int16 [M, K], scale [M])``."""
    r = quantize_symmetric(w, 8, "channel")
    return r.q.to(torch.int16), r.scale[:, 0].contiguous()
