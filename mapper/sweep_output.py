"""Sweep outputs: Pareto front, sweep.csv/json, pareto.csv and PNG plots (all written atomically).

Plots: a line plot per swept parameter for a 1-D sweep (and for ``--zip``, against the
point index), a heat map per pair of parameters for a grid of two or more (cells of a
3-D or larger grid show the best value over the other parameters), and the Pareto
scatter of the first two Pareto metrics.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mapper.outdir import OutputDir
from workloads.yamlio import InputError

# Metrics drawn in the line and heat-map plots (those present in the table).
PLOT_METRICS = ("energy_pJ", "cycles", "area_um2", "edp_J_s")


def pareto_mask(df: pd.DataFrame, metrics: Sequence[str]) -> pd.Series:
    """True for rows no other feasible row dominates (<= in every metric, < in one); all minimized."""
    mask = pd.Series(False, index=df.index)
    ok = df[df["status"] == "ok"] if "status" in df else df
    if ok.empty:
        return mask
    values = ok[list(metrics)].to_numpy(dtype=float)
    le = (values[:, None, :] <= values[None, :, :]).all(axis=2)   # le[i, j]: i <= j everywhere
    lt = (values[:, None, :] < values[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)
    mask.loc[ok.index] = ~dominated
    return mask


def check_metrics(metrics: Sequence[str], available: Sequence[str], option: str = "--pareto") -> list[str]:
    """Metric names that are numeric columns of the table; InputError naming the bad one."""
    out = [m.strip() for m in metrics if m.strip()]
    if not out:
        raise InputError(option, "metrics", "expected at least one metric, e.g. energy_pJ,cycles")
    for m in out:
        if m not in available:
            raise InputError(option, m, f"unknown metric (expected one of: {', '.join(available)})")
    return out


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_plot(df: pd.DataFrame, x: str | None, params: Sequence[str], title: str) -> bytes:
    """Metrics against one parameter (``x``), or against the point index when ``x`` is None."""
    plt = _pyplot()
    metrics = [m for m in PLOT_METRICS if m in df]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 3.2), squeeze=False)
    short = {p: ".".join(p.split(".")[-2:]) for p in params}
    labels = [str(v) for v in df[x]] if x else ["\n".join(f"{short[p]}={r[p]}" for p in params) for _, r in df.iterrows()]
    pos = np.arange(len(df))
    for ax, m in zip(axes[0], metrics):
        y = pd.to_numeric(df[m], errors="coerce").to_numpy(dtype=float)
        ax.plot(pos, y, "o-", color="#4C72B0")
        if "pareto" in df:
            front = df["pareto"].to_numpy(dtype=bool)
            ax.plot(pos[front], y[front], "o", color="#C44E52", label="Pareto")
        ax.set_xticks(pos, labels, fontsize=7)
        ax.set_xlabel(x or "point")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
    if "pareto" in df and df["pareto"].any():
        axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def heat_map(df: pd.DataFrame, x: str, y: str, others: Sequence[str], values: dict[str, list[Any]], title: str) -> bytes:
    """One panel per metric over the (``x``, ``y``) grid; with ``others``, each cell is the best (min) over them."""
    plt = _pyplot()
    metrics = [m for m in PLOT_METRICS if m in df]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    xs, ys = values[x], values[y]
    for ax, m in zip(axes[0], metrics):
        grid = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                cell = pd.to_numeric(df[(df[x] == xv) & (df[y] == yv)][m], errors="coerce").dropna()
                if len(cell):
                    grid[i, j] = cell.min()
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        lo, hi = np.nanmin(grid) if np.isfinite(grid).any() else 0.0, np.nanmax(grid) if np.isfinite(grid).any() else 0.0
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                light = hi > lo and (v - lo) / (hi - lo) > 0.6   # viridis is light at the top
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6, color="black" if light else "white")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [str(v) for v in ys], fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(m + (f" (best over {', '.join(others)})" if others else ""), fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def pareto_plot(df: pd.DataFrame, metrics: Sequence[str], title: str) -> bytes:
    """All feasible points in the plane of the first two Pareto metrics, the front highlighted."""
    plt = _pyplot()
    a, b = metrics[0], metrics[1]
    ok = df[df["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    ax.scatter(ok[a], ok[b], color="#999999", s=18, label="points")
    front = ok[ok["pareto"]].sort_values(a)
    ax.plot(front[a], front[b], "o-", color="#C44E52", label="Pareto front")
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _png(fig)


def write_outputs(df: pd.DataFrame, out_dir: str | Path | OutputDir, meta: dict[str, Any]) -> dict[str, Path]:
    """sweep.csv, sweep.json (meta + rows), pareto.csv and the plots; returns the paths written.
    Files an earlier sweep left in the folder (other plots) are removed (mapper.outdir)."""
    out = out_dir if isinstance(out_dir, OutputDir) else OutputDir(out_dir)
    paths = _write_outputs(df, out, meta)
    out.finish()
    return paths


def _write_outputs(df: pd.DataFrame, out: OutputDir, meta: dict[str, Any]) -> dict[str, Path]:
    params: list[str] = meta["parameters"]
    values: dict[str, list[Any]] = meta["values"]
    records = json.loads(df.to_json(orient="records"))
    paths = {"csv": out.write("sweep.csv", df.to_csv(index=False)),
             "json": out.write("sweep.json", json.dumps({**meta, "points": records}, indent=2) + "\n"),
             "pareto": out.write("pareto.csv", df[df["pareto"]].to_csv(index=False))}
    title = f"{meta['spec']} on {meta['model']} ({meta['phase']})"
    if not (df["status"] == "ok").any():
        return paths  # nothing feasible to plot
    if meta["mode"] == "zip" or len(params) == 1:
        if len(params) == 1:
            name = f"line_{_safe(params[0])}.png"
            paths[name] = out.write(name, line_plot(df, params[0], params, title))
        else:
            paths["line_points.png"] = out.write("line_points.png", line_plot(df, None, params, title))
    else:
        for x, y in itertools.combinations(params, 2):
            others = [p for p in params if p not in (x, y)]
            name = f"heatmap_{_safe(x)}__{_safe(y)}.png"
            paths[name] = out.write(name, heat_map(df, x, y, others, values, title))
    metrics = meta["pareto_metrics"]
    if len(metrics) >= 2:
        paths["pareto.png"] = out.write("pareto.png", pareto_plot(df, metrics, title))
    return paths


__all__ = ["PLOT_METRICS", "check_metrics", "heat_map", "line_plot", "pareto_mask", "pareto_plot", "write_outputs"]
