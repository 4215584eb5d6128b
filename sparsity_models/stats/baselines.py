"""Accuracy statistics of plain integer quantizers and the ANT and OliVe baselines (weights)."""

from __future__ import annotations

import torch

from sparsity_models.quantizers.baselines import ANT_GRIDS, ant_quantize, olive_quantize
from sparsity_models.quantizers.integer import quantize_asymmetric, quantize_symmetric
from sparsity_models.stats.common import chunked_proxies, proxies


def int_stats(w: torch.Tensor, bits: int, granularity: str, group_size: int, symmetric: bool) -> dict:
    """Uniform integer quantization of the weights: accuracy proxies and bits incl. scales.

    Stored bits per weight: ``bits`` plus a 16-bit scale (and an 8-bit zero point when
    asymmetric) per quantization set (tensor, channel or group).
    """
    fn = quantize_symmetric if symmetric else quantize_asymmetric
    out = {"bits": bits, "granularity": granularity, "group_size": group_size, "symmetric": symmetric}
    out.update(chunked_proxies(w, lambda r: fn(r, bits, granularity, group_size).deq))
    m, k = w.shape
    sets = {"tensor": 1, "channel": m, "group": m * -(-k // group_size)}[granularity]
    out["weight_bits_per_element"] = bits + sets * (16 + (0 if symmetric else 8)) / (m * k)
    return out


def ant_stats(w: torch.Tensor, bits: int) -> dict:
    """ANT-style adaptive per-channel type at ``bits``: type mix and accuracy proxies."""
    deq, idx = ant_quantize(w, bits)
    cnt = torch.bincount(idx, minlength=len(ANT_GRIDS)).double()
    out = {"bits": bits, "type_mix": {name: float(cnt[i] / cnt.sum()) for i, name in enumerate(ANT_GRIDS)}}
    out.update(proxies(w, deq))
    return out


def olive_stats(w: torch.Tensor) -> dict:
    """OliVe-style 4-bit outlier-victim pairs: outlier-pair fraction and accuracy proxies."""
    deq, frac = olive_quantize(w)
    out = {"bits": 4, "outlier_pair_fraction": frac}
    out.update(proxies(w, deq))
    return out
