"""Hand-checked bit-column statistics of one group of 16 known INT8 weights.

Two's-complement columns (LSB first) of
    [12, -7, 3, 0, 25, -1, 8, -16, 5, 9, -3, 14, 2, -9, 7, 1]
have ones [10, 6, 7, 8, 6, 5, 5, 5]; columns 6 and 5 repeat the sign column 7 (25 needs
6 bits, -16 needs 5), so the group has 2 redundant columns.
"""

import numpy as np
import torch

from sparsity_models import bitcount
from sparsity_models.quantizers import bbs
from sparsity_models.stats.bitserial import bitcol_stats, bitwave_stats

GROUP = [12, -7, 3, 0, 25, -1, 8, -16, 5, 9, -3, 14, 2, -9, 7, 1]


def group() -> torch.Tensor:
    return torch.tensor([GROUP], dtype=torch.int16)


def test_column_ones_and_redundant_columns():
    q = group()
    assert bitcount.group_column_ones(q, 16).tolist() == [[[10, 6, 7, 8, 6, 5, 5, 5]]]
    assert bbs.group_redundant(q).tolist() == [2]


def test_bbs_effectual_bits_per_column():
    """The one count of effectual bits (bbs.effectual_bits), which the BitVert statistics use."""
    q = group()
    # whole group of 16: min(ones, 16 - ones) per column
    assert bbs.effectual_bits(q, 16).tolist() == [[[6, 6, 7, 8, 6, 5, 5, 5]]]
    # sub-groups of 8: first half ones [4,2,2,5,4,3,3,3], second half [6,4,5,3,2,2,2,2]
    assert bbs.effectual_bits(q, 8).tolist() == [[[4, 2, 2, 3, 4, 3, 3, 3], [2, 4, 3, 3, 2, 2, 2, 2]]]
    # sub-groups of 4 (the bit-by-bit path of the column count): ones per quarter
    # [2,1,1,2,1,1,1,1], [2,1,1,3,3,2,2,2], [3,1,3,3,1,1,1,1], [3,3,2,0,1,1,1,1]
    assert bbs.effectual_bits(q, 4).tolist() == [[[2, 1, 1, 2, 1, 1, 1, 1], [2, 1, 1, 1, 1, 2, 2, 2],
                                                  [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 2, 0, 1, 1, 1, 1]]]


def test_group_statistics_of_all_families():
    s = bitcol_stats(group(), 16, 8)
    assert s["bbs_sparsity"] == 1 - 44 / 128                  # sub-groups of 8: 24 + 20 effectual bits
    assert s["effectual_per_column_mean"] == 44 / 16
    assert s["effectual_per_column_max"] == 4
    assert s["redundant_hist"][2] == 1
    assert s["zero_bit_sparsity_twos"] == 1 - 52 / 128         # 10+6+7+8+6+5+5+5 ones
    # Pragmatic: non-zero magnitude bits, max 3 (7, 25, 14, 7), mean 29/16
    assert s["pragmatic_cycles"].tolist() == [[3]]
    assert s["pragmatic_busy_per_mac"] == 29 / 16
    # Bitlet: magnitude ones per significance [10, 6, 5, 6, 2, 0, 0] -> 10
    assert s["bitlet_cycles"].tolist() == [[10]]
    # BitWave: magnitude columns 5 and 6 are zero -> 5 non-zero columns
    assert s["bitwave_cycles"].tolist() == [[5]]
    assert s["value_sparsity"] == 1 / 16


def test_bitwave_flip_two_columns():
    # N = 2 and 2 inherent zero magnitude columns: nothing to flip
    assert torch.equal(bbs.bitwave_flip(group(), 2), group())
    # N = 3: the LSB magnitude column is zeroed (round to even magnitudes, ties down)
    flipped = bbs.bitwave_flip(group(), 3)[0].tolist()
    assert flipped == [12, -6, 2, 0, 24, 0, 8, -16, 4, 8, -2, 14, 2, -8, 6, 0]
    s = bitwave_stats(group(), 16, 3)
    assert s["cycles"].tolist() == [[4]]


def test_rounded_averaging_hand_example():
    # N = 3: the 2 redundant columns are removed, the LSB column is averaged:
    # 10 of 16 LSBs are 1 -> rounded average 1 -> every LSB becomes 1
    p = bbs.rounded_average(group(), 3)
    assert p.r_used.tolist() == [2] and p.k.tolist() == [1] and p.constant.tolist() == [1]
    expect = [13, -7, 3, 1, 25, -1, 9, -15, 5, 9, -3, 15, 3, -9, 7, 1]
    assert p.values[0].tolist() == expect
    # N = 2 only drops the redundant columns: exact
    p2 = bbs.rounded_average(group(), 2)
    assert torch.equal(p2.values, group()) and p2.k.tolist() == [0]


def test_decode_from_stored_columns():
    for n, method in ((3, "rounded_average"), (4, "zero_point")):
        p = bbs.prune(group(), n, method)
        cols = bbs.stored_bit_columns(p)
        assert torch.equal(bbs.decode(cols, p.r_used, p.k, p.constant, method), p.values.long())


def test_sensitive_channel_selection_rounds_to_parallel_channels():
    scales = {"a": torch.tensor([5.0, 1.0, 1.0, 1.0]), "b": torch.tensor([4.0, 3.0, 0.5, 0.5, 0.5, 0.5])}
    # top 20% of 10 channels = the 2 largest scales (5 in a, 4 in b) -> 1 each -> rounded up to 2
    assert bbs.sensitive_counts(scales, 0.2, 2) == {"a": 2, "b": 2}
    assert bbs.sensitive_counts(scales, 0.0, 2) == {"a": 0, "b": 0}
    mask = bbs.sensitive_mask(scales["b"], 2)
    assert mask.tolist() == [True, True, False, False, False, False]
    assert np.isclose(bbs.sensitive_counts(scales, 0.1, 32)["a"], 4)   # capped at the layer's channels
