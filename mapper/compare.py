"""Compare accelerators on the same workloads: ``python -m mapper compare --specs A B C --model M``.

Every (spec, model, phase) is mapped and evaluated by :func:`mapper.run.run_model`; speedup and
energy are normalized to the first spec (the baseline) per model and phase, and summarized by
their geometric mean over the workloads. ``--normalize area|power`` first scales every spec's
compute array to the baseline's array area or peak power (:mod:`mapper.normalize`). Energy is split into DRAM (the outermost level),
on-chip buffers (every other storage level, leakage included) and core (the compute level).

Outputs (``--out DIR``): ``compare.json`` (``{"baseline", "normalize", "rows", "geomean"}``), ``compare.csv``
and ``compare.png`` (speedup and normalized-energy bars per workload, as in the papers' figures).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from mapper.cli_options import parse_objective, search_options_from, workload_options_from
from mapper.outdir import OutputDir
from mapper.spec import Spec, load_spec
from workloads.graph import LayerGraph
from workloads.provenance import run_metadata
from workloads.yamlio import InputError
from workloads.zoo import DEFAULT_DECODE_TOKENS

PARTS = ("DRAM", "buffers", "core")


def energy_parts(report: Any) -> dict[str, float]:
    """Energy (pJ) of a :class:`mapper.run.ModelReport` split into DRAM / on-chip buffers / core."""
    breakdown = report.summary()["energy_breakdown_pJ"]
    names = list(report.parts)
    dram, core = names[0], names[-1]
    buffers = sum(v for k, v in breakdown.items() if k not in (dram, core))
    return {"DRAM": breakdown[dram], "buffers": buffers, "core": breakdown[core]}


def _labels(specs: Sequence[Spec]) -> list[str]:
    """Spec names, made unique with the file stem when two specs share a name."""
    names = [s.name for s in specs]
    out = []
    for s in specs:
        label = s.name if names.count(s.name) == 1 else f"{s.name}[{s.source.stem}]"
        while label in out:
            label += "'"
        out.append(label)
    return out


def _geomean(values: Iterable[float]) -> float:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def compare(
    specs: Sequence[Spec | str | os.PathLike], models: Sequence[str | LayerGraph], phases: Sequence[str] = ("prefill",),
    seq_len: int = 256, batch: int = 1, kv_len: int | None = None, weights: str | None = None, jobs: int = 1,
    cache: Any | None = None, search_options: dict[str, Any] | None = None, objective: Any = "edp",
    progress: bool = False, layers: str | None = None, decode_tokens: int = DEFAULT_DECODE_TOKENS, lm_head: bool = False,
    normalize: str = "none",
) -> dict[str, Any]:
    """Run every spec on every model and phase; returns ``{"baseline", "rows", "geomean", "inputs"}``
    (``inputs``: digests of the specs, models and weights, for the output metadata).

    ``specs`` are :class:`Spec` objects or spec paths/bundled names; the first is the baseline.
    ``models`` are built-in model names / config.json paths (run in every phase) or prebuilt
    :class:`LayerGraph` objects (run once, in the phase of their ``meta``).
    Each row: ``spec, model, phase, cycles, seconds, energy_pJ, speedup, energy_norm, area_um2``,
    ``macs``, ``energy_DRAM_pJ, energy_buffers_pJ, energy_core_pJ``, ``statistics`` (where the
    tensor statistics came from) and ``array_scale`` (the compute-array scale ``normalize``
    applied). ``normalize``: ``none``, ``area`` or ``power`` scales every spec's compute array to
    the baseline's array area or peak power (:mod:`mapper.normalize`); ``layers``,
    ``decode_tokens``, ``lm_head`` as :func:`mapper.run.run_model`. ``speedup`` = baseline seconds /
    seconds (cycles when clocks are equal); ``energy_norm`` = energy / baseline energy.
    """
    from mapper.cache import ResultCache
    from mapper.normalize import normalize_specs
    from mapper.run import Searches, plan_model

    loaded = [s if isinstance(s, Spec) else load_spec(s) for s in specs]
    if not loaded:
        raise InputError("<compare>", "specs", "expected at least one spec")
    labels = _labels(loaded)
    loaded, scales = normalize_specs(loaded, normalize)
    if not models:
        raise InputError("<compare>", "models", "expected at least one model")
    workloads: list[tuple[str, str, LayerGraph | None]] = []
    for model in models:
        if isinstance(model, LayerGraph):
            workloads.append((model.name, str(model.meta.get("phase", phases[0])), model))
        else:
            workloads.extend((str(model), phase, None) for phase in phases)
    searches = Searches(jobs, cache if cache is not None else ResultCache(), progress)
    plans = []
    try:
        for model, phase, graph in workloads:
            plans.append([])
            for spec in loaded:   # each plan's searches start while the next plans are built
                plans[-1].append(plan_model(spec, model, phase=phase, seq_len=seq_len, batch=batch, kv_len=kv_len,
                                            weights=weights, objective=objective, search_options=search_options,
                                            graph=graph, layers=layers, decode_tokens=decode_tokens, lm_head=lm_head))
                searches.submit(plans[-1][-1])
        rows, inputs = _finish_rows(workloads, plans, labels, scales, searches)
    finally:
        searches.cancel()
    geomean = {label: {"speedup": _geomean(r["speedup"] for r in rows if r["spec"] == label),
                       "energy_norm": _geomean(r["energy_norm"] for r in rows if r["spec"] == label)}
               for label in labels}
    return {"baseline": labels[0], "normalize": normalize, "rows": rows, "geomean": geomean, "inputs": inputs}


def _finish_rows(workloads: list[tuple[str, str, Any]], plans: list[list[Any]], labels: list[str],
                 scales: list[float], searches: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Finish every plan (workload-major, one per spec) into a compare row; rows of one workload
    are normalized to its first spec. Returns (rows, the digests of the inputs)."""
    from mapper.run import finish_model

    rows: list[dict[str, Any]] = []
    inputs: dict[str, Any] = {"specs": {}, "models": {}}
    for (model, phase, _), group_plans in zip(workloads, plans):
        group = []
        for plan, label, scale in zip(group_plans, labels, scales):
            rep = finish_model(plan, searches)
            inputs["specs"].setdefault(label, rep.inputs["spec"])
            inputs["models"][f"{model} ({phase})"] = rep.inputs["model"]
            inputs.update({k: rep.inputs[k] for k in ("seq_len", "batch", "kv_len", "weights", "objective", "search_options")})
            s = rep.summary()
            parts = energy_parts(rep)
            group.append({
                "spec": label, "model": model, "phase": phase, "cycles": int(s["cycles"]),
                "seconds": float(s["seconds"]), "energy_pJ": float(s["energy_pJ"]), "speedup": 1.0,
                "energy_norm": 1.0, "area_um2": float(s["area_um2"]), "macs": int(s["macs"]),
                **{f"energy_{k}_pJ": float(v) for k, v in parts.items()},
                "statistics": s["provenance"].get("note", ""), "array_scale": scale,
            })
        base = group[0]
        for row in group:
            row["speedup"] = base["seconds"] / row["seconds"] if row["seconds"] > 0 else float("inf")
            row["energy_norm"] = row["energy_pJ"] / base["energy_pJ"] if base["energy_pJ"] > 0 else float("nan")
        rows.extend(group)
    return rows, inputs


