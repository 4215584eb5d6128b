"""Layer graphs of torchvision CNNs (ResNet, VGG, MobileNetV2) from their architecture configs.

Layer names are torchvision's module names (``layer1.0.conv1``, ``features.0``,
``features.2.conv.1.0``). Output sizes follow each conv's padding and stride exactly as
torchvision computes them; the conv problems hold padding-free input extents
(``stride*(P-1) + dilation*(R-1) + 1`` of the padded input). Batch norm, activations,
pooling and residual adds carry no MACs and are not layers; the classifier is included.
"""

from __future__ import annotations

from typing import Any, Mapping

from workloads.graph import LayerGraph
from workloads.problem import conv2d, depthwise_conv2d, gemm
from workloads.yamlio import InputError, as_int

CNN_TYPES = ("torchvision.resnet", "torchvision.vgg", "torchvision.mobilenet_v2")


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window (PyTorch's floor rule)."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise InputError("<model>", "image_size", f"input of {size} pixels is too small for a {kernel}x{kernel} window")
    return out


class _ConvNet:
    """Builder that tracks batch, spatial size and the producers of the current activation."""

    def __init__(self, graph: LayerGraph, batch: int, size: int) -> None:
        self.g, self.batch, self.size = graph, batch, size

    def conv(self, name: str, c_in: int, c_out: int, kernel: int, stride: int, padding: int, inputs: list[str],
             groups: int = 1, size: int | None = None) -> tuple[list[str], int]:
        """Add a conv reading an activation of ``size`` (default: current); returns ([name], output size)."""
        size = self.size if size is None else size
        out = conv_out(size, kernel, stride, padding)
        if groups == 1:
            problem, kind = conv2d(N=self.batch, C=c_in, M=c_out, R=kernel, S=kernel, P=out, Q=out, stride=stride), "conv"
        elif groups == c_in == c_out:
            problem, kind = depthwise_conv2d(N=self.batch, C=c_in, R=kernel, S=kernel, P=out, Q=out, stride=stride), "dwconv"
        else:  # pragma: no cover - no built-in model uses general grouped convs
            raise ValueError(f"{name}: grouped convolution (groups={groups}) is not built in")
        self.g.add_layer(name, problem, kind, inputs=inputs, weight_name=f"{name}.weight")
        return [name], out

    def pool(self, kernel: int, stride: int, padding: int = 0) -> None:
        self.size = conv_out(self.size, kernel, stride, padding)

    def linear(self, name: str, out_f: int, in_f: int, inputs: list[str]) -> list[str]:
        self.g.add_layer(name, gemm(M=out_f, N=self.batch, K=in_f), "linear", inputs=inputs, weight_name=f"{name}.weight")
        return [name]


def _ints(cfg: Mapping[str, Any], key: str, source: str) -> list[int]:
    value = cfg.get(key)
    if not isinstance(value, list) or not value:
        raise InputError(source, f"config.{key}", f"expected a non-empty list of integers, got {value!r}")
    return [as_int(v, source, f"config.{key}[{i}]", minimum=1) for i, v in enumerate(value)]


def resnet_graph(cfg: Mapping[str, Any], g: LayerGraph, batch: int, image_size: int, source: str) -> LayerGraph:
    """torchvision ResNet (v1.5: stride on the 3x3 conv of a bottleneck)."""
    block = cfg.get("block")
    if block not in ("basic", "bottleneck"):
        raise InputError(source, "config.block", f"expected 'basic' or 'bottleneck', got {block!r}")
    depths = _ints(cfg, "layers", source)
    num_classes = as_int(cfg.get("num_classes", 1000), source, "config.num_classes", minimum=1)
    expansion = 4 if block == "bottleneck" else 1
    net = _ConvNet(g, batch, image_size)
    prev, net.size = net.conv("conv1", 3, 64, 7, 2, 3, [])
    net.pool(3, 2, 1)  # maxpool
    c_in = 64
    for stage, depth in enumerate(depths):
        width = 64 * 2**stage
        for j in range(depth):
            stride = 2 if stage > 0 and j == 0 else 1
            pre, size_in = f"layer{stage + 1}.{j}", net.size
            if block == "basic":
                x, s = net.conv(f"{pre}.conv1", c_in, width, 3, stride, 1, prev)
                x, s = net.conv(f"{pre}.conv2", width, width, 3, 1, 1, x, size=s)
            else:
                x, s = net.conv(f"{pre}.conv1", c_in, width, 1, 1, 0, prev)
                x, s = net.conv(f"{pre}.conv2", width, width, 3, stride, 1, x, size=s)
                x, s = net.conv(f"{pre}.conv3", width, width * expansion, 1, 1, 0, x, size=s)
            if stride != 1 or c_in != width * expansion:
                shortcut, _ = net.conv(f"{pre}.downsample.0", c_in, width * expansion, 1, stride, 0, prev, size=size_in)
                x = x + shortcut
            prev, net.size, c_in = x, s, width * expansion
    net.linear("fc", num_classes, c_in, prev)  # after global average pooling
    return g


def vgg_graph(cfg: Mapping[str, Any], g: LayerGraph, batch: int, image_size: int, source: str) -> LayerGraph:
    """torchvision VGG without batch norm: ``features`` (conv3x3 pad 1, ReLU, 2x2 max pools) and ``classifier``."""
    layout = cfg.get("features")
    if not isinstance(layout, list) or not layout:
        raise InputError(source, "config.features", "expected a list of channel counts and 'M' (max pool)")
    classifier = _ints(cfg, "classifier", source)
    num_classes = as_int(cfg.get("num_classes", 1000), source, "config.num_classes", minimum=1)
    net = _ConvNet(g, batch, image_size)
    prev: list[str] = []
    c_in, idx = 3, 0
    for i, v in enumerate(layout):
        if v == "M":
            net.pool(2, 2)
            idx += 1
            continue
        c_out = as_int(v, source, f"config.features[{i}]", minimum=1)
        prev, net.size = net.conv(f"features.{idx}", c_in, c_out, 3, 1, 1, prev)
        c_in, idx = c_out, idx + 2  # Conv2d, ReLU
    # AdaptiveAvgPool2d((7, 7)) then Linear, ReLU, Dropout, ..., Linear: indices 0, 3, 6.
    k = c_in * 7 * 7
    for j, width in enumerate(classifier + [num_classes]):
        prev = net.linear(f"classifier.{3 * j}", width, k, prev)
        k = width
    return g


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2_graph(cfg: Mapping[str, Any], g: LayerGraph, batch: int, image_size: int, source: str) -> LayerGraph:
    """torchvision MobileNetV2: inverted residual blocks with depthwise 3x3 convs."""
    setting = cfg.get("inverted_residual_setting")
    if not isinstance(setting, list) or not all(isinstance(r, list) and len(r) == 4 for r in setting):
        raise InputError(source, "config.inverted_residual_setting", "expected a list of [t, c, n, s] rows")
    width = float(cfg.get("width_mult", 1.0))
    num_classes = as_int(cfg.get("num_classes", 1000), source, "config.num_classes", minimum=1)
    net = _ConvNet(g, batch, image_size)
    c_in = _make_divisible(32 * width)
    last = _make_divisible(as_int(cfg.get("last_channel", 1280), source, "config.last_channel", minimum=1) * max(1.0, width))
    prev, net.size = net.conv("features.0.0", 3, c_in, 3, 2, 1, [])
    idx = 1
    for r, row in enumerate(setting):
        t, c, n, s = (as_int(v, source, f"config.inverted_residual_setting[{r}]", minimum=1) for v in row)
        c_out = _make_divisible(c * width)
        for j in range(n):
            stride = s if j == 0 else 1
            hidden, pre = c_in * t, f"features.{idx}.conv"
            x, size = prev, net.size
            sub = 0
            if t != 1:
                x, size = net.conv(f"{pre}.0.0", c_in, hidden, 1, 1, 0, x, size=size)
                sub = 1
            x, size = net.conv(f"{pre}.{sub}.0", hidden, hidden, 3, stride, 1, x, groups=hidden, size=size)
            x, size = net.conv(f"{pre}.{sub + 1}", hidden, c_out, 1, 1, 0, x, size=size)
            # With a residual add (stride 1, c_in == c_out) the sum's latest writer is still
            # the projection conv: the block input reaches it through the block's own convs.
            prev, net.size, c_in, idx = x, size, c_out, idx + 1
    prev, net.size = net.conv(f"features.{idx}.0", c_in, last, 1, 1, 0, prev)
    net.linear("classifier.1", num_classes, last, prev)  # after global average pooling; classifier.0 is Dropout
    return g


BUILDERS = {
    "torchvision.resnet": resnet_graph,
    "torchvision.vgg": vgg_graph,
    "torchvision.mobilenet_v2": mobilenet_v2_graph,
}


def cnn_graph(cfg: Mapping[str, Any], model: str, batch: int, image_size: int, source: str,
              meta: dict[str, Any] | None = None) -> LayerGraph:
    """Build the graph of a torchvision CNN config (``model_type`` in :data:`CNN_TYPES`)."""
    g = LayerGraph(model, meta)
    return BUILDERS[cfg["model_type"]](cfg, g, batch, image_size, source)
