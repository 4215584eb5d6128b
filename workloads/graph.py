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

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import networkx as nx

from workloads.problem import WEIGHTS, Problem
from workloads.yamlio import InputError

if TYPE_CHECKING:
    import pandas

KINDS = ("linear", "conv", "dwconv", "matmul")
# Op-kind words a layer filter accepts (``LayerGraph.select``): the kinds and their common names.
KIND_WORDS = {**{k: k for k in KINDS}, "attention": "matmul", "depthwise": "dwconv"}
# A layer of a multi-pass graph (the ``generate`` phase) is named ``<layer>@<pass>``.
PASS_SEPARATOR = "@"

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


def pass_name(layer_name: str) -> str:
    """The layer's name within one pass: ``h.0.attn.c_attn@decode3`` -> ``h.0.attn.c_attn``."""
    return layer_name.split(PASS_SEPARATOR, 1)[0]


def parse_layer_filter(text: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """``"conv,linear,!classifier"`` -> (include terms, exclude terms); see :meth:`LayerGraph.select`."""
    terms = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) for t in str(t).split(",")]
    terms = [t for t in terms if t]
    if not terms:
        raise InputError("<layers>", "--layers", "expected op kinds or name patterns, e.g. 'linear' or 'conv,linear,!classifier'")
    include = [t for t in terms if not t.startswith("!")]
    exclude = [t[1:].strip() for t in terms if t.startswith("!")]
    if any(not t for t in exclude):
        raise InputError("<layers>", "--layers", "expected a kind or pattern after '!'")
    return include, exclude


def _matches(layer: "Layer", term: str) -> bool:
    """A term is an op kind (``KIND_WORDS``) or an ``fnmatch`` pattern on the full layer name."""
    kind = KIND_WORDS.get(term.lower())
    return layer.kind == kind if kind is not None else fnmatch.fnmatchcase(layer.name, term)


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

    def select(self, layers: str | Sequence[str]) -> "LayerGraph":
        """The sub-graph of the layers a filter selects (same order, edges among them kept).

        ``layers``: comma-separated terms; a term is an op kind (``linear``, ``conv``,
        ``dwconv``/``depthwise``, ``matmul``/``attention``) or a shell-style pattern on the
        full layer name (``*.mlp.*``, ``classifier``, ``*@decode*``); ``!term`` excludes. A
        layer is kept when it matches some included term (or there are none) and no excluded
        one. ``meta['layers']`` records the filter. InputError when nothing is selected.
        """
        include, exclude = parse_layer_filter(layers)
        keep = [l.name for l in self.layers()
                if (not include or any(_matches(l, t) for t in include)) and not any(_matches(l, t) for t in exclude)]
        if not keep:
            raise InputError(f"<graph {self.name}>", "--layers",
                             f"the filter {','.join(include + ['!' + t for t in exclude])!r} selects no layer "
                             f"(kinds: {', '.join(sorted(KIND_WORDS))}; or name patterns such as '*.mlp.*')")
        sub = LayerGraph(self.name, {**self.meta, "layers": ",".join(include + ["!" + t for t in exclude])})
        chosen = set(keep)
        sub.graph.add_nodes_from((n, self.graph.nodes[n]) for n in keep)    # execution order kept
        sub.graph.add_edges_from((u, v) for u, v in self.graph.edges if u in chosen and v in chosen)
        return sub

    def add_pass(self, other: "LayerGraph", suffix: str, after: Iterable[str] = ()) -> None:
        """Append every layer of ``other`` named ``<name>@<suffix>`` (its edges kept); its
        source layers read what the layers in ``after`` wrote."""
        rename = {n: f"{n}{PASS_SEPARATOR}{suffix}" for n in other.names()}
        after = list(after)
        for layer in other.layers():
            preds = [rename[p] for p in other.predecessors(layer.name)] or after
            self.add_layer(rename[layer.name], layer.problem, layer.kind, inputs=preds, weight_name=layer.weight_name,
                           count=layer.count, weight_transposed=layer.weight_transposed)

    def one_pass(self) -> "LayerGraph":
        """One layer per pass name (``pass_name``), named by it: the distinct layers of a
        multi-pass graph (for matching checkpoint tensors and calibration statistics)."""
        out = LayerGraph(self.name, self.meta)
        for layer in self.layers():
            base = pass_name(layer.name)
            if base not in out.graph:
                out.add_layer(base, layer.problem, layer.kind, weight_name=layer.weight_name, count=layer.count,
                              weight_transposed=layer.weight_transposed)
        return out

    def sinks(self) -> list[str]:
        """Layers no other layer reads from (the pass's outputs)."""
        return [n for n in self.graph.nodes if self.graph.out_degree(n) == 0]

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