def to_dataframe(result: dict[str, Any]) -> Any:
    """The rows of a :func:`compare` result as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(result["rows"])


def format_table(result: dict[str, Any]) -> str:
    """Terminal table: per workload, each spec's speedup, normalized energy and energy split."""
    lines = [f"baseline: {result['baseline']} (speedup = baseline time / time; energy normalized to the baseline)"]
    if result.get("normalize", "none") != "none":
        lines.append(f"iso-{result['normalize']}: compute arrays scaled to the baseline's (column 'array x')")
    head = f"{'spec':<22} {'cycles':>13} {'speedup':>8} {'energy uJ':>11} {'E norm':>7} {'DRAM':>6} {'buffers':>8} {'core':>6} {'area mm2':>9}"
    if result.get("normalize", "none") != "none":
        head += f" {'array x':>7}"
    workloads = list(dict.fromkeys((r["model"], r["phase"]) for r in result["rows"]))
    for model, phase in workloads:
        lines += ["", f"{model} ({phase})", head]
        for r in (r for r in result["rows"] if (r["model"], r["phase"]) == (model, phase)):
            e = max(r["energy_pJ"], 1e-30)
            share = [100 * r[f"energy_{p}_pJ"] / e for p in PARTS]
            lines.append(f"{r['spec'][:22]:<22} {r['cycles']:>13,} {r['speedup']:>7.3f}x {r['energy_pJ'] * 1e-6:>11.4g} "
                         f"{r['energy_norm']:>7.3f} {share[0]:>5.1f}% {share[1]:>7.1f}% {share[2]:>5.1f}% {r['area_um2'] * 1e-6:>9.3f}"
                         + (f" {r['array_scale']:>7.3f}" if result.get("normalize", "none") != "none" else ""))
    lines += ["", f"geometric mean over {len(workloads)} workload(s)", f"{'spec':<22} {'speedup':>8} {'E norm':>7}"]
    for label, g in result["geomean"].items():
        lines.append(f"{label[:22]:<22} {g['speedup']:>7.3f}x {g['energy_norm']:>7.3f}")
    return "\n".join(lines)


