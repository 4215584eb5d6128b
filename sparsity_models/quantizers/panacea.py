"""Panacea bit-slicing (panacea.txt Sec. II-B, III-B/C) and Sibia's symmetric slicing.

Weights: symmetric ``(3n+4)``-bit integers in the signed bit-slice representation (SBR):
``n`` 3-bit unsigned LO slices, each extended to a signed 4-bit slice by the sign of the
number, and one signed 4-bit HO slice; the HO slice is 0 for every near-zero value of
either sign (for n = 1 exactly the values ``[-8, 7]``).

Activations: asymmetric unsigned 8-bit (``4k+4`` with k=1), Panacea Eq. 2 with
``zp = clip(floor(-min/s'), 0, 255)``. The HO slice is ``x >> l`` and the frequent HO value
is ``r = zp >> l``. Zero-point manipulation (Eq. 7) moves the zero point to the centre of
its slice-skip range: ``zp' = 2**l * floor(zp / 2**l) + 2**(l-1)`` (0 if zp = 0).
Distribution-based slicing: the calibration distribution's spread ``std * z`` (``z`` the
two-sided normal z-score of the target fraction) is compared with the half-width
``2**(l-1)`` of the skip range for l = 4, 5, 6 (DBS types 1, 2, 3); type t uses an
``l``-bit LO slice whose ``l - 4`` least significant bits are dropped, keeping 4-bit slices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

ACT_BITS = 8
LO_BITS = 4


def sbr_slices(q: torch.Tensor, n: int) -> torch.Tensor:
    """Signed bit-slice representation of ``(3n+4)``-bit values: ``[n+1, ...]`` slices, HO first.

    Each step splits off the 3 low bits and, for a negative number, extends them with the
    sign (``lo - 8``) and adds 1 to the remaining high part (``1111 -> 0000``).
    Value = ``sum_i slice[i] * 8**(n - i)``; every slice lies in ``[-8, 7]``.
    """
    x = q.to(torch.int32)
    los = []
    for _ in range(n):
        lo = x & 7
        neg = (x < 0).to(torch.int32)
        los.append(lo - 8 * neg)
        x = (x >> 3) + neg
    return torch.stack([x] + los[::-1])


def sbr_ho(q: torch.Tensor, n: int) -> torch.Tensor:
    """The HO slice of SBR."""
    return sbr_slices(q, n)[0]


@dataclass
class ActQuant:
    """Asymmetric 8-bit activation quantization with Panacea's slicing parameters.

    Attributes:
        xu: unsigned codes ``[T, K]`` in ``[0, 255]`` (after ZPM if enabled).
        scale: step size s'.
        zero_point: zero point used (``zp`` or ``zp'``).
        lo_bits: l, the LO slice width (4, 5 or 6).
        dbs_type: 1, 2 or 3.
        r: frequent HO slice value (compressed vectors are all-r).
        deq: dequantized activations as computed by the slices (LSBs beyond 4 LO bits dropped).
    """

    xu: torch.Tensor
    scale: float
    zero_point: int
    lo_bits: int
    dbs_type: int
    r: int
    deq: torch.Tensor


def asym_params(x: torch.Tensor, bits: int = ACT_BITS) -> tuple[float, int]:
    """Panacea Eq. 2: ``s' = (max - min) / (2**b - 1)``, ``zp = clip(floor(-min/s'), 0, 2**b - 1)``."""
    lo, hi = float(x.min()), float(x.max())
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / ((1 << bits) - 1)
    if not (scale > 0 and math.isfinite(scale)):
        scale = 1.0
    zp = int(min(max(math.floor(-lo / scale), 0), (1 << bits) - 1))
    return scale, zp


def zpm(zp: int, lo_bits: int) -> int:
    """Zero-point manipulation (Eq. 7)."""
    if zp <= 0:
        return 0
    return (1 << lo_bits) * (zp >> lo_bits) + (1 << (lo_bits - 1))


def normal_z(fraction: float) -> float:
    """Two-sided z-score: the central ``fraction`` of a normal lies within ``mean +- z*std``."""
    return math.sqrt(2.0) * torch.special.erfinv(torch.tensor(fraction, dtype=torch.float64)).item()


def dbs_type(std_codes: float, target: float) -> int:
    """DBS type 1/2/3 from the code-domain std: the smallest l in (4, 5, 6) whose skip-range
    half-width ``2**(l-1)`` covers ``std * z(target)`` (type 3 when none does)."""
    spread = std_codes * normal_z(target)
    for t, l in ((1, 4), (2, 5)):
        if spread <= (1 << (l - 1)):
            return t
    return 3


def quantize_activations(x: torch.Tensor, use_zpm: bool = True, use_dbs: bool = True,
                         target: float = 0.9, calib: torch.Tensor | None = None) -> ActQuant:
    """Asymmetric 8-bit activations with optional ZPM and DBS (parameters from ``calib``, default ``x``)."""
    calib = x if calib is None else calib
    scale, zp0 = asym_params(calib)
    lo_bits = LO_BITS
    t = 1
    if use_dbs:
        codes = torch.clamp(torch.round(calib.float() / scale) + zp0, 0, 255)
        t = dbs_type(float(codes.std()), target)
        lo_bits = LO_BITS + t - 1
    zp = zpm(zp0, lo_bits) if use_zpm else zp0
    xu = torch.clamp(torch.round(x.float() / scale) + zp, 0, 255).to(torch.int32)
    drop = lo_bits - LO_BITS
    kept = (xu >> drop) << drop
    deq = (kept.float() - zp) * scale
    r = zp >> lo_bits if not use_zpm or zp == 0 else (zp - (1 << (lo_bits - 1))) >> lo_bits
    return ActQuant(xu, scale, zp, lo_bits, t, r, deq)


def symmetric_act_codes(x: torch.Tensor, bits: int = 7) -> tuple[torch.Tensor, float]:
    """Sibia's symmetric activations (Panacea Eq. 1, rounding): codes in ``[-(2**(b-1)-1), 2**(b-1)-1]``."""
    qmax = (1 << (bits - 1)) - 1
    scale = float(x.abs().max()) / qmax
    if not (scale > 0 and math.isfinite(scale)):
        scale = 1.0
    return torch.clamp(torch.round(x.float() / scale), -qmax, qmax).to(torch.int32), scale


