"""Bit-slice statistics of Panacea (AQS-GEMM) and Sibia: HO slice-vector sparsity, RLE, tiles.

GEMM view ``Out[M, N] = W[M, K] x[K, N]``: a weight HO slice vector is v consecutive
output channels at one k (``v x 1``); an activation HO slice vector is v consecutive tokens
at one k (``1 x v``). A tile is one processing-element array's work: v weight rows x TK
reduction steps x v tokens; tiles of different weight rows run in lock-step (they share the
activation tile), so per-tile cycle arrays are ``[M/v, (N/v) * (K/TK)]``.
"""

from __future__ import annotations

import math

import torch

from sparsity_models.quantizers import panacea as pc
from sparsity_models.quantizers.integer import quantize_symmetric
from sparsity_models.stats.common import proxies

LO = pc.LO_BITS


def _weight_ho(w: torch.Tensor, weight_bits: int, v: int) -> tuple[torch.Tensor | None, torch.Tensor, int]:
    """``(compressed mask [ceil(M/v), K] or None, dequantized weights, n LO slices)``."""
    if (weight_bits - 4) % 3:
        raise ValueError("weight_bits must be 3n+4 (4, 7, 10, ...)")
    n = (weight_bits - 4) // 3
    r = quantize_symmetric(w, weight_bits, "channel")
    if n == 0:
        return None, r.deq, 0
    ho = pc.sbr_ho(r.q, n)
    return pc.vectors_equal(ho, 0, v, axis=0), r.deq, n


def _act_mask(x: torch.Tensor, use_zpm: bool, use_dbs: bool, target: float, v: int) -> tuple[torch.Tensor, pc.ActQuant]:
    a = pc.quantize_activations(x, use_zpm, use_dbs, target)
    ho = a.xu >> a.lo_bits
    return pc.vectors_equal(ho, a.r, v, axis=0), a


def _rle_ratio(mask: torch.Tensor, index_bits: int) -> float:
    """Stored RLE entries per slice vector (streams along K; mask ``[streams, K]``)."""
    entries = pc.rle_entries(mask.t(), index_bits)
    return float(entries.sum()) / mask.numel()


def _tile_sums(mask_unc: torch.Tensor, tile_k: int) -> torch.Tensor:
    """Uncompressed vectors per k-tile: ``[rows, Kt]``."""
    rows, k = mask_unc.shape
    kt = math.ceil(k / tile_k)
    pad = kt * tile_k - k
    m = torch.cat([mask_unc, torch.zeros(rows, pad)], 1) if pad else mask_unc
    return m.reshape(rows, kt, tile_k).sum(dim=2)


def _tile_products(wu: torch.Tensor, xu: torch.Tensor, tile_k: int) -> torch.Tensor:
    """Per (weight block, token block, k-tile) count of k with both HO vectors uncompressed: ``[R, Tb, Kt]``."""
    r, k = wu.shape
    kt = math.ceil(k / tile_k)
    out = torch.empty(r, xu.shape[0], kt)
    for t in range(kt):
        sl = slice(t * tile_k, min(k, (t + 1) * tile_k))
        out[:, :, t] = wu[:, sl] @ xu[:, sl].t()
    return out


