"""Measured tensor statistics for bit-level accelerators: sources, quantizers, statistics,
and the per-family work and format models the mapper evaluates (docs/architecture.md,
docs/statistics.md).

Main entry points::

    stats = layer_stats("minilm")                       # {layer name: LayerStats}
    work = build_work_model("bitvert", {"pruning": "moderate"}, stats["encoder.layer.0.attention.self.query"])
    work.cycles_per_step(np.array([16, 512]))           # expected cycles per compute step
    fmt = build_format_model("bitvert", {"pruning": "moderate"}, stats[...])
    fmt.bits_per_element("Weights")                     # stored bits incl. metadata
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public names -> defining module, imported on first use (PEP 562) so that a run on the bundled
# measured profiles never imports torch (issue 15: cold start).
_LAZY = {
    "StatsCache": "cache", "default_cache_dir": "cache",
    "FAMILIES": "families", "resolve": "families", "validate": "families",
    "BitsFormat": "formats",
    "LayerStats": "layerstats", "compute_sections": "layerstats", "layer_stats": "layerstats",
    "map_to_graph": "layerstats", "select_sensitive": "layerstats", "synthetic_stats": "layerstats",
    "SECTIONS": "sections",
    "CheckpointSource": "sources", "HFCheckpointSource": "sources", "ModuleSource": "sources",
    "SafetensorsSource": "sources", "TensorSource": "sources", "minilm_model_dir": "sources",
    "minilm_source": "sources", "open_source": "sources",
    "PROFILES": "synthetic",
    "FixedWorkModel": "workmodel", "MeasuredWorkModel": "workmodel",
}

if TYPE_CHECKING:
    from sparsity_models.formats import BitsFormat
    from sparsity_models.layerstats import LayerStats


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"sparsity_models.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sparsity_models' has no attribute {name!r}")


def build_work_model(family: str, params: dict[str, Any] | None = None, stats: LayerStats | None = None):
    """Work model of ``family`` with ``params`` for one layer.

    ``stats`` holds the layer's measured operands; without it, families that depend on
    tensor bits use the synthetic profile ``params['profile']`` and say so in ``describe()``.
    Unknown families or parameter names raise :class:`workloads.yamlio.InputError`.
    """
    from sparsity_models.families import resolve, validate

    fam = resolve(family, "<work_model>", "work_model.family")
    return fam.work(stats, validate(fam, params, "<work_model>", "work_model"))


def build_format_model(family: str, params: dict[str, Any] | None = None, stats: LayerStats | None = None) -> BitsFormat:
    """Format model (stored bits per element incl. metadata) of ``family`` for one layer."""
    from sparsity_models.families import resolve, validate

    fam = resolve(family, "<format_model>", "format_model.family")
    return fam.fmt(stats, validate(fam, params, "<format_model>", "format_model"))


def family_names() -> list[str]:
    """Canonical family names."""
    from sparsity_models.families import FAMILIES

    return sorted(FAMILIES)


__all__ = [
    "FAMILIES", "PROFILES", "SECTIONS", "BitsFormat", "CheckpointSource", "FixedWorkModel", "HFCheckpointSource", "LayerStats",
    "MeasuredWorkModel", "ModuleSource", "SafetensorsSource", "StatsCache", "TensorSource", "build_format_model",
    "build_work_model", "compute_sections", "default_cache_dir", "family_names", "layer_stats", "map_to_graph",
    "minilm_model_dir",
    "minilm_source", "open_source", "select_sensitive", "synthetic_stats",
]
