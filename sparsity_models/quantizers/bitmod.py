"""BitMoD per-group datatypes (bitmod.txt Sec. III, IV-A; Table IV, Algorithm 1).

FP3 basic values ``{0, +-1, +-2, +-4}``, FP4 basic values ``{0, +-0.5, ..., +-6}``; the
redundant negative zero is replaced by one special value per group: FP3-ER ``+-3``,
FP3-EA ``+-6``, FP4-ER ``+-5``, FP4-EA ``+-8``; BitMoD's FP3/FP4 offer all four (2-bit
selector). Algorithm 1: every candidate special value is tried per group and the one with
the least squared error kept. The group scale maps the group's range onto the datatype's
range without clipping: ``s = max(max(w)/vmax, min(w)/vmin)``. Group scales are then
quantized per channel to INT8 (VS-Quant, Sec. III-C) and the group is re-quantized.

INT8/INT6: per-group symmetric integers with INT8 scales. Bit-serial terms (Sec. IV-A):
Booth radix-4 gives ``b/2`` terms for INT-b; extended FP3/FP4 values need at most two
leading-one terms of their fixed-point form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from sparsity_models.grouping import as_matrix, to_groups, ungroup
from sparsity_models.quantizers.bitmod_types import (  # noqa: F401  (re-exported)
    ASYM_TYPES, DTYPES, FP_BASIC, HW_TERMS, INT_TYPES, SPECIAL, dtype_bits, effective_bits, hw_terms, selector_bits,
)
from sparsity_models.quantizers.integer import quantize_asymmetric


@dataclass
class BitModQuant:
    """Per-group quantization result.

    Attributes:
        deq: dequantized weights ``[M, K]``.
        codes: the datatype value of every weight (unscaled, ``[M, K]``).
        special_index: chosen special value per group ``[M, C]`` (index into the candidates; -1 if none).
        candidates: the special values searched.
        dtype, bits, group_size, scale_bits.
    """

    deq: torch.Tensor
    codes: torch.Tensor
    special_index: torch.Tensor
    candidates: tuple[float, ...]
    dtype: str
    bits: int
    group_size: int
    scale_bits: int | None


_LUT_STEP = 4      # every midpoint between FP3/FP4 (+ special) values is a multiple of 1/4


@lru_cache(maxsize=64)
def _nearest_lut(values: tuple[float, ...]) -> tuple[torch.Tensor, int]:
    """Nearest value for every 1/4-wide bin of ``[-lim, lim)``: ``(table, lim * 4)``."""
    lim = int(math.ceil(max(abs(v) for v in values))) + 1
    centers = (torch.arange(-lim * _LUT_STEP, lim * _LUT_STEP, dtype=torch.float64) + 0.5) / _LUT_STEP
    vals = torch.tensor(values, dtype=torch.float64)
    table = vals[(centers.unsqueeze(1) - vals).abs().argmin(dim=1)].float()
    return table, lim * _LUT_STEP


def _nearest(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Nearest entry of ``values`` for every element of ``x`` (a tie goes to the larger value).

    All midpoints of the BitMoD value sets are multiples of 1/4, so the nearest value is
    constant on every bin ``[j/4, (j+1)/4)`` and one table lookup replaces a search.
    """
    table, off = _nearest_lut(tuple(float(v) for v in values.tolist()))
    j = torch.floor(x * _LUT_STEP).clamp(-off, off - 1).long() + off
    return torch.take(table, j)


def _fp_scale(g: torch.Tensor, vmax: float, vmin: float) -> torch.Tensor:
    gmax = g.amax(dim=-1, keepdim=True).clamp(min=0)
    gmin = g.amin(dim=-1, keepdim=True).clamp(max=0)
    s = torch.maximum(gmax / vmax, gmin / vmin)
    return torch.where((s > 0) & torch.isfinite(s), s, torch.ones_like(s))


def _quantize_scales(s: torch.Tensor, bits: int | None) -> torch.Tensor:
    """Per-channel symmetric quantization of positive group scales ``[M, C, 1]`` (never to 0)."""
    if bits is None:
        return s
    qmax = (1 << (bits - 1)) - 1
    step = s.amax(dim=1, keepdim=True) / qmax
    step = torch.where((step > 0) & torch.isfinite(step), step, s.amax(dim=1, keepdim=True))
    return torch.clamp(torch.round(s / step), 1, qmax) * step


