"""SBQ term encoding and the term queue: the paper's examples and exactness."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsity_models.quantizers import sbq


def test_leading_one_terms():
    # 110 = 01101110: leading-one terms 11 << 5, 11 << 2, 10 << 0 (each term in [2, 3] * 2**offset)
    assert sbq.encode_terms(110) == [(3, 5), (3, 2), (2, 0)]
    assert sbq.encode_terms(1) == [(1, 0)] and sbq.encode_terms(0) == []
    # -18 with sign-extension elimination: 6-bit 101110 -> -2 << 4, 11 << 2, 10 << 0
    assert sbq.encode_terms(-18) == [(-2, 4), (3, 2), (2, 0)]
    # without it the sign bit is a term and the sign-extension ones become "11 << 5"
    assert sbq.encode_terms(-18, see=False) == [(-1, 7), (3, 5), (3, 2), (2, 0)]
    for v in range(-128, 128):
        assert sbq.term_value(sbq.encode_terms(v)) == v
        assert sbq.term_value(sbq.encode_terms(v, see=False)) == v


def test_sign_extension_example_of_fig3():
    """sbq.txt Fig. 3: budget of four term products; the product -1980 = -18 * 110 becomes
    -4864 when sign-extension bits are encoded as terms (-128*96 + 96*96 - 128*12 - 128*2;
    the three offset-7 products tie and are taken top to bottom). With the elimination
    the four most significant products give -3072 + 1152 - 384 + 192 = -2112."""
    assert -18 * 110 == -1980
    assert sbq.product(-18, 110, 4, see=False) == -4864
    assert sbq.product(-18, 110, 4, see=True) == -2112


def test_average_terms_of_int8_values():
    # sbq.txt Sec. II-B: 3 terms on average with fixed slicing, 2.61 with the optimized encoding
    assert float(sbq.fixed_slice_count_table().float().mean()) == 3.0
    assert round(float(sbq.term_count_table().float().mean()), 2) == 2.61


def test_inner_product_with_budget_compensation_and_queue_of_three():
    """A B = C = D = 3 inner product on one lane (the setting of sbq.txt Fig. 4; its operand
    values are not in the text, so these are worked by hand):

    A*W = 85*45: terms of 85 {2<<5, 2<<3, 2<<1, 1}, of 45 {2<<4, 3<<2, 1}; the 12 pairs in
      selection order are 2048 | 768, 512 | 64, 192, 128 | 32 | 16, 48 | 12 | 4 | 1.
      Computed 2048+768+512 = 3328; queued (C=3) 64, 192, 128.
    64*2: one pair (128); two spare slots pop 64 and 192.
    -18*110: pairs -3072 | 1152 | -384 | 192 | -64, 144 | 24, 24 | 4; computed -2304;
      the queue holds 128, one more slot each for 192 and -64 (144 is dropped).
    0*77: no pairs; three spare slots pop 128, 192, -64.
    Total 3328 + 128+64+192 - 2304 + 128+192-64 = 1664 (exact 1973; without the queue 1152).
    """
    a = torch.tensor([[85, 64, -18, 0]])
    w = torch.tensor([[45, 2, 110, 77]])
    run = sbq.simulate_queue(a, w, 3, 3, 3)
    assert run.exact.tolist() == [1973] and run.approx.tolist() == [1664]
    assert run.pairs.tolist() == [22] and run.computed.tolist() == [12] and run.from_queue.tolist() == [5]
    plain = sbq.simulate_queue(a, w, 3, 0, 0)
    assert plain.approx.tolist() == [1152] and plain.computed.tolist() == [7]


int8 = st.integers(-128, 127)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(int8, int8), min_size=1, max_size=24), st.integers(0, 4), st.integers(0, 4))
def test_budget_covering_all_term_products_is_exact(pairs, comp, depth):
    a = torch.tensor([[p[0] for p in pairs]])
    w = torch.tensor([[p[1] for p in pairs]])
    run = sbq.simulate_queue(a, w, 16, comp, depth)          # INT8 operands have at most 4 x 4 term pairs
    assert run.approx.tolist() == [int((a * w).sum())]
    assert run.computed.tolist() == run.pairs.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(int8, int8), min_size=1, max_size=16), st.integers(1, 8))
def test_queue_never_computes_more_than_budget_slots(pairs, budget):
    a = torch.tensor([[p[0] for p in pairs]])
    w = torch.tensor([[p[1] for p in pairs]])
    run = sbq.simulate_queue(a, w, budget, 4, 4)
    assert int(run.computed[0]) <= budget * len(pairs)
    assert int(run.computed[0]) <= int(run.pairs[0])
