"""BitMoD statistics: datatype (special value) mix, bit-serial terms, effective bits, accuracy."""

from __future__ import annotations

import torch

from sparsity_models.quantizers import bitmod as bm
from sparsity_models.stats.common import ErrorSums, FloatHist, row_chunks


def bitmod_stats(w: torch.Tensor, dtype: str, group_size: int, scale_bits: int | None) -> dict:
    """Per-group BitMoD quantization of float weights ``[M, K]`` with datatype ``dtype``.

    Keys: ``special_value_mix`` (fraction of groups per chosen special value), ``hw_terms``
    (bit-serial terms per weight in the PE = cycles per MAC), ``nonzero_terms_mean``
    (measured non-zero terms per weight), ``weight_bits_per_element`` (code bits plus the
    per-group scale and selector bits), and the accuracy proxies against the float weights.
    """
    m, k = w.shape
    err = ErrorSums()
    hist = FloatHist(float(w.min()), float(w.max()))
    counts = None
    terms = 0
    n = 0
    for rows in row_chunks(m, k, 1 << 18):
        r = bm.quantize(w[rows], dtype, group_size, scale_bits)
        err.add(w[rows], r.deq)
        hist.add(w[rows], r.deq)
        idx = r.special_index.flatten()
        c = torch.bincount(idx + 1, minlength=len(r.candidates) + 1).numpy()
        counts = c if counts is None else counts + c
        terms += int(bm.nonzero_terms(r).sum())
        n += r.deq.numel()
    cands = bm.SPECIAL.get(dtype, ())
    groups = counts.sum()
    mix = {f"{v:+g}": float(counts[i + 1] / groups) for i, v in enumerate(cands)}
    out = {
        "dtype": dtype, "group_size": group_size, "scale_bits": scale_bits,
        "bits": bm.dtype_bits(dtype),
        "special_value_mix": mix,
        "hw_terms": bm.hw_terms(dtype),
        "nonzero_terms_mean": terms / n,
        "weight_bits_per_element": bm.effective_bits(dtype, group_size, scale_bits),
    }
    out.update(err.result(""))
    out["kl"] = hist.kl()
    return out

