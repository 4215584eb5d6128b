"""SBQ term encoding and the error-compensated term-queue computation (sbq.txt Sec. II).

A term is a 2-bit non-zero slice with a shift offset, ``digit * 2**offset``. Leading-one
encoding (Sec. II-B) takes, from the most significant non-zero bit ``i`` down, the 2 bits
``(i, i-1)`` as one term at offset ``i-1`` (digit 2 or 3; a lone bit 0 gives digit 1 at
offset 0), so a term at offset n lies in ``[2*2**n, 3*2**n]``.

Negative values, with sign-extension elimination (``see=True``): the value is written in
its minimal two's-complement width ``w``; its top term is the sign bit with the following
(zero) bit, digit ``-2`` at offset ``w-2``; the rest ``x + 2**(w-1)`` is leading-one encoded.
Without it (``see=False``), the sign bit of the full ``bits``-wide word is a term
``-1 * 2**(bits-1)`` and the sign-extension ones below it are encoded as ordinary terms.

Product-aware selection (Sec. II-A): the term pairs of a multiplication are ordered by
product offset (descending), ties "top to bottom" (activation term index, then weight
term index); the first B are computed. With the term queue (Sec. II-C, III-B), up to
``min(C, n - B)`` of the next pairs are cached in a FIFO of depth D (dropped when full) and
computed in the spare slots of later multiplications of the same lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch


def _unsigned_terms(u: int, top: int | None = None) -> list[tuple[int, int]]:
    """Leading-one terms of a non-negative integer, scanning from bit ``top`` down."""
    terms = []
    i = u.bit_length() - 1 if top is None else top
    while i >= 0:
        if not (u >> i) & 1:
            i -= 1
            continue
        if i == 0:
            terms.append((1, 0))
        else:
            terms.append((2 + ((u >> (i - 1)) & 1), i - 1))
        i -= 2
    return terms


def encode_terms(x: int, bits: int = 8, see: bool = True) -> list[tuple[int, int]]:
    """Leading-one terms ``[(digit, offset), ...]`` of a signed integer, most significant first."""
    if x >= 0:
        return _unsigned_terms(x)
    if not see:
        return [(-1, bits - 1)] + _unsigned_terms(x + (1 << (bits - 1)), top=bits - 2)
    w = (-x - 1).bit_length() + 1
    if w == 1:
        return [(-1, 0)]
    return [(-2, w - 2)] + _unsigned_terms(x + (1 << (w - 1)))


def term_value(terms: list[tuple[int, int]]) -> int:
    """The integer a term list represents."""
    return sum(d << o for d, o in terms)


@lru_cache(maxsize=8)
def term_count_table(bits: int = 8, see: bool = True) -> torch.Tensor:
    """Terms per value for every ``bits``-bit signed value, indexed by ``value + 2**(bits-1)``."""
    half = 1 << (bits - 1)
    return torch.tensor([len(encode_terms(v, bits, see)) for v in range(-half, half)], dtype=torch.int16)


@lru_cache(maxsize=8)
def fixed_slice_count_table(bits: int = 8) -> torch.Tensor:
    """Non-zero 2-bit slices at fixed offsets 0, 2, 4, ... of the two's-complement word (Sec. II-A)."""
    half = 1 << (bits - 1)
    return torch.tensor([sum(((v & ((1 << bits) - 1)) >> s) & 3 != 0 for s in range(0, bits, 2))
                         for v in range(-half, half)], dtype=torch.int16)


