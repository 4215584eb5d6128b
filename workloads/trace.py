"""Layer graphs of arbitrary torch modules, traced with forward hooks on one example forward pass.

Hooked layers: ``nn.Linear``, ``nn.Conv2d`` (``groups == in == out`` becomes a depthwise
conv; other grouped convs become ``count = groups`` convs of ``C/groups -> M/groups``)
and Hugging Face's GPT-2 ``Conv1D`` (a linear layer storing weights as [in, out]).
Shapes are the ones actually seen. Edges come from the autograd graph: ``u -> v`` when
``v``'s input depends on ``u``'s output through unhooked operations only, transitively
reduced so that a residual stream links each layer to its latest producers (the same
convention as the built-in graphs). A module called several times yields one node per
call: ``name``, ``name:1``, ``name:2``, ...
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import torch
from torch import nn

from workloads.graph import LayerGraph
from workloads.problem import Problem, conv2d, depthwise_conv2d, gemm


def _is_hf_conv1d(module: nn.Module) -> bool:
    """Hugging Face ``Conv1D`` (GPT-2): ``y = x @ W + b`` with ``W`` of shape [in, out]."""
    w = getattr(module, "weight", None)
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and isinstance(w, torch.Tensor) and w.dim() == 2


def _layer(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[Problem, str, int, bool]:
    """(problem, kind, count, weight_transposed) of one hooked call."""
    if isinstance(module, nn.Linear) or _is_hf_conv1d(module):
        transposed = not isinstance(module, nn.Linear)
        k_dim, m_dim = (module.weight.shape if transposed else module.weight.shape[::-1])
        tokens = x.numel() // int(k_dim)
        return gemm(M=int(m_dim), N=tokens, K=int(k_dim)), "linear", 1, transposed
    assert isinstance(module, nn.Conv2d)
    batch = int(x.shape[0]) if x.dim() == 4 else 1
    kh, kw = module.kernel_size
    sh, sw = module.stride
    dh, dw = module.dilation
    oh, ow = int(y.shape[-2]), int(y.shape[-1])
    c_in, c_out, groups = module.in_channels, module.out_channels, module.groups
    # Timeloop's CNN-Layer: R/P along the width (W) axis, S/Q along the height (H) axis.
    if groups > 1 and groups == c_in == c_out:
        return depthwise_conv2d(N=batch, C=c_in, R=kw, S=kh, P=ow, Q=oh, stride=(sw, sh), dilation=(dw, dh)), "dwconv", 1, False
    problem = conv2d(N=batch, C=c_in // groups, M=c_out // groups, R=kw, S=kh, P=ow, Q=oh, stride=(sw, sh), dilation=(dw, dh))
    return problem, "conv", groups, False


class _Producers:
    """Maps autograd nodes to the hooked layers whose outputs they depend on (memoized)."""

    def __init__(self) -> None:
        self.owner: dict[Any, str] = {}          # autograd node of a layer output -> layer name
        self.memo: dict[Any, frozenset[str]] = {}

    def of(self, tensor: torch.Tensor) -> frozenset[str]:
        root = tensor.grad_fn
        if root is None:
            return frozenset()
        stack = [root]
        while stack:  # iterative post-order DFS (graphs of deep models overflow recursion)
            node = stack[-1]
            if node in self.memo:
                stack.pop()
                continue
            if node in self.owner:
                self.memo[node] = frozenset([self.owner[node]])
                stack.pop()
                continue
            children = [c for c, _ in node.next_functions if c is not None]
            pending = [c for c in children if c not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            self.memo[node] = frozenset().union(*(self.memo[c] for c in children))
            stack.pop()
        return self.memo[root]


def _as_call(example_inputs: Any) -> tuple[tuple, dict]:
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def _track(value: Any) -> Any:
    """Float tensors get ``requires_grad`` so the autograd graph records every dependency."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().requires_grad_(True)
    if isinstance(value, (tuple, list)):
        return type(value)(_track(v) for v in value)
    if isinstance(value, dict):
        return {k: _track(v) for k, v in value.items()}
    return value


def graph_from_module(module: nn.Module, example_inputs: Any, name: str | None = None) -> LayerGraph:
    """Trace ``module`` on ``example_inputs`` (a tensor, a tuple of positional args or a dict of kwargs).

    The module runs once in eval mode (its mode is restored) with autograd enabled;
    parameters are not changed. Layer names are ``module.named_modules()`` names.
    """
    args, kwargs = _as_call(_track(example_inputs))
    graph = LayerGraph(name or type(module).__name__, {"phase": "traced"})
    producers = _Producers()
    calls: dict[str, int] = {}
    deps: dict[str, frozenset[str]] = {}

    def hook(mod_name: str, state_prefix: str):
        def record(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            x = args[0] if args else next(v for v in kwargs.values() if isinstance(v, torch.Tensor))
            y = output if isinstance(output, torch.Tensor) else output[0]
            n = calls.get(mod_name, 0)
            calls[mod_name] = n + 1
            layer = mod_name if n == 0 else f"{mod_name}:{n}"
            problem, kind, count, transposed = _layer(mod, x, y)
            graph.add_layer(layer, problem, kind, weight_name=f"{state_prefix}weight",
                            count=count, weight_transposed=transposed)
            deps[layer] = producers.of(x)
            if y.grad_fn is not None:
                producers.owner[y.grad_fn] = layer
        return record

    handles = [
        m.register_forward_hook(hook(n or type(module).__name__.lower(), f"{n}." if n else ""), with_kwargs=True)
        for n, m in module.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d)) or _is_hf_conv1d(m)
    ]
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.enable_grad():
            module(*args, **kwargs)
    finally:
        for m, training in modes.items():
            m.training = training
        for h in handles:
            h.remove()

    full = nx.DiGraph()
    full.add_nodes_from(graph.names())
    full.add_edges_from((src, dst) for dst, srcs in deps.items() for src in srcs)
    for src, dst in nx.transitive_reduction(full).edges:
        graph.add_edge(src, dst)
    return graph
