"""Built-in models: MAC and parameter counts against independently derived or published numbers."""

from __future__ import annotations

import pytest

from workloads.graph import LayerGraph
from workloads.zoo import build_graph, known_models, model_entry
from workloads.yamlio import InputError


def _macs(g: LayerGraph, kind: str) -> int:
    return sum(layer.macs for layer in g.layers() if layer.kind == kind)


def test_every_builtin_model_builds_and_names_are_unique():
    expected = {
        "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "opt-125m", "opt-350m", "opt-1.3b", "opt-2.7b", "opt-6.7b",
        "opt-13b", "llama-2-7b", "llama-2-13b", "llama-3-8b", "llama-3.2-1b", "llama-3.2-3b", "phi-2", "yi-6b",
        "bert-base", "minilm-l6", "deit-s", "vit-s", "vit-b", "resnet18", "resnet34", "resnet50", "vgg16", "mobilenetv2",
    }
    assert set(known_models()) == expected
    for name in known_models():
        g = build_graph(name)
        assert len(g) == len(set(g.names())) > 0
        assert g.total_macs() > 0
        assert all(layer.kind in ("linear", "conv", "dwconv", "matmul") for layer in g.layers())
        # layers() is a topological order of the dataflow edges
        pos = {n: i for i, n in enumerate(g.names())}
        assert all(pos[u] < pos[v] for u, v in g.graph.edges)


@pytest.mark.parametrize("alias, name", [
    ("gpt2", "gpt2"), ("GPT2-Medium", "gpt2-medium"), ("opt-1.3b", "opt-1.3b"), ("OPT_13B", "opt-13b"),
    ("llama-2-7b", "llama-2-7b"), ("meta-llama/Llama-2-7b-hf", "llama-2-7b"), ("llama-3-8b", "llama-3-8b"),
    ("llama-3.2-1b", "llama-3.2-1b"), ("phi-2", "phi-2"), ("bert-base", "bert-base"), ("vit-b", "vit-b"),
    ("resnet50", "resnet50"), ("ResNet-50", "resnet50"), ("vgg16", "vgg16"), ("mobilenetv2", "mobilenetv2"),
    ("mobilenet_v2", "mobilenetv2"), ("minilm", "minilm-l6"), ("all-MiniLM-L6-v2", "minilm-l6"), ("deit-s", "deit-s"),
])
def test_aliases_are_case_insensitive(alias, name):
    assert model_entry(alias).name == name
    assert build_graph(alias).meta["model"] == name


def test_gpt2_124m_prefill_macs_by_hand():
    g = build_graph("gpt2", seq_len=256)
    # Per block, N = 256 tokens: c_attn 768->3*768, attn.c_proj 768->768, c_fc 768->4*768, mlp.c_proj 4*768->768.
    linear_per_block = 256 * 768 * (3 * 768 + 768 + 4 * 768 * 2)          # = 1,811,939,328
    # Attention per block: 12 heads x 256 queries x 256 keys x 64 (QK^T), the same again for A.V.
    attention_per_block = 2 * 12 * 256 * 256 * 64                          # = 100,663,296
    assert _macs(g, "linear") == 12 * linear_per_block
    assert _macs(g, "matmul") == 12 * attention_per_block
    assert g.total_macs() == 22_951_231_488
    c_attn = g.layer("h.0.attn.c_attn")
    assert c_attn.problem.bounds == {"M": 2304, "N": 256, "K": 768}
    assert c_attn.weight_name == "h.0.attn.c_attn.weight" and c_attn.weight_transposed
    assert g.layer("h.11.attn.qk").problem.bounds == {"B": 12, "M": 256, "N": 256, "K": 64}
    assert g.layer("h.11.attn.av").problem.bounds == {"B": 12, "M": 64, "N": 256, "K": 256}
    assert g.layer("h.0.attn.qk").weight_name is None
    # The LM head adds one 50257 x 768 product per sequence (last position) and is tied to wte.
    head = build_graph("gpt2", seq_len=256, include_lm_head=True).layer("lm_head")
    assert head.macs == 50257 * 768 and head.weight_name == "wte.weight" and not head.weight_transposed


