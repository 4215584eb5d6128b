"""Whole-model runs: map every unique layer shape of a model's graph, evaluate every layer, and
aggregate energy, cycles and area.

A mapping is searched once per unique problem shape (with the statistics of the first
layer of that shape); every layer is then evaluated on its shape's mapping with its own
statistics, and a layer whose statistics make that mapping overflow a buffer gets a search
of its own (its ``mapping`` column names it). Searches run in worker processes and each
finished one is committed to the result cache at once, so an interrupted run resumes without
redoing finished layers.

A run has three steps: :func:`plan_model` (graph, statistics, unique shapes),
:class:`Searches` (the searches of any number of plans in one worker pool: ``compare``
searches all its specs and models together) and :func:`finish_model` (per-layer evaluation).
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from mapper.bitlevel import layer_models, stats_identity
from mapper.bounds import LowerBound, lower_bound, objective_of
from mapper.statistics import layer_statistics, statistics_provenance
from mapper.cache import ResultCache, cache_key
from mapper.inputs import model_input, spec_input, weights_input
from mapper.limits import check_numbers, check_problem
from mapper.mapping import mapping_from_dict
from mapper.mapspace import Mapspace
from mapper.model import Evaluation, evaluate
from mapper.progress import progress_bar
from mapper.search import search
from mapper.spec import Spec
from mapper.workers import shared_pool
from workloads.graph import LayerGraph, pass_name, problem_label
from workloads.problem import Problem, problem_from_dict
from workloads.yamlio import InputError, parse_yaml_text
from workloads.zoo import DEFAULT_DECODE_TOKENS, build_graph

# Whole-model runs consider imperfect (padded) factors, as Timeloop's imperfect factorization and the
# papers' simulators (ceil-divided tiles) do; {"imperfect": False} (CLI --perfect) keeps exact factors.
# The budget per layer: docs/search.md (benchmarks/bench_search.py --budgets).
DEFAULT_SEARCH = {"mode": "auto", "max_evaluations": 8_000, "patience": 8, "seed": 0, "exhaustive_limit": 8_000,
                  "imperfect": True}


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
    inputs: dict[str, Any] = field(default_factory=dict)   # digests of what the run read (output metadata)
    layer_filter: str | None = None          # the --layers filter the graph was restricted to (None: all layers)
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
            "layer_filter": self.layer_filter,
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
        "evaluated": result.evaluated, "valid": result.valid, "pruned": result.pruned, "exhaustive": result.exhaustive,
        "seconds": result.seconds,
    }


@dataclass
class ModelPlan:
    """One (spec, model, phase) run before its searches: the graph, each layer's statistics and
    the unique shapes to search (``tasks``: label, problem, statistics of its first layer)."""

    spec: Spec
    model: str
    phase: str
    graph: LayerGraph
    stats: dict[str, Any]
    roles: dict[str, Any]
    stat_settings: Any
    groups: list[tuple[Problem, list[str]]]
    options: dict[str, Any]
    objective: Any
    inputs: dict[str, Any]

    @property
    def tasks(self) -> list[tuple[str, Problem, Any]]:
        return [(problem_label(p), p, self.stats.get(names[0])) for p, names in self.groups]


def plan_model(
    spec: Spec, model: str, phase: str = "prefill", seq_len: int = 256, batch: int = 1, kv_len: int | None = None,
    weights: str | None = None, objective: Any = "edp", search_options: dict[str, Any] | None = None,
    graph: LayerGraph | None = None, layers: str | None = None, decode_tokens: int = DEFAULT_DECODE_TOKENS,
    lm_head: bool = False,
) -> ModelPlan:
    """The graph, statistics and unique shapes of a run (arguments as :func:`run_model`)."""
    graph = graph or build_graph(model, phase=phase, seq_len=seq_len, batch=batch, kv_len=kv_len,
                                 include_lm_head=lm_head, decode_tokens=decode_tokens)
    if layers:
        graph = graph.select(layers)
    options = {**DEFAULT_SEARCH, **(search_options or {})}
    # Statistics are matched on one pass's layers; every pass of a generate graph reuses them.
    base_stats, base_roles, stat_settings = layer_statistics(spec, graph.one_pass(), weights)
    stats = {n: base_stats[pass_name(n)] for n in graph.names() if pass_name(n) in base_stats}
    roles = {n: base_roles[pass_name(n)] for n in graph.names() if pass_name(n) in base_roles}
    groups = graph.unique_problems()
    for problem, names in groups:
        check_problem(problem, f"{model}: layer {names[0]}", spec.arch)
    inputs = {"spec": spec_input(spec), "model": model_input(model, graph), "phase": phase, "seq_len": seq_len,
              "batch": batch, "kv_len": kv_len, "weights": weights_input(weights), "objective": objective,
              "search_options": options}
    return ModelPlan(spec, model, phase, graph, stats, roles, stat_settings, groups, options, objective, inputs)


def run_model(
    spec: Spec, model: str, phase: str = "prefill", seq_len: int = 256, batch: int = 1, kv_len: int | None = None,
    weights: str | None = None, objective: Any = "edp", jobs: int = 1, cache: ResultCache | None = None,
    search_options: dict[str, Any] | None = None, progress: bool = False, graph: LayerGraph | None = None,
    layers: str | None = None, decode_tokens: int = DEFAULT_DECODE_TOKENS, lm_head: bool = False,
) -> ModelReport:
    """Map and evaluate every layer of ``model`` on ``spec`` (see module doc).

    ``layers``: a filter (``LayerGraph.select``: op kinds and name patterns, ``!`` excludes)
    restricting the run to part of the graph. ``decode_tokens``: steps of the ``generate``
    phase. ``lm_head``: include a language model's LM head (last position of each sequence).
    """
    plan = plan_model(spec, model, phase, seq_len, batch, kv_len, weights, objective, search_options, graph, layers,
                      decode_tokens, lm_head)
    searches = Searches(jobs, cache if cache is not None else ResultCache(), progress)
    try:
        searches.submit(plan)
        return finish_model(plan, searches)
    finally:
        searches.cancel()


class Searches:
    """The searches of any number of plans (one per unique shape, cached) in one pool of ``jobs``
    worker processes: plans are submitted as they are built and finished as their searches
    complete, so the workers stay busy while the main process plans and finishes (``compare``
    runs all its specs and models this way). Each finished search is committed to the cache
    when its result is taken; one cache key is searched once."""

    def __init__(self, jobs: int, cache: ResultCache, progress: bool = False) -> None:
        self.jobs, self.cache, self.progress = jobs, cache, progress
        self._results: dict[str, dict[str, Any]] = {}      # cache key -> result
        self._futures: dict[str, Future] = {}              # cache key -> running search (jobs > 1)
        self._serial: dict[str, tuple] = {}                # cache key -> search arguments (jobs == 1)
        self._keys: dict[int, dict[str, str]] = {}         # id(plan) -> label -> cache key
        self._spec_keys: dict[int, str] = {}

    def submit(self, plan: ModelPlan) -> None:
        """Look up every search of ``plan`` in the cache and start the missing ones."""
        self._keys[id(plan)] = {label: self.start(plan.spec, label, problem, st, plan.objective, plan.options)
                                for label, problem, st in plan.tasks}

    def start(self, spec: Spec, label: str, problem: Problem, stats: Any, objective: Any, options: dict[str, Any]) -> str:
        """Start one search (unless cached or already started); returns its cache key."""
        if id(spec) not in self._spec_keys:
            self._spec_keys[id(spec)] = spec.key()
        key = cache_key("search", self._spec_keys[id(spec)], problem.key(), stats_identity(stats), objective, options)
        if key in self._results or key in self._futures or key in self._serial:
            return key
        hit = self.cache.get(key, check=lambda v: _decode(v, spec, label) is not None)
        if hit is not None:
            self._results[key] = {**hit, "cached": True}
        elif self.jobs > 1:
            self._futures[key] = shared_pool(self.jobs).submit(_search_task, spec, problem, stats, objective, options)
        else:
            self._serial[key] = (spec, problem, stats, objective, options)
        return key

    def result(self, key: str) -> dict[str, Any]:
        """The result of a started search: waits for it (or runs it, with one job) and caches it."""
        if key not in self._results:
            value = self._futures.pop(key).result() if key in self._futures else _search_task(*self._serial.pop(key))
            self.cache.put(key, value)
            self._results[key] = {**value, "cached": False}
        return self._results[key]

    def results(self, plan: ModelPlan) -> dict[str, dict[str, Any]]:
        """label -> search result for every unique shape of a submitted plan. While it waits,
        every search that finishes (of any plan) is committed to the cache at once."""
        keys = self._keys[id(plan)]
        todo = set(keys.values()) - set(self._results)
        bar = progress_bar(len(todo), self.progress, "searching layers", "layer")
        while todo & set(self._futures):
            wait(list(self._futures.values()), return_when=FIRST_COMPLETED)
            for key in [k for k, fut in self._futures.items() if fut.done()]:
                self.result(key)
                bar.update(key in todo)
        for key in todo - set(self._results):
            self.result(key)
            bar.update(1)
        bar.close()
        return {label: self._results[key] for label, key in keys.items()}

    def cancel(self) -> None:
        """End the run (normally, by an error or an interrupt): commit the searches that finished,
        cancel the ones not started."""
        for key, fut in list(self._futures.items()):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.result(key)
            else:
                fut.cancel()


def finish_model(plan: ModelPlan, searches: "Searches") -> ModelReport:
    """Evaluate every layer of a submitted plan on its shape's mapping with its own statistics;
    a layer whose statistics make that mapping overflow a buffer (more stored bits per element
    than the statistics the search used) gets a search of its own."""
    spec, graph, stats, options, objective = plan.spec, plan.graph, plan.stats, plan.options, plan.objective
    found = searches.results(plan)
    parts = [l.name for l in spec.arch.levels] + [spec.arch.compute.name]
    rows, stats_text, mappings, problems = [], {}, {}, {}
    search_bounds: dict[str, LowerBound] = {}
    from mapper.summary import format_summary

    for problem, names in plan.groups:
        label = problem_label(problem)
        space = Mapspace(problem, spec.arch, spec.constraints_for(problem), imperfect=bool(options.get("imperfect")))
        shape_mapped, shape_mapping = _decoded(found[label], spec, label)
        shared: dict[str, tuple[Evaluation, LowerBound, str, int]] = {}   # one evaluation per statistics identity
        for name in names:
            layer = graph.layer(name)
            ident = stats_identity(stats.get(name))
            if ident not in shared:
                models = layer_models(spec, stats.get(name))
                own, mapped, mapping = label, shape_mapped, shape_mapping
                ev = evaluate(mapped, spec.arch, mapping, spec.ert, models, clock_MHz=spec.clock_MHz, check_capacity=False)
                if not bool(ev.batch.valid[0]):
                    own = f"{label}~{len(mappings)}"
                    found[own] = searches.result(searches.start(spec, own, problem, stats.get(name), objective, options))
                    mapped, mapping = _decoded(found[own], spec, own)
                    ev = evaluate(mapped, spec.arch, mapping, spec.ert, models, clock_MHz=spec.clock_MHz)
                mappings[own] = found[own]["mapping_yaml"]
                problems[own] = found[own]["problem_yaml"]
                bound = lower_bound(problem, spec.arch, ert=spec.ert, models=models, objective=objective, space=space)
                shared[ident] = (ev, bound, own, mapped.macs)
                search_bounds[own] = bound   # the bound of the statistics each search used
                if name == names[0]:
                    search_bounds[label] = bound
            ev, bound, own, mapped_macs = shared[ident]
            result = ev.to_dict()
            rows.append(_row(name, label, own, layer.count, problem.macs, mapped_macs, result, parts, bound, objective))
            check_numbers(rows[-1], str(spec.source), f"{plan.model}: layer {name}")
            stats_text[name] = format_summary(result, f"{name}: {label} on {spec.name}")
    provenance, per_layer = statistics_provenance(graph, stats, plan.roles, plan.stat_settings)
    for r in rows:
        r.update(per_layer[r["layer"]])
    order = {l.name: i for i, l in enumerate(graph.layers())}
    rows.sort(key=lambda r: order[r["layer"]])
    search_info = {k: {x: v[x] for x in ("evaluated", "valid", "pruned", "exhaustive", "seconds", "cached", "objective")}
                   for k, v in found.items()}
    for label, bound in search_bounds.items():  # the bound of the layer whose statistics the search used
        search_info[label]["objective_lower_bound"] = bound.objective
        search_info[label]["objective_gap"] = bound.gap(search_info[label]["objective"])
    return ModelReport(spec.name, plan.model, plan.phase, spec.clock_MHz, spec.area_um2, rows, parts, mappings, problems,
                       stats_text, search_info, provenance, plan.inputs, graph.meta.get("layers"), objective)


def _decoded(result: dict[str, Any], spec: Spec, label: str) -> tuple[Problem, Any]:
    """(mapped problem, mapping) of a search result that was just found or checked on reading."""
    decoded = _decode(result, spec, label)
    assert decoded is not None, "a fresh or checked search result always decodes"
    return decoded


_SEARCH_FIELDS = {"mapping_yaml": str, "problem_yaml": str, "objective": (int, float), "evaluated": int, "valid": int,
                  "pruned": int, "exhaustive": bool, "seconds": (int, float)}


def _decode(result: Any, spec: Spec, label: str) -> tuple[Problem, Any] | None:
    """(mapped problem, mapping) of a stored search result; None when the entry is damaged."""
    if not isinstance(result, dict) or any(not isinstance(result.get(k), t) for k, t in _SEARCH_FIELDS.items()):
        return None
    try:
        mapped = problem_from_dict(parse_yaml_text(result["problem_yaml"]), f"<problem {label}>")
        mapping = mapping_from_dict(parse_yaml_text(result["mapping_yaml"]), spec.arch, mapped, f"<mapping {label}>")
    except InputError:
        return None
    return mapped, mapping


def _row(name: str, label: str, mapping: str, count: int, macs: int, mapped_macs: int, result: dict[str, Any],
         parts: list[str], bound: LowerBound, objective: Any) -> dict[str, Any]:
    """One layers.csv row; utilization counts the layer's own MACs, not the padding of imperfect factors.
    ``mapping`` names the layer's mapping: its shape's label, or ``label~N`` where its own
    statistics needed a search of their own."""
    value = float(objective_of(result["energy_pJ"], float(result["cycles"]), objective))
    row: dict[str, Any] = {
        "layer": name, "problem": label, "mapping": mapping, "count": count, "macs": macs, "cycles": result["cycles"],
        "energy_pJ": result["energy_pJ"], "utilization": result["utilization"] * macs / mapped_macs,
        "objective": value, "objective_lower_bound": bound.objective, "objective_gap": bound.gap(value),
        "energy_lower_bound_pJ": bound.energy_pJ, "cycles_lower_bound": bound.cycles,
    }
    for p in parts[:-1]:
        row[f"energy_{p}_pJ"] = result["levels"][p]["energy_pJ"]
    for p in parts[:-1]:
        row[f"accesses_{p}"] = sum(d["reads"] + d["fills"] + d["updates"] for d in result["levels"][p]["dataspaces"].values())
    row[f"energy_{parts[-1]}_pJ"] = result["compute"]["energy_pJ"]
    return row


__all__ = ["ModelPlan", "ModelReport", "Searches", "finish_model", "plan_model", "run_model"]
