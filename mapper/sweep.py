"""Sensitivity studies: ``python -m mapper sweep`` and :func:`sweep`.

Every point of a grid (or zip) of spec parameters re-derives the spec
(``Spec.with_overrides``: energies and areas come from the changed raw data), re-maps the
whole model and becomes one tidy row: the parameters, energy/area/power by part, cycles,
seconds, EDP and energy x area. Finished points are committed one by one to the same
result cache as ``search`` (kind ``sweep``), so a killed sweep resumes without computing
a finished point again. Points run serially, on local worker processes, or on a Dask
distributed cluster (``dask="local"`` or a scheduler address).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from mapper.cache import ResultCache, cache_key
from mapper.run import DEFAULT_SEARCH
from mapper.spec import Spec, load_spec
from mapper.limits import bad_number
from mapper.outdir import OutputDir
from mapper.sweep_exec import METRICS, PointTask, run_tasks
from mapper.sweep_output import check_metrics, pareto_mask, write_outputs
from mapper.inputs import model_identity, model_input, spec_input, weights_input
from mapper.sweep_points import check_param_values, expand_points, parse_params, point_specs
from mapper.cli_options import DEFAULT_PARETO, parse_objective, search_options_from, workload_options_from
from mapper.progress import progress_bar
from workloads.graph import LayerGraph
from workloads.provenance import run_metadata
from workloads.yamlio import InputError
from workloads.zoo import DEFAULT_DECODE_TOKENS, build_graph

# Columns of the table that describe how a point was obtained, not what it is.
RUN_COLUMNS = ("cached", "compute_s")


class _Log:
    """Append-only JSON-lines event log (one line per point: computed or cached)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, event: str, key: str, point: dict[str, Any], result: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps({"time": time.time(), "event": event, "key": key, "point": point, "status": result.get("status"),
                           "compute_s": result.get("compute_s"), "computed_by": result.get("computed_by")}, default=str)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _available_metrics(spec: Spec) -> list[str]:
    parts = [l.name for l in [*spec.arch.levels, spec.arch.compute]]
    minimized = [m for m in METRICS if m not in ("utilization", "macs")]
    return [*minimized, *(f"{kind}_{p}_{unit}" for kind, unit in (("energy", "pJ"), ("area", "um2"), ("power", "mW"))
                        for p in parts)]


