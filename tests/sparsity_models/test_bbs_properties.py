"""Hypothesis properties of BBS binary pruning and its comparison with BitWave."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsity_models.bits import bit_length, signed_width
from sparsity_models.quantizers import bbs

groups = st.lists(st.integers(-127, 127), min_size=8, max_size=32).map(lambda v: v[: len(v) // 8 * 8])


def _t(v):
    return torch.tensor([v], dtype=torch.int16)


@settings(max_examples=200, deadline=None)
@given(groups, st.sampled_from([4, 8]))
def test_effectual_bits_never_exceed_half(values, sub):
    eff = bbs.effectual_bits(_t(values), sub)
    assert int(eff.max()) <= sub // 2


@settings(max_examples=200, deadline=None)
@given(groups, st.integers(1, 6), st.sampled_from(bbs.METHODS))
def test_pruned_columns_are_binary_and_group_decodes(values, n, method):
    p = bbs.prune(_t(values), n, method)
    r, k = int(p.r_used[0]), int(p.k[0])
    assert r + k == n and r <= min(bbs.MAX_REDUNDANT, n)
    u = p.stored.to(torch.int32)[0] & 0xFF
    cols = [((u >> j) & 1) for j in range(8)]
    for j in range(k):                                     # the k averaged / zeroed low columns
        assert int(cols[j].min()) == int(cols[j].max())    # all-0 or all-1
    for j in range(7 - r, 7):                              # the r removed columns repeat the sign column
        assert torch.equal(cols[j], cols[7])
    assert int(signed_width(p.stored.to(torch.int32)).max()) <= 8 - r
    decoded = bbs.decode(bbs.stored_bit_columns(p), p.r_used, p.k, p.constant, method)
    assert torch.equal(decoded, p.values.long())
    if method == "zero_point":
        assert -32 <= int(p.constant[0]) <= 31 and all(int(c.max()) == 0 for c in cols[:k])


def _sse(a, b):
    return int(((a.long() - b.long()) ** 2).sum())


@settings(max_examples=300, deadline=None)
@given(groups, st.integers(1, 6))
def test_zero_point_never_worse_than_bitwave_when_redundancy_fits_the_field(values, n):
    q = _t(values)
    mag_top = 7 - int(bit_length(q.abs().amax()))         # BitWave's free (inherent zero) columns
    zp = bbs.zero_point_shift(q, n, max_redundant=7)       # unbounded redundant-column field
    assert _sse(zp.values, q) <= _sse(bbs.bitwave_flip(q, n), q)
    if min(mag_top, n) <= bbs.MAX_REDUNDANT:               # the paper's 2-bit field suffices
        assert _sse(bbs.zero_point_shift(q, n).values, q) <= _sse(bbs.bitwave_flip(q, n), q)


def _brute_zero_point(values, n, cap=bbs.MAX_REDUNDANT):
    best = None
    for z in range(-32, 32):
        u = [w + z for w in values]
        if min(u) < -128 or max(u) > 127:
            continue
        r = max(8 - int(signed_width(torch.tensor(u)).max()), 0)
        for ru in range(0, min(r, cap, n) + 1):
            mod = 1 << (n - ru)
            hi = (1 << (7 - ru)) - mod
            err = 0
            for x in u:
                m = x % mod
                qv = min(x - m + (mod if m > mod // 2 else 0), hi)
                err += (qv - x) ** 2
            best = err if best is None else min(best, err)
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-127, 127), min_size=8, max_size=8), st.integers(1, 5))
def test_zero_point_search_matches_brute_force(values, n):
    p = bbs.zero_point_shift(_t(values), n)
    assert _sse(p.values, _t(values)) == _brute_zero_point(values, n)


@settings(max_examples=100, deadline=None)
@given(groups, st.integers(1, 6))
def test_rounded_average_is_the_mse_optimal_constant(values, n):
    q = _t(values)
    p = bbs.rounded_average(q, n)
    k = int(p.k[0])
    low = q.to(torch.int32) & ((1 << k) - 1)
    base = _sse(p.values, q)
    for c in range(1 << k):                                # any other constant is no better
        assert base <= int(((low - c) ** 2).sum())
