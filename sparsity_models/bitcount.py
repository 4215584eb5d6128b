"""Fast per-group bit counting on INT8 codes packed 8 per int64 word (SWAR, numpy).

A group of consecutive INT8 values is viewed as int64 words of 8 bytes (little-endian:
byte i is element i). Column j of a word is ``(word >> j) & 0x0101..01``; multiplying by
``0x0101..01`` sums the 8 bytes into the top byte. This counts the one bits of a bit column
over 8 elements with 4 word operations.
"""

from __future__ import annotations

import numpy as np
import torch

_ONES = np.int64(0x0101010101010101)
_M1 = np.int64(0x5555555555555555)
_M2 = np.int64(0x3333333333333333)
_M4 = np.int64(0x0F0F0F0F0F0F0F0F)


def as_bytes(codes: torch.Tensor | np.ndarray) -> np.ndarray:
    """Low bytes (two's complement) of integer codes as a contiguous uint8 array."""
    a = codes.numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    return np.ascontiguousarray(a.astype(np.uint8, casting="unsafe"))


def pack(codes: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pack codes ``[..., G]`` (G a multiple of 8) into int64 words ``[..., G/8]``."""
    return as_bytes(codes).view(np.int64)


def column_ones(words: np.ndarray, bits: int = 8) -> np.ndarray:
    """One bits per column of each 8-element word: ``[..., W, bits]`` uint8 (LSB column first)."""
    out = np.empty(words.shape + (bits,), np.uint8)
    for j in range(bits):
        col = (words >> np.int64(j)) & _ONES
        out[..., j] = ((col * _ONES) >> np.int64(56)).astype(np.uint8)
    return out


def byte_popcount(words: np.ndarray) -> np.ndarray:
    """Per-byte popcounts of int64 words as uint8 ``[..., W*8]``."""
    x = words - ((words >> np.int64(1)) & _M1)
    x = (x & _M2) + ((x >> np.int64(2)) & _M2)
    x = (x + (x >> np.int64(4))) & _M4
    return np.ascontiguousarray(x).view(np.uint8).reshape(*words.shape[:-1], words.shape[-1] * 8)


def group_column_ones(codes: torch.Tensor | np.ndarray, group: int, bits: int = 8) -> np.ndarray:
    """One bits per column over consecutive sets of ``group`` codes along the last axis.

    ``codes [..., L]`` with L a multiple of ``group``: returns ``[..., L/group, bits]`` int16.
    """
    b = as_bytes(codes)
    lead, length = b.shape[:-1], b.shape[-1]
    if group % 8 == 0:
        cnt = column_ones(b.view(np.int64), bits)                       # [..., L/8, bits]
        if group == 8:
            return cnt.astype(np.int16)
        return cnt.reshape(*lead, length // group, group // 8, bits).sum(axis=-2, dtype=np.int16)
    bb = b.reshape(*lead, length // group, group)
    return np.stack([((bb >> j) & 1).sum(axis=-1, dtype=np.int16) for j in range(bits)], axis=-1)
