"""Layer graphs of ONNX models: Conv (incl. grouped and depthwise), Gemm and MatMul nodes.

Shapes come from ``onnx.shape_inference.infer_shapes(data_prop=True)`` with the graph
inputs' symbolic dimensions set to ``batch`` (leading) and 1 (others); when a layer's
shape is still symbolic (e.g. a ViT that interpolates its position embeddings at run
time), the model is run once on zeros with ``onnxruntime`` (if installed) to read it.

* ``Conv``: ``conv2d`` (``count = group`` for grouped convs) or ``depthwise_conv2d``
  (``group == C == M``); Timeloop's R/P run along the width, S/Q along the height.
* ``Gemm`` / ``MatMul`` with one initializer operand: ``gemm(M=out, N=rows, K=in)``;
  the initializer is the weight (``weight_transposed`` when stored ``[K, M]``).
* ``MatMul`` of two activations ``A[..., n, k] @ B[..., k, m]`` (attention):
  ``batched_matmul(B=prod(batch dims), M=m, N=n, K=k)``: ``B`` is the Weights operand
  (keys for ``Q K^T``, values for ``P V``), ``A`` streams as Inputs.

Other nodes (norms, activations, softmax, pooling, reshapes, ConvTranspose, ...) carry
no layer; ``graph.meta['skipped']`` counts the MAC-carrying ones left out. Edges follow
tensors through non-layer nodes. ``graph.meta['roles']`` holds each layer's role
(``sparsity_models.roles``), found from the activation that feeds it.

Layer names: the node name as a dotted path without a trailing op-type component
(``/backbone/encoder/layer.0/mlp/fc1/MatMul`` -> ``backbone.encoder.layer.0.mlp.fc1``);
attention matmuls end in ``.qk`` / ``.av``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx

from workloads.graph import LayerGraph
from workloads.problem import batched_matmul, conv2d, depthwise_conv2d, gemm
from workloads.yamlio import InputError

LAYER_OPS = ("Conv", "Gemm", "MatMul")
SKIPPED_OPS = ("ConvTranspose", "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "Einsum")
# Ops that move or select data without changing what kind of activation it is.
_TRANSPARENT = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Cast", "Identity", "Dropout", "MaxPool",
                "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pad", "Slice", "Gather", "Split", "Concat",
                "Expand", "Resize", "ReduceMean"}


def load_onnx_model(path: str | Path) -> Any:
    """The ONNX ModelProto at ``path`` (InputError when unreadable or onnx is missing)."""
    p = Path(path)
    try:
        import onnx
    except ImportError:
        raise InputError(p, None, "ONNX models need the 'onnx' package: pip install 'bitloop[onnx]'") from None
    if not p.is_file():
        raise InputError(p, None, "ONNX file not found")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # noqa: BLE001 - a corrupt file is a user input problem
        raise InputError(p, None, f"cannot read ONNX model ({exc})") from None


def layer_name(node: Any, used: set[str]) -> str:
    """Dotted layer name of a node (unique within ``used``, which it extends)."""
    raw = node.name or node.output[0]
    parts = [x for x in raw.strip("/").replace(":", "_").split("/") if x]
    if len(parts) > 1 and parts[-1] in (node.op_type, "BiasAdd"):   # torch / TF exporters' op suffixes
        parts = parts[:-1]
    return _unique(".".join(parts) or node.op_type.lower(), used)


def _unique(base: str, used: set[str]) -> str:
    name, i = base, 1
    while name in used:
        name, i = f"{base}:{i}", i + 1
    used.add(name)
    return name


class _Shapes:
    """Tensor shapes: static inference first, one onnxruntime run for what stays symbolic."""

    def __init__(self, model: Any, path: Path, batch: int):
        import onnx
        from onnx import shape_inference

        self.model, self.path, self.batch = model, path, batch
        m = onnx.ModelProto()
        m.CopyFrom(model)
        inits = {i.name for i in m.graph.initializer}
        for inp in m.graph.input:
            if inp.name in inits:
                continue
            for j, d in enumerate(inp.type.tensor_type.shape.dim):
                if not d.HasField("dim_value"):
                    d.ClearField("dim_param")
                    d.dim_value = batch if j == 0 else 1
        self.fixed = m
        try:
            inferred = shape_inference.infer_shapes(m, data_prop=True)
        except Exception as exc:  # noqa: BLE001
            raise InputError(path, None, f"ONNX shape inference failed ({exc})") from None
        self.shapes: dict[str, list[int | None]] = {}
        for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
            self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                                    for d in vi.type.tensor_type.shape.dim]
        for init in model.graph.initializer:
            self.shapes[init.name] = list(init.dims)
        self._ran = False

    def of(self, tensor: str, needed: list[str]) -> list[int]:
        shape = self.shapes.get(tensor)
        if not shape or any(d is None for d in shape):   # layer operands are never scalars: [] = rank unknown
            self._run(needed)
            shape = self.shapes.get(tensor)
        if not shape or any(d is None for d in shape):
            raise InputError(self.path, tensor, "a static shape (shape inference left it symbolic)")
        return [int(d) for d in shape]

    def _run(self, needed: list[str]) -> None:
        """Run the model once on zeros to read the shapes inference could not resolve."""
        if self._ran:
            return
        self._ran = True
        try:
            import numpy as np
            import onnxruntime as ort
            from onnx import helper
        except ImportError:
            raise InputError(self.path, None, "symbolic shapes: install onnxruntime (bitloop[onnx]) to resolve them by "
                                              "running the model once") from None
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self.fixed)
        known = {o.name for o in m.graph.output}
        for t in needed:
            if t not in known:
                m.graph.output.append(helper.make_empty_tensor_value_info(t))
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                 "tensor(float16)": np.float16, "tensor(double)": np.float64}
        feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], types.get(i.type, np.float32))
                 for i in sess.get_inputs()}
        names = [o.name for o in sess.get_outputs()]
        for name, value in zip(names, sess.run(names, feeds)):
            self.shapes[name] = list(value.shape)


def graph_from_onnx(path: str | Path, batch: int = 1, name: str | None = None) -> LayerGraph:
    """Layer graph of the ONNX model at ``path`` for ``batch`` inputs (see module doc)."""
    p = Path(path)
    model = load_onnx_model(p)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    layer_nodes = [n for n in graph.node if _is_layer(n, inits)]
    needed = [t for n in layer_nodes for t in list(n.input[:2]) + [n.output[0]] if t and t not in inits]
    shapes = _Shapes(model, p, batch)
    g = LayerGraph(name or p.stem, {"model": name or p.stem, "source": str(p), "format": "onnx", "batch": batch,
                                   "phase": "prefill"})
    used: set[str] = set()
    names: dict[int, str] = {}
    roles: dict[str, str] = {}
    skipped: dict[str, int] = {}
    deps: dict[str, set[str]] = {}
    has_attention = any(n.op_type == "MatMul" and not any(i in inits for i in n.input[:2]) for n in layer_nodes)
    kinds = _Kinds(producer, inits)
    for node in graph.node:
        if node.op_type in SKIPPED_OPS:
            skipped[node.op_type] = skipped.get(node.op_type, 0) + 1
        if not _is_layer(node, inits):
            continue
        weighted = any(i in inits for i in node.input[:2])
        role = _role(node, inits, kinds, consumers, has_attention, shapes, needed)
        if weighted:
            lname = layer_name(node, used)
        else:
            parts = [x for x in (node.name or node.output[0]).strip("/").replace(":", "_").split("/") if x]
            base = ".".join(parts[:-1] if len(parts) > 1 else parts)
            lname = _unique(base + (".av" if role == "attn_av" else ".qk"), used)
        names[id(node)] = lname
        problem, kind, count, transposed = _problem(node, inits, shapes, needed, p)
        data = [i for i in node.input[:2] if i and i not in inits]
        deps[lname] = set().union(*(kinds.layer_producers(t, names) for t in data))
        weight = next((i for i in node.input[:2] if i in inits), None)
        g.add_layer(lname, problem, kind, weight_name=weight,
                    count=count, weight_transposed=transposed)
        roles[lname] = role
    full = nx.DiGraph()   # as workloads.trace: a residual stream links each layer to its latest producers
    full.add_nodes_from(g.names())
    full.add_edges_from((src, dst) for dst, srcs in deps.items() for src in srcs)
    for src, dst in nx.transitive_reduction(full).edges:
        g.add_edge(src, dst)
    g.meta["roles"] = roles
    g.meta["skipped"] = skipped
    if not len(g):
        raise InputError(p, None, "an ONNX model with Conv, Gemm or MatMul nodes")
    return g


def _is_layer(node: Any, inits: dict) -> bool:
    if node.op_type == "Conv":
        return len(node.input) > 1 and node.input[1] in inits
    if node.op_type in ("Gemm", "MatMul"):
        a, b = (node.input[0] in inits), (node.input[1] in inits)
        return not (a and b)
    return False


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _problem(node: Any, inits: dict, shapes: _Shapes, needed: list[str], path: Path):
    """(problem, kind, count, weight_transposed) of one layer node."""
    if node.op_type == "Conv":
        x = shapes.of(node.input[0], needed)
        w = shapes.of(node.input[1], needed)
        y = shapes.of(node.output[0], needed)
        if len(w) != 4:
            raise InputError(path, node.name, f"a 2-D convolution (weight of rank 4), got rank {len(w)}")
        at = _attrs(node)
        groups = int(at.get("group", 1))
        kh, kw = w[2], w[3]
        sh, sw = (list(at.get("strides", [1, 1])) + [1, 1])[:2]
        dh, dw = (list(at.get("dilations", [1, 1])) + [1, 1])[:2]
        n, c, m, oh, ow = x[0], x[1], w[0], y[2], y[3]
        if groups > 1 and groups == c == m:
            return depthwise_conv2d(N=n, C=c, R=kw, S=kh, P=ow, Q=oh, stride=(sw, sh), dilation=(dw, dh)), "dwconv", 1, False
        return conv2d(N=n, C=c // groups, M=m // groups, R=kw, S=kh, P=ow, Q=oh, stride=(sw, sh), dilation=(dw, dh)), \
            "conv", groups, False
    a_init, b_init = node.input[0] in inits, node.input[1] in inits
    if a_init or b_init:
        x = shapes.of(node.input[1] if a_init else node.input[0], needed)
        w = shapes.of(node.input[0] if a_init else node.input[1], needed)
        at = _attrs(node) if node.op_type == "Gemm" else {}
        if b_init:
            k_dim, m_dim = (w[1], w[0]) if at.get("transB", 0) else (w[0], w[1])
            transposed = not at.get("transB", 0)
            rows = math.prod(x) // k_dim
        else:   # weight on the left: Y[M, N] = W[M, K] X[K, N]
            m_dim, k_dim = (w[1], w[0]) if at.get("transA", 0) else (w[0], w[1])
            transposed = bool(at.get("transA", 0))
            rows = math.prod(x) // k_dim
        return gemm(M=int(m_dim), N=int(rows), K=int(k_dim)), "linear", 1, transposed
    a, b = shapes.of(node.input[0], needed), shapes.of(node.input[1], needed)
    if len(a) < 2 or len(b) < 2:
        raise InputError(path, node.name, "a MatMul of two matrices (rank >= 2)")
    n, k, m = a[-2], a[-1], b[-1]
    batch = math.prod(max(x, y) for x, y in zip(([1] * (len(b) - len(a)) + a)[:-2], ([1] * (len(a) - len(b)) + b)[:-2]))
    return batched_matmul(B=int(batch), M=int(m), N=int(n), K=int(k)), "matmul", 1, False


class _Kinds:
    """What kind of activation a tensor is, found by walking back through data-moving nodes."""

    def __init__(self, producer: dict[str, Any], inits: dict):
        self.producer, self.inits = producer, inits
        self._memo: dict[str, frozenset[str]] = {}

    def source(self, tensor: str) -> tuple[str, Any]:
        """(kind, node) of the op that gives ``tensor`` its character."""
        seen = 0
        while seen < 64:
            seen += 1
            node = self.producer.get(tensor)
            if node is None:
                return ("input" if tensor not in self.inits else "constant"), None
            op = node.op_type
            if _is_layer(node, self.inits):
                return "layer", node
            if op in ("Relu", "Clip", "LeakyRelu"):
                return "relu", node
            if op == "Softmax":
                return "softmax", node
            if op in ("Gelu", "FastGelu"):
                return "gelu", node
            if op in ("LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization"):
                return "norm", node
            if op == "BatchNormalization":
                tensor = node.input[0]
                continue
            ancestors = self.ops_behind(node, 6)
            if op in ("Mul", "Div", "Add") and {"Erf", "Tanh"} & ancestors:
                return "gelu", node
            if op == "Mul" and "Sigmoid" in ancestors:
                return "silu", node
            if op in ("Add", "Mul", "Div") and "ReduceMean" in ancestors and ({"Sqrt", "Pow"} & ancestors):
                return "norm", node
            if op in _TRANSPARENT or op in ("Add", "Mul", "Div", "Sub"):
                data = [i for i in node.input if i and i not in self.inits and self.producer.get(i) is not None
                        and self.producer[i].op_type != "Constant"]
                if not data:
                    return ("input" if any(i and i not in self.inits and i not in self.producer for i in node.input)
                            else "constant"), None
                if op in ("Add", "Sub") and len(data) > 1:
                    return "residual", node
                tensor = data[0]
                continue
            return "other", node
        return "other", None

    def ops_behind(self, node: Any, depth: int) -> frozenset[str]:
        """Op types within ``depth`` hops upstream of ``node`` (stopping at layers)."""
        out: set[str] = set()
        frontier = [node]
        for _ in range(depth):
            nxt = []
            for n in frontier:
                for i in n.input:
                    p = self.producer.get(i)
                    if p is not None and not _is_layer(p, self.inits):
                        out.add(p.op_type)
                        nxt.append(p)
            frontier = nxt
        return frozenset(out)

    def layer_producers(self, tensor: str, names: dict[int, str]) -> set[str]:
        """Nearest layer nodes upstream of ``tensor`` (through non-layer nodes)."""
        out: set[str] = set()
        stack, seen = [tensor], set()
        while stack:
            t = stack.pop()
            if t in seen or t in self.inits:
                continue
            seen.add(t)
            node = self.producer.get(t)
            if node is None:
                continue
            if id(node) in names:
                out.add(names[id(node)])
                continue
            stack.extend(i for i in node.input if i)
        return out


def _feeds_activation_matmul(node: Any, consumers: dict, inits: dict, depth: int = 6) -> bool:
    frontier = [node]
    for _ in range(depth):
        nxt = []
        for n in frontier:
            for o in n.output:
                for c in consumers.get(o, []):
                    if c.op_type == "MatMul" and not any(i in inits for i in c.input[:2]):
                        return True
                    if not _is_layer(c, inits):
                        nxt.append(c)
        frontier = nxt
    return False


def _has_layer_consumer(node: Any, consumers: dict, inits: dict) -> bool:
    stack, seen = list(node.output), set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        for c in consumers.get(t, []):
            if _is_layer(c, inits):
                return True
            stack.extend(c.output)
    return False


def _role(node: Any, inits: dict, kinds: _Kinds, consumers: dict, has_attention: bool, shapes: _Shapes,
          needed: list[str]) -> str:
    """Role of a layer node (see ``sparsity_models.roles.ROLES``)."""
    if node.op_type == "MatMul" and not any(i in inits for i in node.input[:2]):
        return "attn_av" if kinds.source(node.input[0])[0] == "softmax" else "attn_qk"
    kind, src = kinds.source(node.input[0] if node.input[0] not in inits else node.input[1])
    if node.op_type == "Conv":
        w = list(inits[node.input[1]].dims)
        at = _attrs(node)
        groups = int(at.get("group", 1))
        if groups > 1 and groups == w[0]:
            return "dwconv"
        if kind == "input":
            strides = list(at.get("strides", [1, 1]))
            return "patch_embed" if w[2] > 1 and strides[0] == w[2] else "conv_first"
        if w[2] == 1 and w[3] == 1:
            if kind == "relu":
                behind, layer = kinds.source(src.input[0])
                if behind == "layer" and layer.op_type == "Conv" and int(_attrs(layer).get("group", 1)) > 1:
                    return "conv_project"
                return "conv_pw"
            return "conv_expand"
        return "conv"
    if not has_attention:
        return "classifier"
    if kind in ("gelu", "silu", "relu"):
        return "ffn_down"
    if kind == "layer" and src.op_type == "MatMul" and not any(i in inits for i in src.input[:2]):
        return "attn_out"
    if not _has_layer_consumer(node, consumers, inits):
        return "head"
    if kind == "norm":
        return "attn_qkv" if _feeds_activation_matmul(node, consumers, inits) else "ffn_up"
    return "other"
