"""Quantizers of the comparison baselines: TQ (term quantization), ANT, OliVe.

None of these papers is in the shared corpus; the definitions below are the ones bitloop
uses and are stated so that results can be judged:

* TQ (Kung et al., SC'20): values are sums of power-of-two terms (binary magnitude); each
  group of ``g`` values keeps only its ``alpha*g`` largest terms (ties: earlier elements).
* ANT (Guo et al., MICRO'22): every output channel picks, by least squared error, one of
  three ``b``-bit grids: INT (uniform), PoT (``0, +-2**i``) or a float grid (2 exponent
  bits, ``b-3`` mantissa bits); ANT's flint grid is approximated by this float grid.
* OliVe (Guo et al., ISCA'23): outlier-victim pairs at 4 bits. Normal values use INT4 with
  the step set by the 3-sigma range; in an adjacent pair holding a value beyond the INT4
  range, the larger value is an outlier coded in an E2M1 "abfloat" grid starting at 8
  steps (``{8, 12, 16, 24, 32, 48, 64, 96} * step``) and its neighbour (victim) becomes 0.
"""

from __future__ import annotations

import torch

from sparsity_models.grouping import as_matrix, to_groups, ungroup


def term_quantize(q: torch.Tensor, group_size: int = 8, alpha: float = 2.0,
                  bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Group term quantization of signed integers ``[M, K]``: ``(values, terms kept per value)``."""
    m, k = q.shape
    g = to_groups(q.to(torch.int32), group_size)
    sign = torch.sign(g)
    mag = g.abs().clamp(max=(1 << (bits - 1)) - 1)
    budget = torch.full(g.shape[:2], int(round(alpha * group_size)), dtype=torch.int32)
    kept = torch.zeros_like(mag)
    nterms = torch.zeros_like(mag)
    for e in range(bits - 2, -1, -1):
        bit = (mag >> e) & 1
        csum = bit.cumsum(dim=-1)
        take = bit * (csum <= budget.unsqueeze(-1)).to(torch.int32)
        kept += take << e
        nterms += take
        budget = (budget - take.sum(dim=-1)).clamp(min=0)
    return ungroup(sign * kept, k), ungroup(nterms, k)


def _grid_int(bits: int) -> torch.Tensor:
    qmax = (1 << (bits - 1)) - 1
    return torch.arange(-qmax, qmax + 1, dtype=torch.float32)


def _grid_pot(bits: int) -> torch.Tensor:
    n = (1 << (bits - 1)) - 1
    p = 2.0 ** torch.arange(n, dtype=torch.float32)
    return torch.cat([-p.flip(0), torch.zeros(1), p])


def _grid_float(bits: int) -> torch.Tensor:
    man = max(bits - 3, 0)
    vals = {0.0}
    for e in range(4):
        for mm in range(1 << man):
            frac = mm / (1 << man)
            vals.add((frac if e == 0 else 1.0 + frac) * 2.0 ** max(e - 1, 0))
    v = torch.tensor(sorted(vals), dtype=torch.float32)
    v = v[v > 0]
    return torch.cat([-v.flip(0), torch.zeros(1), v])


ANT_GRIDS = {"int": _grid_int, "pot": _grid_pot, "float": _grid_float}


def _nearest(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    mids = (values[1:] + values[:-1]) / 2
    return values[torch.bucketize(x, mids)]


def ant_quantize(w: torch.Tensor, bits: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """ANT-style per-channel adaptive type: ``(dequantized [M, K], chosen type index [M])``."""
    x = as_matrix(w).float()
    amax = x.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
    best = best_err = best_i = None
    for i, make in enumerate(ANT_GRIDS.values()):
        grid = make(bits)
        s = amax / grid.max()
        s = torch.where(s > 0, s, torch.ones_like(s))
        dq = _nearest(x / s, grid) * s
        err = ((dq - x) ** 2).sum(dim=1)
        if best is None:
            best, best_err, best_i = dq, err, torch.zeros_like(err, dtype=torch.int64)
        else:
            better = err < best_err
            best = torch.where(better.unsqueeze(1), dq, best)
            best_err = torch.where(better, err, best_err)
            best_i = torch.where(better, torch.full_like(best_i, i), best_i)
    return best, best_i


OLIVE_OUTLIER = torch.tensor([8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0])


def olive_quantize(w: torch.Tensor, sigmas: float = 3.0) -> tuple[torch.Tensor, float]:
    """OliVe-style 4-bit outlier-victim-pair quantization: ``(dequantized [M, K], outlier fraction)``."""
    x = as_matrix(w).float()
    m, k = x.shape
    step = float(sigmas * x.std() / 7) or 1.0
    pairs = to_groups(x, 2)
    mag = pairs.abs()
    normal = torch.clamp(torch.round(pairs / step), -7, 7) * step
    has_out = (mag > 7.5 * step).any(dim=-1, keepdim=True)
    big = mag >= mag.amax(dim=-1, keepdim=True)
    first_big = big & (big.cumsum(dim=-1) == 1)
    grid = torch.cat([-OLIVE_OUTLIER.flip(0), OLIVE_OUTLIER])
    outlier = _nearest(pairs / step, grid) * step
    deq = torch.where(has_out, torch.where(first_big, outlier, torch.zeros_like(pairs)), normal)
    return ungroup(deq, k), float(has_out.float().mean())
