"""Bit-level views of integer tensors: two's-complement bit columns, sign-magnitude, widths.

All helpers take integer torch tensors holding values of a ``bits``-bit signed integer
(default 8) and work element-wise; columns are indexed LSB first (column j has weight 2**j,
the top column ``bits-1`` has weight ``-2**(bits-1)`` in two's complement).
"""

from __future__ import annotations

import torch

_POPCOUNT8 = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int16)


def popcount(x: torch.Tensor) -> torch.Tensor:
    """Number of one bits of non-negative integers < 256 (int16 result)."""
    return _POPCOUNT8[x.long()]


def twos_bits(q: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Two's-complement bit columns of ``q``: shape ``q.shape + (bits,)``, uint8, LSB first."""
    u = q.to(torch.int32) & ((1 << bits) - 1)
    shifts = torch.arange(bits, dtype=torch.int32)
    return ((u.unsqueeze(-1) >> shifts) & 1).to(torch.uint8)


def magnitude_bits(q: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Sign-magnitude magnitude columns of ``q`` (``bits-1`` columns, LSB first), uint8."""
    mag = q.to(torch.int32).abs().clamp(max=(1 << (bits - 1)) - 1)
    shifts = torch.arange(bits - 1, dtype=torch.int32)
    return ((mag.unsqueeze(-1) >> shifts) & 1).to(torch.uint8)


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


def redundant_columns(width: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Sign-extension columns right below the MSB column for a group of minimal width ``width``."""
    return (bits - width).clamp(min=0)
