"""BBS binary pruning (bbs_bitvert.txt Sec. III-B/C) and the BitWave zero-column bit-flip.

Groups are INT8 two's-complement weight groups ``[..., G]``. Binary pruning of ``N`` bit
columns removes ``r_used = min(r, max_redundant, N)`` redundant (sign-extension) columns
right below the MSB column and makes the ``k = N - r_used`` lowest columns bi-directionally
sparse (every one of them all-0 or all-1 over the group):

* rounded averaging: the k low bits of every weight are replaced by the rounded average
  ``c`` of their values (``0 <= c < 2**k``, the BBS constant);
* zero-point shifting (Algorithm 1): a constant ``z`` of ``const_bits`` signed bits is added,
  the shifted group is rounded to multiples of ``2**k`` (low columns all 0) and ``-z`` is
  applied at decode time. All ``z`` and all admissible ``r_used <= r`` are searched and the
  one with the least squared error kept (``z = 0`` is always a candidate). Shifts that would
  overflow the 8-bit range are skipped.

The group is stored as ``8 - N`` bit columns plus 8 bits of metadata (2 bits ``r_used``,
6 bits constant). Decoding: ``value = -b[7]*2**(7-r) + sum_{j=k}^{6-r} b[j]*2**j + c``
(rounded averaging) or ``... - z`` (zero-point shifting), where ``b`` are the bits of the
stored representation (the pruned weight plus ``z``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from sparsity_models import bitcount
from sparsity_models.bits import bit_length, signed_width
from sparsity_models.quantizers.bbs_format import BITS, CONST_BITS, MAX_REDUNDANT, METADATA_BITS, METHODS  # noqa: F401



@dataclass
class BBSPruned:
    """Binary-pruned groups.

    Attributes:
        values: pruned INT8 values ``[..., G]`` (int16).
        stored: the stored representation ``[..., G]`` before the constant is applied
            (``values`` for rounded averaging, ``values + z`` for zero-point shifting).
        r_used: redundant columns removed per group.
        k: low columns made constant per group (``N - r_used``).
        constant: rounded average ``c`` (rounded averaging) or shift ``z`` (zero-point).
        method: ``rounded_average`` or ``zero_point``.
        n_columns: N, the bit columns pruned per group.
    """

    values: torch.Tensor
    stored: torch.Tensor
    r_used: torch.Tensor
    k: torch.Tensor
    constant: torch.Tensor
    method: str
    n_columns: int


def group_redundant(qg: torch.Tensor, bits: int = BITS) -> torch.Tensor:
    """Redundant columns per group: sign-extension columns shared by every weight of the group.

    The group's minimal width is the larger width of its minimum and its maximum.
    """
    width = torch.maximum(signed_width(qg.amin(dim=-1)), signed_width(qg.amax(dim=-1)))
    return (bits - width).clamp(min=0).to(torch.int32)


def effectual_bits(codes: torch.Tensor | np.ndarray, sub_group: int, bits: int = BITS) -> np.ndarray:
    """Effectual bits per bit column after BBS inversion: ``codes [..., L]`` (INT8, L a multiple
    of ``sub_group``) -> ``[..., L/S, bits]`` int16, one row per sub-group of S codes.

    A column of a sub-group of S weights is processed as is when it has at most S/2 ones,
    else inverted, so its effectual bits are ``min(ones, S - ones) <= S/2``.
    """
    ones = bitcount.group_column_ones(codes, sub_group, bits)
    return np.minimum(ones, sub_group - ones)


def rounded_average(qg: torch.Tensor, n: int, max_redundant: int = MAX_REDUNDANT) -> BBSPruned:
    """Binary pruning of ``n`` columns by rounded averaging of the low ``k`` bits."""
    q = qg.to(torch.int32)
    r_used = group_redundant(q).clamp(max=min(max_redundant, n))
    k = (n - r_used).clamp(min=0)
    mask = ((1 << k) - 1).unsqueeze(-1)
    low = q & mask
    c = torch.floor(low.double().mean(dim=-1) + 0.5).to(torch.int32)
    values = q - low + c.unsqueeze(-1)
    v16 = values.to(torch.int16)
    return BBSPruned(v16, v16, r_used, k, c, "rounded_average", n)


def _class_errors(q: torch.Tensor, n: int, r: int, const_bits: int, gmin: torch.Tensor, gmax: torch.Tensor,
                  hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squared error and its shift per residue class ``z mod 2**k`` (``[P, 2**k]`` each).

    Within one class the rounding error is the same for every shift; the clamping of values
    that round above the ``(8 - r)``-bit range only grows with z, so the smallest feasible
    shift of the class is optimal. Infeasible classes get an infinite error.
    """
    p, g = q.shape
    k = n - r
    mod = 1 << k
    half = mod >> 1
    top = (1 << (BITS - 1 - r)) - 1
    lo = -(1 << (BITS - 1 - r))
    zlo = torch.clamp(lo - gmin, min=-(1 << (const_bits - 1)))
    zhi = torch.clamp(top - gmax, max=(1 << (const_bits - 1)) - 1)
    cls = torch.arange(mod, dtype=torch.int32)
    zstar = zlo.unsqueeze(1) + torch.remainder(cls.unsqueeze(0) - zlo.unsqueeze(1), mod)
    feasible = zstar <= zhi.unsqueeze(1)
    if k == 0:
        err = torch.zeros(p, 1, dtype=torch.float64)
    else:
        t = (cls.unsqueeze(1) + cls.unsqueeze(0)) % mod
        table = torch.minimum(t, mod - t).double() ** 2
        err = hist.double() @ table                                   # [P, mod] rounding error per class
        thresh = (top + 1) - half + 1                                  # shifted values >= thresh are clamped
        clip = feasible & ((gmax.unsqueeze(1) + zstar) >= thresh)
        if clip.any():
            pi, ci = clip.nonzero(as_tuple=True)
            u = q[pi] + zstar[pi, ci].unsqueeze(1)
            over = (u >= thresh).to(torch.float64)
            corr = (mod * (2.0 * u.double() - 2.0 * (top + 1) + mod) * over).sum(dim=1)
            err[pi, ci] += corr
    err = torch.where(feasible, err, torch.full_like(err, float("inf")))
    return err, zstar