def test_gpt2_dataflow_edges():
    g = build_graph("gpt2", seq_len=8)
    assert g.predecessors("h.0.attn.c_attn") == []
    assert g.predecessors("h.0.attn.qk") == ["h.0.attn.c_attn"]
    assert sorted(g.predecessors("h.0.attn.av")) == ["h.0.attn.c_attn", "h.0.attn.qk"]
    assert g.predecessors("h.0.attn.c_proj") == ["h.0.attn.av"]
    assert g.predecessors("h.0.mlp.c_fc") == ["h.0.attn.c_proj"]
    assert g.predecessors("h.1.attn.c_attn") == ["h.0.mlp.c_proj"]


def test_unique_problems_of_gpt2_dedup_the_twelve_blocks():
    g = build_graph("gpt2", seq_len=256)
    groups = g.unique_problems()
    # c_attn, attn.c_proj, qk, av, c_fc, mlp.c_proj: one problem each, shared by all 12 blocks.
    assert len(groups) == 6
    assert all(len(names) == 12 for _, names in groups)
    assert sum(len(names) for _, names in groups) == len(g) == 72
    assert sum(p.macs * len(names) for p, names in groups) == g.total_macs()


def test_llama_grouped_query_attention_shapes():
    g = build_graph("llama-3-8b", seq_len=128, batch=2)
    # 32 query heads share 8 key/value heads: k/v projections are 8*128 = 1024 wide.
    assert g.layer("layers.0.self_attn.q_proj").problem.bounds == {"M": 4096, "N": 256, "K": 4096}
    assert g.layer("layers.0.self_attn.k_proj").problem.bounds == {"M": 1024, "N": 256, "K": 4096}
    assert g.layer("layers.0.self_attn.v_proj").problem.bounds == {"M": 1024, "N": 256, "K": 4096}
    assert g.layer("layers.0.mlp.gate_proj").problem.bounds == {"M": 14336, "N": 256, "K": 4096}
    assert g.layer("layers.0.mlp.down_proj").problem.bounds == {"M": 4096, "N": 256, "K": 14336}
    # B = batch * kv_heads, N = (query heads per kv head) * queries.
    assert g.layer("layers.0.self_attn.qk").problem.bounds == {"B": 16, "M": 128, "N": 512, "K": 128}
    assert g.layer("layers.0.self_attn.av").problem.bounds == {"B": 16, "M": 128, "N": 512, "K": 128}
    assert _macs(g, "matmul") == 32 * 2 * (2 * 32 * 128 * 128 * 128)
    # Llama-3.2-1B: head_dim 64 from the config; tied LM head.
    small = build_graph("llama-3.2-1b", seq_len=16, include_lm_head=True)
    assert small.layer("layers.0.self_attn.q_proj").problem.bounds["M"] == 2048
    assert small.layer("layers.0.self_attn.k_proj").problem.bounds["M"] == 512
    assert small.layer("lm_head").weight_name == "embed_tokens.weight"
    # Llama-2-13B has no grouped-query attention.
    big = build_graph("llama-2-13b", seq_len=16)
    assert big.layer("layers.0.self_attn.k_proj").problem.bounds["M"] == 5120
    assert big.layer("layers.0.self_attn.qk").problem.bounds["B"] == 40
    assert build_graph("llama-2-7b", include_lm_head=True).layer("lm_head").weight_name == "lm_head.weight"


def test_opt_350m_projections_and_phi_parallel_block():
    g = build_graph("opt-350m", seq_len=32, include_lm_head=True)
    assert g.names()[0] == "decoder.project_in"
    assert g.layer("decoder.project_in").problem.bounds == {"M": 1024, "N": 32, "K": 512}
    assert g.layer("decoder.project_out").problem.bounds == {"M": 512, "N": 32, "K": 1024}
    assert g.layer("lm_head").problem.bounds == {"M": 50272, "N": 1, "K": 512}
    assert g.predecessors("lm_head") == ["decoder.project_out"]
    phi = build_graph("phi-2", seq_len=8)
    assert phi.predecessors("layers.0.mlp.fc1") == []  # reads the block input, like the attention
    assert sorted(phi.predecessors("layers.1.self_attn.q_proj")) == ["layers.0.mlp.fc2", "layers.0.self_attn.dense"]


