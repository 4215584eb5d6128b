"""Hand-checked Panacea / Sibia slicing: SBR weights, HO slices, all-r vectors, ZPM, DBS, RLE."""

import pytest
import torch

from sparsity_models.quantizers import panacea as pc
from sparsity_models.stats.slices import panacea_stats, sibia_stats


def test_signed_bit_slices_of_7_bit_weights():
    q = torch.tensor([-64, -9, -8, -1, 0, 7, 8, 63])
    ho, lo = pc.sbr_slices(q, 1)
    # -9 = 11110111: LO 111 extended by the sign -> -1, HO 1110 + 1 -> -1
    assert ho.tolist() == [-7, -1, 0, 0, 0, 0, 1, 7]
    assert lo.tolist() == [-8, -1, -8, -1, 0, 7, 0, 7]
    assert torch.equal(ho * 8 + lo, q)
    assert pc.sbr_ho(torch.arange(-8, 8), 1).abs().sum() == 0


def test_zero_point_manipulation_example_of_the_paper():
    # OPT-2.7B FC example (Fig. 8): zp = 161 -> r = 1010b; ZPM centres the skip range: zp' = 168
    assert 161 >> 4 == 0b1010
    assert pc.zpm(161, 4) == 168 and (168 - 8) >> 4 == 0b1010
    assert pc.zpm(0, 4) == 0
    assert pc.zpm(161, 5) == 176 and pc.zpm(161, 6) == 160


def test_ho_slices_and_all_r_vectors_of_a_known_activation():
    # codes of 8 tokens at one k, zero point 161, symmetric around it
    codes = torch.tensor([[161], [155], [167], [158], [163], [160], [150], [166]])
    ho = codes >> 4
    assert ho.flatten().tolist() == [10, 9, 10, 9, 10, 10, 9, 10]
    assert pc.vectors_equal(ho, 10, 4, axis=0).flatten().tolist() == [False, False]
    shifted = codes + (pc.zpm(161, 4) - 161)           # the same activations quantized with zp' = 168
    assert (shifted >> 4).flatten().tolist() == [10, 10, 10, 10, 10, 10, 9, 10]
    assert pc.vectors_equal(shifted >> 4, 10, 4, axis=0).flatten().tolist() == [True, False]


def test_quantize_activations_zero_point_and_slices():
    codes = torch.tensor([161, 155, 167, 158, 163, 160, 150, 166, 0, 255], dtype=torch.float32)
    x = ((codes - 161) / 16).reshape(-1, 1)             # scale 1/16, zp 161 (range -10.0625 .. 5.875)
    assert pc.asym_params(x) == (1 / 16, 161)
    plain = pc.quantize_activations(x, use_zpm=False, use_dbs=False)
    assert plain.xu.flatten().tolist() == codes.int().tolist() and plain.r == 10
    z = pc.quantize_activations(x, use_zpm=True, use_dbs=False)
    assert z.zero_point == 168 and z.r == 10
    assert z.xu.flatten()[:8].tolist() == [168, 162, 174, 165, 170, 167, 157, 173]


def test_dbs_types_from_the_spread():
    z = pc.normal_z(0.9)
    assert z == pytest.approx(1.6449, abs=1e-4)
    assert pc.dbs_type(8 / z, 0.9) == 1 and pc.dbs_type(8 / z + 0.01, 0.9) == 2
    assert pc.dbs_type(16 / z, 0.9) == 2 and pc.dbs_type(20 / z, 0.9) == 3


def test_dbs_slices_drop_lsbs():
    x = torch.linspace(-1, 3, 400).reshape(-1, 1)       # wide distribution -> type 3, l = 6
    a = pc.quantize_activations(x, use_zpm=True, use_dbs=True)
    assert a.dbs_type == 3 and a.lo_bits == 6
    kept = (a.xu >> 2) << 2                             # 8-bit code keeps a 2-bit HO + 4 of 6 LO bits
    assert torch.allclose(a.deq, (kept.float() - a.zero_point) * a.scale)


def test_rle_entries_with_fillers():
    # index_bits 2: at most 3 skipped vectors per index; a run of 9 needs 2 fillers
    mask = torch.tensor([[1], [1], [0], [1], [1], [1], [0], [0]])
    assert pc.rle_entries(mask, 2).tolist() == [3]
    run9 = torch.tensor([[1]] * 9 + [[0]])
    assert pc.rle_entries(run9, 2).tolist() == [3]
    assert pc.rle_entries(torch.tensor([[1]] * 5), 2).tolist() == [0]   # trailing run: no entry


def test_panacea_and_sibia_tiles_on_dense_and_sparse_cases():
    torch.manual_seed(0)
    w_small = torch.randn(8, 64) * 0.001
    w_small[:, 0] = 1.0                                  # per-channel scale: all other weights round to HO 0
    x_const = torch.zeros(8, 64)
    x_const[0, 0], x_const[1, 1] = -1.0, 1.0             # everything else sits at the zero point
    s = panacea_stats(w_small, x_const, v=4, weight_bits=7, zpm=True, dbs=False, dbs_target=0.9, rle_bits=4,
                      tile_k=32, n_dwo=4, n_swo=8)
    assert s["rho_w"] == pytest.approx(63 / 64) and s["rho_x"] == pytest.approx(126 / 128)
    # mostly sparse: SWO-bound (1 LO x LO product per k on 8 SWOs) -> 1/8 cycle per step
    assert s["tile_cycles"].min() == pytest.approx(1 / 8)
    dense = panacea_stats(torch.randn(8, 64), torch.randn(8, 64) * 5 + 3, v=4, weight_bits=7, zpm=False, dbs=False,
                          dbs_target=0.9, rle_bits=4, tile_k=32, n_dwo=4, n_swo=8)
    assert dense["tile_cycles"].max() <= 3 / 4 + 1e-9   # at most 3 dynamic products per k on 4 DWOs
    sib = sibia_stats(torch.randn(8, 64), torch.randn(8, 64), v=4, weight_bits=7, act_bits=7, tile_k=32,
                      outer_products_per_cycle=4)
    assert 0.5 <= sib["tile_cycles"].min() and sib["tile_cycles"].max() <= 1.0