def sweep(
    spec: Spec | str | os.PathLike, model: str, params: dict[str, Sequence[Any]], mode: str = "grid", *,
    phase: str = "prefill", seq_len: int = 256, batch: int = 1, kv_len: int | None = None, weights: str | None = None,
    layers: str | None = None, decode_tokens: int = DEFAULT_DECODE_TOKENS, lm_head: bool = False,
    objective: Any = "edp", search_options: dict[str, Any] | None = None, jobs: int = 1, dask: Any = None,
    cache: ResultCache | str | os.PathLike | None = None, out: str | os.PathLike | None = None,
    pareto: Sequence[str] = DEFAULT_PARETO, graph: LayerGraph | None = None, progress: bool = False,
    log: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Run a parameter sweep and return one row per point (in grid/zip order).

    Args:
        spec: a :class:`Spec`, a spec file or a bundled spec name.
        model: built-in model name or config.json path (a label only when ``graph`` is given).
        params: dotted spec path -> values (``{"arch.GLB.depth": [4096, 8192]}``).
        layers, decode_tokens, lm_head: as :func:`mapper.run.run_model` (layer filter, generate steps, LM head).
        mode: ``grid`` (cartesian product) or ``zip`` (element-wise; equal lengths).
        jobs: local worker processes (or LocalCluster workers with ``dask="local"``).
        dask: None, ``"local"``, a scheduler address ``tcp://host:port`` or a ``distributed.Client``.
        cache: a ResultCache or its path (default: the ``search`` cache, ``$BITLOOP_CACHE_DIR``).
        out: folder for sweep.csv/json, pareto.csv, plots and sweep.log (nothing written when None).
        pareto: metrics (columns) the Pareto front minimizes; the ``pareto`` column marks it.
        log: JSON-lines event log (default ``out/sweep.log`` when ``out`` is given).
    """
    outdir = OutputDir(out) if out is not None else None      # a bad --out fails before any work
    base = spec if isinstance(spec, Spec) else load_spec(spec)
    params = {str(p): list(v) for p, v in params.items()}
    points = expand_points(params, mode)
    pareto_metrics = check_metrics(list(pareto), _available_metrics(base))
    if not isinstance(jobs, int) or jobs < 1:
        raise InputError("--jobs", "jobs", f"expected an integer >= 1, got {jobs!r}")
    check_param_values(base, params)
    specs = point_specs(base, points)

    run_args = {"phase": phase, "seq_len": seq_len, "batch": batch, "kv_len": kv_len, "weights": weights,
                "layers": layers, "decode_tokens": decode_tokens, "lm_head": lm_head}
    if graph is None:
        graph = build_graph(model, phase=phase, seq_len=seq_len, batch=batch, kv_len=kv_len, include_lm_head=lm_head,
                            decode_tokens=decode_tokens)
    if layers:
        graph = graph.select(layers)
    ident = model_identity(model, graph, run_args)
    options = {**DEFAULT_SEARCH, **(search_options or {})}
    keys = [cache_key("sweep", s.key(), ident, objective, options) for s in specs]
    store = cache if isinstance(cache, ResultCache) else ResultCache(cache)
    if outdir is not None and log is None:
        log = outdir.path / "sweep.log"
        outdir.keep("sweep.log")        # appended by every run: the history of the folder's points
    events = _Log(log)

    results: dict[str, dict[str, Any]] = {}
    cached: set[str] = set()
    tasks: list[PointTask] = []
    first_point: dict[str, dict[str, Any]] = {}
    for point, s, key in zip(points, specs, keys):
        if key in first_point:
            continue
        first_point[key] = point
        hit = store.get(key, check=_valid_point)
        if hit is not None:
            results[key] = hit
            cached.add(key)
            events.event("cached", key, point, hit)
        else:
            tasks.append(PointTask(key, s, model, graph, run_args, objective, options, str(store.path.resolve())))
    if len(tasks) == 1 and dask is None:
        tasks[0].layer_jobs = jobs
    bar = progress_bar(len(tasks), progress, "sweep points", "point")

    def done(task: PointTask, result: dict[str, Any]) -> None:
        store.put(task.key, result, kind="sweep")   # committed before anything else can fail
        results[task.key] = result
        events.event("computed", task.key, first_point[task.key], result)
        bar.update(1)

    try:
        run_tasks(tasks, done, jobs=jobs, dask=dask)
    finally:
        bar.close()

    df = _table(points, keys, specs, results, cached)
    df["pareto"] = pareto_mask(df, pareto_metrics)
    if outdir is not None:
        meta = {"spec": base.name, "spec_file": str(base.source), "model": model, **run_args, "mode": mode,
                "parameters": list(params), "values": params, "objective": objective, "search_options": options,
                "pareto_metrics": pareto_metrics,
                "bitloop": run_metadata({"spec": spec_input(base), "model": model_input(model, graph),
                                         "weights": weights_input(weights)})}
        write_outputs(df, outdir, meta)
    return df


def _valid_point(result: Any) -> bool:
    """A stored point is usable: a status, and for a feasible point finite non-negative metrics."""
    if not isinstance(result, dict) or result.get("status") not in ("ok", "infeasible"):
        return False
    if result["status"] == "infeasible":
        return isinstance(result.get("error"), str)
    return all(isinstance(result.get(m), (int, float)) and bad_number(result[m]) is None for m in METRICS
               if m != "power_mW" or result.get("seconds", 0) > 0)


def _table(points: list[dict[str, Any]], keys: list[str], specs: list[Spec], results: dict[str, dict[str, Any]],
           cached: set[str]) -> pd.DataFrame:
    """One row per point: parameters, status, metrics, then how the point was obtained."""
    metric_cols: list[str] = []
    for r in results.values():
        if r.get("status") == "ok":
            metric_cols = [k for k in r if k not in ("status", "error", "compute_s", "computed_at", "computed_by")]
            break
    rows = []
    for point, key, s in zip(points, keys, specs):
        r = results[key]
        row: dict[str, Any] = {**point, "status": r["status"]}
        row.update({c: r.get(c, float("nan")) for c in metric_cols})
        row.update(error=r.get("error", ""), cached=key in cached, compute_s=r.get("compute_s"), spec_key=s.key())
        rows.append(row)
    return pd.DataFrame(rows)


# ---- command line ---------------------------------------------------------------------------
def _format_table(df: pd.DataFrame, params: list[str], max_rows: int = 60) -> str:
    head = "".join(f"{p[-22:]:>24}" for p in params)
    lines = [f"{head} {'energy uJ':>11} {'cycles':>12} {'area mm^2':>10} {'EDP J*s':>10}  pareto"]
    for _, r in df.head(max_rows).iterrows():
        cells = "".join(f"{str(r[p])[-22:]:>24}" for p in params)
        if r["status"] != "ok":
            lines.append(f"{cells} {'infeasible':>11}  {str(r['error'])[:60]}")
            continue
        lines.append(f"{cells} {r['energy_pJ'] * 1e-6:>11.4g} {int(r['cycles']):>12} {r['area_um2'] * 1e-6:>10.4g} "
                     f"{r['edp_J_s']:>10.3g}  {'*' if r['pareto'] else ''}")
    if len(df) > max_rows:
        lines.append(f"... {len(df) - max_rows} more points (see sweep.csv)")
    return "\n".join(lines)


def _cmd_sweep(args: argparse.Namespace) -> int:
    params = parse_params(args.param or [])
    start = time.perf_counter()
    df = sweep(load_spec(args.spec, nest_analysis=args.nest_analysis), args.model, params,
               mode="zip" if args.zip else "grid", phase=args.phase,
               **workload_options_from(args), weights=args.weights, objective=parse_objective(args.objective),
               search_options=search_options_from(args), jobs=args.jobs, dask=args.dask, cache=args.cache, out=args.out,
               pareto=args.pareto.split(","), progress=True)
    print(_format_table(df, list(params)))
    computed = int((~df["cached"]).sum())
    print(f"{len(df)} points ({computed} computed, {len(df) - computed} from the cache, "
          f"{int((df['status'] != 'ok').sum())} infeasible, {int(df['pareto'].sum())} on the Pareto front) "
          f"in {time.perf_counter() - start:.1f} s")
    if args.out:
        print(f"wrote {Path(args.out) / 'sweep.csv'}, sweep.json, pareto.csv, plots (*.png), sweep.log")
    return 0


__all__ = ["DEFAULT_PARETO", "RUN_COLUMNS", "sweep"]