def dtp_pair_cycles(dwo: torch.Tensor, swo: torch.Tensor, n_dwo: int, n_swo: int, pes: int) -> torch.Tensor:
    """Cycles per tile under double tile processing (panacea.txt Sec. III-D "Double tile processing").

    ``dwo`` ``[R, Tb, Kt]`` and ``swo`` ``[Kt]``: outer products per tile for the DWOs and the
    SWOs. A PEA holds two weight sub-tiles, rows r and r + ``pes`` of each 2 x ``pes``-row weight
    tile (the 2TM x K tile of the DTP condition), and runs both on one activation sub-tile; the
    second sub-tile's ``W_LO x_LO`` products may go to the DWOs. With DWO work D1 + D2 and SWO
    work S1 + S2 the pair takes ``max((D1 + D2) / n_dwo, S1 / n_swo, (D1 + D2 + S1 + S2) /
    (n_dwo + n_swo))`` cycles (the best split of S2 between SWOs and DWOs); each of its two tiles
    is charged half. A row without a partner runs alone. Returns ``[R, Tb, Kt]``.
    """
    rows = dwo.shape[0]
    s = swo.expand_as(dwo)
    alone = torch.maximum(dwo / n_dwo, s / n_swo)
    out = alone.clone()
    for start in range(0, rows, 2 * pes):
        first = torch.arange(start, min(start + pes, rows))
        second = first + pes
        keep = second < rows
        a, b = first[keep], second[keep]
        if not len(a):
            continue
        d = dwo[a] + dwo[b]
        pair = torch.maximum(torch.maximum(d / n_dwo, s[a] / n_swo), (d + s[a] + s[b]) / (n_dwo + n_swo))
        out[a] = pair / 2
        out[b] = pair / 2
    return out


def panacea_stats(w: torch.Tensor, x: torch.Tensor, v: int, weight_bits: int, zpm: bool, dbs: bool,
                  dbs_target: float, rle_bits: int, tile_k: int, n_dwo: int, n_swo: int, dtp: bool = False,
                  pes: int = 16) -> dict:
    """Panacea's AQS-GEMM statistics for weights ``[M, K]`` and calibration activations ``[T, K]``.

    Per k of a tile: SWOs take the ``n`` dense ``W_LO x_LO`` outer products; DWOs take
    ``n*[x_HO unc] + [w_HO unc] + [w_HO unc][x_HO unc]``. A tile takes
    ``max(sum SWO work / n_swo, sum DWO work / n_dwo)`` cycles, or with ``dtp`` its share of a
    double tile (:func:`dtp_pair_cycles`, ``pes`` PEAs); ``tile_cycles`` holds that per
    reduction step (one step = every lane of the v x v output block does one MAC).
    """
    k = w.shape[1]
    wmask, wdeq, n = _weight_ho(w, weight_bits, v)
    xmask, aq = _act_mask(x, zpm, dbs, dbs_target, v)
    rho_w = float(wmask.float().mean()) if wmask is not None else 1.0
    rho_x = float(xmask.float().mean())
    xu = (~xmask).float()                                     # [Tb, K]
    wu = (~wmask).float() if wmask is not None else torch.zeros(math.ceil(w.shape[0] / v), k)
    both = _tile_products(wu, xu, tile_k)                     # [R, Tb, Kt]
    wsum = _tile_sums(wu, tile_k)                             # [R, Kt]
    xsum = _tile_sums(xu, tile_k)                             # [Tb, Kt]
    klen = torch.full((math.ceil(k / tile_k),), float(tile_k))
    klen[-1] = k - tile_k * (klen.numel() - 1)
    if n > 0:
        swo = n * klen                                                  # W_LO x_LO (dense)
        dwo = n * xsum.unsqueeze(0) + wsum.unsqueeze(1) + both          # W_LO x_HO, W_HO x_LO, W_HO x_HO
    else:                                                               # 4-bit weights: one slice
        swo = klen
        dwo = xsum.unsqueeze(0).expand(wu.shape[0], -1, -1)
    if dtp:
        tile = dtp_pair_cycles(dwo, swo, n_dwo, n_swo, pes)
    else:
        tile = torch.maximum(swo / n_swo, dwo / n_dwo)
    cycles = tile / klen                                                # [R, Tb, Kt] cycles per step
    ho_slice = (aq.xu >> aq.lo_bits)
    variants = {}
    for name, (z, d) in {"plain": (False, False), "zpm": (True, False), "dbs": (False, True), "zpm_dbs": (True, True)}.items():
        variants[name] = float(_act_mask(x, z, d, dbs_target, v)[0].float().mean())
    plain = pc.quantize_activations(x, False, False)
    variants["zero_only"] = float(pc.vectors_equal(plain.xu >> LO, 0, v, axis=0).float().mean())
    e_w = _rle_ratio(wmask, rle_bits) if wmask is not None else 0.0
    e_x = _rle_ratio(xmask, rle_bits)
    wbits = 4 * n + e_w * (4 + rle_bits / v) if n > 0 else 4.0
    xbits = 4 + e_x * (4 + rle_bits / v)
    out = {
        "v": v, "weight_bits": weight_bits, "lo_slices": n, "zpm": zpm, "dbs": dbs, "dtp": dtp,
        "rho_w": rho_w, "rho_x": rho_x,
        "act_slice_sparsity": float((ho_slice == aq.r).float().mean()),
        "act_vector_sparsity_variants": variants,
        "dbs_type": aq.dbs_type, "lo_bits": aq.lo_bits, "zero_point": aq.zero_point, "r": aq.r,
        "rle_entries_per_vector_w": e_w, "rle_entries_per_vector_x": e_x,
        "rle_index_bits_per_element_w": e_w * rle_bits / v, "rle_index_bits_per_element_x": e_x * rle_bits / v,
        "weight_bits_per_element": wbits, "input_bits_per_element": xbits,
        "tile_cycles": cycles.reshape(cycles.shape[0], -1).numpy(),
        "slice_products_per_mac": float((swo.sum() + dwo.sum(dim=-1).mean()) / klen.sum()),
    }
    out.update(proxies(w, wdeq, "w_"))
    out.update(proxies(x, aq.deq, "x_"))
    return out


