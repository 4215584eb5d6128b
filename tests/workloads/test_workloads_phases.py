"""Prefill vs decode consistency and batch scaling of transformer graphs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.zoo import build_graph


def _by_kind(g, kind):
    return [layer for layer in g.layers() if layer.kind == kind]


def test_decode_keeps_weights_and_runs_one_token_per_sequence():
    pre = build_graph("llama-3.2-1b", "prefill", seq_len=64, batch=3)
    dec = build_graph("llama-3.2-1b", "decode", seq_len=64, batch=3)
    assert pre.names() == dec.names()
    for a, b in zip(_by_kind(pre, "linear"), _by_kind(dec, "linear")):
        assert (a.problem.bounds["M"], a.problem.bounds["K"]) == (b.problem.bounds["M"], b.problem.bounds["K"])
        assert a.problem.bounds["N"] == 3 * 64 and b.problem.bounds["N"] == 3
        assert a.weight_name == b.weight_name
    # Decode after a 64-token prefill: the new token attends to 64 cached keys and itself.
    assert dec.meta["kv_len"] == 64 and dec.meta["keys"] == 65
    assert dec.layer("layers.0.self_attn.qk").problem.bounds == {"B": 3 * 8, "M": 65, "N": 4, "K": 64}
    assert dec.layer("layers.0.self_attn.av").problem.bounds == {"B": 3 * 8, "M": 64, "N": 4, "K": 65}


def test_decoding_token_by_token_adds_up_to_a_prefill():
    T = 48
    pre = build_graph("gpt2", "prefill", seq_len=T)
    decodes = [build_graph("gpt2", "decode", kv_len=t) for t in range(T)]
    linear = lambda g: sum(layer.macs for layer in _by_kind(g, "linear"))  # noqa: E731
    attention = lambda g: sum(layer.macs for layer in _by_kind(g, "matmul"))  # noqa: E731
    # Linear layers see every token once either way.
    assert sum(linear(g) for g in decodes) == linear(pre)
    # Token t attends to t + 1 keys: sum = T(T+1)/2 per head, against T*T for the unmasked prefill block.
    assert sum(attention(g) for g in decodes) * 2 * T == attention(pre) * (T + 1)
    assert attention(decodes[10]) == 12 * 2 * 12 * 11 * 64  # layers x (qk + av) x heads x keys x head_dim


def test_chunked_prefill_attends_to_cache_and_chunk():
    g = build_graph("opt-125m", "prefill", seq_len=32, kv_len=96, batch=2)
    assert g.meta["keys"] == 128
    assert g.layer("decoder.layers.3.self_attn.qk").problem.bounds == {"B": 24, "M": 128, "N": 32, "K": 64}
    assert g.layer("decoder.layers.3.fc1").problem.bounds == {"M": 3072, "N": 64, "K": 768}


def test_decode_default_kv_len_is_seq_len_and_lm_head_is_per_sequence():
    g = build_graph("phi-2", "decode", seq_len=100, batch=4, include_lm_head=True)
    assert g.meta["kv_len"] == 100
    assert g.layer("lm_head").problem.bounds == {"M": 51200, "N": 4, "K": 2560}
    assert g.layer("lm_head").weight_name == "lm_head.weight"


_LMS = ["gpt2", "opt-125m", "opt-350m", "llama-3.2-1b", "llama-3-8b", "phi-2", "yi-6b"]


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from(_LMS + ["bert-base", "minilm", "vit-s"]),
    decode=st.booleans(),
    seq_len=st.integers(1, 400),
    batch=st.integers(2, 16),
    lm_head=st.booleans(),
)
def test_transformer_macs_scale_linearly_in_batch(model, decode, seq_len, batch, lm_head):
    phase = "decode" if decode and model in _LMS else "prefill"
    one = build_graph(model, phase, seq_len=seq_len, batch=1, include_lm_head=lm_head)
    many = build_graph(model, phase, seq_len=seq_len, batch=batch, include_lm_head=lm_head)
    assert many.total_macs() == batch * one.total_macs()
    assert many.names() == one.names()
    assert many.weight_elements() == one.weight_elements()