def test_bert_base_linear_parameters():
    g = build_graph("bert-base", seq_len=128)
    encoder = 12 * (4 * 768 * 768 + 2 * 768 * 3072)  # q, k, v, attention.output; intermediate, output
    assert encoder == 84_934_656
    assert g.weight_elements() == encoder + 768 * 768  # + pooler.dense
    assert g.layer("encoder.layer.0.attention.self.query").problem.bounds == {"M": 768, "N": 128, "K": 768}
    assert g.layer("pooler.dense").problem.bounds == {"M": 768, "N": 1, "K": 768}
    assert "encoder.layer.11.attention.self.qk" in g


def test_vision_transformers_match_published_macs():
    vit_b = build_graph("vit-b")
    # 197 tokens (196 patches + [CLS]); timm/DeiT papers list 17.6 G for ViT-B/16 and 4.6 G for DeiT-S.
    assert vit_b.layer("embeddings.patch_embeddings.projection").problem.bounds == {
        "N": 1, "C": 3, "M": 768, "R": 16, "S": 16, "P": 14, "Q": 14}
    assert vit_b.layer("encoder.layer.0.attention.attention.query").problem.bounds == {"M": 768, "N": 197, "K": 768}
    assert vit_b.layer("classifier").problem.bounds == {"M": 1000, "N": 1, "K": 768}
    assert vit_b.total_macs() == pytest.approx(17.6e9, rel=0.01)
    assert build_graph("deit-s").total_macs() == pytest.approx(4.6e9, rel=0.01)
    assert build_graph("vit-s").total_macs() == build_graph("deit-s").total_macs()
    # A larger image: 384 px -> 24 x 24 patches + [CLS] = 577 tokens.
    assert build_graph("vit-b", image_size=384).meta["seq_len"] == 577


def test_vgg16_macs_by_hand():
    g = build_graph("vgg16")
    conv = 9 * (224**2 * (3 * 64 + 64 * 64) + 112**2 * (64 * 128 + 128 * 128) + 56**2 * (128 * 256 + 2 * 256 * 256)
                + 28**2 * (256 * 512 + 2 * 512 * 512) + 14**2 * (3 * 512 * 512))
    fc = 512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000
    assert _macs(g, "conv") == conv and _macs(g, "linear") == fc
    assert g.total_macs() == 15_470_264_320  # the published ~15.5 GMACs
    assert g.names()[:3] == ["features.0", "features.2", "features.5"]
    assert g.names()[-3:] == ["classifier.0", "classifier.3", "classifier.6"]
    assert g.weight_elements() == pytest.approx(138.36e6, rel=0.001)  # 138.36 M parameters incl. biases


def test_resnets_match_published_macs_and_parameters():
    r50 = build_graph("resnet50")
    assert r50.total_macs() == pytest.approx(4.09e9, rel=0.005)  # He et al.: 3.8-4.1 G; torchvision: 4.09
    assert r50.weight_elements() == pytest.approx(25.557e6, rel=0.003)  # 25.56 M incl. batch-norm and fc bias
    assert build_graph("resnet18").total_macs() == pytest.approx(1.81e9, rel=0.005)
    assert build_graph("resnet34").total_macs() == pytest.approx(3.66e9, rel=0.005)
    # Stem: 7x7/2 pad 3 on 224 -> 112; after the 3x3/2 max pool, 56.
    assert r50.layer("conv1").problem.bounds == {"N": 1, "C": 3, "M": 64, "R": 7, "S": 7, "P": 112, "Q": 112}
    assert r50.layer("layer1.0.conv1").problem.bounds["P"] == 56
    # v1.5: the stride sits on the 3x3 conv; the 1x1 downsample has it too.
    down = r50.layer("layer2.0.conv2").problem
    assert down.bounds["P"] == 28 and down.coefficients["Wstride"] == 2
    assert r50.layer("layer2.0.conv1").problem.bounds["P"] == 56
    assert r50.layer("layer2.0.downsample.0").problem.bounds == {"N": 1, "C": 256, "M": 512, "R": 1, "S": 1, "P": 28, "Q": 28}
    assert sorted(r50.predecessors("layer2.1.conv1")) == ["layer2.0.conv3", "layer2.0.downsample.0"]
    assert r50.predecessors("layer2.2.conv1") == ["layer2.1.conv3"]
    assert r50.layer("fc").problem.bounds == {"M": 1000, "N": 1, "K": 2048}
    # Padding-free input extent of the stem: 2*(112-1) + 7 = 229 <= 224 + 2*3.
    assert r50.layer("conv1").problem.tile_size("Inputs") == 3 * 229 * 229


