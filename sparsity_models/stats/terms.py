"""Term statistics of SBQ (error-compensated term queue) and TQ (group term quantization).

The operand stream is sampled deterministically: ``max_rows`` output channels and
``max_tokens`` tokens (evenly spaced) give ``rows*tokens`` inner products over the full K;
each inner product is split over ``lanes`` compute lanes (contiguous K chunks, zero padded),
each lane running its own term queue.
"""

from __future__ import annotations

import math

import torch

from sparsity_models.quantizers import sbq
from sparsity_models.quantizers.baselines import term_quantize
from sparsity_models.quantizers.integer import quantize_symmetric
from sparsity_models.stats.common import evenly, proxies

BITS = 8


def _int_operands(w: torch.Tensor, x: torch.Tensor, weight_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel symmetric weights and per-tensor symmetric INT8 activations (the base model)."""
    qw = quantize_symmetric(w, weight_bits, "channel").q
    qx = quantize_symmetric(x, BITS, "tensor").q
    return qw, qx


def _lane_streams(qw: torch.Tensor, qx: torch.Tensor, rows: torch.Tensor, toks: torch.Tensor,
                  lanes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a [S, L], w [S, L])`` streams, S = tokens*rows*lanes, ordered (token, row, lane)."""
    k = qw.shape[1]
    length = math.ceil(k / lanes)
    pad = length * lanes - k
    ws = torch.nn.functional.pad(qw[rows], (0, pad)).reshape(len(rows), lanes, length)
    xs = torch.nn.functional.pad(qx[toks], (0, pad)).reshape(len(toks), lanes, length)
    a = xs.unsqueeze(1).expand(len(toks), len(rows), lanes, length).reshape(-1, length)
    b = ws.unsqueeze(0).expand(len(toks), len(rows), lanes, length).reshape(-1, length)
    return a, b


def _sample(m: int, t: int, k: int, max_rows: int, max_tokens: int, max_macs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Evenly spaced rows and tokens: at most ``max_rows x max_tokens`` inner products and
    about ``max_macs`` multiplications in total."""
    n_ip = max(1, min(max_rows * max_tokens, max_macs // max(k, 1)))
    rows = min(m, max_rows, max(1, math.isqrt(n_ip)))
    toks = min(t, max_tokens, max(1, n_ip // rows))
    return evenly(m, rows), evenly(t, toks)


def sbq_stats(w: torch.Tensor, x: torch.Tensor, budget: int, comp: int, depth: int, weight_bits: int,
              lanes: int, max_rows: int, max_tokens: int, see: bool, max_macs: int = 1 << 20) -> dict:
    """SBQ on the layer's operand stream: terms per operand, term pairs per multiplication,
    budget utilization, fraction of term pairs computed (with and without the queue) and
    the error of the inner products against the exact integer result."""
    qw, qx = _int_operands(w, x, weight_bits)
    cnt = sbq.term_count_table(BITS, see)
    cnt_naive = sbq.term_count_table(BITS, False)
    cnt_see = sbq.term_count_table(BITS, True)
    cnt_fixed = sbq.fixed_slice_count_table(BITS)
    rows, toks = _sample(qw.shape[0], qx.shape[0], qw.shape[1], max_rows, max_tokens, max_macs)
    a, b = _lane_streams(qw, qx, rows, toks, lanes)
    run = sbq.simulate_queue(a, b, budget, comp, depth, BITS, see)
    base = sbq.simulate_queue(a, b, budget, 0, 0, BITS, see)
    n_ip = len(rows) * len(toks)
    exact = run.exact.reshape(n_ip, lanes).sum(1).double()
    approx = run.approx.reshape(n_ip, lanes).sum(1).double()
    approx0 = base.approx.reshape(n_ip, lanes).sum(1).double()
    mults = a.numel()
    pairs = float(run.pairs.sum())
    nrm = float((exact ** 2).mean().sqrt()) or 1.0
    return {
        "budget": budget, "comp": comp, "depth": depth, "weight_bits": weight_bits, "lanes": lanes, "see": see,
        "sampled_inner_products": n_ip, "sampled_macs": mults,
        "terms_per_weight": float(cnt[qw.long() + 128].float().mean()),
        "terms_per_input": float(cnt[qx.long() + 128].float().mean()),
        "terms_per_weight_naive": float(cnt_naive[qw.long() + 128].float().mean()),
        "terms_per_input_naive": float(cnt_naive[qx.long() + 128].float().mean()),
        "terms_per_weight_see": float(cnt_see[qw.long() + 128].float().mean()),
        "terms_per_weight_fixed": float(cnt_fixed[qw.long() + 128].float().mean()),
        "terms_per_input_fixed": float(cnt_fixed[qx.long() + 128].float().mean()),
        "terms_per_input_see": float(cnt_see[qx.long() + 128].float().mean()),
        "pairs_per_mult": pairs / mults,
        "budget_utilization": float(run.computed.sum()) / (budget * mults),
        "budget_utilization_no_queue": float(base.computed.sum()) / (budget * mults),
        "fraction_computed": float(run.computed.sum()) / pairs if pairs else 1.0,
        "fraction_computed_no_queue": float(base.computed.sum()) / pairs if pairs else 1.0,
        "queue_share": float(run.from_queue.sum()) / max(float(run.computed.sum()), 1.0),
        "output_nrmse": float(((approx - exact) ** 2).mean().sqrt()) / nrm,
        "output_nrmse_no_queue": float(((approx0 - exact) ** 2).mean().sqrt()) / nrm,
        "output_sqnr_db": _sqnr(exact, approx),
        "output_sqnr_db_no_queue": _sqnr(exact, approx0),
        "exact": bool((approx == exact).all()),
    }


def _sqnr(ref: torch.Tensor, q: torch.Tensor) -> float:
    noise = float(((ref - q) ** 2).sum())
    return 10 * math.log10(float((ref ** 2).sum()) / noise) if noise > 0 else float("inf")


def tq_stats(w: torch.Tensor, x: torch.Tensor, budget: int, group_size: int, alpha_w: float, alpha_a: float,
             max_rows: int, max_tokens: int, max_macs: int = 1 << 20) -> dict:
    """TQ: group term quantization of INT8 weights and activations, then a budget of B
    1-bit term pairs per multiplication. Utilization = mean ``min(B, t_w*t_a) / B``.

    Everything is measured on the sampled output channels and tokens (term quantization is
    per row, so the sampled rows are exact); accuracy proxies compare those weight rows.
    """
    qw, qx = _int_operands(w, x, BITS)
    rows, toks = _sample(qw.shape[0], qx.shape[0], qw.shape[1], max_rows, max_tokens, max_macs)
    tw_vals, tw = term_quantize(qw[rows], group_size, alpha_w)
    tx_vals, tx = term_quantize(qx[toks], group_size, alpha_a)
    pairs = tx.unsqueeze(1).float() * tw.unsqueeze(0).float()                    # [T', M', K]
    used = pairs.clamp(max=budget)
    w_scale = quantize_symmetric(w, BITS, "channel").scale[rows]
    acc = proxies(w[rows], tw_vals.float() * w_scale, "w_")
    return acc | {
        "budget": budget, "group_size": group_size, "alpha_w": alpha_w, "alpha_a": alpha_a,
        "sampled_rows": len(rows), "sampled_tokens": len(toks),
        "terms_per_weight": float(tw.float().mean()), "terms_per_input": float(tx.float().mean()),
        "pairs_per_mult": float(pairs.mean()),
        "budget_utilization": float(used.mean()) / budget,
        "fraction_computed": float(used.sum() / pairs.sum()) if float(pairs.sum()) else 1.0,
        "w_int_mse": float(((tw_vals - qw[rows]).float() ** 2).mean()),
        "x_int_mse": float(((tx_vals - qx[toks]).float() ** 2).mean()),
    }
