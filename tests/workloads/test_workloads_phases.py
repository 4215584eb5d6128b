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


def test_generate_graph_is_a_prefill_then_decode_steps_with_a_growing_cache():
    g = build_graph("llama-3.2-1b", "generate", seq_len=32, decode_tokens=4, include_lm_head=True)
    pre = build_graph("llama-3.2-1b", "prefill", seq_len=32, include_lm_head=True)
    steps = [build_graph("llama-3.2-1b", "decode", seq_len=32, kv_len=32 + i, include_lm_head=True) for i in range(4)]
    assert g.meta["phase"] == "generate" and g.meta["decode_tokens"] == 4
    assert g.names()[:len(pre)] == pre.names()
    assert g.names()[len(pre):] == [f"{n}@decode{i + 1}" for i, s in enumerate(steps) for n in s.names()]
    assert g.total_macs() == pre.total_macs() + sum(s.total_macs() for s in steps)
    # step i attends to 32 + i - 1 cached keys and itself
    assert [g.layer(f"layers.0.self_attn.qk@decode{i}").problem.bounds["M"] for i in (1, 4)] == [33, 36]
    # the first step reads the prefill's output; weights keep their checkpoint names
    assert g.predecessors("layers.0.self_attn.q_proj@decode1") == pre.sinks()
    assert g.layer("lm_head@decode3").weight_name == pre.layer("lm_head").weight_name
    assert [l.name for l in g.one_pass().layers()] == pre.names()


def test_generate_rejects_encoders_and_bad_token_counts():
    import pytest

    from workloads.yamlio import InputError

    with pytest.raises(InputError, match="not an autoregressive decoder; expected 'prefill', got 'generate'"):
        build_graph("bert-base", "generate")
    with pytest.raises(InputError, match="decode_tokens"):
        build_graph("gpt2", "generate", decode_tokens=0)


def test_layer_filter_by_kind_pattern_and_exclusion():
    import pytest

    from workloads.yamlio import InputError

    g = build_graph("vit-s")
    kinds = {l.kind for l in g.select("attention").layers()}
    assert kinds == {"matmul"} and len(g.select("matmul")) == 2 * 12
    no_head = g.select("conv,linear,!classifier")
    assert "classifier" not in no_head and "embeddings.patch_embeddings.projection" in no_head
    assert len(no_head) == len(g) - 2 * 12 - 1
    qkv = g.select("*.query,*.key,*.value")
    assert len(qkv) == 3 * 12 and qkv.meta["layers"] == "*.query,*.key,*.value"
    assert g.select("!*.qk,!*.av").names() == g.select("conv,linear").names()
    # edges among the kept layers are kept, order is execution order
    mlp = g.select("*.intermediate.dense,*.output.dense")
    assert mlp.names() == [n for n in g.names() if n in mlp]
    with pytest.raises(InputError, match="selects no layer"):
        g.select("dwconv")
    with pytest.raises(InputError, match="after '!'"):
        g.select("linear,!")
