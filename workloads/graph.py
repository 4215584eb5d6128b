"""Model layer graphs: one node per layer instance, edges along the dataflow.

A :class:`LayerGraph` wraps a :class:`networkx.DiGraph`. Each node is a layer instance
named like the torch module that computes it (``h.0.attn.c_attn``); attention matmuls
are named after their attention module (``h.0.attn.qk``, ``h.0.attn.av``). Node
attributes:

* ``problem``: the layer's :class:`~workloads.problem.Problem` (one instance).
* ``kind``: ``linear`` | ``conv`` | ``dwconv`` | ``matmul``.
* ``weight_name``: checkpoint tensor holding the Weights operand, or None for an
  activation x activation matmul.
* ``weight_transposed``: True when that tensor is stored as [K, M] (GPT-2's Conv1D)
  instead of [M, K] (nn.Linear).
* ``count``: how many times the problem repeats (e.g. conv groups); MACs = count * problem.macs.

An edge ``u -> v`` means ``v`` reads a tensor that ``u`` wrote, possibly through
operations that are not layers (norms, activations, softmax, pooling, residual adds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import networkx as nx

from workloads.problem import WEIGHTS, Problem
from workloads.yamlio import InputError

if TYPE_CHECKING:
    import pandas

KINDS = ("linear", "conv", "dwconv", "matmul")

# Prefixes that task heads put in front of base-model tensor names in checkpoints.
_CHECKPOINT_PREFIXES = ("model.", "transformer.", "bert.", "vit.", "deit.", "module.")


@dataclass(frozen=True)
class Layer:
    """One layer instance of a :class:`LayerGraph` (a read-only view of its node)."""

    name: str
    problem: Problem
    kind: str
    weight_name: str | None = None
    count: int = 1
    weight_transposed: bool = False

    @property
    def macs(self) -> int:
        """Multiply-accumulates of all ``count`` repeats."""
        return self.count * self.problem.macs

    @property
    def weight_elements(self) -> int:
        """Elements of the Weights operand over all repeats (0 for activation x activation matmuls)."""
        if self.weight_name is None:
            return 0
        return self.count * self.problem.tile_size(WEIGHTS)


def _strip_prefix(tensor_name: str) -> str:
    for prefix in _CHECKPOINT_PREFIXES:
        if tensor_name.startswith(prefix):
            return tensor_name[len(prefix):]
    return tensor_name


def problem_label(problem: Problem) -> str:
    """Short readable identity of a problem, e.g. ``GEMM(M=2304,N=256,K=768)``."""
    bounds = ",".join(f"{d}={int(problem.bounds[d])}" for d in problem.dims)
    extras = ",".join(f"{k}={int(v)}" for k, v in problem.coefficients.items() if int(v) != 1)
    return f"{problem.name}({bounds}{',' + extras if extras else ''})"


class LayerGraph:
    """A model as a DAG of layer instances, in execution order.

    Attributes:
        name: model name (built-in name, config path or module class).
        meta: build parameters (phase, batch, seq_len, ...), plain data.
        graph: the underlying :class:`networkx.DiGraph`.
    """

    def __init__(self, name: str = "model", meta: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})
        self.graph = nx.DiGraph(name=name)

    # ---- building ---------------------------------------------------------------------
    def add_layer(
        self,
        name: str,
        problem: Problem,
        kind: str,
        *,
        inputs: Iterable[str] = (),
        weight_name: str | None = None,
        count: int = 1,
        weight_transposed: bool = False,
    ) -> str:
        """Append a layer (after all existing ones) fed by the layers in ``inputs``; returns ``name``."""
        if name in self.graph:
            raise ValueError(f"duplicate layer name {name!r}")
        if kind not in KINDS:
            raise ValueError(f"layer kind must be one of {KINDS}, got {kind!r}")
        if int(count) < 1:
            raise ValueError(f"layer count must be >= 1, got {count}")
        if kind == "matmul" and weight_name is not None:
            raise ValueError("an activation x activation matmul has no weight tensor")
        inputs = list(inputs)
        for src in inputs:
            if src not in self.graph:
                raise ValueError(f"unknown layer {src!r}")
        self.graph.add_node(
            name, problem=problem, kind=kind, weight_name=weight_name,
            count=int(count), weight_transposed=bool(weight_transposed),
        )
        for src in inputs:
            self.add_edge(src, name)
        return name

    def add_edge(self, src: str, dst: str) -> None:
        """Record that ``dst`` reads what ``src`` wrote (both must exist)."""
        for n in (src, dst):
            if n not in self.graph:
                raise ValueError(f"unknown layer {n!r}")
        self.graph.add_edge(src, dst)

    # ---- queries ----------------------------------------------------------------------
    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __contains__(self, name: object) -> bool:
        return name in self.graph

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers())

    def __repr__(self) -> str:
        return f"LayerGraph({self.name!r}, layers={len(self)}, macs={self.total_macs():,})"

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (InputError if there is none)."""
        if name not in self.graph:
            raise InputError(f"<graph {self.name}>", "layers", f"no layer named {name!r}")
        return Layer(name=name, **self.graph.nodes[name])

    def names(self) -> list[str]:
        """Layer names in execution order."""
        return list(self.graph.nodes)

    def layers(self) -> list[Layer]:
        """All layers in execution order (a topological order of the graph)."""
        return [Layer(name=n, **attrs) for n, attrs in self.graph.nodes(data=True)]

    def predecessors(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def successors(self, name: str) -> list[str]:
        return list(self.graph.successors(name))

    def unique_problems(self) -> list[tuple[Problem, list[str]]]:
        """Distinct problems (by :meth:`Problem.key`) with the layers that share each, in first-use order."""
        groups: dict[tuple, tuple[Problem, list[str]]] = {}
        for n, attrs in self.graph.nodes(data=True):
            problem: Problem = attrs["problem"]
            groups.setdefault(problem.key(), (problem, []))[1].append(n)
        return list(groups.values())

    def total_macs(self) -> int:
        """Multiply-accumulates of the whole graph (counts included)."""
        return sum(layer.macs for layer in self.layers())

    def weight_elements(self) -> int:
        """Weight elements (parameters of linear/conv layers, biases excluded); shared tensors counted once."""
        seen: dict[str, int] = {}
        for layer in self.layers():
            if layer.weight_name is not None:
                seen.setdefault(layer.weight_name, layer.weight_elements)
        return sum(seen.values())

    def layer_for_tensor(self, tensor_name: str) -> str | None:
        """The layer whose weight is checkpoint tensor ``tensor_name``, tolerating a task-head prefix.

        ``bert.encoder.layer.0.attention.self.query.weight`` and
        ``encoder.layer.0.attention.self.query.weight`` both find
        ``encoder.layer.0.attention.self.query``; a module name without ``.weight`` works too.
        A tied tensor returns its first user; no match returns None.
        """
        wanted = {_strip_prefix(tensor_name), _strip_prefix(tensor_name + ".weight")}
        for n, attrs in self.graph.nodes(data=True):
            w = attrs["weight_name"]
            if w is not None and _strip_prefix(w) in wanted:
                return n
        return None

    # ---- tables -----------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per layer (``pandas.DataFrame(graph.rows())`` works); bounds as columns."""
        out = []
        for i, layer in enumerate(self.layers()):
            p = layer.problem
            row: dict[str, Any] = {
                "index": i,
                "layer": layer.name,
                "kind": layer.kind,
                "problem": problem_label(p),
                "count": layer.count,
                "macs": layer.macs,
                "weight_name": layer.weight_name,
                "weight_elements": layer.weight_elements,
                "inputs": ";".join(self.graph.predecessors(layer.name)),
            }
            row.update({d: int(p.bounds[d]) for d in p.dims})
            row.update({k: int(v) for k, v in p.coefficients.items()})
            out.append(row)
        return out

    def to_dataframe(self) -> "pandas.DataFrame":
        """The :meth:`rows` as a pandas DataFrame (pandas is imported on first use)."""
        import pandas as pd

        return pd.DataFrame(self.rows())