def zero_point_shift(qg: torch.Tensor, n: int, max_redundant: int = MAX_REDUNDANT,
                     const_bits: int = CONST_BITS, chunk: int = 32768) -> BBSPruned:
    """Binary pruning of ``n`` columns by zero-point shifting (Algorithm 1), vectorized over groups."""
    shape = qg.shape
    q_all = qg.reshape(-1, shape[-1]).to(torch.int32)
    r_max = min(max_redundant, n)
    out_v, out_s, out_r, out_k, out_z = [], [], [], [], []
    for start in range(0, q_all.shape[0], chunk):
        q = q_all[start:start + chunk]
        p = q.shape[0]
        gmin, gmax = q.amin(dim=1), q.amax(dim=1)
        mod0 = 1 << n
        offs = torch.arange(p, dtype=torch.int64).unsqueeze(1) * mod0
        hist_n = torch.bincount((torch.remainder(q, mod0).to(torch.int64) + offs).flatten(),
                                minlength=p * mod0).reshape(p, mod0)
        best = torch.full((p,), float("inf"), dtype=torch.float64)
        best_z = torch.zeros(p, dtype=torch.int32)
        best_r = torch.zeros(p, dtype=torch.int32)
        for r in range(0, r_max + 1):
            mod = 1 << (n - r)
            hist = hist_n.reshape(p, mod0 // mod, mod).sum(dim=1)       # residues mod 2**k
            err, zstar = _class_errors(q, n, r, const_bits, gmin, gmax, hist)
            e, j = err.min(dim=1)
            better = e < best
            best = torch.where(better, e, best)
            best_z = torch.where(better, zstar.gather(1, j.unsqueeze(1)).squeeze(1).to(torch.int32), best_z)
            best_r = torch.where(better, torch.full_like(best_r, r), best_r)
        k = n - best_r
        mod = (1 << k).unsqueeze(1)
        u = q + best_z.unsqueeze(1)
        m = torch.remainder(u, mod)
        stored = u - m + torch.where(m > (mod >> 1), mod, torch.zeros_like(mod))
        stored = torch.minimum(stored, (1 << (BITS - 1 - best_r)).unsqueeze(1) - mod)
        out_s.append(stored)
        out_v.append(stored - best_z.unsqueeze(1))
        out_r.append(best_r)
        out_k.append(k)
        out_z.append(best_z)
    lead = shape[:-1]
    return BBSPruned(
        values=torch.cat(out_v).reshape(shape).to(torch.int16),
        stored=torch.cat(out_s).reshape(shape).to(torch.int16),
        r_used=torch.cat(out_r).reshape(lead),
        k=torch.cat(out_k).reshape(lead),
        constant=torch.cat(out_z).reshape(lead),
        method="zero_point",
        n_columns=n,
    )


def prune(qg: torch.Tensor, n: int, method: str, max_redundant: int = MAX_REDUNDANT) -> BBSPruned:
    """Binary pruning with the named method (``rounded_average`` or ``zero_point``)."""
    if method == "rounded_average":
        return rounded_average(qg, n, max_redundant)
    if method == "zero_point":
        return zero_point_shift(qg, n, max_redundant)
    raise ValueError(f"unknown BBS method {method!r}")


def stored_bit_columns(p: BBSPruned) -> torch.Tensor:
    """The stored bit columns of every group: ``[..., G, 8]`` bits (LSB first) with the pruned
    columns (the ``r_used`` below the MSB and the ``k`` lowest) zeroed out."""
    u = p.stored.to(torch.int32) & 0xFF
    cols = torch.stack([(u >> j) & 1 for j in range(BITS)], dim=-1)
    j = torch.arange(BITS)
    r = p.r_used.unsqueeze(-1).unsqueeze(-1)
    k = p.k.unsqueeze(-1).unsqueeze(-1)
    keep = (j >= k) & ((j == BITS - 1) | (j < BITS - 1 - r))
    return cols * keep


def decode(columns: torch.Tensor, r_used: torch.Tensor, k: torch.Tensor, constant: torch.Tensor,
           method: str) -> torch.Tensor:
    """Weights from stored columns ``[..., G, 8]`` plus the metadata (``r_used``, constant).

    The MSB column weighs ``-2**(7 - r_used)``; kept columns ``k .. 6 - r_used`` weigh ``2**j``;
    the constant adds ``c`` (rounded averaging) or ``-z`` (zero-point shifting).
    """
    j = torch.arange(BITS)
    r = r_used.unsqueeze(-1).unsqueeze(-1)
    kk = k.unsqueeze(-1).unsqueeze(-1)
    weight = torch.where(j == BITS - 1, -(1 << (BITS - 1 - r)), 1 << j)      # [..., 1, 8]
    valid = (j >= kk) & ((j == BITS - 1) | (j < BITS - 1 - r))
    value = (columns.to(torch.int64) * weight * valid).sum(dim=-1)
    c = constant.unsqueeze(-1).to(torch.int64)
    return value + (c if method == "rounded_average" else -c)


def bitwave_flip(qg: torch.Tensor, n: int) -> torch.Tensor:
    """BitWave's zero-column-only bit-flip in sign-magnitude (7 magnitude columns per group).

    The ``t`` top magnitude columns that are zero for every weight are free; the remaining
    ``k = max(n - t, 0)`` lowest magnitude columns are forced to zero by rounding every
    magnitude to the nearest multiple of ``2**k`` that keeps the top ``t`` columns zero.
    """
    q = qg.to(torch.int32)
    mag = q.abs().clamp(max=(1 << (BITS - 1)) - 1)
    t = (BITS - 1) - bit_length(mag.amax(dim=-1))
    k = (n - t).clamp(min=0).unsqueeze(-1)
    mod = 1 << k
    hi = (1 << (BITS - 1 - t)).unsqueeze(-1) - mod
    m = mag & (mod - 1)
    r = mag - m + torch.where(m > (mod >> 1), mod, torch.zeros_like(mod))
    r = torch.minimum(r, hi.clamp(min=0))
    return (torch.sign(q) * r).to(torch.int16)


def bitwave_zero_columns(qg: torch.Tensor) -> torch.Tensor:
    """Magnitude columns (of 7) that are zero for every weight of the group."""
    mag = qg.to(torch.int32).abs().clamp(max=(1 << (BITS - 1)) - 1)
    anyone = torch.zeros(qg.shape[:-1], dtype=torch.int32)
    for j in range(BITS - 1):
        anyone = anyone + (((mag >> j) & 1).amax(dim=-1) == 0).to(torch.int32)
    return anyone


def sensitive_counts(scales: Mapping[str, torch.Tensor], fraction: float, parallel: int) -> dict[str, int]:
    """Hardware-aware global channel selection (Algorithm 2): sensitive channels per layer.

    All channels of all layers are sorted by their per-channel scale; the top ``fraction``
    are sensitive. Each layer's count is rounded up to a multiple of ``parallel`` (the weight
    channels processed in parallel), capped at the layer's channel count.
    """
    names = list(scales)
    if fraction <= 0 or not names:
        return {n: 0 for n in names}
    allv = torch.cat([scales[n].flatten().double() for n in names])
    n_top = int(round(fraction * allv.numel()))
    if n_top == 0:
        return {n: 0 for n in names}
    thresh = torch.topk(allv, n_top).values[-1]
    out = {}
    for name in names:
        s = scales[name].flatten()
        cnt = int((s.double() >= thresh).sum())
        cnt = -(-cnt // parallel) * parallel
        out[name] = min(cnt, s.numel())
    return out


def sensitive_mask(scale: torch.Tensor, count: int) -> torch.Tensor:
    """Bool ``[M]``: the ``count`` channels of a layer with the largest scales."""
    mask = torch.zeros(scale.numel(), dtype=torch.bool)
    if count > 0:
        mask[torch.topk(scale.flatten(), min(count, scale.numel())).indices] = True
    return mask
