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

from typing import Any

from sparsity_models.cache import StatsCache, default_cache_dir
from sparsity_models.families import FAMILIES, resolve, validate
from sparsity_models.formats import BitsFormat
from sparsity_models.layerstats import (
    LayerStats, compute_sections, layer_stats, map_to_graph, select_sensitive, synthetic_stats,
)
from sparsity_models.sections import SECTIONS
from sparsity_models.sources import (
    CheckpointSource, HFCheckpointSource, ModuleSource, SafetensorsSource, TensorSource, minilm_model_dir, minilm_source,
    open_source,
)
from sparsity_models.synthetic import PROFILES
from sparsity_models.workmodel import FixedWorkModel, MeasuredWorkModel


def build_work_model(family: str, params: dict[str, Any] | None = None, stats: LayerStats | None = None):
    """Work model of ``family`` with ``params`` for one layer.

    ``stats`` holds the layer's measured operands; without it, families that depend on
    tensor bits use the synthetic profile ``params['profile']`` and say so in ``describe()``.
    Unknown families or parameter names raise :class:`workloads.yamlio.InputError`.
    """
    fam = resolve(family, "<work_model>", "work_model.family")
    return fam.work(stats, validate(fam, params, "<work_model>", "work_model"))


def build_format_model(family: str, params: dict[str, Any] | None = None, stats: LayerStats | None = None) -> BitsFormat:
    """Format model (stored bits per element incl. metadata) of ``family`` for one layer."""
    fam = resolve(family, "<format_model>", "format_model.family")
    return fam.fmt(stats, validate(fam, params, "<format_model>", "format_model"))


def family_names() -> list[str]:
    """Canonical family names."""
    return sorted(FAMILIES)


__all__ = [
    "FAMILIES", "PROFILES", "SECTIONS", "BitsFormat", "CheckpointSource", "FixedWorkModel", "HFCheckpointSource", "LayerStats",
    "MeasuredWorkModel", "ModuleSource", "SafetensorsSource", "StatsCache", "TensorSource", "build_format_model",
    "build_work_model", "compute_sections", "default_cache_dir", "family_names", "layer_stats", "map_to_graph",
    "minilm_model_dir",
    "minilm_source", "open_source", "select_sensitive", "synthetic_stats",
]