@lru_cache(maxsize=8)
def pair_table(bits: int = 8, see: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted term-pair products of every (activation, weight) pair of ``bits``-bit values.

    Returns ``(products [V*V, P] int32, counts [V*V] int16)`` indexed by
    ``(a + 2**(bits-1)) * V + (w + 2**(bits-1))`` with ``V = 2**bits``; products are in
    selection order (product offset descending, ties by activation then weight term index),
    padded with zeros after ``counts`` pairs.
    """
    half = 1 << (bits - 1)
    vals = range(-half, half)
    enc = [encode_terms(v, bits, see) for v in vals]
    t = max(len(e) for e in enc)
    v = len(enc)
    dig = np.zeros((v, t), np.int64)
    off = np.full((v, t), -1, np.int64)
    for i, e in enumerate(enc):
        for j, (d, o) in enumerate(e):
            dig[i, j], off[i, j] = d, o
    term = dig << np.maximum(off, 0)                       # term values [V, t]
    prod = term[:, None, :, None] * term[None, :, None, :]
    poff = off[:, None, :, None] + off[None, :, None, :]
    valid = (off[:, None, :, None] >= 0) & (off[None, :, None, :] >= 0)
    prod = prod.reshape(v * v, t * t)
    key = np.where(valid, poff, -10_000).reshape(v * v, t * t)
    order = np.argsort(-key, axis=1, kind="stable")  # stable: row-major (activation term, weight term) ties
    prod = np.take_along_axis(prod, order, axis=1)
    count = valid.reshape(v * v, t * t).sum(axis=1)
    prod = np.where(np.arange(t * t)[None, :] < count[:, None], prod, 0)
    return torch.from_numpy(prod.astype(np.int32)), torch.from_numpy(count.astype(np.int16))


def product(a: int, w: int, budget: int, bits: int = 8, see: bool = True) -> int:
    """Product-aware approximation of ``a*w`` from its ``budget`` most significant term pairs."""
    prods, counts = pair_table(bits, see)
    half, v = 1 << (bits - 1), 1 << bits
    idx = (a + half) * v + (w + half)
    return int(prods[idx, :budget].sum())


@dataclass
class QueueRun:
    """Result of simulating the term queue over lane streams (tensors over streams ``[S]``).

    Attributes:
        approx: computed partial inner product per stream.
        exact: exact partial inner product per stream.
        pairs: term pairs of all multiplications per stream.
        computed: term pairs actually computed (budget + queue) per stream.
        from_queue: pairs computed from the queue per stream.
        mults: multiplications per stream.
        budget: B (term-pair slots per multiplication).
    """

    approx: torch.Tensor
    exact: torch.Tensor
    pairs: torch.Tensor
    computed: torch.Tensor
    from_queue: torch.Tensor
    mults: int
    budget: int


@lru_cache(maxsize=16)
def _flat_tables(bits: int, see: bool, budget: int, comp: int) -> tuple[torch.Tensor, ...]:
    """1-D lookup tables over pair index: pair count, exact product, sum of the first B
    pairs, and the next ``comp`` pairs ``[V*V, width]`` (the queue candidates)."""
    prods, counts = pair_table(bits, see)
    p64 = prods.to(torch.int64)
    ncols = prods.shape[1]
    width = min(comp, max(ncols - budget, 0))
    cand = p64[:, budget:budget + width].contiguous() if width else torch.zeros(p64.shape[0], 0, dtype=torch.int64)
    return counts.to(torch.int64), p64.sum(1), p64[:, :budget].sum(1), cand


def simulate_queue(a: torch.Tensor, w: torch.Tensor, budget: int, comp: int, depth: int,
                   bits: int = 8, see: bool = True) -> QueueRun:
    """Run SBQ's error-compensated computation over ``[S, L]`` operand streams.

    Stream s is one compute lane: multiplication ``a[s, t] * w[s, t]`` at step t uses B slots.
    Its first ``min(B, n)`` pairs are computed; spare slots pop the oldest queued pairs; then
    ``min(C, n - B)`` further pairs are pushed while the depth-D queue has room (others are
    dropped). Pairs still queued at the end of the stream are dropped.
    """
    counts, full, first, cand_table = _flat_tables(bits, see, budget, comp)
    half, v = 1 << (bits - 1), 1 << bits
    s, length = a.shape
    idx = ((a.to(torch.int64) + half) * v + (w.to(torch.int64) + half)).t().contiguous()   # [L, S]
    n = torch.take(counts, idx)
    exact = torch.take(full, idx).sum(dim=0)
    approx = torch.take(first, idx).sum(dim=0)
    sig = n.clamp(max=budget)
    computed = sig.sum(dim=0)
    pairs = n.sum(dim=0)
    popped = torch.zeros(s, dtype=torch.int64)
    width = cand_table.shape[1]
    if depth > 0 and width > 0:
        spare = budget - sig
        over = (n - budget).clamp(min=0, max=comp)
        queue = torch.zeros(s, depth, dtype=torch.int64)
        qlen = torch.zeros(s, dtype=torch.int64)
        slots = torch.arange(depth)
        cols = torch.arange(width)
        for t in range(length):
            k = torch.minimum(spare[t], qlen)
            if bool(k.any()):
                take = slots < k.unsqueeze(1)
                approx += (queue * take).sum(dim=1)
                popped += k
                src = slots + k.unsqueeze(1)
                queue = torch.gather(queue, 1, src.clamp(max=depth - 1)) * (src < qlen.unsqueeze(1))
                qlen = qlen - k
            npush = torch.minimum(over[t], depth - qlen)
            if bool(npush.any()):
                cand = cand_table.index_select(0, idx[t])                                 # [S, width]
                ok = cols < npush.unsqueeze(1)
                pos = torch.where(ok, qlen.unsqueeze(1) + cols, 0)
                queue = queue.scatter_add(1, pos, cand * ok)
                qlen = qlen + npush
        computed = computed + popped
    return QueueRun(approx, exact, pairs, computed, popped, length, budget)
