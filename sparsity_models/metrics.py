"""Accuracy proxies of a quantizer: MSE, SQNR (dB) and KL divergence of value histograms."""

from __future__ import annotations

import math

import torch

_EPS = 1e-10


def mse(x: torch.Tensor, xq: torch.Tensor) -> float:
    """Mean squared error between the reference ``x`` and its quantized version (units of ``x`` squared)."""
    return float(((x.double() - xq.double()) ** 2).mean())


def sqnr_db(x: torch.Tensor, xq: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio ``10*log10(sum x^2 / sum (x-xq)^2)`` in dB (inf if exact)."""
    noise = float(((x.double() - xq.double()) ** 2).sum())
    signal = float((x.double() ** 2).sum())
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def kl_divergence(x: torch.Tensor, xq: torch.Tensor, bins: int = 256, integer: bool = False) -> float:
    """KL(P || Q) in nats between the value histograms of ``x`` (P) and ``xq`` (Q).

    Bins span ``[min(x, xq), max(x, xq)]`` (``bins`` equal bins), or one bin per integer
    when ``integer`` is true (for integer tensors such as INT8 weights before/after pruning).
    Empty bins of Q get probability 1e-10 so that the divergence stays finite.
    """
    a, b = x.double().flatten(), xq.double().flatten()
    lo, hi = float(torch.minimum(a.min(), b.min())), float(torch.maximum(a.max(), b.max()))
    if integer:
        lo, hi = math.floor(lo) - 0.5, math.ceil(hi) + 0.5
        bins = int(hi - lo)
    if hi <= lo:
        return 0.0
    p = torch.histc(a, bins=bins, min=lo, max=hi)
    q = torch.histc(b, bins=bins, min=lo, max=hi)
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    return float((p[mask] * torch.log(p[mask] / q[mask].clamp(min=_EPS))).sum())


def proxies(x: torch.Tensor, xq: torch.Tensor, integer: bool = False) -> dict[str, float]:
    """``{'mse', 'sqnr_db', 'kl'}`` of one quantized tensor against its reference."""
    return {"mse": mse(x, xq), "sqnr_db": sqnr_db(x, xq), "kl": kl_divergence(x, xq, integer=integer)}
