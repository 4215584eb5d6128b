"""Value-distribution summaries of one operand (weights or input rows): the shape facts
that distinguish real tensors from Gaussian ones (zeros, signs, heavy tails)."""

from __future__ import annotations

from typing import Any

import torch


def value_summary(x: torch.Tensor) -> dict[str, Any]:
    """Fractions of exact zeros and negatives, excess kurtosis (0 for a Gaussian), and the
    largest magnitude in standard deviations, of all elements of ``x``."""
    v = x.detach().double().reshape(-1)
    mean = v.mean()
    d = v - mean
    var = float((d * d).mean())
    kurt = float((d ** 4).mean()) / var ** 2 - 3.0 if var > 0 else 0.0
    std = var ** 0.5
    return {
        "elements": int(v.numel()),
        "zero_fraction": float((v == 0).double().mean()),
        "negative_fraction": float((v < 0).double().mean()),
        "excess_kurtosis": kurt,
        "max_abs_over_std": float(v.abs().max()) / std if std > 0 else 0.0,
    }