def sibia_stats(w: torch.Tensor, x: torch.Tensor, v: int, weight_bits: int, act_bits: int, tile_k: int,
                outer_products_per_cycle: int) -> dict:
    """Sibia: symmetric SBR weights and activations, skipping all-zero HO vectors of one operand
    per tile (the one that skips more outer products).

    Per k of a tile: ``(n+1)(k+1)`` outer products dense, minus ``(n+1)`` per compressed
    activation vector or ``(k+1)`` per compressed weight vector; ``tile_cycles`` = products per
    step / ``outer_products_per_cycle``.
    """
    k = w.shape[1]
    wmask, wdeq, n = _weight_ho(w, weight_bits, v)
    if (act_bits - 4) % 3:
        raise ValueError("act_bits must be 3k+4")
    ka = (act_bits - 4) // 3
    xq, xs = pc.symmetric_act_codes(x, act_bits)
    xmask = pc.vectors_equal(pc.sbr_ho(xq, ka), 0, v, axis=0) if ka > 0 else torch.ones(math.ceil(x.shape[0] / v), k, dtype=torch.bool)
    wrows = math.ceil(w.shape[0] / v)
    wc = _tile_sums(wmask.float() if wmask is not None else torch.ones(wrows, k), tile_k)   # [R, Kt]
    xc = _tile_sums(xmask.float(), tile_k)                                                # [Tb, Kt]
    klen = torch.full((math.ceil(k / tile_k),), float(tile_k))
    klen[-1] = k - tile_k * (klen.numel() - 1)
    dense = (n + 1) * (ka + 1) * klen
    skip = torch.maximum((n + 1) * xc.unsqueeze(0), (ka + 1) * wc.unsqueeze(1))            # [R, Tb, Kt]
    cycles = (dense - skip) / outer_products_per_cycle / klen
    out = {
        "v": v, "weight_bits": weight_bits, "act_bits": act_bits,
        "rho_w": float(wmask.float().mean()) if wmask is not None else 1.0,
        "rho_x": float(xmask.float().mean()),
        "tile_cycles": cycles.reshape(cycles.shape[0], -1).numpy(),
        "weight_bits_per_element": float(weight_bits), "input_bits_per_element": float(act_bits),
    }
    out.update(proxies(w, wdeq, "w_"))
    out.update(proxies(x, xq.float() * xs, "x_"))
    return out

