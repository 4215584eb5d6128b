"""Tensor sources, activation hooks, layer statistics, the disk cache and graph mapping."""

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

import sparsity_models as sm
from sparsity_models.cache import StatsCache, cache_key, tensor_digest
from sparsity_models.sources import canonical_name
from workloads.yamlio import InputError


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_module_source_weights_and_hooked_activations():
    torch.manual_seed(0)
    m = Tiny()
    src = sm.ModuleSource(m, [torch.randn(3, 5, 16), torch.randn(2, 16)], max_tokens=12)
    assert src.layers() == ["fc1", "fc2"]
    assert torch.equal(src.weight("fc1"), m.fc1.weight)
    acts = src.activations()
    assert acts["fc1"].shape == (12, 16) and acts["fc2"].shape == (12, 32)
    assert bool((acts["fc2"] >= -0.2).all())                      # GELU outputs
    try:
        src.weight("fc3")
        raise AssertionError("expected an InputError")
    except InputError as exc:
        assert exc.key == "fc3"


def test_safetensors_source_and_prefix(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"bert.encoder.layer.0.attention.self.query.weight": torch.ones(4, 8),
               "bert.embeddings.word_embeddings.weight": torch.ones(10, 8),
               "bert.encoder.layer.0.output.LayerNorm.weight": torch.ones(8)}, str(path))
    src = sm.SafetensorsSource(path)
    assert src.layers() == ["encoder.layer.0.attention.self.query"]
    assert src.weight_name("encoder.layer.0.attention.self.query") == "bert.encoder.layer.0.attention.self.query.weight"
    assert canonical_name("model.layers.0.mlp") == "layers.0.mlp"
    try:
        sm.open_source(tmp_path / "missing.safetensors")
        raise AssertionError("expected an InputError")
    except InputError:
        pass


def test_layer_stats_cache_round_trip(tmp_path):
    torch.manual_seed(0)
    stats = sm.layer_stats(Tiny(), sections=[("bitcols", {}), ("bbs", {"pruned_columns": 2})], cache_dir=tmp_path,
                           activations=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4 and all(f.endswith(".npz") for f in files)
    again = sm.LayerStats("fc1", stats["fc1"].weight, cache=StatsCache(tmp_path))
    a, b = stats["fc1"].section("bbs", {"pruned_columns": 2}), again.section("bbs", {"pruned_columns": 2})
    assert np.array_equal(a["stored_columns"], b["stored_columns"]) and a["int_mse"] == b["int_mse"]
    assert len(list(tmp_path.iterdir())) == 4                      # served from the cache, nothing new written


def test_cache_key_depends_on_bytes_and_params(tmp_path, monkeypatch):
    t = torch.arange(6.0)
    d = tensor_digest(t)
    assert d == tensor_digest(torch.arange(6.0)) and d != tensor_digest(t + 1) and d != tensor_digest(t.reshape(2, 3))
    assert cache_key(d, "bbs", {"n": 1}) != cache_key(d, "bbs", {"n": 2})
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path / "env"))
    c = StatsCache()
    c.put("k", {"x": 1.5, "arr": np.arange(3), "mix": {"+6": 0.5}})
    got = c.get("k")
    assert got["x"] == 1.5 and got["mix"] == {"+6": 0.5} and got["arr"].tolist() == [0, 1, 2]
    assert [p.name for p in (tmp_path / "env").iterdir()] == ["k.npz"]   # no temp file left behind
    (tmp_path / "env" / "k.npz").write_bytes(b"garbage")
    assert c.get("k") is None


def test_sections_reject_unknown_parameters():
    ls = sm.synthetic_stats()
    try:
        ls.section("bbs", {"prune": 2})
        raise AssertionError("expected an InputError")
    except InputError as exc:
        assert exc.key == "bbs.prune"


def test_parallel_sections_match_serial(tmp_path):
    torch.manual_seed(0)
    serial = sm.layer_stats(Tiny(), sections=[("bitcols", {})], use_cache=False, activations=False)
    torch.manual_seed(0)
    par = sm.layer_stats(Tiny(), sections=[("bitcols", {})], use_cache=False, activations=False, workers=2)
    for name in serial:
        a, b = serial[name].section("bitcols"), par[name].section("bitcols")
        assert np.array_equal(a["pragmatic_cycles"], b["pragmatic_cycles"]) and a["bbs_sparsity"] == b["bbs_sparsity"]


def test_global_channel_selection_and_graph_mapping():
    torch.manual_seed(0)
    stats = sm.layer_stats(Tiny(), use_cache=False, activations=False)
    counts = sm.select_sensitive(stats, 0.1, 4)
    assert sum(counts.values()) >= 4 and all(c % 4 == 0 for c in counts.values())
    n, how = stats["fc1"].sensitive_count(0.1, 4)
    assert how == "global" and n == counts["fc1"]

    class Graph:                                                  # the LayerGraph lookup the mapper uses
        def layer_for_tensor(self, name):
            return {"fc1.weight": "model.fc1"}.get(name)

    assert list(sm.map_to_graph(stats, Graph())) == ["model.fc1"]
