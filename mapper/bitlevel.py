"""From a spec's work/format-model settings and a layer's statistics to :class:`BitLevelModels`."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from mapper.model import BitLevelModels, DenseMAC
from mapper.spec import Spec
from workloads.yamlio import InputError, as_list


def layer_models(spec: Spec, stats: Any | None) -> BitLevelModels:
    """Work and format models of ``spec`` for one layer (``stats``: a LayerStats or a measured
    profile's ProfileStats, or None for the family's stated synthetic profile). A setting the
    measured profile does not hold falls back to the synthetic profile and is recorded in
    ``stats.fallbacks``. Parameter errors name the spec file and key."""
    if stats is not None and hasattr(stats, "fallbacks"):
        from sparsity_models.profiles import ProfileMissing

        try:
            return _layer_models(spec, stats)
        except ProfileMissing as exc:
            stats.fallbacks.add(str(exc))
            return _layer_models(spec, None)
    return _layer_models(spec, stats)


# Work and format models built from statistics, by (work model, format model, statistics
# identity): every shape of a model with the same statistics shares them (bounded, oldest out).
_BUILT: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_BUILT_MAX = 1024


def _built_models(spec: Spec, family: str, params: dict[str, Any], stats: Any | None) -> tuple[Any, Any]:
    """(work model, format model or None) of ``spec`` (work model ``family`` with ``params``)
    for ``stats``, memoized."""
    key = json.dumps([spec.work_model, spec.format_model, stats_identity(stats)], sort_keys=True, default=repr)
    if key in _BUILT:
        _BUILT.move_to_end(key)
        return _BUILT[key]
    from sparsity_models import build_format_model, build_work_model

    work = build_work_model(family, params, stats)
    fmt = None
    if spec.format_model is not None:
        fparams = {k: v for k, v in spec.format_model.items() if k not in ("family", "levels")}
        fmt = build_format_model(spec.format_model["family"], fparams, stats)
    _BUILT[key] = (work, fmt)
    if len(_BUILT) > _BUILT_MAX:
        _BUILT.popitem(last=False)
    return work, fmt


def _layer_models(spec: Spec, stats: Any | None) -> BitLevelModels:
    family = spec.work_model["family"]
    params = {k: v for k, v in spec.work_model.items() if k != "family"}
    try:
        if family == "dense" and not params and spec.format_model is None:
            return BitLevelModels(DenseMAC(), None, None, spec.lockstep_level)
        work, fmt = _built_models(spec, family, params, stats)
        levels = None
        if spec.format_model is not None:
            levels = as_list(spec.format_model.get("levels"), spec.source, "spec.format_model.levels") \
                if "levels" in spec.format_model else None
    except InputError as exc:
        key = exc.key.replace("work_model", "spec.work_model", 1).replace("format_model", "spec.format_model", 1)
        raise InputError(spec.source, key, exc.expected) from None
    if levels is not None:
        for name in levels:
            spec.arch.level_index(str(name), str(spec.source), "spec.format_model.levels")
    return BitLevelModels(work, fmt, frozenset(levels) if levels is not None else None, spec.lockstep_level)


def stats_identity(stats: Any | None) -> str:
    """A short identity of a layer's statistics for cache keys ('synthetic' when None)."""
    if stats is None:
        return "synthetic"
    if hasattr(stats, "identity"):
        return str(stats.identity())
    digest = getattr(stats, "_digest", None)
    if callable(digest):
        return str(digest(("weight", "inputs")))
    return repr(stats)