def test_mobilenet_v2_depthwise_layers():
    g = build_graph("mobilenetv2", batch=2)
    assert g.total_macs() == pytest.approx(2 * 300e6, rel=0.01)  # Sandler et al.: 300 M multiply-adds
    dw = g.layer("features.2.conv.1.0")
    assert dw.kind == "dwconv" and dw.problem.bounds == {"C": 96, "R": 3, "S": 3, "N": 2, "P": 56, "Q": 56}
    assert dw.problem.coefficients["Wstride"] == 2
    assert g.layer("features.1.conv.0.0").kind == "dwconv"  # t = 1: no expansion conv
    assert g.layer("features.1.conv.1").problem.bounds["M"] == 16
    assert g.layer("features.18.0").problem.bounds == {"N": 2, "C": 320, "M": 1280, "R": 1, "S": 1, "P": 7, "Q": 7}
    assert g.layer("classifier.1").problem.bounds == {"M": 1000, "N": 2, "K": 1280}
    assert sum(layer.kind == "dwconv" for layer in g.layers()) == 17
    assert g.weight_elements() == pytest.approx(3.505e6, rel=0.02)  # 3.50 M parameters incl. batch norm


def test_cnn_image_size_changes_spatial_sizes():
    g = build_graph("resnet18", image_size=448)
    assert g.layer("conv1").problem.bounds["P"] == 224
    assert g.total_macs() == pytest.approx(4 * build_graph("resnet18").total_macs(), rel=0.01)


@pytest.mark.parametrize("kwargs, key", [
    ({"model": "gpt5"}, "model"),
    ({"model": ""}, "model"),
    ({"model": "gpt2", "phase": "training"}, "phase"),
    ({"model": "gpt2", "seq_len": -1}, "seq_len"),
    ({"model": "gpt2", "seq_len": 0}, "seq_len"),
    ({"model": "gpt2", "seq_len": True}, "seq_len"),
    ({"model": "gpt2", "seq_len": 2.5}, "seq_len"),
    ({"model": "gpt2", "batch": 0}, "batch"),
    ({"model": "gpt2", "phase": "decode", "kv_len": -3}, "kv_len"),
    ({"model": "gpt2", "seq_len": 1025}, "seq_len"),            # learned positions stop at 1024
    ({"model": "gpt2", "phase": "decode", "kv_len": 1024}, "seq_len"),
    ({"model": "bert-base", "phase": "decode"}, "phase"),
    ({"model": "bert-base", "kv_len": 8}, "kv_len"),
    ({"model": "resnet50", "phase": "decode"}, "phase"),
    ({"model": "gpt2", "image_size": 224}, "image_size"),
    ({"model": "vit-b", "image_size": 8}, "image_size"),
    ({"model": "resnet50", "image_size": 0}, "image_size"),
    ({"model": "gpt2", "include_lm_head": "yes"}, "include_lm_head"),
])
def test_bad_inputs_raise_input_error(kwargs, key):
    with pytest.raises(InputError) as err:
        build_graph(**kwargs)
    assert err.value.key == key


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown model 'gpt5'.*gpt2.*resnet50.*vgg16"):
        build_graph("gpt5")
