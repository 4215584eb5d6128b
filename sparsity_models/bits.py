"""Bit widths of integer tensors: the bits a non-negative value needs and the minimal
two's-complement width of a signed one (element-wise, integer torch tensors)."""

from __future__ import annotations

import torch


def bit_length(x: torch.Tensor) -> torch.Tensor:
    """Bits needed for non-negative integers (0 -> 0, 1 -> 1, 2..3 -> 2, ...), int32."""
    x = x.to(torch.int64)
    out = torch.zeros_like(x, dtype=torch.int32)
    for shift in (32, 16, 8, 4, 2, 1):
        big = x >= (1 << shift)
        out = out + big.to(torch.int32) * shift
        x = torch.where(big, x >> shift, x)
    return out + (x > 0).to(torch.int32)


def signed_width(q: torch.Tensor) -> torch.Tensor:
    """Minimal two's-complement width in bits (sign included): 0 and -1 -> 1, 1 and -2 -> 2, ..."""
    q = q.to(torch.int64)
    return bit_length(torch.where(q < 0, -q - 1, q)) + 1


