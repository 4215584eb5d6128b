"""Helpers shared by the statistics sections: row chunking, running sums, operand views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from sparsity_models import metrics

# Temporaries of a chunk stay below glibc's dynamic mmap threshold (32 MB) so they are reused
# instead of page-faulted in again for every operation.
CHUNK_ELEMENTS = 1 << 20


def row_chunks(m: int, k: int, max_elements: int = CHUNK_ELEMENTS) -> Iterator[slice]:
    """Row slices of an ``[m, k]`` matrix holding at most ``max_elements`` elements each."""
    step = max(1, max_elements // max(k, 1))
    for start in range(0, m, step):
        yield slice(start, min(m, start + step))


@dataclass
class ErrorSums:
    """Running sums for MSE / SQNR over chunks plus histograms for an integer KL divergence."""

    sq_err: float = 0.0
    sq_sig: float = 0.0
    n: int = 0
    hist_ref: np.ndarray | None = None
    hist_q: np.ndarray | None = None
    offset: int = 0
    extra: dict = field(default_factory=dict)

    def add(self, ref: torch.Tensor, q: torch.Tensor) -> None:
        d = ref.double() - q.double()
        self.sq_err += float((d * d).sum())
        self.sq_sig += float((ref.double() ** 2).sum())
        self.n += ref.numel()

    def add_int_hist(self, ref: torch.Tensor, q: torch.Tensor, lo: int = -128, hi: int = 127) -> None:
        nb = hi - lo + 1
        hr = torch.bincount((ref.flatten().long() - lo).clamp(0, nb - 1), minlength=nb).numpy()
        hq = torch.bincount((q.flatten().long() - lo).clamp(0, nb - 1), minlength=nb).numpy()
        self.hist_ref = hr if self.hist_ref is None else self.hist_ref + hr
        self.hist_q = hq if self.hist_q is None else self.hist_q + hq

    def result(self, prefix: str = "") -> dict[str, float]:
        out = {f"{prefix}mse": self.sq_err / max(self.n, 1)}
        out[f"{prefix}sqnr_db"] = (10 * np.log10(self.sq_sig / self.sq_err)) if self.sq_err > 0 else float("inf")
        if self.hist_ref is not None:
            p = self.hist_ref / self.hist_ref.sum()
            q = self.hist_q / self.hist_q.sum()
            mask = p > 0
            out[f"{prefix}kl"] = float((p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-10))).sum())
        return out


@dataclass
class FloatHist:
    """Histograms of a reference and a quantized tensor over fixed bins (for a chunked KL)."""

    lo: float
    hi: float
    bins: int = 256
    ref: torch.Tensor | None = None
    q: torch.Tensor | None = None

    def add(self, ref: torch.Tensor, q: torch.Tensor) -> None:
        hr = torch.histc(ref.double().clamp(self.lo, self.hi), self.bins, self.lo, self.hi)
        hq = torch.histc(q.double().clamp(self.lo, self.hi), self.bins, self.lo, self.hi)
        self.ref = hr if self.ref is None else self.ref + hr
        self.q = hq if self.q is None else self.q + hq

    def kl(self) -> float:
        if self.ref is None or self.hi <= self.lo:
            return 0.0
        p, q = self.ref / self.ref.sum(), self.q / self.q.sum()
        mask = p > 0
        return float((p[mask] * torch.log(p[mask] / q[mask].clamp(min=1e-10))).sum())


def chunked_proxies(ref: torch.Tensor, fn, prefix: str = "") -> dict[str, float]:
    """MSE / SQNR / KL of ``fn(ref_rows)`` against ``ref`` computed over row chunks."""
    m = ref.shape[0]
    k = ref[0].numel() if m else 1
    e = ErrorSums()
    h = FloatHist(float(ref.min()), float(ref.max()))
    for rows in row_chunks(m, k):
        r = ref[rows]
        q = fn(r)
        e.add(r, q)
        h.add(r, q)
    out = e.result(prefix)
    out[f"{prefix}kl"] = h.kl()
    return out


def proxies(ref: torch.Tensor, q: torch.Tensor, prefix: str = "", integer: bool = False) -> dict[str, float]:
    """MSE / SQNR / KL with an optional key prefix."""
    return {f"{prefix}{k}": v for k, v in metrics.proxies(ref, q, integer=integer).items()}


def evenly(n: int, k: int) -> torch.Tensor:
    """``min(n, k)`` evenly spaced indices of ``range(n)`` (deterministic sampling)."""
    if k >= n:
        return torch.arange(n)
    return torch.linspace(0, n - 1, k).round().long()
