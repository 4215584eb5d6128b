"""Where a whole-model run's tensor statistics come from, per layer and per operand.

:func:`layer_statistics` picks each layer's statistics: the checkpoint given with
``--weights`` where it holds the layer's tensor, an ONNX workload's own initializers, and
otherwise the bundled measured profiles matched by layer role (``sparsity_models.profiles``);
``--weights synthetic[:PROFILE]`` asks for the stated synthetic profile everywhere.
:func:`statistics_provenance` then names, for every layer and operand (weights, inputs),
the source actually used (after any fallback to the synthetic profile) and counts them.
"""

from __future__ import annotations

from typing import Any

from mapper.bitlevel import stats_identity
from mapper.spec import Spec
from workloads.graph import LayerGraph
from workloads.yamlio import InputError

LABELS = {"measured": "checkpoint", "profile": "measured-profile", "synthetic": "synthetic"}


SYNTHETIC = "synthetic"   # --weights synthetic[:PROFILE]: the stated synthetic profile for every layer


def layer_statistics(spec: Spec, graph: LayerGraph, weights: str | None) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Per-layer statistics, every layer's role, and the run-level provenance settings.

    Statistics come from ``weights`` (a checkpoint file or folder, or 'minilm') where it has
    the layer's tensor, from the ONNX model's own initializers for an ONNX workload, and
    otherwise from the bundled measured profiles matched by role; ``weights='synthetic'``
    (or ``'synthetic:<profile>'``) uses the stated synthetic profile everywhere.
    """
    if spec.work_model["family"] == "dense":  # a dense MAC needs no statistics: sparsity_models (torch) stays unloaded
        return {}, {}, {"weights": weights, "synthetic_profile": None, "used": False}
    from sparsity_models.families import resolve
    from sparsity_models.synthetic import DEFAULT_PROFILE

    profile = spec.work_model.get("profile", DEFAULT_PROFILE)
    settings: dict[str, Any] = {"weights": weights, "synthetic_profile": profile}
    if not resolve(spec.work_model["family"], str(spec.source), "spec.work_model.family").uses_stats:
        return {}, {}, {**settings, "used": False}
    if weights is not None and str(weights).split(":")[0] == SYNTHETIC:
        name = str(weights).partition(":")[2] or profile
        from sparsity_models.synthetic import check_profile

        check_profile(name)
        return {}, {}, {**settings, "used": True, "synthetic_profile": name, "forced_synthetic": True}
    from sparsity_models.profiles import graph_stats

    stats: dict[str, Any] = {}
    if weights is not None or graph.meta.get("format") == "onnx":
        from sparsity_models.layerstats import layer_stats, map_to_graph  # torch: only for real tensors

        if weights is not None:
            stats = map_to_graph(layer_stats(weights), graph)
        else:
            stats = map_to_graph(layer_stats(graph.meta["source"], activations=False), graph)
            settings["weights"] = f"{graph.meta['source']} (ONNX initializers)"
    for name, ls in stats.items():
        _check_weight(ls, graph.layer(name), str(settings["weights"]))
    profiled, roles = graph_stats(graph, skip=stats)
    stats.update(profiled)
    return stats, roles, {**settings, "used": True}


def _check_weight(ls: Any, layer: Any, source: str) -> None:
    """A layer's weight tensor must have the layer's weight size and hold only finite numbers."""
    import torch

    expected = layer.problem.tile_size("Weights")
    if ls.weight.numel() != expected:
        raise InputError(source, ls.weight_name, f"tensor of shape {list(ls.weight.shape)} does not fit layer {layer.name} "
                         f"({expected} weight elements expected), matched by name only")
    if not bool(torch.isfinite(ls.weight).all()):
        raise InputError(source, ls.weight_name, "tensor holds NaN or infinite values")


def _operand_sources(stats: Any | None, settings: dict[str, Any], fell_back: bool) -> tuple[str, str]:
    """(weights, inputs) statistics source labels of one layer, after any fallback."""
    profile = f"synthetic:{settings['synthetic_profile']}"
    if not settings["used"]:
        return "not used", "not used"
    if stats is None or fell_back:
        return profile, profile
    if hasattr(stats, "fallbacks"):   # a measured profile
        w = f"profile:{stats.label}"
        return w, w if stats.inputs_measured else profile
    w = f"checkpoint:{stats.source}#{stats.weight_name}"
    return w, (f"checkpoint:{stats.source}" if stats.inputs_measured else profile)


def statistics_provenance(graph: LayerGraph, stats: dict[str, Any], roles: dict[str, str],
                          settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Run-level provenance (summary.json) and per-layer columns (role, weights_stats, inputs_stats)."""
    per_layer: dict[str, dict[str, str]] = {}
    counts = {op: {"measured": 0, "profile": 0, "synthetic": 0} for op in ("weights", "inputs")}
    synthetic: dict[str, list[str]] = {"weights": [], "inputs": []}
    sources: dict[str, int] = {}
    unmatched, fallbacks = [], {}
    fell: dict[str, set[str]] = {}   # layers sharing a statistics identity share one evaluation
    for st in stats.values():
        if getattr(st, "fallbacks", None):
            fell.setdefault(stats_identity(st), set()).update(st.fallbacks)
    for layer in graph.layers():
        st = stats.get(layer.name)
        why = fell.get(stats_identity(st), set()) if st is not None else set()
        w, x = _operand_sources(st, settings, bool(why))
        per_layer[layer.name] = {"role": roles.get(layer.name, ""), "weights_stats": w, "inputs_stats": x}
        if not settings["used"]:
            continue
        for op, label in (("weights", w), ("inputs", x)):
            kind = "measured" if label.startswith("checkpoint:") else "profile" if label.startswith("profile:") else "synthetic"
            counts[op][kind] += 1
            if kind == "synthetic":
                synthetic[op].append(layer.name)
        if w.startswith("profile:"):
            sources[w[len("profile:"):]] = sources.get(w[len("profile:"):], 0) + 1
        if st is None and not settings.get("forced_synthetic") and layer.name in roles:
            unmatched.append({"layer": layer.name, "role": roles[layer.name]})
        if why:
            fallbacks[layer.name] = sorted(why)
    if not settings["used"]:
        return {"statistics": "not used", "weights": None,
                "note": "work model does not depend on tensor statistics"}, per_layer
    from sparsity_models.profiles import PROFILE_VERSION

    n = len(per_layer)
    kinds = [k for k in ("measured", "profile", "synthetic") if counts["weights"][k] or counts["inputs"][k]]
    what = {"measured": "checkpoint tensors", "profile": f"measured profiles v{PROFILE_VERSION}",
            "synthetic": f"synthetic profile '{settings['synthetic_profile']}'"}
    note = (f"statistics from {' + '.join(what[k] for k in kinds)}; synthetic operands: "
            f"weights {counts['weights']['synthetic']}/{n} layers, inputs {counts['inputs']['synthetic']}/{n}")
    if unmatched:
        note += f"; {len(unmatched)} layers have no matching measured role"
    if fallbacks:
        note += f"; {len(fallbacks)} layers need settings the profile lacks (synthetic)"
    prov = {
        "statistics": "+".join(LABELS[k] for k in kinds), "weights": settings["weights"], "note": note,
        "profile_version": PROFILE_VERSION, "synthetic_profile": settings["synthetic_profile"],
        "counts": counts, "synthetic_layers": synthetic, "profile_sources": dict(sorted(sources.items())),
        "no_matching_role": unmatched, "profile_fallbacks": fallbacks,
        "measured_layers": sum(1 for v in per_layer.values() if "synthetic" not in v["weights_stats"] + v["inputs_stats"]),
    }
    return prov, per_layer
