"""Whole-model runs: map every unique layer shape of a model's graph, evaluate every layer, and
aggregate energy, cycles and area.

A mapping is searched once per unique problem shape (with the statistics of the first
layer of that shape); every layer is then evaluated on its shape's mapping with its own
statistics. Searches run in worker processes and each finished one is committed to the
result cache at once, so an interrupted run resumes without redoing finished layers.
"""

from __future__ import annotations

from concurrent.futures import as_completed
from dataclasses import dataclass, field
from typing import Any

from mapper.bitlevel import layer_models, stats_identity
from mapper.bounds import LowerBound, lower_bound, objective_of
from mapper.cache import ResultCache, cache_key
from mapper.mapping import mapping_from_dict
from mapper.mapspace import Mapspace
from mapper.model import Evaluation, evaluate
from mapper.progress import progress_bar
from mapper.search import search
from mapper.spec import Spec
from mapper.workers import shared_pool
from workloads.graph import LayerGraph, problem_label
from workloads.problem import Problem, problem_from_dict
from workloads.yamlio import parse_yaml_text
from workloads.zoo import build_graph

DEFAULT_SEARCH = {"mode": "auto", "max_evaluations": 8_000, "patience": 8, "seed": 0, "exhaustive_limit": 8_000}


@dataclass
class ModelReport:
    """Per-layer rows and totals of one (spec, model, phase) run; plain data throughout."""

    spec: str
    model: str
    phase: str
    clock_MHz: float
    area_um2: float
    rows: list[dict[str, Any]]
    parts: list[str]
    mappings: dict[str, str]                 # problem label -> Timeloop mapping YAML
    problems: dict[str, str]                 # problem label -> Timeloop problem YAML
    stats_text: dict[str, str]               # layer -> Timeloop-style stats summary
    search_info: dict[str, dict[str, Any]]   # problem label -> evaluated, seconds, exhaustive, cached
    provenance: dict[str, Any] = field(default_factory=dict)
    objective: Any = "edp"                   # the search objective (mapper.bounds.objective_of)

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` contract."""
        macs = sum(r["macs"] * r["count"] for r in self.rows)
        cycles = sum(r["cycles"] * r["count"] for r in self.rows)
        energy = sum(r["energy_pJ"] * r["count"] for r in self.rows)
        seconds = cycles / (self.clock_MHz * 1e6)
        breakdown = {p: sum(r[f"energy_{p}_pJ"] * r["count"] for r in self.rows) for p in self.parts}
        return {
            "spec": self.spec, "model": self.model, "phase": self.phase,
            "macs": int(macs), "cycles": int(cycles), "seconds": seconds, "energy_pJ": energy,
            "edp_J_s": energy * 1e-12 * seconds, "energy_per_mac_pJ": energy / max(macs, 1),
            "utilization": sum(r["utilization"] * r["cycles"] * r["count"] for r in self.rows) / max(cycles, 1),
            "energy_breakdown_pJ": breakdown, "area_um2": self.area_um2, "clock_MHz": self.clock_MHz,
            "layers": len(self.rows), "unique_layers": len(self.mappings), "provenance": self.provenance,
            "lower_bound": self._bound_summary(energy, cycles),
        }

    def _bound_summary(self, energy: float, cycles: int) -> dict[str, Any]:
        """Totals of the per-layer lower bounds (mapper.bounds) and the gaps to them."""
        e_lb = sum(r["energy_lower_bound_pJ"] * r["count"] for r in self.rows)
        c_lb = sum(r["cycles_lower_bound"] * r["count"] for r in self.rows)
        return {
            "objective": self.objective, "energy_pJ": e_lb, "cycles": c_lb,
            "energy_gap": energy / e_lb - 1 if e_lb > 0 else None, "cycles_gap": cycles / c_lb - 1 if c_lb > 0 else None,
            "max_layer_objective_gap": max((r["objective_gap"] for r in self.rows), default=0.0),
        }

    def to_dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)


def _search_task(spec: Spec, problem: Problem, stats: Any | None, objective: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Search one unique problem (runs in a worker process)."""
    models = layer_models(spec, stats)
    result = search(problem, spec.arch, spec.constraints_for(problem), ert=spec.ert, models=models,
                    objective=objective, clock_MHz=spec.clock_MHz, **options)
    return {
        "mapping_yaml": result.mapping.to_yaml(spec.arch, result.problem), "problem_yaml": result.problem.to_yaml(),
        "objective": result.objective,
        "evaluated": result.evaluated, "valid": result.valid, "exhaustive": result.exhaustive, "seconds": result.seconds,
    }


def _layer_stats(spec: Spec, graph: LayerGraph, weights: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-layer statistics from ``weights`` (a checkpoint, 'minilm', ...), or none (synthetic profile)."""
    family = spec.work_model["family"]
    independent = {"weights": None, "note": f"work model '{family}' does not depend on tensor statistics"}
    if family == "dense":  # a dense MAC needs no statistics: sparsity_models (and torch) stay unloaded
        return {}, independent
    from sparsity_models.families import resolve
    from sparsity_models.synthetic import DEFAULT_PROFILE

    if not resolve(family, str(spec.source), "spec.work_model.family").uses_stats:
        return {}, independent
    if weights is None:
        profile = spec.work_model.get("profile", DEFAULT_PROFILE)
        return {}, {"weights": None, "note": f"no weights given: statistics come from the synthetic profile '{profile}'"}
    from sparsity_models import layer_stats, map_to_graph

    stats = map_to_graph(layer_stats(weights), graph)
    missing = [l.name for l in graph.layers() if l.weight_name is not None and l.name not in stats]
    note = f"measured on {weights} for {len(stats)} layers"
    if missing:
        note += f"; {len(missing)} layers without matching tensors use the synthetic profile"
    return stats, {"weights": str(weights), "note": note, "measured_layers": len(stats), "synthetic_layers": len(missing)}


def run_model(
    spec: Spec, model: str, phase: str = "prefill", seq_len: int = 256, batch: int = 1, kv_len: int | None = None,
    weights: str | None = None, objective: Any = "edp", jobs: int = 1, cache: ResultCache | None = None,
    search_options: dict[str, Any] | None = None, progress: bool = False, graph: LayerGraph | None = None,
) -> ModelReport:
    """Map and evaluate every layer of ``model`` on ``spec`` (see module doc)."""
    graph = graph or build_graph(model, phase=phase, seq_len=seq_len, batch=batch, kv_len=kv_len)
    options = {**DEFAULT_SEARCH, **(search_options or {})}
    stats, provenance = _layer_stats(spec, graph, weights)
    cache = cache if cache is not None else ResultCache()
    groups = graph.unique_problems()
    spec_key = spec.key()

    # 1. One search per unique shape (cached).
    found: dict[str, dict[str, Any]] = {}
    pending = []
    for problem, names in groups:
        rep_stats = stats.get(names[0])
        key = cache_key("search", spec_key, problem.key(), stats_identity(rep_stats), objective, options)
        hit = cache.get(key)
        label = problem_label(problem)
        if hit is not None:
            found[label] = {**hit, "cached": True}
        else:
            pending.append((label, key, problem, rep_stats))
    bar = progress_bar(len(pending), progress, "searching layers", "layer")
    if jobs > 1 and len(pending) > 1:
        pool = shared_pool(jobs)
        futures = {pool.submit(_search_task, spec, p, s, objective, options): (label, key) for label, key, p, s in pending}
        try:
            for fut in as_completed(futures):
                label, key = futures[fut]
                result = fut.result()
                cache.put(key, result)
                found[label] = {**result, "cached": False}
                bar.update(1)
        finally:
            for fut in futures:
                fut.cancel()
    else:
        for label, key, p, s in pending:
            result = _search_task(spec, p, s, objective, options)
            cache.put(key, result)
            found[label] = {**result, "cached": False}
            bar.update(1)
    bar.close()

    # 2. Evaluate every layer on its shape's mapping with its own statistics.
    parts = [l.name for l in spec.arch.levels] + [spec.arch.compute.name]
    rows, stats_text, mappings, problems = [], {}, {}, {}
    search_bounds: dict[str, LowerBound] = {}
    from mapper.summary import format_summary

    for problem, names in groups:
        label = problem_label(problem)
        # The mapped problem: the layer's own, or padded up to imperfect factors.
        mapped = problem_from_dict(parse_yaml_text(found[label]["problem_yaml"]), f"<problem {label}>")
        mapping = mapping_from_dict(parse_yaml_text(found[label]["mapping_yaml"]), spec.arch, mapped, f"<mapping {label}>")
        mappings[label] = found[label]["mapping_yaml"]
        problems[label] = found[label]["problem_yaml"]
        shared: tuple[Evaluation, LowerBound] | None = None
        space = Mapspace(problem, spec.arch, spec.constraints_for(problem), imperfect=bool(options.get("imperfect")))
        for name in names:
            layer = graph.layer(name)
            if name in stats or shared is None:
                models = layer_models(spec, stats.get(name))
                ev = evaluate(mapped, spec.arch, mapping, spec.ert, models, clock_MHz=spec.clock_MHz)
                bound = lower_bound(problem, spec.arch, ert=spec.ert, models=models, objective=objective, space=space)
                if name not in stats:
                    shared = (ev, bound)
            else:
                ev, bound = shared
            if name == names[0]:
                search_bounds[label] = bound
            result = ev.to_dict()
            rows.append(_row(name, label, layer.count, problem.macs, result, parts, bound, objective))
            stats_text[name] = format_summary(result, f"{name}: {label} on {spec.name}")
    order = {l.name: i for i, l in enumerate(graph.layers())}
    rows.sort(key=lambda r: order[r["layer"]])
    search_info = {k: {x: v[x] for x in ("evaluated", "valid", "exhaustive", "seconds", "cached", "objective")} for k, v in found.items()}
    for label, bound in search_bounds.items():  # the bound of the layer whose statistics the search used
        search_info[label]["objective_lower_bound"] = bound.objective
        search_info[label]["objective_gap"] = bound.gap(search_info[label]["objective"])
    return ModelReport(spec.name, model, phase, spec.clock_MHz, spec.area_um2, rows, parts, mappings, problems, stats_text,
                       search_info, provenance, objective)


def _row(name: str, label: str, count: int, macs: int, result: dict[str, Any], parts: list[str], bound: LowerBound,
         objective: Any) -> dict[str, Any]:
    value = float(objective_of(result["energy_pJ"], float(result["cycles"]), objective))
    row: dict[str, Any] = {
        "layer": name, "problem": label, "count": count, "macs": macs, "cycles": result["cycles"],
        "energy_pJ": result["energy_pJ"], "utilization": result["utilization"],
        "objective": value, "objective_lower_bound": bound.objective, "objective_gap": bound.gap(value),
        "energy_lower_bound_pJ": bound.energy_pJ, "cycles_lower_bound": bound.cycles,
    }
    for p in parts[:-1]:
        row[f"energy_{p}_pJ"] = result["levels"][p]["energy_pJ"]
    for p in parts[:-1]:
        row[f"accesses_{p}"] = sum(d["reads"] + d["fills"] + d["updates"] for d in result["levels"][p]["dataspaces"].values())
    row[f"energy_{parts[-1]}_pJ"] = result["compute"]["energy_pJ"]
    return row


__all__ = ["ModelReport", "run_model"]