def vectors_equal(slices: torch.Tensor, value: int, v: int, axis: int) -> torch.Tensor:
    """Bool mask of length-v slice vectors (consecutive along ``axis``) whose slices all equal ``value``.

    ``slices`` is 2-D; the axis is padded with ``value`` to a multiple of v. Result shape:
    the other axis kept, ``axis`` reduced by v (vectors along ``axis`` become one entry).
    """
    s = slices if axis == 0 else slices.t()
    pad = (-s.shape[0]) % v
    if pad:
        s = torch.cat([s, torch.full((pad, s.shape[1]), value, dtype=s.dtype)], 0)
    eq = (s == value).reshape(-1, v, s.shape[1]).all(dim=1)
    return eq  # [n_vectors_along_axis, other]


def rle_entries(compressed: torch.Tensor, index_bits: int) -> torch.Tensor:
    """Stored RLE entries per stream (streams along dim 1, positions along dim 0).

    Every uncompressed vector is stored with an ``index_bits`` index counting the compressed
    vectors skipped before it; a run of L compressed vectors before a stored one needs
    ``floor(L / 2**index_bits)`` extra filler entries (each stores one vector explicitly).
    Trailing compressed vectors need no entry.
    """
    cap = 1 << index_bits
    c = compressed.bool().t().contiguous().numpy()                # [streams, n]
    streams, n = c.shape
    pos = np.flatnonzero(~c.ravel())                               # uncompressed vectors, stream-major
    sid, local = pos // n, pos % n
    prev = np.empty_like(local)
    prev[1:] = local[:-1]
    first = np.ones(local.size, bool)
    first[1:] = sid[1:] != sid[:-1]
    prev[first] = -1
    fillers = (local - prev - 1) // cap
    stored = np.bincount(sid, minlength=streams) + np.bincount(sid, weights=fillers, minlength=streams).astype(np.int64)
    return torch.from_numpy(stored)
