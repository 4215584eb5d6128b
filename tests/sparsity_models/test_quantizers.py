"""Integer, BitMoD and baseline quantizers."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsity_models import metrics
from sparsity_models.quantizers import bitmod as bm
from sparsity_models.quantizers.baselines import ant_quantize, olive_quantize, term_quantize
from sparsity_models.quantizers.integer import quantize_asymmetric, quantize_symmetric

floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(st.lists(floats, min_size=2, max_size=64), st.integers(2, 8), st.sampled_from(["tensor", "channel", "group"]))
def test_asymmetric_round_trip_within_half_a_step(values, bits, gran):
    x = torch.tensor(values, dtype=torch.float64).reshape(1, -1)
    r = quantize_asymmetric(x, bits, gran, group_size=8)
    err = (r.deq.double() - x).abs()
    assert bool((err <= r.scale.double() / 2 * (1 + 1e-5) + 1e-6).all())
    assert int(r.q.min()) >= 0 and int(r.q.max()) <= 2 ** bits - 1


@settings(max_examples=100, deadline=None)
@given(st.lists(floats, min_size=2, max_size=64), st.integers(2, 8))
def test_symmetric_round_trip_within_half_a_step(values, bits):
    x = torch.tensor(values).reshape(1, -1)
    r = quantize_symmetric(x, bits, "group", group_size=8)
    assert bool(((r.deq - x).abs() <= r.scale / 2 * (1 + 1e-5) + 1e-6).all())


def test_symmetric_per_channel_hand_example():
    r = quantize_symmetric(torch.tensor([[1.0, -0.5, 0.25], [2.0, 1.0, -2.0]]), 8, "channel")
    assert r.q.tolist() == [[127, -64, 32], [127, 64, -127]]


def test_bitmod_picks_the_special_value_that_fits():
    # [6, 4, 2, 1, -1, -2, 0, 0] is exactly FP3 + {+6} at scale 1; -6 or +-3 need a larger scale
    w = torch.tensor([[6.0, 4.0, 2.0, 1.0, -1.0, -2.0, 0.0, 0.0]])
    r = bm.quantize(w, "fp3", group_size=8, scale_bits=None)
    assert r.candidates[int(r.special_index[0, 0])] == 6.0
    assert torch.allclose(r.deq, w)
    # with the per-channel INT8 scale (one group) the result is unchanged
    assert torch.allclose(bm.quantize(w, "fp3", group_size=8).deq, w)
    er = bm.quantize(w, "fp3_er", group_size=8, scale_bits=None)
    assert metrics.mse(w, er.deq) > 0


def test_bitmod_datatype_tables_and_bits():
    assert sorted(bm.FP_BASIC["fp3"]) == [-4, -2, -1, 0, 1, 2, 4]
    assert bm.SPECIAL["fp4_er"] == (-5.0, 5.0) and bm.SPECIAL["fp4_ea"] == (-8.0, 8.0)
    assert bm.effective_bits("fp3", 128) == 3 + 10 / 128          # 8-bit scale + 2-bit selector
    assert bm.effective_bits("fp4_ea", 128) == 4 + 9 / 128
    assert bm.effective_bits("int4_asym", 128) == 4 + 24 / 128    # 16-bit scale + 8-bit zero point
    assert (bm.hw_terms("int8"), bm.hw_terms("int6"), bm.hw_terms("fp3")) == (4, 3, 2)


def test_booth_digits_and_fp_terms():
    d = bm.booth_digits(torch.tensor([110]), 8)[0].tolist()
    assert d == [-2, 0, -1, 2] and sum(x * 4 ** i for i, x in enumerate(d)) == 110
    for v in range(-128, 128):
        dig = bm.booth_digits(torch.tensor([v]), 8)[0]
        assert int(sum(int(x) * 4 ** i for i, x in enumerate(dig))) == v
    r = bm.quantize(torch.tensor([[6.0, 1.5, 0.5, 5.0, 8.0, 0.0, -3.0, 4.0]]), "fp4", 8, None)
    assert int(bm.nonzero_terms(r).max()) <= 2        # every extended FP4 value has at most two ones


def test_metrics():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert metrics.mse(x, x) == 0 and metrics.sqnr_db(x, x) == math.inf
    assert metrics.sqnr_db(x, x + 1) == pytest.approx(10 * math.log10(30 / 4))
    assert metrics.kl_divergence(x, x, integer=True) == 0
    assert metrics.kl_divergence(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0]), integer=True) > 10


def test_baseline_quantizers_shapes_and_budgets():
    torch.manual_seed(0)
    w = torch.randn(16, 64) * 0.05
    deq, idx = ant_quantize(w, 4)
    assert deq.shape == w.shape and idx.shape == (16,)
    o, frac = olive_quantize(w)
    assert o.shape == w.shape and 0 <= frac <= 1
    q = torch.randint(-127, 128, (4, 32))
    vals, terms = term_quantize(q, 8, 2.0)
    assert bool((terms.reshape(4, 4, 8).sum(-1) <= 16).all())   # at most alpha * g terms per group
    assert bool((vals.abs() <= q.abs()).all())