def compare_png(result: dict[str, Any]) -> bytes:
    """Grouped bars of speedup (top) and stacked normalized energy DRAM/buffers/core (bottom)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = list(result["geomean"])
    workloads = list(dict.fromkeys((r["model"], r["phase"]) for r in result["rows"]))
    by = {(r["spec"], r["model"], r["phase"]): r for r in result["rows"]}
    names = [m if len({p for _, p in workloads}) == 1 else f"{m}\n{p}" for m, p in workloads] + ["geomean"]
    width = 0.8 / len(specs)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 1.3 * len(names) * max(1, len(specs)) ** 0.5), 7))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, spec in enumerate(specs):
        xs = [j + (i - (len(specs) - 1) / 2) * width for j in range(len(names))]
        speed = [by[(spec, m, p)]["speedup"] for m, p in workloads] + [result["geomean"][spec]["speedup"]]
        ax1.bar(xs, speed, width, label=spec, color=colors[i % len(colors)])
        bottom = [0.0] * len(names)
        for k, (part, alpha) in enumerate(zip(PARTS, (1.0, 0.6, 0.3))):
            vals = [by[(spec, m, p)][f"energy_{part}_pJ"] / by[(result["baseline"], m, p)]["energy_pJ"] for m, p in workloads]
            total = [by[(spec, m, p)]["energy_norm"] for m, p in workloads]
            gm = result["geomean"][spec]["energy_norm"]
            share = sum(v / t for v, t in zip(vals, total) if t > 0) / max(len(vals), 1)
            vals.append(gm * share)
            ax2.bar(xs, vals, width, bottom=bottom, color=colors[i % len(colors)], alpha=alpha, edgecolor="black",
                    linewidth=0.3)
            bottom = [b + v for b, v in zip(bottom, vals)]
    for ax, ylabel in ((ax1, f"speedup over {result['baseline']}"), (ax2, f"energy / {result['baseline']}")):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.axhline(1.0, color="gray", linewidth=0.6)
    ax1.legend(fontsize=7, ncol=min(4, len(specs)))
    from matplotlib.patches import Patch

    ax2.legend(handles=[Patch(facecolor="gray", alpha=a, edgecolor="black", label=p) for p, a in zip(PARTS, (1.0, 0.6, 0.3))],
               fontsize=7, title="energy split", title_fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(result: dict[str, Any], out_dir: str | Path | OutputDir) -> dict[str, Path]:
    """Write compare.json (with the ``bitloop`` run metadata), compare.csv and compare.png into ``out_dir``."""
    from mapper.report import rows_to_csv

    out = out_dir if isinstance(out_dir, OutputDir) else OutputDir(out_dir)
    meta = run_metadata(result.get("inputs"))
    data = {k: v for k, v in result.items() if k != "inputs"}
    paths = {"json": out.write("compare.json", json.dumps(_undefined_as_null({**data, "bitloop": meta}), indent=2,
                                                          allow_nan=False) + "\n"),
             "csv": out.write("compare.csv", rows_to_csv(result["rows"])),
             "png": out.write("compare.png", compare_png(result))}
    out.finish()
    return paths


def _undefined_as_null(data: Any) -> Any:
    """``data`` with NaN/infinite ratios (a baseline of 0 pJ or 0 s) as None: valid JSON ``null``."""
    if isinstance(data, dict):
        return {k: _undefined_as_null(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_undefined_as_null(v) for v in data]
    return None if isinstance(data, float) and not math.isfinite(data) else data


def _cmd_compare(args: argparse.Namespace) -> int:
    from mapper.cache import ResultCache

    out = OutputDir(args.out) if args.out else None      # a bad --out fails before anything runs
    specs = [load_spec(p, nest_analysis=args.nest_analysis) for p in args.specs]  # every spec is checked before anything runs
    result = compare(specs, args.model, phases=args.phase, **workload_options_from(args), normalize=args.normalize,
                     weights=args.weights, jobs=args.jobs, cache=ResultCache(args.cache) if args.cache else None,
                     search_options=search_options_from(args), objective=parse_objective(args.objective), progress=True)
    print(format_table(result))
    if out is not None:
        paths = write_outputs(result, out)
        print(f"wrote {paths['json']}, {paths['csv'].name}, {paths['png'].name}")
    return 0


__all__ = ["compare", "energy_parts", "format_table", "compare_png", "to_dataframe", "write_outputs"]
