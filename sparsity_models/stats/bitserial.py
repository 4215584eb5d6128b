"""Bit-column statistics of INT8 weights: BBS, binary pruning, and bit-serial baselines.

Weights are the per-channel symmetric INT8 codes ``[M, K]`` grouped along K in groups of G
(one group = the G lanes of one lock-step weight group). Per-group arrays are ``[M, C]``
with ``C = ceil(K / G)``; lock-step parallel groups are different rows (output channels).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sparsity_models import bitcount
from sparsity_models.grouping import to_groups
from sparsity_models.quantizers import bbs
from sparsity_models.stats.common import ErrorSums, row_chunks

BITS = 8


_POP = np.array([bin(i).count("1") for i in range(256)], np.int64)
_SIGNED = np.arange(256) - 256 * (np.arange(256) >= 128)          # byte -> INT8 value


def _grouped_bytes(q: torch.Tensor, group_size: int) -> np.ndarray:
    """INT8 codes ``[m, K]`` -> two's-complement bytes ``[m, C*G]`` (edge-padded to whole groups)."""
    return np.ascontiguousarray(to_groups(q, group_size).reshape(q.shape[0], -1).numpy().astype(np.uint8, casting="unsafe"))


def bitcol_stats(q: torch.Tensor, group_size: int, sub_group: int) -> dict:
    """Unpruned bit statistics and the per-group cycles of Pragmatic, Bitlet and BitWave (N=0).

    Keys: zero-bit sparsities (two's complement, sign-magnitude), value sparsity, BBS
    sparsity, effectual bits per column per sub-group (mean, max, histogram), redundant
    columns (mean, histogram), ``pragmatic_cycles``/``bitlet_cycles``/``bitwave_cycles``
    ``[M, C]`` and the Pragmatic lane busy cycles per MAC.
    """
    if group_size % sub_group:
        raise ValueError("sub_group must divide group_size")
    m, k = q.shape
    vals = np.arange(256)
    mag_of = np.minimum(np.abs(_SIGNED), 127)
    hist = np.zeros(256, np.int64)
    eff_sum = n_cols = 0
    eff_max = 0
    eff_hist = np.zeros(sub_group // 2 + 1, np.int64)
    red_hist = np.zeros(BITS + 1, np.int64)
    prag, bitlet, bitwave = [], [], []
    for rows in row_chunks(m, k):
        b = _grouped_bytes(q[rows], group_size)                        # [r, C*G] uint8
        r, length = b.shape
        c = length // group_size
        hist += np.bincount(b.ravel(), minlength=256)
        eff = bbs.effectual_bits(b, sub_group)                          # [r, C*G/S, 8]
        eff_sum += int(eff.sum(dtype=np.int64))
        eff_max = max(eff_max, int(eff.max()))
        eff_hist += np.bincount(eff.ravel(), minlength=eff_hist.size)[: eff_hist.size]
        n_cols += eff.size
        sb = b.view(np.int8).reshape(r, c, group_size)
        gmin, gmax = sb.min(axis=2).astype(np.int64), sb.max(axis=2).astype(np.int64)
        width = np.maximum(_width(gmin), _width(gmax))
        red_hist += np.bincount((BITS - width).ravel(), minlength=BITS + 1)
        mag = mag_of[b].astype(np.uint8)                                  # sign-magnitude magnitudes
        mcols = bitcount.group_column_ones(mag, group_size)[..., : BITS - 1]   # [r, C, 7]
        bitlet.append(np.maximum(mcols.max(axis=2), 1).astype(np.int16))
        bitwave.append(np.maximum((mcols > 0).sum(axis=2), 1).astype(np.int8))
        pc = bitcount.byte_popcount(mag.view(np.int64)).reshape(r, c, group_size)
        prag.append(np.maximum(pc.max(axis=2), 1).astype(np.int8))
    n_elem = int(hist.sum())
    ones_twos = int((hist * _POP).sum())
    ones_sm = int((hist * (_POP[mag_of] + (_SIGNED < 0))).sum())
    return {
        "group_size": group_size,
        "sub_group": sub_group,
        "zero_bit_sparsity_twos": 1 - ones_twos / (BITS * n_elem),
        "zero_bit_sparsity_sm": 1 - ones_sm / (BITS * n_elem),
        "value_sparsity": float(hist[0] / n_elem),
        "bbs_sparsity": 1 - eff_sum / (BITS * n_elem),
        "effectual_per_column_mean": eff_sum / n_cols,
        "effectual_per_column_max": eff_max,
        "effectual_hist": eff_hist,
        "redundant_mean": float((red_hist * np.arange(BITS + 1)).sum() / red_hist.sum()),
        "redundant_hist": red_hist,
        "pragmatic_busy_per_mac": float((hist * _POP[mag_of]).sum() / n_elem),
        "pragmatic_cycles": np.concatenate(prag),
        "bitlet_cycles": np.concatenate(bitlet),
        "bitwave_cycles": np.concatenate(bitwave),
        "value_hist": hist[(vals + 128) % 256],   # counts of INT8 values -128..127
    }


def _width(v: np.ndarray) -> np.ndarray:
    """Minimal two's-complement width of integers (numpy)."""
    mag = np.where(v < 0, -v - 1, v)
    out = np.ones_like(mag)
    for b in range(1, 8):
        out += (mag >= (1 << (b - 1))).astype(out.dtype)
    return out


def bbs_prune_stats(q: torch.Tensor, scale: torch.Tensor, w: torch.Tensor, group_size: int, sub_group: int,
                    pruned_columns: int, method: str, n_sensitive: int, max_redundant: int) -> dict:
    """Binary pruning of the non-sensitive channels and the resulting BitVert statistics.

    ``stored_columns [M, C]``: bit columns stored and processed (one cycle each) per group:
    8 for sensitive channels or no pruning, ``8 - N`` for pruned groups. Accuracy proxies
    compare the pruned weights with the INT8 weights (``int_`` keys, KL of INT8 histograms)
    and, dequantized, with the float weights; ``bitwave_`` keys give BitWave's zero-column
    bit-flip at the same N on the same channels.
    """
    m, k = q.shape
    sens = bbs.sensitive_mask(scale, n_sensitive)
    stored, r_hist = [], np.zeros(BITS + 1, np.int64)
    e_int, e_float, e_bw = ErrorSums(), ErrorSums(), ErrorSums()
    eff_sum = eff_n = 0
    n_sub = group_size // sub_group
    j = np.arange(BITS)
    for rows in row_chunks(m, k):
        qc = q[rows].to(torch.int32)
        qg = to_groups(qc, group_size)
        s_rows = sens[rows]
        cols = torch.full(qg.shape[:2], BITS, dtype=torch.int8)
        newq = qg
        bwq = qg
        if pruned_columns > 0 and bool((~s_rows).any()):
            sel = ~s_rows
            pr = bbs.prune(qg[sel], pruned_columns, method, max_redundant)
            newq = qg.clone()
            bwq = qg.clone()
            newq[sel] = pr.values.to(torch.int32)
            bwq[sel] = bbs.bitwave_flip(qg[sel], pruned_columns).to(torch.int32)
            cols[sel] = BITS - pruned_columns
            r_used = pr.r_used.numpy()
            kk = pr.k.numpy()
            r_hist += np.bincount(r_used.ravel(), minlength=BITS + 1)
            stored_bytes = pr.stored.reshape(pr.stored.shape[0], -1).numpy()
            eff = bbs.effectual_bits(stored_bytes, sub_group).reshape(*kk.shape, n_sub, BITS)
            keep = (j >= kk[..., None]) & ((j == BITS - 1) | (j < BITS - 1 - r_used[..., None]))
            eff_sum += int((eff * keep[:, :, None, :]).sum(dtype=np.int64))
            eff_n += int(keep.sum()) * n_sub
        stored.append(cols)
        flat_new = newq.reshape(qg.shape[0], -1)[:, :k]
        flat_bw = bwq.reshape(qg.shape[0], -1)[:, :k]
        e_int.add(qc, flat_new)
        e_int.add_int_hist(qc, flat_new)
        e_bw.add(qc, flat_bw)
        e_bw.add_int_hist(qc, flat_bw)
        e_float.add(w[rows], flat_new.float() * scale[rows].unsqueeze(1))
    stored_arr = torch.cat(stored).numpy()
    pruned_groups = int((stored_arr < BITS).sum())
    total_groups = stored_arr.size
    meta_bits = bbs.METADATA_BITS * pruned_groups
    index_bits = (math.ceil(math.log2(max(m, 2))) * m) if n_sensitive > 0 else 0
    weight_bits = (float(stored_arr.astype(np.int64).sum()) * group_size + meta_bits) / (total_groups * group_size)
    out = {
        "group_size": group_size, "sub_group": sub_group, "pruned_columns": pruned_columns, "method": method,
        "n_sensitive": int(sens.sum()), "channels": m,
        "stored_columns": stored_arr,
        "stored_columns_mean": float(stored_arr.mean()),
        "pruned_group_fraction": pruned_groups / total_groups,
        "redundant_used_hist": r_hist,
        "effectual_per_stored_column_mean": (eff_sum / eff_n) if eff_n else None,
        "metadata_bits_per_weight": meta_bits / (total_groups * group_size),
        "channel_index_bits_per_weight": index_bits / (m * k),
        "weight_bits_per_element": weight_bits + index_bits / (m * k),
    }
    out.update(e_int.result("int_"))
    out.update(e_float.result(""))
    out.update(e_bw.result("bitwave_int_"))
    return out


def bitwave_stats(q: torch.Tensor, group_size: int, pruned_columns: int) -> dict:
    """BitWave with its zero-column bit-flip of N columns: per-group processed (non-zero
    magnitude) columns ``cycles [M, C]`` and accuracy against the INT8 weights."""
    m, k = q.shape
    cyc, nz_cols = [], 0
    err = ErrorSums()
    for rows in row_chunks(m, k):
        qg = to_groups(q[rows].to(torch.int32), group_size)
        f = bbs.bitwave_flip(qg, pruned_columns) if pruned_columns > 0 else qg
        c = ((BITS - 1) - bbs.bitwave_zero_columns(f)).clamp(min=1).to(torch.int8)
        cyc.append(c)
        nz_cols += int(c.to(torch.int64).sum())
        flat = f.reshape(qg.shape[0], -1)[:, :k]
        err.add(q[rows].to(torch.int32), flat)
        err.add_int_hist(q[rows].to(torch.int32), flat)
    arr = torch.cat(cyc).numpy()
    out = {"group_size": group_size, "pruned_columns": pruned_columns, "cycles": arr,
           "nonzero_columns_mean": float(arr.mean()),
           # non-zero magnitude columns + the sign column + an 8-bit column mask per group
           "weight_bits_per_element": float(arr.mean()) + 1 + 8 / group_size}
    out.update(err.result("int_"))
    return out