def quantize_fp(w: torch.Tensor, dtype: str, group_size: int = 128, scale_bits: int | None = 8) -> BitModQuant:
    """Extended FP3/FP4 per-group quantization with the special-value search of Algorithm 1."""
    base = "fp3" if dtype.startswith("fp3") else "fp4"
    x = as_matrix(w).float()
    g = to_groups(x, group_size)
    cands = SPECIAL[dtype] or (None,)
    best_err = best_idx = None
    for i, sv in enumerate(cands):
        vals = torch.tensor(sorted(FP_BASIC[base] + ((sv,) if sv is not None else ())))
        s = _fp_scale(g, float(vals.max()), float(vals.min()))
        err = ((_nearest(g / s, vals) * s - g) ** 2).sum(dim=-1)
        if best_err is None:
            best_err, best_idx = err, torch.zeros_like(err, dtype=torch.int64)
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_idx = torch.where(better, torch.full_like(best_idx, i), best_idx)
    # final pass with the chosen special value and INT8-quantized scales
    deq = torch.zeros_like(g)
    codes = torch.zeros_like(g)
    scales = torch.zeros(g.shape[0], g.shape[1], 1)
    for i, sv in enumerate(cands):
        vals = torch.tensor(sorted(FP_BASIC[base] + ((sv,) if sv is not None else ())))
        scales = torch.where((best_idx == i).unsqueeze(-1), _fp_scale(g, float(vals.max()), float(vals.min())), scales)
    sq = _quantize_scales(scales, scale_bits)
    for i, sv in enumerate(cands):
        vals = torch.tensor(sorted(FP_BASIC[base] + ((sv,) if sv is not None else ())))
        c = _nearest(g / sq, vals)
        sel = (best_idx == i).unsqueeze(-1)
        codes = torch.where(sel, c, codes)
        deq = torch.where(sel, c * sq, deq)
    k = x.shape[1]
    idx = best_idx if SPECIAL[dtype] else torch.full_like(best_idx, -1)
    return BitModQuant(ungroup(deq, k), ungroup(codes, k), idx, tuple(SPECIAL[dtype]), dtype,
                       dtype_bits(dtype), group_size, scale_bits)


def quantize_int(w: torch.Tensor, dtype: str, group_size: int = 128, scale_bits: int | None = 8) -> BitModQuant:
    """Per-group symmetric INT8/INT6 with per-channel INT8-quantized group scales."""
    bits = INT_TYPES[dtype]
    x = as_matrix(w).float()
    g = to_groups(x, group_size)
    qmax = (1 << (bits - 1)) - 1
    s = g.abs().amax(dim=-1, keepdim=True) / qmax
    s = _quantize_scales(torch.where((s > 0) & torch.isfinite(s), s, torch.ones_like(s)), scale_bits)
    q = torch.clamp(torch.round(g / s), -qmax, qmax)
    k = x.shape[1]
    idx = torch.full(g.shape[:2], -1, dtype=torch.int64)
    return BitModQuant(ungroup(q * s, k), ungroup(q, k), idx, (), dtype, bits, group_size, scale_bits)


def quantize(w: torch.Tensor, dtype: str, group_size: int = 128, scale_bits: int | None = 8) -> BitModQuant:
    """Quantize with a BitMoD datatype name (``fp3``, ``fp4_er``, ``int6``, ``int4_asym``, ...)."""
    if dtype in INT_TYPES:
        return quantize_int(w, dtype, group_size, scale_bits)
    if dtype in ASYM_TYPES:
        r = quantize_asymmetric(w, ASYM_TYPES[dtype], "group", group_size)
        idx = torch.full(to_groups(as_matrix(w), group_size).shape[:2], -1, dtype=torch.int64)
        return BitModQuant(r.deq, r.q.float(), idx, (), dtype, r.bits, group_size, None)
    if dtype in SPECIAL:
        return quantize_fp(w, dtype, group_size, scale_bits)
    raise ValueError(f"unknown BitMoD dtype {dtype!r}")


def booth_digits(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Radix-4 Booth digits (in -2..2) of ``bits``-bit signed integers: ``[..., bits // 2]``, LSB first."""
    u = q.to(torch.int32) & ((1 << bits) - 1)
    b = lambda j: ((u >> j) & 1) if j >= 0 else torch.zeros_like(u)  # noqa: E731
    return torch.stack([-2 * b(2 * i + 1) + b(2 * i) + b(2 * i - 1) for i in range(bits // 2)], dim=-1)


def nonzero_terms(r: BitModQuant) -> torch.Tensor:
    """Non-zero bit-serial terms of every weight: Booth digits for INT, fixed-point ones for FP."""
    if r.dtype in INT_TYPES:
        return (booth_digits(r.codes.to(torch.int32), r.bits) != 0).sum(dim=-1)
    if r.dtype in SPECIAL:
        fixed = (r.codes.abs() * 2).round().to(torch.int64)  # 1 fraction bit
        ones = torch.zeros_like(fixed)
        for j in range(5):
            ones += (fixed >> j) & 1
        return ones
    return torch.full(r.codes.shape, r.bits, dtype=torch.int64)


